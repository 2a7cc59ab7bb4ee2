// SPDX-License-Identifier: GPL-2.0
/*
 * tresor_testnmi.ko - TEST ONLY, never shipped: count NMIs that interrupt
 * a CPU while a key word sits in %rax (tresor's GPR transit, issue 21
 * item 1), and optionally hold that CPU in NMI context so that the host
 * can dump RAM while the NMI frame is still on the IST stack.
 *
 *   modprobe tresor_testnmi key_masked=HEX64 key_mask=HEX64
 *	the key XOR a mask, and the mask (as tests/harness/guest.py's
 *	masked_key_args() gives them): neither alone is the key, and the
 *	handler compares (regs->ax ^ mask) with key ^ mask, so no key word is
 *	ever stored by this module. Load it after tresor.ko.
 *
 * Two NMI_LOCAL handlers:
 *  - "testnmi_first" (NMI_FLAG_FIRST, so ahead of tresor's own handler,
 *    which tresor registered earlier): a *hit* is an NMI whose interrupted
 *    %rax holds one of the four key words. Counted in `hits`, the
 *    interrupted ip kept for `hit_sites`.
 *  - "testnmi_last" (appended, so after tresor's and everyone else's):
 *    after a hit, a *leak* is the saved %rax still holding the key word
 *    once every other handler has run, i.e. what stays in RAM after the
 *    NMI returns. Counted in `leaks`. If `freeze` is > 0 it is decremented
 *    and the CPU stays in the NMI handler for `hold_ms`, after writing one
 *    byte 'H' to the I/O port `debugcon_port` (QEMU isa-debugcon): the
 *    host sees it, stops the VM and dumps RAM with this CPU's NMI frame in
 *    place. It then claims the NMI (NMI_HANDLED), so injected NMIs do not
 *    log "NMI received for unknown reason".
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/delay.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/percpu.h>
#include <linux/string.h>
#include <asm/io.h>
#include <asm/nmi.h>
#include <asm/ptrace.h>

#define NSITES	32

static u64 masked[4], mask[4];
static bool key_set;
static atomic_long_t nr_nmis, nr_hits, nr_leaks, nr_freezes;
static atomic_t freeze_left = ATOMIC_INIT(0);
static unsigned long sites[NSITES];
static atomic_t nr_sites = ATOMIC_INIT(0);
static DEFINE_PER_CPU(int, hit_pending);

static unsigned int hold_ms = 3000;
module_param(hold_ms, uint, 0644);
MODULE_PARM_DESC(hold_ms, "how long a frozen CPU stays in its NMI handler");

static unsigned int debugcon_port = 0x402;
module_param(debugcon_port, uint, 0644);
MODULE_PARM_DESC(debugcon_port, "I/O port told 'H' at each freeze (0: none)");

static int parse_words(const char *val, u64 out[4])
{
	u8 b[32];
	int i;

	if (strlen(val) < 64 || (val[64] && val[64] != '\n') ||
	    hex2bin(b, val, 32))
		return -EINVAL;
	for (i = 0; i < 4; i++)
		memcpy(&out[i], b + 8 * i, 8);
	memzero_explicit(b, sizeof(b));
	return 0;
}

static int masked_set(const char *val, const struct kernel_param *kp)
{
	int ret = parse_words(val, masked);

	key_set = !ret;
	return ret;
}

static int mask_set(const char *val, const struct kernel_param *kp)
{
	return parse_words(val, mask);
}

static const struct kernel_param_ops masked_ops = { .set = masked_set };
static const struct kernel_param_ops mask_ops = { .set = mask_set };
module_param_cb(key_mask, &mask_ops, NULL, 0200);
MODULE_PARM_DESC(key_mask, "64 hex digits: the mask");
module_param_cb(key_masked, &masked_ops, NULL, 0200);
MODULE_PARM_DESC(key_masked, "64 hex digits: the key XOR the mask");

static int get_count(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%ld\n", atomic_long_read(kp->arg));
}

static const struct kernel_param_ops count_ops = { .get = get_count };
module_param_cb(nmis, &count_ops, &nr_nmis, 0444);
module_param_cb(hits, &count_ops, &nr_hits, 0444);
module_param_cb(leaks, &count_ops, &nr_leaks, 0444);
module_param_cb(freezes, &count_ops, &nr_freezes, 0444);

static int freeze_set(const char *val, const struct kernel_param *kp)
{
	int n, ret = kstrtoint(val, 0, &n);

	if (ret || n < 0)
		return -EINVAL;
	atomic_set(&freeze_left, n);
	return 0;
}

static int freeze_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%d\n", atomic_read(&freeze_left));
}

static const struct kernel_param_ops freeze_ops = {
	.set = freeze_set, .get = freeze_get,
};
module_param_cb(freeze, &freeze_ops, NULL, 0644);
MODULE_PARM_DESC(freeze, "hold the CPU in NMI context at the next N leaks/hits");

/* The interrupted ips of the first hits, as symbols. */
static int sites_get(char *buf, const struct kernel_param *kp)
{
	int i, n = min(atomic_read(&nr_sites), NSITES), len = 0;

	for (i = 0; i < n; i++)
		len += sysfs_emit_at(buf, len, "%pS\n", (void *)sites[i]);
	return len;
}

