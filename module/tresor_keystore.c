// SPDX-License-Identifier: GPL-2.0
/*
 * Key store: the key in DR0-DR3 of every key-holding CPU.
 *
 * The key passes through RAM in the SET_KEY buffer (wiped as soon as every
 * holder has it) and, when enabled, once per CPU coming online (a copy from
 * a valid peer, wiped at once). What stays in RAM are check values
 * (AES_K1(0), AES_K2(0)): ciphertexts that let each request prove that the
 * local registers still hold the right key, without revealing it.
 *
 * Holders are the CPUs that should carry the key (TRESOR_IOC_SET_HOLDERS;
 * default every online CPU); valid holders are those whose last check
 * passed. A KVM guest touching its debug registers overwrites DR0-DR3 of
 * the CPU it runs on: that CPU fails its next check and stops serving
 * requests, which go to a valid holder instead.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <crypto/algapi.h>
#include <linux/capability.h>
#include <linux/cpu.h>
#include <linux/cpuhotplug.h>
#include <linux/kobject.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/percpu.h>
#include <linux/reboot.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <linux/security.h>
#include <linux/string.h>
#include <linux/suspend.h>
#include <linux/sysfs.h>
#include <linux/sysrq.h>
#include <linux/version.h>
#include <asm/cpufeature.h>
#include <asm/fpu/api.h>
#include <asm/msr.h>
#include <asm/nmi.h>
#include <asm/ptrace.h>

#include "tresor_asm.h"
#include "tresor_cipher.h"
#include "tresor_keystore.h"
#include "tresor_showregs.h"

static bool hotplug_peer_copy;
module_param(hotplug_peer_copy, bool, 0644);
MODULE_PARM_DESC(hotplug_peer_copy,
		 "A holder CPU coming online copies the key from a valid peer through RAM (wiped at once); otherwise it stays keyless and its requests are forwarded (default: keyless)");

static bool allow_hypervisor;
module_param(allow_hypervisor, bool, 0444);
MODULE_PARM_DESC(allow_hypervisor,
		 "Load the key even when CPUID reports a hypervisor, which saves DR0-DR3 to its own RAM on every VM exit: TRESOR then protects nothing against a dump of the host (test benches; default: refuse, EOPNOTSUPP)");

static bool allow_no_showregs;
module_param(allow_no_showregs, bool, 0444);
MODULE_PARM_DESC(allow_no_showregs,
		 "Load the key even when the tresor_showregs livepatch is not active, so that an oops or WARN prints DR0-DR3, the key, to the log (default: refuse, ENOPKG)");

static bool allow_pebs_xmm;
module_param(allow_pebs_xmm, bool, 0444);
MODULE_PARM_DESC(allow_pebs_xmm,
		 "Load the key even on a CPU whose PMU can write XMM registers to RAM (Intel adaptive PEBS, perf record --intr-regs) while lockdown does not forbid it: a sampling event then copies the AES round keys to RAM; flagged in pmu_xmm_exposed (default: refuse, EKEYREJECTED)");

static bool assume_pebs_xmm;
module_param(assume_pebs_xmm, bool, 0444);
MODULE_PARM_DESC(assume_pebs_xmm,
		 "Treat the CPU as one with adaptive PEBS whatever IA32_PERF_CAPABILITIES says (tests of the refusal on CPUs without a PMU; default: off)");

static bool allow_kgdb;
module_param(allow_kgdb, bool, 0444);
MODULE_PARM_DESC(allow_kgdb,
		 "Load the key even while a kernel debugger I/O driver (kgdboc, kgdbdbgp, ...) is configured: every CPU leaving the debugger reloads DR0-DR3 from its breakpoint state, zeros, so the key is gone everywhere and all TRESOR I/O fails with EIO until it is loaded again (never written under a wrong key); flagged in kgdb_exposed (default: refuse, EBUSY)");

/* IA32_PERF_CAPABILITIES bit 14: PEBS records can carry XMM registers */
#define TRESOR_PERF_CAP_PEBS_BASELINE	BIT_ULL(14)

/*
 * Serialises key loading, clearing and holder changes. Lock order: the CPU
 * hotplug lock first (hotplug callbacks run under it), then this.
 */
static DEFINE_MUTEX(tresor_key_lock);

/* Published with release semantics once every holder has a verified key. */
static bool tresor_loaded;
static u8 tresor_check[32];
static struct cpumask tresor_holders;	/* wanted holders */
static bool tresor_holders_set;		/* else: every online CPU */
static struct cpumask tresor_valid;	/* holders that passed their check */
/* Scratch masks under tresor_key_lock (too big for the stack). */
static struct cpumask tresor_scratch, tresor_scratch2;
static enum cpuhp_state tresor_hp_state;

