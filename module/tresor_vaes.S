/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tresor_vaes.S - AES-128-XTS with VAES for tresor.ko:
 *   *_vaes_avx2:   VAES + AVX2 on YMM (16 registers, 2 blocks per register)
 *   *_vaes_avx512: VAES + AVX-512 + VPCLMULQDQ on ZMM (32 registers)
 * The key comes only from DR0-DR3 (TRESOR_LOAD_KEY_VEX); all round keys stay
 * in vector registers; see tresor_asm.h for the contract.
 *
 * Key schedule (both paths): K1 and K2 are expanded together in one YMM
 * register (lane 0 = K1, lane 1 = K2), so each AES-128 schedule step is a
 * single chain: vpshufb (RotWord broadcast) + vaesenclast (SubWord ^ rcon;
 * all columns equal, so ShiftRows is the identity) + two shift/xor steps for
 * the running word xor.  After each step lane 0 is broadcast into the round
 * key register and the tweak state (lane 1 = IV) does one vaesenc with the
 * same register, which uses K2's round key in lane 1.  ~7 cycles per step.
 * A second state register, zero in both lanes, goes through the same
 * rounds: (AES_K1(0), AES_K2(0)), the check values, from the same register
 * read and the same round keys as the data; every call compares them with
 * the stored ones before it writes anything (CHECK_VEX).
 *
 * Round key registers: encrypt: v<i> = rk<i>; decrypt: v0 = rk10,
 * v<i> = InvMixColumns(rk<10-i>) (i=1..9), v10 = rk0, so the loops for both
 * directions differ only in the AES instruction.
 */
#ifdef __KERNEL__
#include <linux/linkage.h>
#else
#include "kasm_shim.h"
#endif
#include "tresor_asm.h"

.section .rodata
.p2align 6
.Lrot_bcast:		/* vpshufb: RotWord(w3) into all words, both lanes */
	.rept 8
	.byte 13, 14, 15, 12
	.endr
.Lrcon:			/* 32-byte rows: rcon in byte 0 of every word */
	.irp rc, 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1b, 0x36
	.rept 8
	.long \rc
	.endr
	.endr
.Lxts_mask:		/* per lane: qword0 = 0x87, qword1 = 1 */
	.quad 0x87, 1, 0x87, 1
.Lgf_poly:		/* 0x87 in the low qword of each lane (vpclmulqdq) */
	.quad 0x87, 0, 0x87, 0, 0x87, 0, 0x87, 0
.Lcnt_l:		/* lane i: shift left by i (T*x^i from T) */
	.quad 0, 0, 1, 1, 2, 2, 3, 3
.Lcnt_r:		/* lane i: shift right by 64-i */
	.quad 64, 64, 63, 63, 62, 62, 61, 61
.Lmask_ld:		/* AVX-512 tail: qword masks for 1..3 blocks */
	.byte 0x00, 0x03, 0x0f, 0x3f
.Lmask_tw:		/* qword mask selecting lane n (next tweak) */
	.byte 0x03, 0x0c, 0x30, 0xc0

.text

/*
 * Key schedule.  Uses ymm11 (K1|K2 chain), ymm12 (state S), ymm13, ymm14
 * as temporaries, ymm15 (check state C).  In: ymm12 lane 1 = block to
 * encrypt under K2 (lane 0: block to encrypt under K1).
 * Out: round keys in v0..v10 broadcast (ymm for avx512=0, zmm for
 * avx512=1), ymm12 = (AES_K1(lane0), AES_K2(lane1)),
 * ymm15 = (AES_K1(0), AES_K2(0)).
 */
.macro BCAST_RK avx512, src, rk
	.if \avx512
	vshufi32x4	$0, %zmm\src, %zmm\src, %zmm\rk
	.else
	vinserti128	$1, %xmm\src, %ymm\src, %ymm\rk
	.endif
.endm

/*
 * Store round key i (from the chain in ymm11) into register number r
 * (InvMixColumns in place there: ymm15 holds the check state).
 */
.macro PUT_RK avx512, dec, i, r
	.if \dec && (\i != 0) && (\i != 10)
	vaesimc		%xmm11, %xmm\r
	BCAST_RK	\avx512, \r, \r
	.else
	BCAST_RK	\avx512, 11, \r
	.endif
.endm

