// SPDX-License-Identifier: GPL-2.0
/*
 * tresor_showregs.ko - livepatch: keep DR0-DR3 out of x86 register dumps
 *
 * tresor.ko keeps the disk key in DR0-DR3. On x86_64 every oops, WARN,
 * sysrq-p or lockup report goes through __show_regs(), which prints DR0-DR3
 * whenever the debug registers are not in their default state, i.e. it
 * would print the key into the kernel log. This livepatch replaces
 * __show_regs() with a copy of the 6.1/6.12 function that prints the same
 * lines, except that DR0-DR3 are reported as hidden; DR6 and DR7 are still
 * printed. The helpers the original calls (show_iret_regs(), show_opcodes())
 * are not exported, so minimal copies of them are here too.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/livepatch.h>
#include <linux/module.h>
#include <linux/printk.h>
#include <linux/sched/task_stack.h>
#include <linux/uaccess.h>
#include <asm/debugreg.h>
#include <asm/kdebug.h>
#include <asm/pkru.h>
#include <asm/processor.h>
#include <asm/special_insns.h>

#include "tresor_showregs.h"

#ifndef DR7_FIXED_1
#define DR7_FIXED_1	0x00000400	/* named in 6.12, a literal in 6.1 */
#endif

/*
 * The dump lines below keep the upstream form printk("%s...", log_lvl):
 * the log level is the caller's (KERN_DEFAULT, KERN_EMERG, ...).
 */
static __printf(1, 2) void dump_printk(const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	vprintk(fmt, args);
	va_end(args);
}

/* arch/x86/kernel/dumpstack.c: copy_code() */
static int showregs_copy_code(struct pt_regs *regs, u8 *buf,
			      unsigned long src, unsigned int nbytes)
{
	if (!user_mode(regs))
		return copy_from_kernel_nofault(buf, (u8 *)src, nbytes);

	/* The user space code from other tasks cannot be accessed. */
	if (regs != task_pt_regs(current))
		return -EPERM;

	return copy_from_user_nmi(buf, (void __user *)src, nbytes);
}

/* arch/x86/kernel/dumpstack.c: show_opcodes(), same output */
#define PROLOGUE_SIZE	42
#define EPILOGUE_SIZE	21
#define OPCODE_BUFSIZE	(PROLOGUE_SIZE + 1 + EPILOGUE_SIZE)

static void showregs_opcodes(struct pt_regs *regs, const char *log_lvl)
{
	u8 opcodes[OPCODE_BUFSIZE];
	unsigned long prologue = regs->ip - PROLOGUE_SIZE;

	switch (showregs_copy_code(regs, opcodes, prologue, sizeof(opcodes))) {
	case 0:
		dump_printk("%sCode: %" __stringify(PROLOGUE_SIZE) "ph <%02x> %"
			    __stringify(EPILOGUE_SIZE) "ph\n", log_lvl, opcodes,
			    opcodes[PROLOGUE_SIZE], opcodes + PROLOGUE_SIZE + 1);
		break;
	case -EPERM:
		/* No access to the user space stack of other tasks. */
		break;
	default:
		dump_printk("%sCode: Unable to access opcode bytes at 0x%lx.\n",
			    log_lvl, prologue);
		break;
	}
}

/*
 * arch/x86/kernel/dumpstack.c: show_iret_regs() with show_ip(), same
 * output; the RSP line (with ORIG_RAX, which __show_regs() appends with
 * pr_cont()) is printed in one piece.
 */
static void showregs_iret(struct pt_regs *regs, const char *log_lvl)
{
	dump_printk("%sRIP: %04x:%pS\n", log_lvl, (int)regs->cs,
		    (void *)regs->ip);
	showregs_opcodes(regs, log_lvl);
	if (regs->orig_ax != -1)
		dump_printk("%sRSP: %04x:%016lx EFLAGS: %08lx ORIG_RAX: %016lx\n",
			    log_lvl, (int)regs->ss, regs->sp, regs->flags,
			    regs->orig_ax);
	else
		dump_printk("%sRSP: %04x:%016lx EFLAGS: %08lx\n", log_lvl,
			    (int)regs->ss, regs->sp, regs->flags);
}

/*
 * Whether any of DR0-DR3 is non-zero. Only that bit leaves this function:
 * the key words pass through two general registers, with interrupts off,
 * and both are cleared before the asm ends (the compiler never sees them).
 */
static bool key_regs_in_use(void)
{
	unsigned long flags, acc, tmp;
	u8 nonzero;

	local_irq_save(flags);
	asm volatile("mov %%db0, %[acc]\n\t"
		     "mov %%db1, %[tmp]\n\t"
		     "or %[tmp], %[acc]\n\t"
		     "mov %%db2, %[tmp]\n\t"
		     "or %[tmp], %[acc]\n\t"
		     "mov %%db3, %[tmp]\n\t"
		     "or %[tmp], %[acc]\n\t"
		     "setnz %[nz]\n\t"
		     "xor %k[tmp], %k[tmp]\n\t"
		     "xor %k[acc], %k[acc]"
		     : [acc] "=&r" (acc), [tmp] "=&r" (tmp), [nz] "=q" (nonzero));
	local_irq_restore(flags);
	return nonzero;
}