/* the key was loaded with allow_pebs_xmm on a CPU that needed it */
static bool tresor_pmu_xmm_exposed;
/* the key was loaded with allow_kgdb while a debugger was configured */
static bool tresor_kgdb_exposed;

/* transforms and ramcrypt regions: CLEAR_KEY waits for none */
static atomic_t tresor_nr_users = ATOMIC_INIT(0);
static atomic64_t tresor_check_failures = ATOMIC64_INIT(0);
static atomic64_t tresor_forwarded = ATOMIC64_INIT(0);
static atomic64_t tresor_peer_copies = ATOMIC64_INIT(0);
static DEFINE_PER_CPU(u64, tresor_requests);
static atomic_t tresor_next_holder = ATOMIC_INIT(0);

/*
 * NMIs during a key transit (TRESOR_TRANSIT_BEGIN/END in tresor_asm.h).
 * cli does not mask NMIs; the NMI entry saves the interrupted GPRs into
 * pt_regs on this CPU's NMI IST stack, so an NMI while %rax holds a key
 * word would leave 8 key bytes there until the next NMI overwrites them.
 * While this CPU is in a transit (tresor_transit set, with interrupts off:
 * nothing but NMI, #MC and SMI can interrupt it), an NMI whose saved ip is
 * in tresor's text interrupted exactly that code, so its saved %rax is key
 * material or zero and holds nothing else the code needs. It is zeroed in
 * the frame, which is also what the interrupted code gets back on return,
 * and the transit is marked, so that the code reads the words again.
 *
 * Registered NMI_FLAG_FIRST, ahead of every NMI_LOCAL handler registered
 * before us (perf's copies regs into samples). It returns NMI_DONE: it
 * never claims an NMI. Not covered: an NMI that nests in a #MC handler
 * which interrupted a transit (its ip is not ours: left alone, the #MC
 * frame keeps the word), and NMIs that stop the CPU first (crash/reboot
 * shutdown, NMI_FLAG_FIRST too, registered later); see threat-model.md.
 */
DEFINE_PER_CPU(u32, tresor_transit);
static atomic64_t tresor_nmi_scrubs = ATOMIC64_INIT(0);

static int tresor_nmi_scrub(unsigned int type, struct pt_regs *regs)
{
	if (likely(!__this_cpu_read(tresor_transit)))
		return NMI_DONE;
	if (user_mode(regs) || !within_module_core(regs->ip, THIS_MODULE))
		return NMI_DONE;
	regs->ax = 0;
	__this_cpu_write(tresor_transit, TRESOR_TRANSIT_HIT);
	atomic64_inc(&tresor_nmi_scrubs);
	return NMI_DONE;
}

bool tresor_key_loaded(void)
{
	/* pairs with the release in tresor_key_set(): check values first */
	return smp_load_acquire(&tresor_loaded);
}

void tresor_key_user_get(void)
{
	atomic_inc(&tresor_nr_users);
}
EXPORT_SYMBOL_GPL(tresor_key_user_get);

void tresor_key_user_put(void)
{
	atomic_dec(&tresor_nr_users);
}
EXPORT_SYMBOL_GPL(tresor_key_user_put);

void tresor_count_request(void)
{
	this_cpu_inc(tresor_requests);
}

void tresor_count_forwarded(void)
{
	atomic64_inc(&tresor_forwarded);
}

/* Of the forwarded ones: run by IPI, not by the holder's worker */
static atomic64_t tresor_ipi_forwarded = ATOMIC64_INIT(0);

void tresor_count_ipi_forwarded(void)
{
	atomic64_inc(&tresor_ipi_forwarded);
}

const u8 *tresor_key_check(void)
{
	return tresor_check;
}

bool tresor_local_holder(void)
{
	return cpumask_test_cpu(smp_processor_id(), &tresor_valid);
}

void tresor_local_check_failed(void)
{
	int cpu = smp_processor_id();

	if (cpumask_test_and_clear_cpu(cpu, &tresor_valid)) {
		atomic64_inc(&tresor_check_failures);
		pr_warn_ratelimited("CPU %d lost its key (check value mismatch inside a cipher call: a KVM guest, a debugger or an NMI/exception handler wrote its debug registers); nothing was written under the wrong key, its requests go to other holders\n",
				    cpu);
	}
}