.macro KSTEP_VEX avx512, dec, i, r
	vpshufb		.Lrot_bcast(%rip), %ymm11, %ymm13
	vaesenclast	.Lrcon+32*(\i - 1)(%rip), %ymm13, %ymm13
	vpslldq		$4, %ymm11, %ymm14
	vpxor		%ymm14, %ymm11, %ymm11
	vpslldq		$8, %ymm11, %ymm14
	vpxor		%ymm14, %ymm11, %ymm11
	vpxor		%ymm13, %ymm11, %ymm11
	PUT_RK		\avx512, \dec, \i, \r
	.if \i == 10
	vaesenclast	%ymm11, %ymm12, %ymm12
	vaesenclast	%ymm11, %ymm15, %ymm15
	.else
	vaesenc		%ymm11, %ymm12, %ymm12
	vaesenc		%ymm11, %ymm15, %ymm15
	.endif
.endm

.macro EXPAND_VEX avx512, dec
	TRESOR_LOAD_KEY_VEX %xmm11, %xmm13
	vinserti128	$1, %xmm13, %ymm11, %ymm11	/* K1 | K2 */
	vpxor		%ymm11, %ymm12, %ymm12
	vmovdqa		%ymm11, %ymm15			/* C = 0 ^ (K1 | K2) */
	.if \dec
	PUT_RK		\avx512, 1, 0, 10
	KSTEP_VEX	\avx512, 1, 1, 9
	KSTEP_VEX	\avx512, 1, 2, 8
	KSTEP_VEX	\avx512, 1, 3, 7
	KSTEP_VEX	\avx512, 1, 4, 6
	KSTEP_VEX	\avx512, 1, 5, 5
	KSTEP_VEX	\avx512, 1, 6, 4
	KSTEP_VEX	\avx512, 1, 7, 3
	KSTEP_VEX	\avx512, 1, 8, 2
	KSTEP_VEX	\avx512, 1, 9, 1
	KSTEP_VEX	\avx512, 1, 10, 0
	.else
	PUT_RK		\avx512, 0, 0, 0
	KSTEP_VEX	\avx512, 0, 1, 1
	KSTEP_VEX	\avx512, 0, 2, 2
	KSTEP_VEX	\avx512, 0, 3, 3
	KSTEP_VEX	\avx512, 0, 4, 4
	KSTEP_VEX	\avx512, 0, 5, 5
	KSTEP_VEX	\avx512, 0, 6, 6
	KSTEP_VEX	\avx512, 0, 7, 7
	KSTEP_VEX	\avx512, 0, 8, 8
	KSTEP_VEX	\avx512, 0, 9, 9
	KSTEP_VEX	\avx512, 0, 10, 10
	.endif
	vpxor		%ymm11, %ymm11, %ymm11
	vpxor		%ymm13, %ymm13, %ymm13
	vpxor		%ymm14, %ymm14, %ymm14
.endm

/*
 * The key check of every call, before anything is written: the check
 * state of this call's expansion (ymm15) must equal the stored check
 * values at (%r9); else jump to \bad (registers changed since the check
 * values were made: a KVM guest, kgdb, or any NMI or exception handler
 * that rewrote DR0-DR3). Leaves ymm15 zero on a match.
 */
.macro CHECK_VEX bad
	vpxor		(%r9), %ymm15, %ymm15
	vptest		%ymm15, %ymm15
	jnz		\bad
.endm

/*
 * Load the tweak input, expand, check the key (to \bad on a mismatch)
 * and leave the starting tweak in xmm13: first ? AES_K2(tweak[]) :
 * tweak[].  Clears ymm11, ymm12, ymm14, ymm15.
 */
.macro SETUP_VEX avx512, dec, bad
	vinserti128	$1, (%rcx), %ymm12, %ymm12
	EXPAND_VEX	\avx512, \dec
	CHECK_VEX	\bad
	vextracti128	$1, %ymm12, %xmm13
	test		%r8d, %r8d
	jnz		.Lfirst_\@
	vmovdqu		(%rcx), %xmm13
.Lfirst_\@:
	vpxor		%ymm12, %ymm12, %ymm12
	mov		%edx, %edx
	shr		$4, %rdx			/* blocks */
.endm

/* ------------------------------------------------------------------ */
/* AVX2                                                                */
/* ------------------------------------------------------------------ */

