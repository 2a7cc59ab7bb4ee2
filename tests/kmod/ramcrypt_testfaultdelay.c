// SPDX-License-Identifier: GPL-2.0
/*
 * ramcrypt_testfaultdelay.ko - TEST ONLY, never shipped: widens the window
 * between ramcrypt's fault handler returning a frame and the core mapping
 * it (finish_fault), where a racing hole punch drops the frame, so that a
 * test meets that race every time instead of once in a blue moon.
 *
 *   modprobe ramcrypt_testfaultdelay delay_us=N
 *	a kretprobe on ramcrypt_window_fault() busy-waits N microseconds
 *	after the handler returned (region->lock dropped, the frame not
 *	mapped yet); delayed counts the faults it delayed.
 *
 * ramcrypt.ko must be loaded first (the probe resolves its symbol).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/moduleparam.h>

static unsigned int faultdelay_us = 500;
module_param_named(delay_us, faultdelay_us, uint, 0644);
MODULE_PARM_DESC(delay_us, "busy wait after each ramcrypt fault (us)");

static atomic_long_t faultdelay_count = ATOMIC_LONG_INIT(0);

static int faultdelay_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%ld\n", atomic_long_read(&faultdelay_count));
}

static const struct kernel_param_ops faultdelay_count_ops = {
	.get = faultdelay_get,
};
module_param_cb(delayed, &faultdelay_count_ops, NULL, 0444);

static int faultdelay_ret(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	unsigned int us = READ_ONCE(faultdelay_us);

	if (!us)
		return 0;
	atomic_long_inc(&faultdelay_count);
	while (us > 1000) {
		mdelay(1);
		us -= 1000;
	}
	udelay(us);
	return 0;
}

static struct kretprobe faultdelay_probe = {
	.kp.symbol_name = "ramcrypt_window_fault",
	.handler = faultdelay_ret,
	.maxactive = 64,
};

static int __init faultdelay_init(void)
{
	int ret = register_kretprobe(&faultdelay_probe);

	if (ret)
		pr_err("cannot probe ramcrypt_window_fault (%d): is ramcrypt loaded?\n",
		       ret);
	return ret;
}

static void __exit faultdelay_exit(void)
{
	unregister_kretprobe(&faultdelay_probe);
}

module_init(faultdelay_init);
module_exit(faultdelay_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("TEST ONLY: delays ramcrypt faults before they are mapped");