bool tresor_holder_valid(int cpu)
{
	return cpu >= 0 && cpu < nr_cpu_ids && cpu_online(cpu) &&
	       cpumask_test_cpu(cpu, &tresor_valid);
}

const struct cpumask *tresor_valid_holders(void)
{
	return &tresor_valid;
}

unsigned int tresor_holder_start(void)
{
	return (unsigned int)atomic_inc_return(&tresor_next_holder) %
	       nr_cpu_ids;
}

int tresor_pick_holder(int avoid)
{
	unsigned int start = tresor_holder_start();
	unsigned int cpu;
	int fallback = -1;

	for_each_cpu_wrap(cpu, &tresor_valid, start) {
		if (cpu != avoid && cpu_online(cpu))
			return cpu;
		fallback = cpu;
	}
	return fallback;
}

/* Runs on the target CPU in process context (smp_call_on_cpu). */
struct tresor_load_ctx {
	const u8 *key;
	const struct tresor_impl *impl;
	u8 check[32];
	bool have_check;
};

static int tresor_load_on_cpu(void *arg)
{
	struct tresor_load_ctx *ctx = arg;
	u8 cv[32];
	int ret = 0;

	tresor_write_key_regs(ctx->key);
	kernel_fpu_begin();
	ctx->impl->check_values(cv);
	kernel_fpu_end();
	if (!ctx->have_check) {
		memcpy(ctx->check, cv, sizeof(cv));
		ctx->have_check = true;
	} else if (crypto_memneq(cv, ctx->check, sizeof(cv))) {
		ret = -EIO;
	}
	memzero_explicit(cv, sizeof(cv));
	return ret;
}

static int tresor_wipe_on_cpu(void *unused)
{
	tresor_wipe_key_regs();
	return 0;
}

static void tresor_wipe_cpus(const struct cpumask *mask)
{
	unsigned int cpu;

	for_each_cpu(cpu, mask)
		if (cpu_online(cpu))
			smp_call_on_cpu(cpu, tresor_wipe_on_cpu, NULL, false);
}

static int tresor_read_on_cpu(void *buf)
{
	tresor_read_key_regs(buf);
	return 0;
}

/*
 * Give @cpu the key of a valid peer: the one documented transit through
 * RAM, in a buffer wiped right after. Verified against the check values.
 */