/* Per 128-bit lane: dst = src * x (src != tmp, dst != tmp). */
.macro NEXT_TWEAK_VEC src, dst, tmp
	vpshufd		$0x13, \src, \tmp
	vpaddq		\src, \src, \dst
	vpsrad		$31, \tmp, \tmp
	vpand		.Lxts_mask(%rip), \tmp, \tmp
	vpxor		\tmp, \dst, \dst
.endm

/*
 * Per 128-bit lane: t := t * x^8 without carry-less multiply (so the AVX2
 * path needs no VPCLMULQDQ): top byte h, t = (t << 8) ^ h*0x87.
 */
.macro MUL_X8_YMM t, h, u
	vpsrldq		$15, \t, \h
	vpslldq		$1, \t, \t
	vpxor		\h, \t, \t
	vpsllq		$1, \h, \u
	vpxor		\u, \t, \t
	vpsllq		$2, \h, \u
	vpxor		\u, \t, \t
	vpsllq		$7, \h, \u
	vpxor		\u, \t, \t
.endm

/* last round of ymm<d> with the tweaks at 32*j(%rsp) folded into rk10 */
.macro LAST_Y dec, j, d
	vpxor		32*\j(%rsp), %ymm10, %ymm15
	.if \dec
	vaesdeclast	%ymm15, %ymm\d, %ymm\d
	.else
	vaesenclast	%ymm15, %ymm\d, %ymm\d
	.endif
.endm

.macro ROUND_Y4 op, k
	\op		%ymm\k, %ymm11, %ymm11
	\op		%ymm\k, %ymm12, %ymm12
	\op		%ymm\k, %ymm13, %ymm13
	\op		%ymm\k, %ymm14, %ymm14
.endm

.macro AES_ROUNDS_1 op, oplast, reg
	.irp k, 1, 2, 3, 4, 5, 6, 7, 8, 9
	\op		%\reg\k, %\reg\()11, %\reg\()11
	.endr
	\oplast		%\reg\()10, %\reg\()11, %\reg\()11
.endm

/*
 * Stack: 128 bytes = the tweaks of the next 8 blocks, T_i at 16*i(%rsp)
 * (tweaks only, never key material; zeroed before return).
 */
.macro XTS_AVX2 dec
	sub		$128, %rsp
	SETUP_VEX	0, \dec, .Lbad_\@
	/* tweaks T0..T7 -> stack, as pairs (T0,T1) (T2,T3) ... */
	NEXT_TWEAK_VEC	%xmm13, %xmm14, %xmm15
	vinserti128	$1, %xmm14, %ymm13, %ymm11
	vmovdqu		%ymm11, 0(%rsp)
	NEXT_TWEAK_VEC	%ymm11, %ymm12, %ymm15
	NEXT_TWEAK_VEC	%ymm12, %ymm11, %ymm15
	vmovdqu		%ymm11, 32(%rsp)
	NEXT_TWEAK_VEC	%ymm11, %ymm12, %ymm15
	NEXT_TWEAK_VEC	%ymm12, %ymm11, %ymm15
	vmovdqu		%ymm11, 64(%rsp)
	NEXT_TWEAK_VEC	%ymm11, %ymm12, %ymm15
	NEXT_TWEAK_VEC	%ymm12, %ymm11, %ymm15
	vmovdqu		%ymm11, 96(%rsp)

	cmp		$8, %rdx
	jb		.Ltail_\@
