// SPDX-License-Identifier: GPL-2.0
/*
 * tresor.ko - the disk key in the CPU debug registers
 *
 * Root loads the 256-bit AES-128-XTS key once through /dev/tresor; it then
 * lives only in DR0-DR3 of the key-holding CPUs and dm-crypt uses it through
 * the cipher xts(tresor). /sys/kernel/tresor/ shows read-only status.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kobject.h>
#include <linux/module.h>
#include <linux/sysfs.h>
#include <crypto/algapi.h>

#include "tresor_cipher.h"
#include "tresor_dev.h"
#include "tresor_keystore.h"
#include "tresor_poll.h"

static struct kobject *tresor_kobj;

static int __init tresor_init(void)
{
	int ret;

	ret = tresor_keystore_init();
	if (ret)
		return ret;

	ret = tresor_cipher_init();
	if (ret)
		goto err_keystore;

	tresor_kobj = kobject_create_and_add("tresor", kernel_kobj);
	if (!tresor_kobj) {
		ret = -ENOMEM;
		goto err_cipher;
	}
	ret = sysfs_create_group(tresor_kobj, &tresor_status_group);
	if (ret)
		goto err_kobj;
	ret = sysfs_create_group(tresor_kobj, &tresor_poll_group);
	if (ret)
		goto err_kobj;

	ret = tresor_dev_init();
	if (ret)
		goto err_kobj;

	pr_info("loaded, no key (%s)\n", tresor_best_impl()->name);
	return 0;

err_kobj:
	kobject_put(tresor_kobj);
	tresor_poll_exit();
err_cipher:
	tresor_cipher_exit();
err_keystore:
	tresor_keystore_exit();
	return ret;
}

static void __exit tresor_exit(void)
{
	tresor_dev_exit();
	kobject_put(tresor_kobj);
	tresor_poll_exit();
	tresor_cipher_exit();
	tresor_keystore_exit();
}

module_init(tresor_init);
module_exit(tresor_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("TRESOR: disk encryption key held in CPU debug registers");
MODULE_ALIAS_CRYPTO("xts(tresor)");
MODULE_ALIAS_CRYPTO("xts-tresor-aesni");