static int tresor_peer_copy(unsigned int cpu, bool here)
{
	struct tresor_load_ctx ctx = { .impl = tresor_best_impl(),
				       .have_check = true };
	int peer = tresor_pick_holder(cpu);
	u8 *buf;
	int ret;

	lockdep_assert_held(&tresor_key_lock);
	if (peer < 0 || peer == cpu)
		return -ENOKEY;
	buf = kzalloc(TRESOR_KEY_SIZE, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	ret = smp_call_on_cpu(peer, tresor_read_on_cpu, buf, false);
	if (ret) {
		kfree_sensitive(buf);
		return ret;
	}
	memcpy(ctx.check, tresor_check, sizeof(ctx.check));
	ctx.key = buf;
	/* here: a hotplug callback, already running pinned on @cpu */
	if (here)
		ret = tresor_load_on_cpu(&ctx);
	else
		ret = smp_call_on_cpu(cpu, tresor_load_on_cpu, &ctx, false);
	kfree_sensitive(buf);
	memzero_explicit(&ctx, sizeof(ctx));
	if (ret) {
		smp_call_on_cpu(cpu, tresor_wipe_on_cpu, NULL, false);
		return ret;
	}
	cpumask_set_cpu(cpu, &tresor_valid);
	atomic64_inc(&tresor_peer_copies);
	pr_info("CPU %u got the key from CPU %d (peer copy)\n", cpu, peer);
	return 0;
}

static bool tresor_is_holder(unsigned int cpu)
{
	return !tresor_holders_set || cpumask_test_cpu(cpu, &tresor_holders);
}

/* The online CPUs that should hold the key, into tresor_scratch. */
static const struct cpumask *tresor_effective_holders(void)
{
	lockdep_assert_held(&tresor_key_lock);
	if (tresor_holders_set)
		cpumask_and(&tresor_scratch, &tresor_holders, cpu_online_mask);
	else
		cpumask_copy(&tresor_scratch, cpu_online_mask);
	return &tresor_scratch;
}

/* 1: the livepatch is active, 0: loaded, not active, -ENOENT: not loaded */
static int tresor_showregs_state(void)
{
	typeof(&tresor_showregs_active) active =
		symbol_get(tresor_showregs_active);
	int on;

	if (!active)
		return -ENOENT;
	on = active();
	symbol_put(tresor_showregs_active);
	return on;
}

/*
 * Can the PMU write XMM registers to RAM? Adaptive PEBS (Ice Lake and
 * later) stores the sampled instruction's XMM0-15 in the DS buffer for an
 * event with PERF_SAMPLE_REGS_INTR, which is where the round keys are
 * during a request; cli and clearing the registers afterwards do not help.
 * perf refuses such events under lockdown=confidentiality (LOCKDOWN_PERF).
 */
static bool tresor_pmu_samples_xmm(void)
{
	u64 caps;

	if (assume_pebs_xmm)
		return true;
	if (boot_cpu_data.x86_vendor != X86_VENDOR_INTEL ||
	    !boot_cpu_has(X86_FEATURE_PDCM))
		return false;
	if (rdmsrl_safe(MSR_IA32_PERF_CAPABILITIES, &caps))
		return false;
	return caps & TRESOR_PERF_CAP_PEBS_BASELINE;
}

#ifdef CONFIG_MAGIC_SYSRQ
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
static void tresor_sysrq_probe(u8 key)
#else
static void tresor_sysrq_probe(int key)
#endif
{
}

static const struct sysrq_key_op tresor_sysrq_probe_op = {
	.handler = tresor_sysrq_probe,
	.help_msg = "debug(g)",
	.action_msg = "tresor: probing for a kernel debugger, nothing to do",
};

/*
 * Is a kgdb I/O driver configured (kgdboc=, ekgdboc, kgdbdbgp, or later
 * through /sys/module/kgdboc/parameters/kgdboc)? Registering one makes
 * kgdb take sysrq 'g' (kgdb_register_callbacks(); no other user in the
 * kernel); kgdb_io_module_registered itself is not exported. Probed by
 * registering our own 'g', which fails while another is there.
 */
static bool tresor_kgdb_configured(void)
{
	if (register_sysrq_key('g', &tresor_sysrq_probe_op))
		return true;
	unregister_sysrq_key('g', &tresor_sysrq_probe_op);
	return false;
}
#else
/* Without sysrq kgdb is entered only by an oops or kgdbwait: not seen */
static bool tresor_kgdb_configured(void)
{
	return false;
}
#endif

/*
 * Where the key must not go: under a hypervisor (EOPNOTSUPP), before the
 * tresor_showregs livepatch is active (ENOPKG), where the PMU may copy
 * XMM registers to RAM (EKEYREJECTED) and while a kernel debugger is
 * configured (EBUSY), unless the module parameters accept it. Each refusal
 * says why in the log. *pmu_exposed, *kgdb_exposed: accepted by
 * allow_pebs_xmm, allow_kgdb.
 */
static int tresor_key_allowed(bool *pmu_exposed, bool *kgdb_exposed)
{
	int lp;

	lockdep_assert_held(&tresor_key_lock);
	*pmu_exposed = false;
	*kgdb_exposed = false;

	if (boot_cpu_has(X86_FEATURE_HYPERVISOR)) {
		if (!allow_hypervisor) {
			pr_err("refusing the key: CPUID reports a hypervisor, which saves DR0-DR3 (the key) to its own RAM on VM exits; load tresor with allow_hypervisor=1 to accept that (test benches)\n");
			return -EOPNOTSUPP;
		}
		pr_warn("CPUID reports a hypervisor: it can save DR0-DR3 (the key) to its RAM on VM exits; loading the key anyway (allow_hypervisor=1)\n");
	}
	lp = tresor_showregs_state();
	if (lp <= 0) {
		const char *why = lp ? "is not loaded" :
			"is loaded but not active (transition not done, or disabled)";

		if (!allow_no_showregs) {
			pr_err("refusing the key: the tresor_showregs livepatch %s, so an oops or WARN would print DR0-DR3 (the key) to the log; modprobe tresor_showregs and wait for /sys/kernel/livepatch/tresor_showregs/transition to read 0 (tresor-unlock does), or load tresor with allow_no_showregs=1\n",
			       why);
			return -ENOPKG;
		}
		pr_warn("the tresor_showregs livepatch %s: an oops or WARN prints DR0-DR3 (the key); loading the key anyway (allow_no_showregs=1)\n",
			why);
	}
	if (tresor_pmu_samples_xmm() && !security_locked_down(LOCKDOWN_PERF)) {
		if (!allow_pebs_xmm) {
			pr_err("refusing the key: this CPU's PMU can write XMM registers, which hold the AES round keys during a request, to RAM (adaptive PEBS, perf record --intr-regs) and kernel lockdown does not forbid it; boot with lockdown=confidentiality, or load tresor with allow_pebs_xmm=1 to accept that\n");
			return -EKEYREJECTED;
		}
		pr_warn("this CPU's PMU can write XMM registers (the AES round keys) to RAM (adaptive PEBS) and lockdown does not forbid it; loading the key anyway (allow_pebs_xmm=1), flagged in /sys/kernel/tresor/pmu_xmm_exposed\n");
		*pmu_exposed = true;
	}
	/*
	 * Refused rather than only flagged: since every cipher call checks
	 * its key, a debugger session can no longer make data be written
	 * under a wrong key, but leaving it wipes the key on every CPU, so
	 * each TRESOR volume (the root file system, ramcrypt guests' memory)
	 * fails all I/O until the key is loaded again, which CLEAR_KEY
	 * refuses while they are in use: a reboot. An admin who wants the
	 * debugger anyway says so.
	 */
	if (tresor_kgdb_configured()) {
		if (!allow_kgdb) {
			pr_err("refusing the key: a kernel debugger I/O driver is configured (kgdboc or the like; it holds sysrq 'g'), and every CPU leaving the debugger reloads DR0-DR3 from its breakpoint state, which wipes the key everywhere: all TRESOR I/O would fail with EIO until the key is loaded again; unconfigure it (echo > /sys/module/kgdboc/parameters/kgdboc) or load tresor with allow_kgdb=1\n");
			return -EBUSY;
		}
		pr_warn("a kernel debugger I/O driver is configured: leaving the debugger wipes the key on every CPU and TRESOR I/O then fails with EIO; loading the key anyway (allow_kgdb=1), flagged in /sys/kernel/tresor/kgdb_exposed\n");
		*kgdb_exposed = true;
	}
	return 0;
}

int tresor_key_set(const u8 key[TRESOR_KEY_SIZE])
{
	const struct tresor_impl *impl = tresor_best_impl();
	struct tresor_load_ctx ctx = { .key = key, .impl = impl };
	const struct cpumask *holders;
	bool pmu_exposed, kgdb_exposed;
	unsigned int cpu;
	int ret = 0;

	if (!memchr_inv(key, 0, TRESOR_KEY_SIZE)) {
		pr_err("refusing an all-zero key\n");
		return -EINVAL;
	}

	cpus_read_lock();
	mutex_lock(&tresor_key_lock);
	if (tresor_key_loaded()) {
		ret = -EEXIST;
		goto out_unlock;
	}
	ret = tresor_key_allowed(&pmu_exposed, &kgdb_exposed);
	if (ret)
		goto out_unlock;
	holders = tresor_effective_holders();
	for_each_cpu(cpu, holders) {
		if (!tresor_bpslots_owned(cpu)) {
			pr_err("CPU %u has a hardware breakpoint in use (debugger or perf); refusing to load the key\n",
			       cpu);
			ret = -EBUSY;
			goto out_unlock;
		}
	}
	cpumask_clear(&tresor_valid);
	for_each_cpu(cpu, holders) {
		ret = smp_call_on_cpu(cpu, tresor_load_on_cpu, &ctx, false);
		if (ret) {
			pr_err("CPU %u does not hold the key after loading it\n",
			       cpu);
			break;
		}
		cpumask_set_cpu(cpu, &tresor_valid);
	}
	if (ret) {
		tresor_wipe_cpus(holders);
		cpumask_clear(&tresor_valid);
	} else {
		memcpy(tresor_check, ctx.check, sizeof(tresor_check));
		tresor_pmu_xmm_exposed = pmu_exposed;
		tresor_kgdb_exposed = kgdb_exposed;
		/* publish the check values before the key counts as loaded */
		smp_store_release(&tresor_loaded, true);
		pr_info("key loaded on CPUs %*pbl (%s)\n",
			cpumask_pr_args(&tresor_valid), impl->name);
	}
	memzero_explicit(&ctx, sizeof(ctx));
out_unlock:
	mutex_unlock(&tresor_key_lock);
	cpus_read_unlock();
	return ret;
}

int tresor_key_clear(void)
{
	int ret = 0;

	cpus_read_lock();
	mutex_lock(&tresor_key_lock);
	if (atomic_read(&tresor_nr_users)) {
		ret = -EBUSY;
		goto out_unlock;
	}
	/* no new request may start before the registers are wiped */
	smp_store_release(&tresor_loaded, false);
	/* Every online CPU, not only holders: leave no stale copy anywhere. */
	tresor_wipe_cpus(cpu_online_mask);
	cpumask_clear(&tresor_valid);
	memzero_explicit(tresor_check, sizeof(tresor_check));
	tresor_pmu_xmm_exposed = false;
	tresor_kgdb_exposed = false;
	pr_info("key cleared\n");
out_unlock:
	mutex_unlock(&tresor_key_lock);
	cpus_read_unlock();
	return ret;
}

int tresor_set_holders(const struct cpumask *new)
{
	struct cpumask *removed = &tresor_scratch, *added = &tresor_scratch2;
	unsigned int cpu;
	int ret = 0;

	cpus_read_lock();
	mutex_lock(&tresor_key_lock);
	if (cpumask_empty(new) || !cpumask_subset(new, cpu_online_mask)) {
		pr_err("SET_HOLDERS: CPUs %*pbl must be a non-empty subset of the online CPUs %*pbl\n",
		       cpumask_pr_args(new), cpumask_pr_args(cpu_online_mask));
		ret = -EINVAL;
		goto out_unlock;
	}
	if (tresor_key_loaded()) {
		cpumask_andnot(removed, &tresor_valid, new);
		cpumask_andnot(added, new, &tresor_valid);
		/* Add first, so a valid holder is always left to copy from. */
		for_each_cpu(cpu, added) {
			if (!tresor_bpslots_owned(cpu)) {
				ret = -EBUSY;
				goto out_unlock;
			}
			ret = tresor_peer_copy(cpu, false);
			if (ret)
				goto out_unlock;
		}
		for_each_cpu(cpu, removed)
			cpumask_clear_cpu(cpu, &tresor_valid);
		/* No request can still use them: a request checks tresor_valid
		 * inside its FPU section, and these wipes wait for the CPUs.
		 */
		tresor_wipe_cpus(removed);
	}
	cpumask_copy(&tresor_holders, new);
	tresor_holders_set = true;
	pr_info("key holders: CPUs %*pbl\n", cpumask_pr_args(new));
out_unlock:
	mutex_unlock(&tresor_key_lock);
	cpus_read_unlock();
	return ret;
}

void tresor_get_status(struct tresor_status *st)
{
	unsigned int cpu;

	memset(st, 0, sizeof(*st));
	st->abi_version = TRESOR_ABI_VERSION;
	if (tresor_key_loaded())
		st->flags |= TRESOR_STATUS_KEY_LOADED;
	if (tresor_key_loaded() && READ_ONCE(tresor_pmu_xmm_exposed))
		st->flags |= TRESOR_STATUS_PMU_XMM_EXPOSED;
	if (tresor_key_loaded())
		st->nr_holders = tresor_holders_set ?
			cpumask_weight_and(&tresor_holders, cpu_online_mask) :
			num_online_cpus();
	st->nr_valid_holders = cpumask_weight(&tresor_valid);
	st->check_failures = atomic64_read(&tresor_check_failures);
	st->forwarded_requests = atomic64_read(&tresor_forwarded);
	st->peer_copies = atomic64_read(&tresor_peer_copies);
	for_each_possible_cpu(cpu)
		st->requests += per_cpu(tresor_requests, cpu);
}

/* CPU hotplug: runs on the CPU coming online / going offline. */
static int tresor_cpu_online(unsigned int cpu)
{
	tresor_bpslots_reserve(cpu);
	mutex_lock(&tresor_key_lock);
	if (tresor_key_loaded() && tresor_is_holder(cpu)) {
		if (hotplug_peer_copy && tresor_bpslots_owned(cpu))
			tresor_peer_copy(cpu, true);
		else
			pr_info("CPU %u came online keyless; its requests go to CPUs %*pbl\n",
				cpu, cpumask_pr_args(&tresor_valid));
	}
	mutex_unlock(&tresor_key_lock);
	return 0;
}

static int tresor_cpu_offline(unsigned int cpu)
{
	cpumask_clear_cpu(cpu, &tresor_valid);
	tresor_wipe_key_regs();
	return 0;
}

/*
 * Suspend and hibernation lose the debug registers (and hibernation would
 * write everything else to disk): refuse them while a key is loaded.
 */
static int tresor_pm_notify(struct notifier_block *nb, unsigned long action,
			    void *data)
{
	switch (action) {
	case PM_SUSPEND_PREPARE:
	case PM_HIBERNATION_PREPARE:
	case PM_RESTORE_PREPARE:
		if (tresor_key_loaded()) {
			pr_warn("refusing suspend/hibernation while the key is loaded; clear it first (TRESOR_IOC_CLEAR_KEY)\n");
			return notifier_from_errno(-EBUSY);
		}
	}
	return NOTIFY_DONE;
}

static struct notifier_block tresor_pm_nb = {
	.notifier_call = tresor_pm_notify,
};

/*
 * Reboot, halt, power-off and kexec: no key survives into the next kernel.
 * Wiped from process context on each CPU, never by IPI: an IPI could land
 * inside a request's FPU section, between its key check and its last block.
 */
static int tresor_reboot_notify(struct notifier_block *nb,
				unsigned long action, void *data)
{
	/* requests after this point fail instead of using wiped registers */
	smp_store_release(&tresor_loaded, false);
	cpus_read_lock();
	tresor_wipe_cpus(cpu_online_mask);
	cpus_read_unlock();
	return NOTIFY_DONE;
}

static struct notifier_block tresor_reboot_nb = {
	.notifier_call = tresor_reboot_notify,
};

/* /sys/kernel/tresor/ */
#define TRESOR_STATUS_ATTR(field, fmt)					\
static ssize_t field##_show(struct kobject *kobj,			\
			    struct kobj_attribute *attr, char *buf)	\
{									\
	struct tresor_status st;					\
									\
	tresor_get_status(&st);						\
	return sysfs_emit(buf, fmt "\n", st.field);			\
}									\
static struct kobj_attribute field##_attr = __ATTR_RO(field)

