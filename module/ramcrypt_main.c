// SPDX-License-Identifier: GPL-2.0
/*
 * ramcrypt.ko - encrypted memory regions
 *
 * Every open() of /dev/ramcrypt is one region. /sys/kernel/ramcrypt/ shows
 * read-only status.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/kobject.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/sysfs.h>

#include <uapi/ramcrypt.h>

struct ramcrypt_region {
	u64 size;
};

static atomic_t ramcrypt_nr_regions = ATOMIC_INIT(0);

static int ramcrypt_open(struct inode *inode, struct file *file)
{
	struct ramcrypt_region *region;

	region = kzalloc(sizeof(*region), GFP_KERNEL);
	if (!region)
		return -ENOMEM;
	file->private_data = region;
	atomic_inc(&ramcrypt_nr_regions);
	return 0;
}

static int ramcrypt_release(struct inode *inode, struct file *file)
{
	kfree(file->private_data);
	atomic_dec(&ramcrypt_nr_regions);
	return 0;
}

static int ramcrypt_mmap(struct file *file, struct vm_area_struct *vma)
{
	pr_warn_once("mapping regions is not implemented yet\n");
	return -EOPNOTSUPP;
}

static long ramcrypt_ioctl(struct file *file, unsigned int cmd,
			   unsigned long arg)
{
	/* No region ioctl is implemented yet. */
	return -ENOTTY;
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

static ssize_t regions_show(struct kobject *kobj, struct kobj_attribute *attr,
			    char *buf)
{
	return sysfs_emit(buf, "%d\n", atomic_read(&ramcrypt_nr_regions));
}

static ssize_t plaintext_pages_show(struct kobject *kobj,
				    struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "0\n");
}

static struct kobj_attribute regions_attr = __ATTR_RO(regions);
static struct kobj_attribute plaintext_pages_attr = __ATTR_RO(plaintext_pages);

static struct attribute *ramcrypt_attrs[] = {
	&regions_attr.attr,
	&plaintext_pages_attr.attr,
	NULL,
};

static const struct attribute_group ramcrypt_attr_group = {
	.attrs = ramcrypt_attrs,
};

static struct kobject *ramcrypt_kobj;

static int __init ramcrypt_init(void)
{
	int ret;

	ramcrypt_kobj = kobject_create_and_add("ramcrypt", kernel_kobj);
	if (!ramcrypt_kobj)
		return -ENOMEM;

	ret = sysfs_create_group(ramcrypt_kobj, &ramcrypt_attr_group);
	if (ret)
		goto err_kobj;

	ret = misc_register(&ramcrypt_miscdev);
	if (ret)
		goto err_kobj;

	return 0;

err_kobj:
	kobject_put(ramcrypt_kobj);
	return ret;
}

static void __exit ramcrypt_exit(void)
{
	misc_deregister(&ramcrypt_miscdev);
	kobject_put(ramcrypt_kobj);
}

module_init(ramcrypt_init);
module_exit(ramcrypt_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("RamCrypt: encrypted memory regions with a bounded plaintext window");