.Lloop8_\@:
	vpxor		0(%rsi), %ymm0, %ymm11
	vpxor		32(%rsi), %ymm0, %ymm12
	vpxor		64(%rsi), %ymm0, %ymm13
	vpxor		96(%rsi), %ymm0, %ymm14
	vpxor		0(%rsp), %ymm11, %ymm11
	vpxor		32(%rsp), %ymm12, %ymm12
	vpxor		64(%rsp), %ymm13, %ymm13
	vpxor		96(%rsp), %ymm14, %ymm14
	.irp k, 1, 2, 3, 4, 5, 6, 7, 8, 9
	.if \dec
	ROUND_Y4	vaesdec, \k
	.else
	ROUND_Y4	vaesenc, \k
	.endif
	.endr
	LAST_Y		\dec, 0, 11
	LAST_Y		\dec, 1, 12
	LAST_Y		\dec, 2, 13
	LAST_Y		\dec, 3, 14
	vmovdqu		%ymm11, 0(%rdi)
	vmovdqu		%ymm12, 32(%rdi)
	vmovdqu		%ymm13, 64(%rdi)
	vmovdqu		%ymm14, 96(%rdi)
	/* next 8 tweaks: each * x^8 */
	.irp j, 0, 1, 2, 3
	vmovdqu		32*\j(%rsp), %ymm11
	MUL_X8_YMM	%ymm11, %ymm12, %ymm15
	vmovdqu		%ymm11, 32*\j(%rsp)
	.endr
	sub		$-128, %rsi
	sub		$-128, %rdi
	sub		$8, %rdx
	cmp		$8, %rdx
	jae		.Lloop8_\@
.Ltail_\@:	/* 0..7 blocks left; their tweaks are at 16*i(%rsp) */
	mov		%rsp, %r9
	cmp		$2, %rdx
	jb		.Lsingle_\@
.Lpair_\@:
	vpxor		(%rsi), %ymm0, %ymm11
	vpxor		(%r9), %ymm11, %ymm11
	.if \dec
	AES_ROUNDS_1	vaesdec, vaesdeclast, ymm
	.else
	AES_ROUNDS_1	vaesenc, vaesenclast, ymm
	.endif
	vpxor		(%r9), %ymm11, %ymm11
	vmovdqu		%ymm11, (%rdi)
	add		$32, %rsi
	add		$32, %rdi
	add		$32, %r9
	sub		$2, %rdx
	cmp		$2, %rdx
	jae		.Lpair_\@
.Lsingle_\@:
	test		%rdx, %rdx
	jz		.Ldone_\@
	vpxor		(%rsi), %xmm0, %xmm11
	vpxor		(%r9), %xmm11, %xmm11
	.if \dec
	AES_ROUNDS_1	vaesdec, vaesdeclast, xmm
	.else
	AES_ROUNDS_1	vaesenc, vaesenclast, xmm
	.endif
	vpxor		(%r9), %xmm11, %xmm11
	vmovdqu		%xmm11, (%rdi)
	add		$16, %r9
.Ldone_\@:
	vmovdqu		(%r9), %xmm11
	vmovdqu		%xmm11, (%rcx)
	vzeroall
	vmovdqu		%ymm0, 0(%rsp)
	vmovdqu		%ymm0, 32(%rsp)
	vmovdqu		%ymm0, 64(%rsp)
	vmovdqu		%ymm0, 96(%rsp)
	add		$128, %rsp
	xor		%r9d, %r9d
	xor		%eax, %eax
	RET
.Lbad_\@:	/* wrong key: nothing written (dst, tweak[], the stack buffer) */
	vzeroall
	add		$128, %rsp
	mov		$TRESOR_KEY_MISMATCH, %eax
	RET
.endm

SYM_FUNC_START(tresor_xts_encrypt_vaes_avx2)
	XTS_AVX2	0
SYM_FUNC_END(tresor_xts_encrypt_vaes_avx2)

SYM_FUNC_START(tresor_xts_decrypt_vaes_avx2)
	XTS_AVX2	1
SYM_FUNC_END(tresor_xts_decrypt_vaes_avx2)

/* void tresor_check_values_vaes_avx2(u8 out[32] (rdi)) */
SYM_FUNC_START(tresor_check_values_vaes_avx2)
	vpxor		%xmm12, %xmm12, %xmm12
	EXPAND_VEX	0, 0
	vmovdqu		%ymm12, (%rdi)
	vzeroall
	RET
SYM_FUNC_END(tresor_check_values_vaes_avx2)

/* ------------------------------------------------------------------ */
/* AVX-512                                                             */
/* ------------------------------------------------------------------ */
/*
 * zmm0..10 round keys (broadcast to 4 lanes), zmm11..18 data (32 blocks),
 * zmm19..26 tweaks of those blocks, zmm27 = 0x87 per lane, zmm28..31 temps.
 */

/* Per lane: dst = src * x^s (s <= 57), with vpclmulqdq reduction. */
.macro MULX_Z src, dst, s, t1, t2
	vpsrlq		$(64 - \s), \src, \t1
	vpclmulqdq	$0x01, %zmm27, \t1, \t2
	vpslldq		$8, \t1, \t1
	vpsllq		$\s, \src, \dst
	vpternlogq	$0x96, \t1, \t2, \dst
