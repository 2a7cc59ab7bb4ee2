// SPDX-License-Identifier: GPL-2.0
/*
 * ramcrypt.ko - encrypted memory regions
 *
 * Every open() of /dev/ramcrypt is one region: its pages live as
 * TRESOR-encrypted ciphertext except for a window of at most window_pages
 * plaintext frames (see ramcrypt_window.c). /sys/kernel/ramcrypt/ shows
 * totals over all regions, regions/<id>/ each live region (see
 * ramcrypt_region.c), and flush (root writes "1") evicts every region's
 * plaintext. Region policies: ramcrypt_policy.c (configfs). Regions as
 * files of a mountable file system: ramcrypt_fs.c (ramcryptfs).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/kobject.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/sysfs.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>

#include "ramcrypt_fs.h"
#include "ramcrypt_internal.h"

unsigned int ramcrypt_window_pages = 64;
module_param_named(window_pages, ramcrypt_window_pages, uint, 0644);
MODULE_PARM_DESC(window_pages,
		 "Plaintext frames per new region (default 64)");

unsigned int ramcrypt_max_age_ms = 100;

static int ramcrypt_max_age_set(const char *val, const struct kernel_param *kp)
{
	struct ramcrypt_region *region;
	int ret = param_set_uint(val, kp);

	if (ret)
		return ret;
	/* Pending age scans were timed for the old bound: scan now. */
	mutex_lock(&ramcrypt_regions_lock);
	list_for_each_entry(region, &ramcrypt_regions, node)
		ramcrypt_window_rescan(region);
	mutex_unlock(&ramcrypt_regions_lock);
	return 0;
}

static const struct kernel_param_ops ramcrypt_max_age_ops = {
	.set = ramcrypt_max_age_set,
	.get = param_get_uint,
};
module_param_cb(max_plaintext_age_ms, &ramcrypt_max_age_ops,
		&ramcrypt_max_age_ms, 0644);
MODULE_PARM_DESC(max_plaintext_age_ms,
		 "Evict plaintext pages idle for this long (ms, default 100)");

unsigned int ramcrypt_evict_ahead_pages;
module_param_named(evict_ahead_pages, ramcrypt_evict_ahead_pages, uint, 0644);
MODULE_PARM_DESC(evict_ahead_pages,
		 "Free frames a background worker keeps in each window, at most a quarter of it (0 = off: faults evict; default 0)");

int ramcrypt_crypto_cpu = -1;
module_param_named(crypto_cpu, ramcrypt_crypto_cpu, int, 0644);
MODULE_PARM_DESC(crypto_cpu,
		 "CPU that runs evict-ahead (its encryptions) of regions whose policy sets no crypto CPU, -1 = the next online CPU after the faulting one (default -1)");

static unsigned int ramcrypt_max_memory_mb;
module_param_named(max_memory_mb, ramcrypt_max_memory_mb, uint, 0644);
MODULE_PARM_DESC(max_memory_mb,
		 "Cap on all regions' frames + ciphertext (MiB, 0 = half of RAM)");

/*
 * Random per load, XORed into every memory tweak (ramcrypt_window.c): with
 * the same key, region 1 / page 0 / version 1 of another load or boot gets
 * another tweak. [0] goes into the low half, [1] into the high half with
 * its bit 63 clear, so memory tweaks keep bit 127 set and still never equal
 * a plain64 disk tweak. Not secret (an XTS tweak need not be); root reads
 * it as 32 hex digits, high half first, so that tests can check the
 * ciphertext in a RAM dump.
 */
u64 ramcrypt_tweak_salt[2] __read_mostly;

static int ramcrypt_salt_set(const char *val, const struct kernel_param *kp)
{
	pr_err("tweak_salt is chosen at random when the module loads, it cannot be set\n");
	return -EPERM;
}

static int ramcrypt_salt_get(char *buf, const struct kernel_param *kp)
{
	return scnprintf(buf, PAGE_SIZE, "%016llx%016llx\n",
			 ramcrypt_tweak_salt[1], ramcrypt_tweak_salt[0]);
}

static const struct kernel_param_ops ramcrypt_salt_ops = {
	.set = ramcrypt_salt_set,
	.get = ramcrypt_salt_get,
};
module_param_cb(tweak_salt, &ramcrypt_salt_ops, NULL, 0400);
MODULE_PARM_DESC(tweak_salt,
		 "Random salt of this load's memory tweaks (read-only, hex)");

struct ramcrypt_global ramcrypt_global;
LIST_HEAD(ramcrypt_regions);
DEFINE_MUTEX(ramcrypt_regions_lock);

unsigned long ramcrypt_mem_cap_pages(void)
{
	unsigned int mb = READ_ONCE(ramcrypt_max_memory_mb);

	if (!mb)
		return totalram_pages() / 2;
	return (unsigned long)mb << (20 - PAGE_SHIFT);
}