static const struct kernel_param_ops sites_ops = { .get = sites_get };
module_param_cb(hit_sites, &sites_ops, NULL, 0444);

/* Index of the key word in @ax plus one, or 0. */
static int key_word_in(u64 ax)
{
	int i;

	for (i = 0; i < 4; i++)
		if ((ax ^ mask[i]) == masked[i])
			return i + 1;
	return 0;
}

static int testnmi_first(unsigned int type, struct pt_regs *regs)
{
	int n;

	atomic_long_inc(&nr_nmis);
	if (!key_set || user_mode(regs) || !key_word_in(regs->ax))
		return NMI_DONE;
	atomic_long_inc(&nr_hits);
	n = atomic_inc_return(&nr_sites) - 1;
	if (n < NSITES)
		sites[n] = regs->ip;
	this_cpu_write(hit_pending, 1);
	return NMI_DONE;
}

static int testnmi_last(unsigned int type, struct pt_regs *regs)
{
	unsigned int ms;

	if (!this_cpu_read(hit_pending))
		return NMI_HANDLED;
	this_cpu_write(hit_pending, 0);
	if (key_word_in(regs->ax))
		atomic_long_inc(&nr_leaks);
	if (atomic_dec_if_positive(&freeze_left) < 0)
		return NMI_HANDLED;
	atomic_long_inc(&nr_freezes);
	if (debugcon_port)
		outb('H', debugcon_port);
	for (ms = 0; ms < hold_ms; ms++)
		mdelay(1);
	return NMI_HANDLED;
}

static int __init testnmi_init(void)
{
	int ret;

	ret = register_nmi_handler(NMI_LOCAL, testnmi_first, NMI_FLAG_FIRST,
				   "testnmi_first");
	if (ret)
		return ret;
	ret = register_nmi_handler(NMI_LOCAL, testnmi_last, 0, "testnmi_last");
	if (ret)
		unregister_nmi_handler(NMI_LOCAL, "testnmi_first");
	pr_info("counting NMIs in key transits (key %s)\n",
		key_set ? "given" : "not given: no hits");
	return ret;
}

static void __exit testnmi_exit(void)
{
	unregister_nmi_handler(NMI_LOCAL, "testnmi_last");
	unregister_nmi_handler(NMI_LOCAL, "testnmi_first");
	memzero_explicit(masked, sizeof(masked));
	memzero_explicit(mask, sizeof(mask));
}

module_init(testnmi_init);
module_exit(testnmi_exit);

MODULE_DESCRIPTION("TEST ONLY: count NMIs that save a tresor key word");
MODULE_LICENSE("GPL");