TRESOR_STATUS_ATTR(nr_holders, "%u");
TRESOR_STATUS_ATTR(nr_valid_holders, "%u");
TRESOR_STATUS_ATTR(check_failures, "%llu");
TRESOR_STATUS_ATTR(forwarded_requests, "%llu");
TRESOR_STATUS_ATTR(peer_copies, "%llu");
TRESOR_STATUS_ATTR(requests, "%llu");

static ssize_t key_loaded_show(struct kobject *kobj,
			       struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", tresor_key_loaded());
}

static ssize_t holders_show(struct kobject *kobj, struct kobj_attribute *attr,
			    char *buf)
{
	if (tresor_holders_set)
		return sysfs_emit(buf, "%*pbl\n",
				  cpumask_pr_args(&tresor_holders));
	if (tresor_key_loaded())
		return sysfs_emit(buf, "%*pbl\n",
				  cpumask_pr_args(cpu_online_mask));
	return sysfs_emit(buf, "\n");
}

static ssize_t valid_holders_show(struct kobject *kobj,
				  struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%*pbl\n", cpumask_pr_args(&tresor_valid));
}

static ssize_t implementation_show(struct kobject *kobj,
				   struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%s\n", tresor_best_impl()->name);
}

/* A cpulist written to sysfs file @attr; -EINVAL and a log line if bad */
int tresor_parse_cpulist(const char *attr, const char *buf,
			 struct cpumask *mask)
{
	int ret = cpulist_parse(buf, mask);

