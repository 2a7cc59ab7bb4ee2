/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tresor_aesni.S - AES-128-XTS with AES-NI (SSE encoding, 16 XMM registers)
 * for tresor.ko.  The key comes only from DR0-DR3 (TRESOR_LOAD_KEY); all
 * round keys stay in XMM registers; see tresor_asm.h for the contract.
 *
 * Register use in the XTS functions:
 *   xmm0..xmm10  round keys.  Encrypt: xmm<i> = rk<i>.  Decrypt: xmm0 = rk10,
 *                xmm<i> = InvMixColumns(rk<10-i>) for i=1..9, xmm10 = rk0,
 *                so one loop body serves both directions.
 *   xmm11..xmm14 four data blocks in flight; xmm15 scratch.
 *   r10:r11      running tweak (lo:hi), multiplied by x in GPRs.
 * With 11 round keys in registers only 5 XMM registers remain, so the 4
 * tweaks of a batch are parked in the dst blocks themselves (each dst block
 * is written with its tweak after its src block was loaded, and overwritten
 * with the result at the end of the batch).  Tweaks are not key material.
 */
#ifdef __KERNEL__
#include <linux/linkage.h>
#else
#include "kasm_shim.h"
#endif
#include "tresor_asm.h"

.section .rodata
.p2align 4
.Lrot_bcast:		/* pshufb: RotWord(w3) into all four words */
	.byte 13, 14, 15, 12, 13, 14, 15, 12, 13, 14, 15, 12, 13, 14, 15, 12
.Lrcon:			/* rcon in byte 0 of each word; aesenclast adds it */
	.long 0x01, 0x01, 0x01, 0x01
	.long 0x02, 0x02, 0x02, 0x02
	.long 0x04, 0x04, 0x04, 0x04
	.long 0x08, 0x08, 0x08, 0x08
	.long 0x10, 0x10, 0x10, 0x10
	.long 0x20, 0x20, 0x20, 0x20
	.long 0x40, 0x40, 0x40, 0x40
	.long 0x80, 0x80, 0x80, 0x80
	.long 0x1b, 0x1b, 0x1b, 0x1b
	.long 0x36, 0x36, 0x36, 0x36

.text

/*
 * One AES-128 key-schedule step: cur := next round key after prev.
 * SubWord(RotWord(w3)) ^ rcon is computed with pshufb + aesenclast (all four
 * columns equal, so ShiftRows is the identity); the running xor of the
 * words with two shift+xor steps.  cur may equal prev.
 */
.macro KSTEP prev, cur, rc, t1, t2
	movdqa		\prev, \t1
	.ifnc \prev, \cur
	movdqa		\prev, \cur
	.endif
	pshufb		.Lrot_bcast(%rip), \t1
	aesenclast	.Lrcon+16*(\rc)(%rip), \t1
	movdqa		\cur, \t2
	pslldq		$4, \t2
	pxor		\t2, \cur
	movdqa		\cur, \t2
	pslldq		$8, \t2
	pxor		\t2, \cur
	pxor		\t1, \cur
.endm

/*
 * K1 schedule step (into register r<cur>), K2 step in place on %xmm11 and
 * one round under K2 of the tweak state %xmm13 and of the check state
 * %xmm12 (interleaved: the schedules are independent dependency chains).
 */
.macro STEP2 prev, cur, rc, last=0
	KSTEP		\prev, \cur, \rc, %xmm14, %xmm15
	KSTEP		%xmm11, %xmm11, \rc, %xmm14, %xmm15
	.if \last
	aesenclast	%xmm11, %xmm13
	aesenclast	%xmm11, %xmm12
	.else
	aesenc		%xmm11, %xmm13
	aesenc		%xmm11, %xmm12
	.endif
.endm