static int ramcrypt_open(struct inode *inode, struct file *file)
{
	struct ramcrypt_region *region;

	region = ramcrypt_region_create(inode, NULL);
	if (IS_ERR(region))
		return PTR_ERR(region);
	file->private_data = region;
	/* Each region is its own address space: see ramcrypt_region_create. */
	file->f_mapping = &region->mapping;
	return 0;
}

static int ramcrypt_release(struct inode *inode, struct file *file)
{
	ramcrypt_region_destroy(file->private_data);
	return 0;
}

static int ramcrypt_mmap(struct file *file, struct vm_area_struct *vma)
{
	return ramcrypt_region_mmap(file->private_data, vma);
}

static long ramcrypt_get_stats(struct ramcrypt_region *region,
			       void __user *arg)
{
	struct ramcrypt_stats st;

	memset(&st, 0, sizeof(st));
	ramcrypt_window_stats(region, &st);
	if (copy_to_user(arg, &st, sizeof(st)))
		return -EFAULT;
	return 0;
}

long ramcrypt_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct ramcrypt_region *region = file->private_data;
	void __user *uarg = (void __user *)arg;
	u64 size;
	u32 window;

	switch (cmd) {
	case RAMCRYPT_IOC_SET_SIZE:
		if (copy_from_user(&size, uarg, sizeof(size)))
			return -EFAULT;
		return ramcrypt_region_set_size(region, size);
	case RAMCRYPT_IOC_SET_WINDOW:
		if (!capable(CAP_SYS_ADMIN))
			return -EPERM;
		if (copy_from_user(&window, uarg, sizeof(window)))
			return -EFAULT;
		return ramcrypt_window_set(region, window);
	case RAMCRYPT_IOC_FLUSH:
		return ramcrypt_window_flush(region);
	case RAMCRYPT_IOC_STATS:
		return ramcrypt_get_stats(region, uarg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations ramcrypt_fops = {
	.owner = THIS_MODULE,
	.open = ramcrypt_open,
	.release = ramcrypt_release,
	.mmap = ramcrypt_mmap,
	.unlocked_ioctl = ramcrypt_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice ramcrypt_miscdev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "ramcrypt",
	.fops = &ramcrypt_fops,
	.mode = 0660,
};

/* sysfs: totals over all regions */
#define RAMCRYPT_COUNTER_ATTR(_name, _counter)				\
static ssize_t _name##_show(struct kobject *kobj,			\
			    struct kobj_attribute *attr, char *buf)	\
{									\
	return sysfs_emit(buf, "%ld\n",					\
			  atomic_long_read(&ramcrypt_global._counter));	\
}									\
static struct kobj_attribute _name##_attr = __ATTR_RO(_name)

RAMCRYPT_COUNTER_ATTR(plaintext_pages, plaintext_pages);
RAMCRYPT_COUNTER_ATTR(encrypted_pages, ciphertext_pages);
RAMCRYPT_COUNTER_ATTR(memory_pages, mem_pages);
RAMCRYPT_COUNTER_ATTR(faults, faults);
RAMCRYPT_COUNTER_ATTR(evictions_window, evictions[RAMCRYPT_EVICT_WINDOW]);
RAMCRYPT_COUNTER_ATTR(evictions_age, evictions[RAMCRYPT_EVICT_AGE]);
RAMCRYPT_COUNTER_ATTR(evictions_flush, evictions[RAMCRYPT_EVICT_FLUSH]);
RAMCRYPT_COUNTER_ATTR(evictions_clean, evictions_clean);
RAMCRYPT_COUNTER_ATTR(refaults, refaults);
RAMCRYPT_COUNTER_ATTR(evictions_ahead, evictions_ahead);
RAMCRYPT_COUNTER_ATTR(evict_ahead_raced, evict_ahead_raced);
RAMCRYPT_COUNTER_ATTR(skipped_referenced, skipped_referenced);
RAMCRYPT_COUNTER_ATTR(window_overflows, window_overflows);
RAMCRYPT_COUNTER_ATTR(crypto_errors, crypto_errors);
RAMCRYPT_COUNTER_ATTR(crypto_cpu_errors, crypto_cpu_errors);
RAMCRYPT_COUNTER_ATTR(cap_failures, cap_failures);
RAMCRYPT_COUNTER_ATTR(orphan_pages, orphan_pages);

static ssize_t window_pages_show(struct kobject *kobj,
				 struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", READ_ONCE(ramcrypt_window_pages));
}

static struct kobj_attribute window_pages_attr = __ATTR_RO(window_pages);

static ssize_t memory_cap_pages_show(struct kobject *kobj,
				     struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%lu\n", ramcrypt_mem_cap_pages());
}

static struct kobj_attribute memory_cap_pages_attr =
	__ATTR_RO(memory_cap_pages);

static ssize_t oldest_plaintext_age_ms_show(struct kobject *kobj,
					    struct kobj_attribute *attr,
					    char *buf)
{
	struct ramcrypt_region *region;
	u64 oldest = 0;

	mutex_lock(&ramcrypt_regions_lock);
	list_for_each_entry(region, &ramcrypt_regions, node)
		oldest = max(oldest, ramcrypt_window_oldest_ms(region));
	mutex_unlock(&ramcrypt_regions_lock);
	return sysfs_emit(buf, "%llu\n", oldest);
}

static struct kobj_attribute oldest_plaintext_age_ms_attr =
	__ATTR_RO(oldest_plaintext_age_ms);

/* Root writes "1": RAMCRYPT_IOC_FLUSH on every region */
static ssize_t flush_store(struct kobject *kobj, struct kobj_attribute *attr,
			   const char *buf, size_t count)
{
	struct ramcrypt_region *region;
	int ret = 0, err;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (!sysfs_streq(buf, "1")) {
		pr_warn_ratelimited("flush: '%.*s' is invalid, write 1\n",
				    (int)min_t(size_t, strcspn(buf, "\n"), 32),
				    buf);
		return -EINVAL;
	}
	mutex_lock(&ramcrypt_regions_lock);
	list_for_each_entry(region, &ramcrypt_regions, node) {
		err = ramcrypt_window_flush(region);
		if (err && !ret)
			ret = err;
	}
	mutex_unlock(&ramcrypt_regions_lock);
	return ret ? ret : count;
}

static struct kobj_attribute flush_attr = __ATTR_WO(flush);

static struct attribute *ramcrypt_attrs[] = {
	&plaintext_pages_attr.attr,
	&encrypted_pages_attr.attr,
	&memory_pages_attr.attr,
	&memory_cap_pages_attr.attr,
	&window_pages_attr.attr,
	&faults_attr.attr,
	&evictions_window_attr.attr,
	&evictions_age_attr.attr,
	&evictions_flush_attr.attr,
	&evictions_clean_attr.attr,
	&refaults_attr.attr,
	&evictions_ahead_attr.attr,
	&evict_ahead_raced_attr.attr,
	&skipped_referenced_attr.attr,
	&window_overflows_attr.attr,
	&crypto_errors_attr.attr,
	&crypto_cpu_errors_attr.attr,
	&cap_failures_attr.attr,
	&orphan_pages_attr.attr,
	&flush_attr.attr,
	&oldest_plaintext_age_ms_attr.attr,
	NULL,
};

static const struct attribute_group ramcrypt_attr_group = {
	.attrs = ramcrypt_attrs,
};

static struct kobject *ramcrypt_kobj;
struct kobject *ramcrypt_regions_kobj;

static int __init ramcrypt_init(void)
{
	int ret;

	/* Before any region: its tweaks need this load's salt */
	ret = wait_for_random_bytes();
	if (ret)
		return ret;
	get_random_bytes(ramcrypt_tweak_salt, sizeof(ramcrypt_tweak_salt));
	ramcrypt_tweak_salt[1] &= ~BIT_ULL(63);

	ramcrypt_kobj = kobject_create_and_add("ramcrypt", kernel_kobj);
	if (!ramcrypt_kobj)
		return -ENOMEM;

	ret = sysfs_create_group(ramcrypt_kobj, &ramcrypt_attr_group);
	if (ret)
		goto err_kobj;

	ramcrypt_regions_kobj = kobject_create_and_add("regions",
						       ramcrypt_kobj);
	if (!ramcrypt_regions_kobj) {
		ret = -ENOMEM;
		goto err_kobj;
	}

	ret = ramcrypt_policy_init();
	if (ret)
		goto err_regions;

	ret = misc_register(&ramcrypt_miscdev);
	if (ret)
		goto err_policy;

	ret = ramcrypt_fs_init();
	if (ret)
		goto err_misc;

	return 0;

err_misc:
	misc_deregister(&ramcrypt_miscdev);
err_policy:
	ramcrypt_policy_exit();
err_regions:
	kobject_put(ramcrypt_regions_kobj);
err_kobj:
	kobject_put(ramcrypt_kobj);
	return ret;
}

static void __exit ramcrypt_exit(void)
{
	/* Mounts and open files hold module references: none is left */
	ramcrypt_fs_exit();
	misc_deregister(&ramcrypt_miscdev);
	/* Each orphan holds a module reference: none is left, nor its scan */
	ramcrypt_orphans_exit();
	ramcrypt_policy_exit();
	kobject_put(ramcrypt_regions_kobj);
	kobject_put(ramcrypt_kobj);
}

module_init(ramcrypt_init);
module_exit(ramcrypt_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("RamCrypt: encrypted memory regions with a bounded plaintext window");