	if (ret) {
		pr_err_ratelimited("%s: '%.*s' is no list of existing CPUs (%d)\n",
				   attr, (int)strcspn(buf, "\n"), buf, ret);
		return -EINVAL;
	}
	return 0;
}

/*
 * Root writes a cpulist ("0-2,5"): the same as TRESOR_IOC_SET_HOLDERS.
 * CAP_SYS_ADMIN is checked here too, whatever the file's mode says.
 */
static ssize_t holders_store(struct kobject *kobj, struct kobj_attribute *attr,
			     const char *buf, size_t count)
{
	cpumask_var_t mask;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (!zalloc_cpumask_var(&mask, GFP_KERNEL))
		return -ENOMEM;
	ret = tresor_parse_cpulist("holders", buf, mask);
	if (!ret)
		ret = tresor_set_holders(mask);
	free_cpumask_var(mask);
	return ret ? ret : count;
}

/*
 * Requests (pages, skcipher requests) each CPU ran, counted where they ran:
 * one line, a number per possible CPU in CPU order (0 for a CPU not
 * possible below the last one).
 */
static ssize_t requests_per_cpu_show(struct kobject *kobj,
				     struct kobj_attribute *attr, char *buf)
{
	unsigned int cpu;
	int len = 0;

	for (cpu = 0; cpu < nr_cpu_ids; cpu++)
		len += sysfs_emit_at(buf, len, "%s%llu", cpu ? " " : "",
				     cpu_possible(cpu) ?
				     per_cpu(tresor_requests, cpu) : 0);
	len += sysfs_emit_at(buf, len, "\n");
	return len;
}

