/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tresor_keyregs.S - the only code that writes the key into DR0-DR3.
 *
 * In assembly so that no compiler can spill a key word: each word goes
 * memory -> %rax -> DRn with interrupts off, and %rax is zeroed before
 * interrupts come back on. Reading the key is in tresor_asm.h
 * (TRESOR_LOAD_KEY), the only other place that touches it. Each transit is
 * bracketed by TRESOR_TRANSIT_BEGIN/END: an NMI inside it has its saved
 * %rax zeroed by tresor_nmi_scrub() and the whole copy is done again (a
 * scrubbed word was written as 0).
 */
#include <linux/linkage.h>
#include "tresor_asm.h"

.text

/* void tresor_write_key_regs(const u8 key[32]): K1 -> DR0:DR1, K2 -> DR2:DR3 */
SYM_FUNC_START(tresor_write_key_regs)
	pushfq
	cli
.Lwrite_transit:
	TRESOR_TRANSIT_BEGIN
	movq	(%rdi), %rax
	movq	%rax, %dr0
	movq	8(%rdi), %rax
	movq	%rax, %dr1
	movq	16(%rdi), %rax
	movq	%rax, %dr2
	movq	24(%rdi), %rax
	movq	%rax, %dr3
	xorl	%eax, %eax
	TRESOR_TRANSIT_END .Lwrite_transit
	popfq
	RET
SYM_FUNC_END(tresor_write_key_regs)

/* void tresor_wipe_key_regs(void) */
SYM_FUNC_START(tresor_wipe_key_regs)
	xorl	%eax, %eax
	movq	%rax, %dr0
	movq	%rax, %dr1
	movq	%rax, %dr2
	movq	%rax, %dr3
	RET
SYM_FUNC_END(tresor_wipe_key_regs)

/*
 * void tresor_read_key_regs(u8 key[32]): the one documented RAM transit,
 * a peer copy for a CPU coming online; the caller wipes @key at once.
 */
SYM_FUNC_START(tresor_read_key_regs)
	pushfq
	cli
.Lread_transit:
	TRESOR_TRANSIT_BEGIN
	movq	%dr0, %rax
	movq	%rax, (%rdi)
	movq	%dr1, %rax
	movq	%rax, 8(%rdi)
	movq	%dr2, %rax
	movq	%rax, 16(%rdi)
	movq	%dr3, %rax
	movq	%rax, 24(%rdi)
	xorl	%eax, %eax
	TRESOR_TRANSIT_END .Lread_transit
	popfq
	RET
SYM_FUNC_END(tresor_read_key_regs)
