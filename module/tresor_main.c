// SPDX-License-Identifier: GPL-2.0
/*
 * tresor.ko - the disk key in the CPU debug registers
 *
 * /dev/tresor is the only way in: root loads the 256-bit XTS key once and it
 * is never handed back. /sys/kernel/tresor/ shows read-only status.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/kobject.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/sysfs.h>
#include <linux/uaccess.h>

#include <uapi/tresor.h>

static void tresor_fill_status(struct tresor_status *st)
{
	memset(st, 0, sizeof(*st));
	st->abi_version = TRESOR_ABI_VERSION;
	/* No key store yet: nothing is loaded, no CPU holds a key. */
}

static long tresor_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct tresor_status st;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;

	switch (cmd) {
	case TRESOR_IOC_GET_STATUS:
		tresor_fill_status(&st);
		if (copy_to_user((void __user *)arg, &st, sizeof(st)))
			return -EFAULT;
		return 0;
	default:
		/* SET_KEY, CLEAR_KEY and SET_HOLDERS are not implemented yet. */
		return -ENOTTY;
	}
}

static const struct file_operations tresor_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = tresor_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice tresor_miscdev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "tresor",
	.fops = &tresor_fops,
	.mode = 0600,
};

static ssize_t key_loaded_show(struct kobject *kobj, struct kobj_attribute *attr,
			       char *buf)
{
	struct tresor_status st;

	tresor_fill_status(&st);
	return sysfs_emit(buf, "%u\n", !!(st.flags & TRESOR_STATUS_KEY_LOADED));
}

static ssize_t valid_holders_show(struct kobject *kobj,
				  struct kobj_attribute *attr, char *buf)
{
	struct tresor_status st;

	tresor_fill_status(&st);
	return sysfs_emit(buf, "%u\n", st.nr_valid_holders);
}

static struct kobj_attribute key_loaded_attr = __ATTR_RO(key_loaded);
static struct kobj_attribute valid_holders_attr = __ATTR_RO(valid_holders);

static struct attribute *tresor_attrs[] = {
	&key_loaded_attr.attr,
	&valid_holders_attr.attr,
	NULL,
};

static const struct attribute_group tresor_attr_group = {
	.attrs = tresor_attrs,
};

static struct kobject *tresor_kobj;

static int __init tresor_init(void)
{
	int ret;

	tresor_kobj = kobject_create_and_add("tresor", kernel_kobj);
	if (!tresor_kobj)
		return -ENOMEM;

	ret = sysfs_create_group(tresor_kobj, &tresor_attr_group);
	if (ret)
		goto err_kobj;

	ret = misc_register(&tresor_miscdev);
	if (ret)
		goto err_kobj;

	pr_info("loaded, no key\n");
	return 0;

err_kobj:
	kobject_put(tresor_kobj);
	return ret;
}

static void __exit tresor_exit(void)
{
	misc_deregister(&tresor_miscdev);
	kobject_put(tresor_kobj);
}

module_init(tresor_init);
module_exit(tresor_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("TRESOR: disk encryption key held in CPU debug registers");
