// SPDX-License-Identifier: GPL-2.0
/*
 * tresor_testoops.ko - TEST ONLY, never shipped: kernel register dumps on
 * demand, to check that they do not print the tresor key (DR0-DR3).
 *
 *   echo 1 > /sys/module/tresor_testoops/parameters/warn
 *	WARN() in the writing task, on the CPU it runs on (pin it with
 *	taskset): a full register dump through __show_regs().
 *   echo N > /sys/module/tresor_testoops/parameters/oops
 *	a kernel thread bound to CPU N dereferences NULL: an oops, which
 *	kills only that thread (and taints the kernel).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bug.h>
#include <linux/cpumask.h>
#include <linux/err.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/smp.h>

static int warn_set(const char *val, const struct kernel_param *kp)
{
	bool on;
	int ret;

	ret = kstrtobool(val, &on);
	if (ret || !on)
		return ret;
	WARN(1, "tresor_testoops: WARN on CPU %d\n", raw_smp_processor_id());
	return 0;
}

static const struct kernel_param_ops warn_ops = {
	.set = warn_set,
};
module_param_cb(warn, &warn_ops, NULL, 0200);
MODULE_PARM_DESC(warn, "write 1: WARN() in the writing task");

/* arg is NULL */
static int oops_thread(void *arg)
{
	pr_info("oops on CPU %d\n", raw_smp_processor_id());
	return READ_ONCE(*(int *)arg);
}

static int oops_set(const char *val, const struct kernel_param *kp)
{
	struct task_struct *t;
	unsigned int cpu;
	int ret;

	ret = kstrtouint(val, 0, &cpu);
	if (ret)
		return ret;
	if (cpu >= nr_cpu_ids || !cpu_online(cpu))
		return -EINVAL;
	t = kthread_create_on_cpu(oops_thread, NULL, cpu, "tresor_oops/%u");
	if (IS_ERR(t))
		return PTR_ERR(t);
	wake_up_process(t);
	return 0;
}

static const struct kernel_param_ops oops_ops = {
	.set = oops_set,
};
module_param_cb(oops, &oops_ops, NULL, 0200);
MODULE_PARM_DESC(oops, "write a CPU number: oops in a kernel thread there");

MODULE_DESCRIPTION("TEST ONLY: WARN/oops on demand (tresor register dumps)");
MODULE_LICENSE("GPL");