/*
 * Load the key and expand it.  In: %xmm13 = block to encrypt under K2
 * (tweak input or zero).  Out: encryption schedule rk0..rk10 in
 * xmm0..xmm10 (dec=0), or the decryption layout (dec=1, see top);
 * %xmm13 = AES_K2(in), %xmm12 = AES_K2(0) (K2's check value, from the
 * same register read).  Clobbers xmm11, xmm14, xmm15, rax (zeroed).
 */
.macro EXPAND dec
	.if \dec
	TRESOR_LOAD_KEY	%xmm10, %xmm11
	.else
	TRESOR_LOAD_KEY	%xmm0, %xmm11
	.endif
	pxor		%xmm11, %xmm13
	movdqa		%xmm11, %xmm12
	.if \dec
	STEP2		%xmm10, %xmm9, 0
	STEP2		%xmm9, %xmm8, 1
	STEP2		%xmm8, %xmm7, 2
	STEP2		%xmm7, %xmm6, 3
	STEP2		%xmm6, %xmm5, 4
	STEP2		%xmm5, %xmm4, 5
	STEP2		%xmm4, %xmm3, 6
	STEP2		%xmm3, %xmm2, 7
	STEP2		%xmm2, %xmm1, 8
	STEP2		%xmm1, %xmm0, 9, 1
	aesimc		%xmm1, %xmm1
	aesimc		%xmm2, %xmm2
	aesimc		%xmm3, %xmm3
	aesimc		%xmm4, %xmm4
	aesimc		%xmm5, %xmm5
	aesimc		%xmm6, %xmm6
	aesimc		%xmm7, %xmm7
	aesimc		%xmm8, %xmm8
	aesimc		%xmm9, %xmm9
	.else
	STEP2		%xmm0, %xmm1, 0
	STEP2		%xmm1, %xmm2, 1
	STEP2		%xmm2, %xmm3, 2
	STEP2		%xmm3, %xmm4, 3
	STEP2		%xmm4, %xmm5, 4
	STEP2		%xmm5, %xmm6, 5
	STEP2		%xmm6, %xmm7, 6
	STEP2		%xmm7, %xmm8, 7
	STEP2		%xmm8, %xmm9, 8
	STEP2		%xmm9, %xmm10, 9, 1
	.endif
	pxor		%xmm11, %xmm11	/* last K2 round key */
	pxor		%xmm14, %xmm14
	pxor		%xmm15, %xmm15
.endm

/*
 * The key check of every call, on the round keys just expanded, before
 * anything is written: %xmm12 (AES_K2(0) from EXPAND) must equal the
 * stored check value at 16(%r9), and the K1 schedule in xmm0..xmm10 must
 * map 0 to the check value at (%r9): dec=0 encrypts 0, dec=1 decrypts
 * the check value back to 0 with the decryption layout, i.e. exactly the
 * round keys the data will see. Jumps to \bad on a mismatch (registers
 * changed since the check values were made: a KVM guest, kgdb, or any
 * NMI or exception handler that rewrote DR0-DR3). Clears xmm12, xmm14,
 * xmm15; ptest needs SSE4.1, which this path requires anyway.
 */
.macro CHECK dec, bad
	movdqu		16(%r9), %xmm14
	pxor		%xmm14, %xmm12
	.if \dec
	movdqu		(%r9), %xmm15
	pxor		%xmm0, %xmm15
	aesdec		%xmm1, %xmm15
	aesdec		%xmm2, %xmm15
	aesdec		%xmm3, %xmm15
	aesdec		%xmm4, %xmm15
	aesdec		%xmm5, %xmm15
	aesdec		%xmm6, %xmm15
	aesdec		%xmm7, %xmm15
	aesdec		%xmm8, %xmm15
	aesdec		%xmm9, %xmm15
	aesdeclast	%xmm10, %xmm15
	.else
	movdqa		%xmm0, %xmm15
	aesenc		%xmm1, %xmm15
	aesenc		%xmm2, %xmm15
	aesenc		%xmm3, %xmm15
	aesenc		%xmm4, %xmm15
	aesenc		%xmm5, %xmm15
	aesenc		%xmm6, %xmm15
	aesenc		%xmm7, %xmm15
	aesenc		%xmm8, %xmm15
	aesenc		%xmm9, %xmm15
	aesenclast	%xmm10, %xmm15
	movdqu		(%r9), %xmm14
	pxor		%xmm14, %xmm15
	.endif
	por		%xmm15, %xmm12
	ptest		%xmm12, %xmm12
	jnz		\bad
	pxor		%xmm14, %xmm14
	pxor		%xmm15, %xmm15