/* NMIs that arrived during a key transit and had their %rax zeroed */
static ssize_t nmi_scrubs_show(struct kobject *kobj,
			       struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%lld\n", atomic64_read(&tresor_nmi_scrubs));
}

static struct kobj_attribute nmi_scrubs_attr = __ATTR_RO(nmi_scrubs);

static ssize_t ipi_forwarded_requests_show(struct kobject *kobj,
					   struct kobj_attribute *attr,
					   char *buf)
{
	return sysfs_emit(buf, "%lld\n",
			  atomic64_read(&tresor_ipi_forwarded));
}

static struct kobj_attribute ipi_forwarded_requests_attr =
	__ATTR_RO(ipi_forwarded_requests);

/* 1: the key is loaded although the PMU may copy XMM registers to RAM */
static ssize_t pmu_xmm_exposed_show(struct kobject *kobj,
				    struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", tresor_key_loaded() &&
			  READ_ONCE(tresor_pmu_xmm_exposed));
}

static struct kobj_attribute pmu_xmm_exposed_attr =
	__ATTR_RO(pmu_xmm_exposed);

/* 1: the key is loaded although a kernel debugger was configured */
static ssize_t kgdb_exposed_show(struct kobject *kobj,
				 struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", tresor_key_loaded() &&
			  READ_ONCE(tresor_kgdb_exposed));
}

