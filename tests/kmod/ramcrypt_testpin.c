// SPDX-License-Identifier: GPL-2.0
/*
 * ramcrypt_testpin.ko - TEST ONLY, never shipped: a get_user_pages()
 * reference on a ramcrypt frame held across its region's last close, as an
 * O_DIRECT read in flight holds one, to check that the frame is wiped when
 * the reference goes.
 *
 *   echo N > /sys/module/ramcrypt_testpin/parameters/pages  (default 1)
 *   echo /dev/ramcrypt > /sys/module/ramcrypt_testpin/parameters/pin
 *	opens a region, maps N pages of it into the writing task, faults
 *	them in for write through get_user_pages_fast() and keeps them,
 *	then unmaps and closes the region (the last close runs when the
 *	write returns).
 *   echo SEED > /sys/module/ramcrypt_testpin/parameters/fill
 *	writes into the held pages, as a DMA completing after the close
 *	would: each gets 256 times the 16 bytes "RCPINNED" + SEED
 *	(little-endian u64).
 *   echo 1 > /sys/module/ramcrypt_testpin/parameters/drop
 *	drops the references (put_page()).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/err.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/string.h>

#define TESTPIN_MAX_PAGES	4096

static unsigned int testpin_nr = 1;
module_param_named(pages, testpin_nr, uint, 0644);
MODULE_PARM_DESC(pages, "pages the next pin holds (default 1)");

static DEFINE_MUTEX(testpin_lock);
static struct page **testpin_pages;
static unsigned int testpin_held;

static void testpin_put(void)
{
	while (testpin_held)
		put_page(testpin_pages[--testpin_held]);
	kfree(testpin_pages);
	testpin_pages = NULL;
}

static int testpin_pin(const char *path)
{
	unsigned int nr = READ_ONCE(testpin_nr);
	unsigned long addr, len;
	struct file *file;
	int ret;

	if (!nr || nr > TESTPIN_MAX_PAGES)
		return -EINVAL;
	len = (unsigned long)nr << PAGE_SHIFT;
	testpin_pages = kcalloc(nr, sizeof(*testpin_pages), GFP_KERNEL);
	if (!testpin_pages)
		return -ENOMEM;
	file = filp_open(path, O_RDWR, 0);
	if (IS_ERR(file)) {
		kfree(testpin_pages);
		testpin_pages = NULL;
		return PTR_ERR(file);
	}
	addr = vm_mmap(file, 0, len, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
	if (IS_ERR_VALUE(addr)) {
		ret = (int)addr;
		goto out_close;
	}
	ret = 0;
	while (testpin_held < nr) {
		ret = get_user_pages_fast(addr + ((unsigned long)testpin_held <<
						  PAGE_SHIFT),
					  nr - testpin_held, FOLL_WRITE,
					  testpin_pages + testpin_held);
		if (ret <= 0) {
			ret = ret ?: -EFAULT;
			break;
		}
		testpin_held += ret;
		ret = 0;
	}
	vm_munmap(addr, len);
	if (ret)
		testpin_put();
out_close:
	/* The last fput runs when this task returns to user space */
	filp_close(file, NULL);
	return ret;
}

static int pin_set(const char *val, const struct kernel_param *kp)
{
	char path[64];
	int ret;

	if (strscpy(path, val, sizeof(path)) < 0)
		return -EINVAL;
	strim(path);
	mutex_lock(&testpin_lock);
	ret = testpin_pages ? -EBUSY : testpin_pin(path);
	if (!ret)
		pr_info("holding %u pages of a region of %s\n", testpin_held,
			path);
	mutex_unlock(&testpin_lock);
	return ret;
}

static const struct kernel_param_ops pin_ops = {
	.set = pin_set,
};
module_param_cb(pin, &pin_ops, NULL, 0200);
MODULE_PARM_DESC(pin, "write a device path: hold pages of a new region");

static int fill_set(const char *val, const struct kernel_param *kp)
{
	static const char magic[8] = "RCPINNED";
	__le64 le;
	unsigned int n;
	u64 seed;
	int i, ret;
	u8 *p;

	ret = kstrtou64(val, 0, &seed);
	if (ret)
		return ret;
	le = cpu_to_le64(seed);
	mutex_lock(&testpin_lock);
	if (!testpin_pages)
		ret = -ENOENT;
	for (n = 0; n < testpin_held; n++) {
		p = kmap_local_page(testpin_pages[n]);
		for (i = 0; i < PAGE_SIZE; i += 16) {
			memcpy(p + i, magic, sizeof(magic));
			memcpy(p + i + 8, &le, sizeof(le));
		}
		kunmap_local(p);
	}
	mutex_unlock(&testpin_lock);
	return ret;
}

static const struct kernel_param_ops fill_ops = {
	.set = fill_set,
};
module_param_cb(fill, &fill_ops, NULL, 0200);
MODULE_PARM_DESC(fill, "write a seed: fill the held pages with a canary");

static int drop_set(const char *val, const struct kernel_param *kp)
{
	int ret = 0;

	mutex_lock(&testpin_lock);
	if (testpin_pages)
		testpin_put();
	else
		ret = -ENOENT;
	mutex_unlock(&testpin_lock);
	return ret;
}

static const struct kernel_param_ops drop_ops = {
	.set = drop_set,
};
module_param_cb(drop, &drop_ops, NULL, 0200);
MODULE_PARM_DESC(drop, "write 1: drop the held pages");

static void __exit testpin_exit(void)
{
	testpin_put();
}
module_exit(testpin_exit);

MODULE_DESCRIPTION("TEST ONLY: a ramcrypt frame held across its region's close");
MODULE_LICENSE("GPL");
