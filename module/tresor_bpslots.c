// SPDX-License-Identifier: GPL-2.0
/*
 * Debug-register ownership: every CPU's four hardware-breakpoint slots are
 * taken by disabled, pinned kernel perf events. Creating them writes nothing
 * to DR0-DR3 (a disabled event is never installed), but the slot accounting
 * now refuses ptrace (PTRACE_POKEUSER of u_debugreg), perf breakpoint events
 * and kgdb with a clean error instead of letting them overwrite the key.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/hw_breakpoint.h>
#include <linux/percpu.h>
#include <linux/perf_event.h>

#include "tresor_keystore.h"

#define TRESOR_NR_SLOTS	4	/* HBP_NUM on x86 */

static DEFINE_PER_CPU(struct perf_event *, tresor_bp[TRESOR_NR_SLOTS]);

/* The events' address; they stay disabled, so it is never watched. */
static u8 tresor_bp_target;

static void tresor_bp_triggered(struct perf_event *bp,
				struct perf_sample_data *data,
				struct pt_regs *regs)
{
}

/* Runs in CPU-online context (or at load) for @cpu. */
int tresor_bpslots_reserve(unsigned int cpu)
{
	struct perf_event **slots = per_cpu(tresor_bp, cpu);
	struct perf_event_attr attr;
	int i;

	hw_breakpoint_init(&attr);
	attr.bp_addr = (unsigned long)&tresor_bp_target;
	attr.bp_len = HW_BREAKPOINT_LEN_1;
	attr.bp_type = HW_BREAKPOINT_W;
	attr.disabled = 1;

	for (i = 0; i < TRESOR_NR_SLOTS; i++) {
		struct perf_event *ev;

		if (slots[i])
			continue;
		ev = perf_event_create_kernel_counter(&attr, cpu, NULL,
						      tresor_bp_triggered, NULL);
		if (IS_ERR(ev)) {
			pr_warn("CPU %u: debug register slot %d is in use (a debugger or perf breakpoint?): %ld; this CPU cannot hold the key\n",
				cpu, i, PTR_ERR(ev));
			return PTR_ERR(ev);
		}
		slots[i] = ev;
	}
	return 0;
}

bool tresor_bpslots_owned(unsigned int cpu)
{
	int i;

	for (i = 0; i < TRESOR_NR_SLOTS; i++)
		if (!per_cpu(tresor_bp, cpu)[i])
			return false;
	return true;
}

void tresor_bpslots_release_all(void)
{
	unsigned int cpu;
	int i;

	for_each_possible_cpu(cpu) {
		for (i = 0; i < TRESOR_NR_SLOTS; i++) {
			struct perf_event **ev = &per_cpu(tresor_bp, cpu)[i];

			if (*ev) {
				perf_event_release_kernel(*ev);
				*ev = NULL;
			}
		}
	}
}