static struct kobj_attribute kgdb_exposed_attr = __ATTR_RO(kgdb_exposed);
static struct kobj_attribute key_loaded_attr = __ATTR_RO(key_loaded);
static struct kobj_attribute holders_attr = __ATTR_RW(holders);
static struct kobj_attribute requests_per_cpu_attr =
	__ATTR_RO(requests_per_cpu);
static struct kobj_attribute valid_holders_attr = __ATTR_RO(valid_holders);
static struct kobj_attribute implementation_attr = __ATTR_RO(implementation);

static struct attribute *tresor_status_attrs[] = {
	&key_loaded_attr.attr,
	&holders_attr.attr,
	&valid_holders_attr.attr,
	&nr_holders_attr.attr,
	&nr_valid_holders_attr.attr,
	&check_failures_attr.attr,
	&forwarded_requests_attr.attr,
	&ipi_forwarded_requests_attr.attr,
	&peer_copies_attr.attr,
	&requests_attr.attr,
	&requests_per_cpu_attr.attr,
	&implementation_attr.attr,
	&nmi_scrubs_attr.attr,
	&pmu_xmm_exposed_attr.attr,
	&kgdb_exposed_attr.attr,
	NULL,
};

const struct attribute_group tresor_status_group = {
	.attrs = tresor_status_attrs,
};

int tresor_keystore_init(void)
{
	int ret;

	/* Before any key can be loaded: see tresor_nmi_scrub(). */
	ret = register_nmi_handler(NMI_LOCAL, tresor_nmi_scrub, NMI_FLAG_FIRST,
				   "tresor");
	if (ret)
		return ret;

	/* Reserves the breakpoint slots of every online CPU, now and later. */
	ret = cpuhp_setup_state(CPUHP_AP_ONLINE_DYN, "tresor:online",
				tresor_cpu_online, tresor_cpu_offline);
	if (ret < 0)
		goto err_bpslots;
	tresor_hp_state = ret;

	ret = register_pm_notifier(&tresor_pm_nb);
	if (ret)
		goto err_hotplug;
	ret = register_reboot_notifier(&tresor_reboot_nb);
	if (ret)
		goto err_pm;
	return 0;

err_pm:
	unregister_pm_notifier(&tresor_pm_nb);
err_hotplug:
	cpuhp_remove_state(tresor_hp_state);
err_bpslots:
	tresor_bpslots_release_all();
	unregister_nmi_handler(NMI_LOCAL, "tresor");
	return ret;
}

/* Module unload: no tfm can exist any more; wipe every CPU regardless. */
void tresor_keystore_exit(void)
{
	unregister_reboot_notifier(&tresor_reboot_nb);
	unregister_pm_notifier(&tresor_pm_nb);
	/* no tfm exists any more; mark the key gone before wiping */
	smp_store_release(&tresor_loaded, false);
	cpus_read_lock();
	tresor_wipe_cpus(cpu_online_mask);
	cpus_read_unlock();
	/* Offline callbacks wipe each CPU once more; harmless. */
	cpuhp_remove_state(tresor_hp_state);
	tresor_bpslots_release_all();
	/* DR0-DR3 are wiped everywhere: no transit can start any more */
	unregister_nmi_handler(NMI_LOCAL, "tresor");
	memzero_explicit(tresor_check, sizeof(tresor_check));
}