.endm

.macro ROUND_Z8 op, k
	.irp j, 11, 12, 13, 14, 15, 16, 17, 18
	\op		%zmm\k, %zmm\j, %zmm\j
	.endr
.endm

.macro XTS_AVX512 dec
	SETUP_VEX	1, \dec, .Lbad_\@
	vmovdqu64	.Lgf_poly(%rip), %zmm27
	/* zmm19 = (T, T*x, T*x^2, T*x^3); zmm19+j = zmm19 * x^(4j) */
	vshufi64x2	$0, %zmm13, %zmm13, %zmm19
	vpsrlvq		.Lcnt_r(%rip), %zmm19, %zmm28
	vpclmulqdq	$0x01, %zmm27, %zmm28, %zmm29
	vpslldq		$8, %zmm28, %zmm28
	vpsllvq		.Lcnt_l(%rip), %zmm19, %zmm19
	vpternlogq	$0x96, %zmm28, %zmm29, %zmm19
	MULX_Z		%zmm19, %zmm20, 4, %zmm28, %zmm29
	MULX_Z		%zmm19, %zmm21, 8, %zmm30, %zmm31
	MULX_Z		%zmm19, %zmm22, 12, %zmm28, %zmm29
	MULX_Z		%zmm19, %zmm23, 16, %zmm30, %zmm31
	MULX_Z		%zmm19, %zmm24, 20, %zmm28, %zmm29
	MULX_Z		%zmm19, %zmm25, 24, %zmm30, %zmm31
	MULX_Z		%zmm19, %zmm26, 28, %zmm28, %zmm29

	cmp		$32, %rdx
	jb		.Ltail4_\@
.Lloop32_\@:
	.irp d, 11, 12, 13, 14, 15, 16, 17, 18
	vmovdqa64	%zmm0, %zmm\d
	.endr
	vpternlogq	$0x96, 0*64(%rsi), %zmm19, %zmm11
	vpternlogq	$0x96, 1*64(%rsi), %zmm20, %zmm12
	vpternlogq	$0x96, 2*64(%rsi), %zmm21, %zmm13
	vpternlogq	$0x96, 3*64(%rsi), %zmm22, %zmm14
	vpternlogq	$0x96, 4*64(%rsi), %zmm23, %zmm15
	vpternlogq	$0x96, 5*64(%rsi), %zmm24, %zmm16
	vpternlogq	$0x96, 6*64(%rsi), %zmm25, %zmm17
	vpternlogq	$0x96, 7*64(%rsi), %zmm26, %zmm18
	.irp k, 1, 2, 3, 4, 5, 6, 7, 8, 9
	.if \dec
	ROUND_Z8	vaesdec, \k
	.else
	ROUND_Z8	vaesenc, \k
	.endif
	.endr
	LAST_Z		\dec, 11, 19, 28, 0
	LAST_Z		\dec, 12, 20, 29, 1
	LAST_Z		\dec, 13, 21, 30, 2
	LAST_Z		\dec, 14, 22, 31, 3
	LAST_Z		\dec, 15, 23, 28, 4
	LAST_Z		\dec, 16, 24, 29, 5
	LAST_Z		\dec, 17, 25, 30, 6
	LAST_Z		\dec, 18, 26, 31, 7
	/* tweaks of the next 32 blocks: each * x^32 */
	MULX_Z		%zmm19, %zmm19, 32, %zmm28, %zmm29
	MULX_Z		%zmm20, %zmm20, 32, %zmm30, %zmm31
	MULX_Z		%zmm21, %zmm21, 32, %zmm28, %zmm29
	MULX_Z		%zmm22, %zmm22, 32, %zmm30, %zmm31
	MULX_Z		%zmm23, %zmm23, 32, %zmm28, %zmm29
	MULX_Z		%zmm24, %zmm24, 32, %zmm30, %zmm31
	MULX_Z		%zmm25, %zmm25, 32, %zmm28, %zmm29
	MULX_Z		%zmm26, %zmm26, 32, %zmm30, %zmm31
	add		$512, %rsi
	add		$512, %rdi
	sub		$32, %rdx
	cmp		$32, %rdx
	jae		.Lloop32_\@
