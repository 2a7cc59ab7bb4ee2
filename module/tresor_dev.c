// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/tresor: load and clear the key, read status. The key goes in once
 * and no interface ever hands it back.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitops.h>
#include <linux/capability.h>
#include <linux/cpumask.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "tresor_dev.h"
#include "tresor_keystore.h"

static int tresor_ioctl_set_key(void __user *arg)
{
	struct tresor_key *k;
	int ret;

	/* Not on the stack: one buffer to wipe, in one known place. */
	k = kmalloc(sizeof(*k), GFP_KERNEL);
	if (!k)
		return -ENOMEM;
	if (copy_from_user(k, arg, sizeof(*k))) {
		ret = -EFAULT;
		goto out_wipe;
	}
	if (k->size != TRESOR_KEY_SIZE || k->flags) {
		pr_err_ratelimited("SET_KEY: size must be %d and flags 0 (got size %u, flags %#x)\n",
				   TRESOR_KEY_SIZE, k->size, k->flags);
		ret = -EINVAL;
		goto out_wipe;
	}
	ret = tresor_key_set(k->key);
out_wipe:
	kfree_sensitive(k);
	return ret;
}

static int tresor_ioctl_set_holders(void __user *arg)
{
	struct tresor_holders *h;
	cpumask_var_t mask;
	unsigned int bit;
	int ret = -EINVAL;

	h = memdup_user(arg, sizeof(*h));
	if (IS_ERR(h))
		return PTR_ERR(h);
	if (!zalloc_cpumask_var(&mask, GFP_KERNEL)) {
		ret = -ENOMEM;
		goto out_free;
	}
	if (h->flags || !h->nr_cpus || h->nr_cpus > TRESOR_MAX_CPUS) {
		pr_err_ratelimited("SET_HOLDERS: flags must be 0 and nr_cpus in 1..%d (got flags %#x, nr_cpus %u)\n",
				   TRESOR_MAX_CPUS, h->flags, h->nr_cpus);
		goto out_mask;
	}
	for_each_set_bit(bit, (unsigned long *)h->mask, TRESOR_MAX_CPUS) {
		if (bit >= h->nr_cpus || bit >= nr_cpu_ids) {
			pr_err_ratelimited("SET_HOLDERS: CPU %u does not exist\n",
					   bit);
			goto out_mask;
		}
		cpumask_set_cpu(bit, mask);
	}
	ret = tresor_set_holders(mask);
out_mask:
	free_cpumask_var(mask);
out_free:
	kfree(h);
	return ret;
}

static long tresor_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;
	struct tresor_status st;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;

	switch (cmd) {
	case TRESOR_IOC_SET_KEY:
		return tresor_ioctl_set_key(uarg);
	case TRESOR_IOC_CLEAR_KEY:
		return tresor_key_clear();
	case TRESOR_IOC_GET_STATUS:
		tresor_get_status(&st);
		if (copy_to_user(uarg, &st, sizeof(st)))
			return -EFAULT;
		return 0;
	case TRESOR_IOC_SET_HOLDERS:
		return tresor_ioctl_set_holders(uarg);
	default:
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

int tresor_dev_init(void)
{
	return misc_register(&tresor_miscdev);
}

void tresor_dev_exit(void)
{
	misc_deregister(&tresor_miscdev);
}