.endm

/* Zero all 16 XMM registers. */
.macro CLEAR_XMM
	pxor	%xmm0, %xmm0
	pxor	%xmm1, %xmm1
	pxor	%xmm2, %xmm2
	pxor	%xmm3, %xmm3
	pxor	%xmm4, %xmm4
	pxor	%xmm5, %xmm5
	pxor	%xmm6, %xmm6
	pxor	%xmm7, %xmm7
	pxor	%xmm8, %xmm8
	pxor	%xmm9, %xmm9
	pxor	%xmm10, %xmm10
	pxor	%xmm11, %xmm11
	pxor	%xmm12, %xmm12
	pxor	%xmm13, %xmm13
	pxor	%xmm14, %xmm14
	pxor	%xmm15, %xmm15
.endm

/* r10:r11 *= x in GF(2^128) (XTS little-endian convention). */
.macro NEXT_TWEAK
	add	%r10, %r10
	adc	%r11, %r11
	sbb	%rax, %rax
	and	$0x87, %eax
	xor	%rax, %r10
.endm

/* One AES round (enc or dec) on the four data registers. */
.macro ROUND4 op, k
	\op	\k, %xmm11
	\op	\k, %xmm12
	\op	\k, %xmm13
	\op	\k, %xmm14
.endm

/* Start block j of a batch: load, park tweak in dst, whiten. */
.macro START_BLOCK j, d
	movq		%r10, \d
	movq		%r11, %xmm15
	punpcklqdq	%xmm15, \d
	movdqu		16*\j(%rsi), %xmm15
	movdqu		\d, 16*\j(%rdi)
	pxor		%xmm15, \d
	pxor		%xmm0, \d
	NEXT_TWEAK
.endm

.macro FINISH_BLOCK j, d
	movdqu		16*\j(%rdi), %xmm15
	pxor		%xmm15, \d
	movdqu		\d, 16*\j(%rdi)
.endm

/*
 * int tresor_xts_{en,de}crypt_aesni(u8 *dst (rdi), const u8 *src (rsi),
 *	unsigned int nbytes (edx), u8 tweak[16] (rcx), int first (r8d),
 *	const u8 check[32] (r9))
 */
.macro XTS_AESNI dec
	movdqu		(%rcx), %xmm13
	EXPAND		\dec
	CHECK		\dec, 9f
	/* tweak := first ? AES_K2(tweak) : tweak, into r10:r11 */
	movq		%xmm13, %r10
	pextrq		$1, %xmm13, %r11
	test		%r8d, %r8d
	jnz		1f
	mov		(%rcx), %r10
	mov		8(%rcx), %r11
1:
	pxor		%xmm13, %xmm13
	mov		%edx, %edx
	shr		$4, %rdx		/* blocks */
	cmp		$4, %rdx
	jb		3f
