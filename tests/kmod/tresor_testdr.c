// SPDX-License-Identifier: GPL-2.0
/*
 * tresor_testdr.ko - TEST ONLY, never shipped: overwrite DR0 on chosen
 * CPUs, as a KVM guest writing its debug registers does, without a guest
 * (one write per CPU, so a test can invalidate many key holders at once).
 *
 *   echo 0-6 > /sys/module/tresor_testdr/parameters/clobber
 *	writes a fixed non-key word into DR0 of every online CPU in the
 *	list. DR7 stays as it is (tresor keeps it 0): no breakpoint fires.
 *	tresor notices at the CPU's next key check, as with a guest.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cpu.h>
#include <linux/cpumask.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <asm/debugreg.h>

#define TESTDR_WORD	0x5eed5eed5eed5eedUL

static void testdr_clobber_here(void *arg)
{
	set_debugreg(TESTDR_WORD, 0);
}

static int clobber_set(const char *val, const struct kernel_param *kp)
{
	cpumask_var_t mask;
	unsigned int cpu, n = 0;
	int ret;

	if (!zalloc_cpumask_var(&mask, GFP_KERNEL))
		return -ENOMEM;
	ret = cpulist_parse(val, mask);
	if (ret)
		goto out;
	cpus_read_lock();
	for_each_cpu_and(cpu, mask, cpu_online_mask) {
		smp_call_function_single(cpu, testdr_clobber_here, NULL, 1);
		n++;
	}
	cpus_read_unlock();
	pr_info("DR0 overwritten on %u CPUs\n", n);
out:
	free_cpumask_var(mask);
	return ret;
}

static const struct kernel_param_ops clobber_ops = {
	.set = clobber_set,
};
module_param_cb(clobber, &clobber_ops, NULL, 0200);
MODULE_PARM_DESC(clobber, "write a CPU list: overwrite DR0 on those CPUs");

MODULE_DESCRIPTION("TEST ONLY: overwrite DR0 on chosen CPUs");
MODULE_LICENSE("GPL");
