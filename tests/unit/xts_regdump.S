/* SPDX-License-Identifier: GPL-2.0 */
/*
 * xts_regdump.S - test helper for xts_asm_test: call one of the tresor_*
 * functions and dump the registers it leaves behind, so the test can prove
 * that no key material survives the call.
 *
 * void xts_call_dump(void *fn, u8 *dst, const u8 *src, unsigned int nbytes,
 *                    u8 *tweak, int first, u64 *dump);
 * fn gets xts_cur_check[] as its check values (6th argument).
 * dump[0..8]   = rax, rcx, rdx, rsi, rdi, r8, r9, r10, r11 after the call
 * All vector registers of the class are zeroed before the call, so any
 * non-zero register afterwards was written by fn and not cleared.
 * dump[16..]   = vector registers, layout by xts_dump_level:
 *                0: xmm0-15 (16 bytes each), 1: ymm0-15 (32), 2: zmm0-31 (64)
 */
	.section .note.GNU-stack, "", @progbits
	.text
	.globl	xts_call_dump
	.type	xts_call_dump, @function
xts_call_dump:
	push	%rbx
	push	%r12
	sub	$8, %rsp
	mov	32(%rsp), %rbx
	mov	%rdi, %r12
	mov	%rsi, %rdi
	mov	%rdx, %rsi
	mov	%ecx, %edx
	mov	%r8, %rcx
	mov	%r9d, %r8d
	lea	xts_cur_check(%rip), %r9	/* the key's check values */
	/* start from all-zero vector registers: only what fn writes counts */
	cmpl	$2, xts_dump_level(%rip)
	je	5f
	cmpl	$1, xts_dump_level(%rip)
	je	4f
	.irp i, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
	pxor	%xmm\i, %xmm\i
	.endr
	jmp	6f
4:	vzeroall
	jmp	6f
5:	vzeroall
	.irp i, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
	vpxord	%zmm\i, %zmm\i, %zmm\i
	.endr
6:
	call	*%r12
	mov	%rax, 0(%rbx)
	mov	%rcx, 8(%rbx)
	mov	%rdx, 16(%rbx)
	mov	%rsi, 24(%rbx)
	mov	%rdi, 32(%rbx)
	mov	%r8, 40(%rbx)
	mov	%r9, 48(%rbx)
	mov	%r10, 56(%rbx)
	mov	%r11, 64(%rbx)
	cmpl	$2, xts_dump_level(%rip)
	je	3f
	cmpl	$1, xts_dump_level(%rip)
	je	2f
	.irp i, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
	movdqu	%xmm\i, 128+16*\i(%rbx)
	.endr
	jmp	9f
2:
	.irp i, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
	vmovdqu	%ymm\i, 128+32*\i(%rbx)
	.endr
	jmp	9f
3:
	.irp i, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
	vmovdqu64 %zmm\i, 128+64*\i(%rbx)
	.endr
9:
	add	$8, %rsp
	pop	%r12
	pop	%rbx
	ret
	.size	xts_call_dump, .-xts_call_dump