2:	/* four blocks per iteration */
	START_BLOCK	0, %xmm11
	START_BLOCK	1, %xmm12
	START_BLOCK	2, %xmm13
	START_BLOCK	3, %xmm14
	.if \dec
	ROUND4		aesdec, %xmm1
	ROUND4		aesdec, %xmm2
	ROUND4		aesdec, %xmm3
	ROUND4		aesdec, %xmm4
	ROUND4		aesdec, %xmm5
	ROUND4		aesdec, %xmm6
	ROUND4		aesdec, %xmm7
	ROUND4		aesdec, %xmm8
	ROUND4		aesdec, %xmm9
	ROUND4		aesdeclast, %xmm10
	.else
	ROUND4		aesenc, %xmm1
	ROUND4		aesenc, %xmm2
	ROUND4		aesenc, %xmm3
	ROUND4		aesenc, %xmm4
	ROUND4		aesenc, %xmm5
	ROUND4		aesenc, %xmm6
	ROUND4		aesenc, %xmm7
	ROUND4		aesenc, %xmm8
	ROUND4		aesenc, %xmm9
	ROUND4		aesenclast, %xmm10
	.endif
	FINISH_BLOCK	0, %xmm11
	FINISH_BLOCK	1, %xmm12
	FINISH_BLOCK	2, %xmm13
	FINISH_BLOCK	3, %xmm14
	add		$64, %rsi
	add		$64, %rdi
	sub		$4, %rdx
	cmp		$4, %rdx
	jae		2b
3:	/* 0..3 single blocks */
	test		%rdx, %rdx
	jz		5f
4:
	movq		%r10, %xmm12
	movq		%r11, %xmm15
	punpcklqdq	%xmm15, %xmm12
	movdqu		(%rsi), %xmm11
	pxor		%xmm12, %xmm11
	pxor		%xmm0, %xmm11
	.if \dec
	aesdec		%xmm1, %xmm11
	aesdec		%xmm2, %xmm11
	aesdec		%xmm3, %xmm11
	aesdec		%xmm4, %xmm11
	aesdec		%xmm5, %xmm11
	aesdec		%xmm6, %xmm11
	aesdec		%xmm7, %xmm11
	aesdec		%xmm8, %xmm11
	aesdec		%xmm9, %xmm11
	aesdeclast	%xmm10, %xmm11
	.else
	aesenc		%xmm1, %xmm11
	aesenc		%xmm2, %xmm11
	aesenc		%xmm3, %xmm11
	aesenc		%xmm4, %xmm11
	aesenc		%xmm5, %xmm11
	aesenc		%xmm6, %xmm11
	aesenc		%xmm7, %xmm11
	aesenc		%xmm8, %xmm11
	aesenc		%xmm9, %xmm11
	aesenclast	%xmm10, %xmm11
	.endif
	pxor		%xmm12, %xmm11
	movdqu		%xmm11, (%rdi)
	NEXT_TWEAK
	add		$16, %rsi
	add		$16, %rdi
	dec		%rdx
	jnz		4b
5:
	mov		%r10, (%rcx)
	mov		%r11, 8(%rcx)
	CLEAR_XMM
	xor		%eax, %eax
	xor		%r10d, %r10d
	xor		%r11d, %r11d
	RET
9:	/* wrong key: nothing was written, dst and tweak[] are untouched */
	CLEAR_XMM
	mov		$TRESOR_KEY_MISMATCH, %eax
	RET
.endm

SYM_FUNC_START(tresor_xts_encrypt_aesni)
	XTS_AESNI	0
SYM_FUNC_END(tresor_xts_encrypt_aesni)

SYM_FUNC_START(tresor_xts_decrypt_aesni)
	XTS_AESNI	1
SYM_FUNC_END(tresor_xts_decrypt_aesni)

/* void tresor_check_values_aesni(u8 out[32] (rdi)) */
SYM_FUNC_START(tresor_check_values_aesni)
	pxor		%xmm13, %xmm13
	EXPAND		0
	movdqa		%xmm0, %xmm12
	aesenc		%xmm1, %xmm12
	aesenc		%xmm2, %xmm12
	aesenc		%xmm3, %xmm12
	aesenc		%xmm4, %xmm12
	aesenc		%xmm5, %xmm12
	aesenc		%xmm6, %xmm12
	aesenc		%xmm7, %xmm12
	aesenc		%xmm8, %xmm12
	aesenc		%xmm9, %xmm12
	aesenclast	%xmm10, %xmm12
	movdqu		%xmm12, (%rdi)
	movdqu		%xmm13, 16(%rdi)
	CLEAR_XMM
	RET
SYM_FUNC_END(tresor_check_values_aesni)