/*
 * arch/x86/kernel/process_64.c: __show_regs() of 6.1 and 6.12 (identical
 * apart from the type of regs->cs, printed through a cast here), minus
 * the values of DR0-DR3.
 */
static void tresor_show_regs(struct pt_regs *regs, enum show_regs_mode mode,
			     const char *log_lvl)
{
	unsigned long cr0, cr2, cr3, cr4, fs, gs, shadowgs;
	unsigned long d6, d7;
	unsigned int fsindex, gsindex;
	unsigned int ds, es;
	bool key_regs;

	showregs_iret(regs, log_lvl);

	dump_printk("%sRAX: %016lx RBX: %016lx RCX: %016lx\n",
		    log_lvl, regs->ax, regs->bx, regs->cx);
	dump_printk("%sRDX: %016lx RSI: %016lx RDI: %016lx\n",
		    log_lvl, regs->dx, regs->si, regs->di);
	dump_printk("%sRBP: %016lx R08: %016lx R09: %016lx\n",
		    log_lvl, regs->bp, regs->r8, regs->r9);
	dump_printk("%sR10: %016lx R11: %016lx R12: %016lx\n",
		    log_lvl, regs->r10, regs->r11, regs->r12);
	dump_printk("%sR13: %016lx R14: %016lx R15: %016lx\n",
		    log_lvl, regs->r13, regs->r14, regs->r15);

	if (mode == SHOW_REGS_SHORT)
		return;

	if (mode == SHOW_REGS_USER) {
		rdmsrl(MSR_FS_BASE, fs);
		rdmsrl(MSR_KERNEL_GS_BASE, shadowgs);
		dump_printk("%sFS:  %016lx GS:  %016lx\n",
			    log_lvl, fs, shadowgs);
		return;
	}

	asm("movl %%ds,%0" : "=r" (ds));
	asm("movl %%es,%0" : "=r" (es));
	asm("movl %%fs,%0" : "=r" (fsindex));
	asm("movl %%gs,%0" : "=r" (gsindex));

	rdmsrl(MSR_FS_BASE, fs);
	rdmsrl(MSR_GS_BASE, gs);
	rdmsrl(MSR_KERNEL_GS_BASE, shadowgs);

	cr0 = read_cr0();
	cr2 = read_cr2();
	cr3 = __read_cr3();
	cr4 = __read_cr4();

	dump_printk("%sFS:  %016lx(%04x) GS:%016lx(%04x) knlGS:%016lx\n",
		    log_lvl, fs, fsindex, gs, gsindex, shadowgs);
	dump_printk("%sCS:  %04x DS: %04x ES: %04x CR0: %016lx\n",
		    log_lvl, (unsigned int)regs->cs, ds, es, cr0);
	dump_printk("%sCR2: %016lx CR3: %016lx CR4: %016lx\n",
		    log_lvl, cr2, cr3, cr4);

	key_regs = key_regs_in_use();
	get_debugreg(d6, 6);
	get_debugreg(d7, 7);

	/* As upstream: only when not in their default state. */
	if (key_regs || d6 != DR6_RESERVED || d7 != DR7_FIXED_1)
		dump_printk("%sDR0-DR3: %s DR6: %016lx DR7: %016lx\n", log_lvl,
			    key_regs ? "hidden (tresor)" : "zero", d6, d7);

	if (cr4 & X86_CR4_PKE)
		dump_printk("%sPKRU: %08x\n", log_lvl, read_pkru());
}

/*
 * Set once every task runs tresor_show_regs() (post_patch runs when the
 * transition is complete), cleared before unpatching begins. tresor.ko
 * refuses to load a key while it is false.
 */
static bool showregs_active;

bool tresor_showregs_active(void)
{
	return READ_ONCE(showregs_active);
}
EXPORT_SYMBOL_GPL(tresor_showregs_active);

static void showregs_post_patch(struct klp_object *obj)
{
	WRITE_ONCE(showregs_active, true);
	pr_info("transition done: register dumps of every task leave out DR0-DR3\n");
}

static void showregs_pre_unpatch(struct klp_object *obj)
{
	WRITE_ONCE(showregs_active, false);
	if (key_regs_in_use())
		pr_warn("disabled while DR0-DR3 hold a key (tresor): an oops or WARN will print it to the log\n");
}

static struct klp_func funcs[] = {
	{
		.old_name = "__show_regs",
		.new_func = tresor_show_regs,
	},
	{ }
};

static struct klp_object objs[] = {
	{
		/* name being NULL means vmlinux */
		.funcs = funcs,
		.callbacks = {
			.post_patch = showregs_post_patch,
			.pre_unpatch = showregs_pre_unpatch,
		},
	},
	{ }
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int __init tresor_showregs_init(void)
{
	return klp_enable_patch(&patch);
}

static void __exit tresor_showregs_exit(void)
{
}

module_init(tresor_showregs_init);
module_exit(tresor_showregs_exit);
MODULE_DESCRIPTION("Livepatch: x86 register dumps without DR0-DR3 (tresor key)");
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
