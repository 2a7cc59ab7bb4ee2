// SPDX-License-Identifier: GPL-2.0
/*
 * tresor_testdrzero.ko - TEST ONLY, never shipped: do to DR0-DR3 from NMI
 * context what every CPU leaving kgdb/kdb does (kgdb_correct_hw_break() ->
 * hw_breakpoint_restore(): DR0-DR3 := cpu_debugreg[], zeros while no
 * breakpoint is installed), at the point where an NMI happens to land.
 * Debian's kernels are built without CONFIG_KGDB, so the debugger itself
 * cannot be used in the test VMs; kgdb's roundup of the other CPUs is an
 * NMI too, and this is its effect on the registers (issue 21 item 5).
 *
 *   echo N > /sys/module/tresor_testdrzero/parameters/arm
 *	the next N NMIs (QMP inject-nmi from the host) that interrupt
 *	tresor.ko's code (where = 0, the default: a request between its key
 *	check and its use, or inside a cipher call) or anything (where = 1)
 *	zero DR0-DR3 of the CPU they interrupt. `zeroed` counts them,
 *	`sites` lists the interrupted functions.
 *   echo 1 > /sys/module/tresor_testdrzero/parameters/all
 *	every online CPU zeroes DR0-DR3 at once, wherever it is, by IPI
 *	(QEMU's inject-nmi reaches only CPU 0, whose LINT1 is the NMI
 *	line): what leaving kgdb does to all CPUs together.
 *   echo 1 > /sys/module/tresor_testdrzero/parameters/fake_kgdb
 *	takes sysrq 'g' as kgdb does when a kgdb I/O driver (kgdboc) is
 *	configured; 0 gives it back.
 *
 * All NMIs are claimed (NMI_HANDLED), so injected ones do not log
 * "NMI received for unknown reason".
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/cpumask.h>
#include <linux/smp.h>
#include <asm/irq_regs.h>
#include <linux/kallsyms.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/string.h>
#include <linux/sysrq.h>
#include <linux/version.h>
#include <asm/debugreg.h>
#include <asm/nmi.h>
#include <asm/ptrace.h>

#define NSITES	64

static atomic_t arm = ATOMIC_INIT(0);
static atomic_t nr_zeroed = ATOMIC_INIT(0);
static unsigned long sites[NSITES];
static int where;
module_param(where, int, 0644);
MODULE_PARM_DESC(where, "0: only NMIs in tresor's code zero DR0-DR3; 1: any");

static int arm_set(const char *val, const struct kernel_param *kp)
{
	int n, ret = kstrtoint(val, 0, &n);

	if (ret || n < 0)
		return -EINVAL;
	atomic_set(&arm, n);
	return 0;
}

static int arm_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%d\n", atomic_read(&arm));
}

static const struct kernel_param_ops arm_ops = {
	.set = arm_set, .get = arm_get,
};
module_param_cb(arm, &arm_ops, NULL, 0644);
MODULE_PARM_DESC(arm, "zero DR0-DR3 at the next N NMIs that qualify");

static int zeroed_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%d\n", atomic_read(&nr_zeroed));
}

static const struct kernel_param_ops zeroed_ops = { .get = zeroed_get };
module_param_cb(zeroed, &zeroed_ops, NULL, 0444);

static int sites_get(char *buf, const struct kernel_param *kp)
{
	int i, n = min(atomic_read(&nr_zeroed), NSITES), len = 0;

	for (i = 0; i < n; i++)
		len += sysfs_emit_at(buf, len, "%ps\n", (void *)sites[i]);
	return len;
}

static const struct kernel_param_ops sites_ops = { .get = sites_get };
module_param_cb(sites, &sites_ops, NULL, 0444);

/* hw_breakpoint_restore() with no breakpoint installed */
static void zero_here(unsigned long ip)
{
	int n;

	set_debugreg(0UL, 0);
	set_debugreg(0UL, 1);
	set_debugreg(0UL, 2);
	set_debugreg(0UL, 3);
	n = atomic_inc_return(&nr_zeroed) - 1;
	if (n < NSITES)
		sites[n] = ip;
}

static void zero_ipi(void *unused)
{
	struct pt_regs *regs = get_irq_regs();

	/* the local CPU runs it with interrupts off: no interrupted ip */
	zero_here(regs ? regs->ip : _RET_IP_);
}

static int all_set(const char *val, const struct kernel_param *kp)
{
	on_each_cpu(zero_ipi, NULL, 1);
	return 0;
}

static const struct kernel_param_ops all_ops = { .set = all_set };
module_param_cb(all, &all_ops, NULL, 0200);
MODULE_PARM_DESC(all, "zero DR0-DR3 on every online CPU now (IPI)");

/* Did the NMI interrupt tresor.ko's code? */
static bool in_tresor(struct pt_regs *regs)
{
	char sym[KSYM_SYMBOL_LEN];

	if (user_mode(regs))
		return false;
	sprint_symbol(sym, regs->ip);
	return strstr(sym, " [tresor]");
}

static int drzero_nmi(unsigned int type, struct pt_regs *regs)
{
	if (!atomic_read(&arm) || (!where && !in_tresor(regs)))
		return NMI_HANDLED;
	if (atomic_dec_if_positive(&arm) < 0)
		return NMI_HANDLED;
	zero_here(regs->ip);
	return NMI_HANDLED;
}

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
static void fake_kgdb_handler(u8 key)
#else
static void fake_kgdb_handler(int key)
#endif
{
	pr_info("sysrq g: no debugger here (test module)\n");
}

static const struct sysrq_key_op fake_kgdb_op = {
	.handler = fake_kgdb_handler,
	.help_msg = "debug(g)",
	.action_msg = "DEBUG (tresor_testdrzero)",
};

static bool fake_kgdb;

static int fake_kgdb_set(const char *val, const struct kernel_param *kp)
{
	bool on;
	int ret = kstrtobool(val, &on);

	if (ret)
		return ret;
	if (on && !fake_kgdb)
		ret = register_sysrq_key('g', &fake_kgdb_op);
	else if (!on && fake_kgdb)
		ret = unregister_sysrq_key('g', &fake_kgdb_op);
	if (ret)
		return -EBUSY;
	fake_kgdb = on;
	return 0;
}

static const struct kernel_param_ops fake_kgdb_ops = {
	.set = fake_kgdb_set, .get = param_get_bool,
};
module_param_cb(fake_kgdb, &fake_kgdb_ops, &fake_kgdb, 0644);
MODULE_PARM_DESC(fake_kgdb, "hold sysrq 'g' as a configured kgdboc does");

static int __init drzero_init(void)
{
	return register_nmi_handler(NMI_LOCAL, drzero_nmi, 0, "drzero");
}

static void __exit drzero_exit(void)
{
	unregister_nmi_handler(NMI_LOCAL, "drzero");
	if (fake_kgdb)
		unregister_sysrq_key('g', &fake_kgdb_op);
}

module_init(drzero_init);
module_exit(drzero_exit);

MODULE_DESCRIPTION("TEST ONLY: zero DR0-DR3 from NMI context, as leaving kgdb does");
MODULE_LICENSE("GPL");