.Ltail4_\@:	/* 0..31 blocks left, tweaks in zmm19, zmm20, ... in order */
	cmp		$4, %rdx
	jb		.Lpartial_\@
.Lloop4_\@:
	vmovdqa64	%zmm0, %zmm11
	vpternlogq	$0x96, (%rsi), %zmm19, %zmm11
	.if \dec
	AES_ROUNDS_1	vaesdec, vaesdeclast, zmm
	.else
	AES_ROUNDS_1	vaesenc, vaesenclast, zmm
	.endif
	vpxorq		%zmm19, %zmm11, %zmm11
	vmovdqu64	%zmm11, (%rdi)
	vmovdqa64	%zmm20, %zmm19
	vmovdqa64	%zmm21, %zmm20
	vmovdqa64	%zmm22, %zmm21
	vmovdqa64	%zmm23, %zmm22
	vmovdqa64	%zmm24, %zmm23
	vmovdqa64	%zmm25, %zmm24
	vmovdqa64	%zmm26, %zmm25
	add		$64, %rsi
	add		$64, %rdi
	sub		$4, %rdx
	cmp		$4, %rdx
	jae		.Lloop4_\@
.Lpartial_\@:	/* 0..3 blocks left, tweaks in zmm19 lanes 0..3 */
	test		%rdx, %rdx
	jz		.Lnopartial_\@
	lea		.Lmask_ld(%rip), %rax
	movzbl		(%rax,%rdx), %eax
	kmovw		%eax, %k1
	vmovdqu64	(%rsi), %zmm11{%k1}{z}
	vpternlogq	$0x96, %zmm19, %zmm0, %zmm11
	.if \dec
	AES_ROUNDS_1	vaesdec, vaesdeclast, zmm
	.else
	AES_ROUNDS_1	vaesenc, vaesenclast, zmm
	.endif
	vpxorq		%zmm19, %zmm11, %zmm11
	vmovdqu64	%zmm11, (%rdi){%k1}
	/* next tweak = lane rdx of zmm19, stored to tweak[] by a masked store */
	lea		.Lmask_tw(%rip), %rax
	movzbl		(%rax,%rdx), %eax
	kmovw		%eax, %k2
	shl		$4, %rdx
	sub		%rdx, %rcx
	vmovdqu64	%zmm19, (%rcx){%k2}
	xor		%eax, %eax
	kxorw		%k1, %k1, %k1
	kxorw		%k2, %k2, %k2
	jmp		.Lclear_\@
.Lnopartial_\@:
	vmovdqu64	%xmm19, (%rcx)
.Lclear_\@:
	vzeroall
	.irp r, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
	vpxord		%xmm\r, %xmm\r, %xmm\r
	.endr
	xor		%eax, %eax
	RET
.Lbad_\@:	/* wrong key: nothing written; zmm16-31 not used yet */
	vzeroall
	mov		$TRESOR_KEY_MISMATCH, %eax
	RET
.endm

/* Last round of data register d with tweak register tw, temp t. */
.macro LAST_Z dec, d, tw, t, j
	vpxorq		%zmm\tw, %zmm10, %zmm\t
	.if \dec
	vaesdeclast	%zmm\t, %zmm\d, %zmm\d
	.else
	vaesenclast	%zmm\t, %zmm\d, %zmm\d
	.endif
	vmovdqu64	%zmm\d, \j*64(%rdi)
.endm

SYM_FUNC_START(tresor_xts_encrypt_vaes_avx512)
	XTS_AVX512	0
SYM_FUNC_END(tresor_xts_encrypt_vaes_avx512)

SYM_FUNC_START(tresor_xts_decrypt_vaes_avx512)
	XTS_AVX512	1
SYM_FUNC_END(tresor_xts_decrypt_vaes_avx512)

/* void tresor_check_values_vaes_avx512(u8 out[32] (rdi)) */
SYM_FUNC_START(tresor_check_values_vaes_avx512)
	vpxor		%xmm12, %xmm12, %xmm12
	EXPAND_VEX	1, 0
	vmovdqu		%ymm12, (%rdi)
	vzeroall
	RET
SYM_FUNC_END(tresor_check_values_vaes_avx512)
