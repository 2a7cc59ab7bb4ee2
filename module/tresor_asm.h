/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tresor_asm.h - AES-128-XTS assembly for tresor.ko (key in DR0-DR3)
 *
 * Included from C (prototypes) and from the .S files (__ASSEMBLY__: the one
 * and only key-loading macro, TRESOR_LOAD_KEY).
 *
 * Key: 256-bit AES-128-XTS key, bytes 0-15 = data key K1 = DR0 (bytes 0-7,
 * little-endian u64) : DR1 (bytes 8-15), bytes 16-31 = tweak key K2 =
 * DR2:DR3.  Output is byte-identical to IEEE 1619 AES-128-XTS (OpenSSL
 * EVP_aes_128_xts, kernel xts(aes)) for one data unit per request: the IV is
 * the 16-byte tweak input, blocks are numbered from 0 within the request.
 *
 * Security properties (reviewed):
 *  - The key is read only in TRESOR_LOAD_KEY, with interrupts off
 *    (pushfq; cli; mov %drN,%rax; vmovq/pinsrq into an XMM register;
 *    xor %eax,%eax; ...; popfq).  %rax is the only GPR that ever holds key
 *    bytes and it is zeroed right after each move.  An NMI in between is
 *    scrubbed and the load retried (TRESOR_TRANSIT_BEGIN/END).
 *  - Round keys (both schedules) are computed inside every call from the
 *    registers and live only in XMM/YMM/ZMM registers; nothing derived from
 *    the key is ever written to memory (no spills, no stack).
 *  - Check and use are one register read: every XTS call computes
 *    AES_K1(0) and AES_K2(0) from the round keys it is about to use and
 *    compares them, in registers, with the stored check values (@check)
 *    before anything is written.  On a mismatch it returns
 *    TRESOR_KEY_MISMATCH having written nothing (dst and tweak[] are
 *    untouched), so DR0-DR3 rewritten at any point before the call (an
 *    NMI or exception handler, kgdb's hw_breakpoint_restore(), a KVM
 *    guest) can never produce output under a wrong key.
 *  - Before returning, every vector register the function used is zeroed
 *    (SSE path: pxor xmm0-15; VAES paths: vzeroall, plus vpxord zmm16-31 on
 *    the AVX-512 path).  Tweak/data GPRs are zeroed as well.
 *  - The AVX2 path keeps the 8 tweaks of the current batch in a 128-byte
 *    stack buffer (tweaks are not key material); it is zeroed before return.
 *    The AES-NI and AVX-512 paths use no stack besides pushfq/popfq.
 *
 * Calling contract (all functions):
 *  - Call between kernel_fpu_begin() and kernel_fpu_end(); preemption is off
 *    there, so the key read and its use happen on the same CPU.
 *  - nbytes must be a multiple of 16 and > 0 (no ciphertext stealing).
 *    dst may equal src (in place); partial overlap is not allowed.
 *    No alignment requirement on dst, src or tweak.
 *  - first != 0: tweak[] holds the IV and is encrypted with K2 first.
 *    first == 0: tweak[] holds the running tweak returned by the previous
 *    call for the same data unit (a request split into several chunks).
 *    On return tweak[] holds the tweak of the block after the last one.
 *    (K2 is still expanded when first == 0; the code path is the same.)
 *  - check[32]: the key's check values, AES_K1(0) || AES_K2(0), as the
 *    tresor_check_values_* functions return them.  Returns 0, or
 *    TRESOR_KEY_MISMATCH (nothing written).
 *  - Standard SysV/kernel C ABI: only caller-saved registers are touched
 *    (rax, rcx, rdx, rsi, rdi, r8-r11, vector registers, k1-k2).
 *
 * CPU features the caller must check before selecting a path:
 *  _aesni:       X86_FEATURE_AES && X86_FEATURE_XMM4_1 (pinsrq/pextrq;
 *                SSSE3 pshufb implied).  XSAVE mask: XFEATURE_MASK_SSE.
 *  _vaes_avx2:   X86_FEATURE_AES, AVX, AVX2, VAES (no VPCLMULQDQ needed,
 *                so it runs on QEMU TCG -cpu max) and
 *                cpu_has_xfeatures(XFEATURE_MASK_SSE | XFEATURE_MASK_YMM).
 *  _vaes_avx512: the above plus AVX512F, AVX512BW, AVX512VL, VPCLMULQDQ and
 *                cpu_has_xfeatures(XFEATURE_MASK_SSE | XFEATURE_MASK_YMM |
 *                XFEATURE_MASK_AVX512).  (Consider skipping it on CPUs that
 *                downclock on ZMM, X86_FEATURE_PREFER_YMM, as the kernel's
 *                own aes-xts does.)
 *  Opmask registers k1/k2 (AVX-512 path) are covered by kernel_fpu_begin()
 *  like the vector registers.
 *
 * Select a path only after a known-answer test on it (e.g. IEEE 1619
 * vector 4 with the test key placed in DR0-DR3 at module init, or a C
 * reference computed from the key during TRESOR_IOC_SET_KEY): QEMU 7.2 TCG
 * (-cpu max, the test guests) computes the upper 128-bit lane of VEX.256
 * vaesenc/vaesdec wrongly (vaesenclast/vaesdeclast are fine), so the AVX2
 * path produces wrong ciphertext there although CPUID advertises VAES.
 * tests/unit/xts_asm_test detects this (it fails for vaes_avx2 under TCG);
 * the aesni path is correct under TCG.  E_K1(0)/E_K2(0) alone happen to
 * catch it too (K2 runs in the upper lane) but are not a general KAT.
 *
 * Stack use: 8 bytes (pushfq) for all paths, plus 128 bytes for the AVX2
 * path; no alignment required.  Not for Xen PV (cli/popf/mov %drN).
 */
#ifndef TRESOR_ASM_H
#define TRESOR_ASM_H

/* This CPU's tresor_transit: see TRESOR_TRANSIT_BEGIN below */
#define TRESOR_TRANSIT_OPEN	1
#define TRESOR_TRANSIT_HIT	2

/* An XTS call's result when the registers fail the check (see above) */
#define TRESOR_KEY_MISMATCH	1

#if !defined(__ASSEMBLY__) && !defined(__ASSEMBLER__)

#ifdef __KERNEL__
#include <linux/types.h>
#else
#include <stdint.h>
typedef uint8_t u8;
#endif

/*
 * out[0..15] = AES_K1(0^128), out[16..31] = AES_K2(0^128): check values
 * that prove the local CPU holds the right key without revealing it.
 */
void tresor_check_values_aesni(u8 out[32]);
void tresor_check_values_vaes_avx2(u8 out[32]);
void tresor_check_values_vaes_avx512(u8 out[32]);

int tresor_xts_encrypt_aesni(u8 *dst, const u8 *src, unsigned int nbytes,
			     u8 tweak[16], int first, const u8 check[32]);
int tresor_xts_decrypt_aesni(u8 *dst, const u8 *src, unsigned int nbytes,
			     u8 tweak[16], int first, const u8 check[32]);
int tresor_xts_encrypt_vaes_avx2(u8 *dst, const u8 *src, unsigned int nbytes,
				 u8 tweak[16], int first, const u8 check[32]);
int tresor_xts_decrypt_vaes_avx2(u8 *dst, const u8 *src, unsigned int nbytes,
				 u8 tweak[16], int first, const u8 check[32]);
int tresor_xts_encrypt_vaes_avx512(u8 *dst, const u8 *src,
				   unsigned int nbytes, u8 tweak[16],
				   int first, const u8 check[32]);
int tresor_xts_decrypt_vaes_avx512(u8 *dst, const u8 *src,
				   unsigned int nbytes, u8 tweak[16],
				   int first, const u8 check[32]);

#ifdef TRESOR_KEY_FROM_MEMORY
/* Userspace test/bench build only: the "debug registers". */
extern unsigned char tresor_bench_key[32];
#endif

#else /* __ASSEMBLY__ || __ASSEMBLER__ */

/*
 * TRESOR_KEY_WORD(n): 64-bit key word n (0..3) into %rax.
 * Kernel: debug register DRn.  Userspace build (-DTRESOR_KEY_FROM_MEMORY):
 * the global tresor_bench_key[32], so every other instruction is the same.
 * cli is privileged, so the userspace build omits it (pushfq/popfq stay).
 */
#ifdef TRESOR_KEY_FROM_MEMORY
#define TRESOR_KEY_WORD(n)	mov tresor_bench_key+8*n(%rip), %rax
#define TRESOR_CLI
#else
#define TRESOR_KEY_WORD(n)	mov %dr##n, %rax
#define TRESOR_CLI		cli
#endif

/*
 * TRESOR_LOAD_KEY k1, k2  (SSE encoding, for the AES-NI path)
 * TRESOR_LOAD_KEY_VEX k1, k2  (VEX encoding, for the VAES paths)
 *
 * k1 := K1 (DR0:DR1), k2 := K2 (DR2:DR3); k1, k2 are XMM registers.
 * Clobbers %rax (left zero) and nothing else.  The only place the key
 * enters the code.
 */
/*
 * TRESOR_TRANSIT_BEGIN / TRESOR_TRANSIT_END retry: bracket every stretch in
 * which %rax may hold key bytes (interrupts already off). cli does not
 * mask NMIs: an NMI there saves %rax, a key word, into pt_regs on the NMI
 * IST stack, which stays in RAM until the next NMI. BEGIN sets this CPU's
 * tresor_transit to TRESOR_TRANSIT_OPEN; tresor's NMI handler
 * (tresor_nmi_scrub(), NMI_FLAG_FIRST) zeroes regs->ax of an NMI that
 * interrupted tresor's text while it is set, and marks it
 * TRESOR_TRANSIT_HIT. END clears it and jumps back to @retry, the BEGIN,
 * if an NMI was there: the words are read again, since the restored %rax
 * was 0. The saved frame thus never keeps a key word once the handler has
 * run. Clobbers the flags. The userspace build has no NMIs: both empty.
 */
#ifdef TRESOR_KEY_FROM_MEMORY
.macro TRESOR_TRANSIT_BEGIN
.endm
.macro TRESOR_TRANSIT_END retry
.endm
#else
#include <asm/percpu.h>
.macro TRESOR_TRANSIT_BEGIN
	movl		$TRESOR_TRANSIT_OPEN, PER_CPU_VAR(tresor_transit)
.endm
.macro TRESOR_TRANSIT_END retry
	cmpl		$TRESOR_TRANSIT_OPEN, PER_CPU_VAR(tresor_transit)
	movl		$0, PER_CPU_VAR(tresor_transit)
	jne		\retry
.endm
#endif

/*
 * TRESOR_LOAD_KEY k1, k2  (SSE encoding, for the AES-NI path)
 * TRESOR_LOAD_KEY_VEX k1, k2  (VEX encoding, for the VAES paths)
 *
 * k1 := K1 (DR0:DR1), k2 := K2 (DR2:DR3); k1, k2 are XMM registers.
 * Clobbers %rax (left zero) and the flags, nothing else. The only place
 * the key enters the code.
 */
.macro TRESOR_LOAD_KEY k1, k2
	pushfq
	TRESOR_CLI
.Ltresor_transit\@:
	TRESOR_TRANSIT_BEGIN
	TRESOR_KEY_WORD(0)
	movq		%rax, \k1
	xor		%eax, %eax
	TRESOR_KEY_WORD(1)
	pinsrq		$1, %rax, \k1
	xor		%eax, %eax
	TRESOR_KEY_WORD(2)
	movq		%rax, \k2
	xor		%eax, %eax
	TRESOR_KEY_WORD(3)
	pinsrq		$1, %rax, \k2
	xor		%eax, %eax
	TRESOR_TRANSIT_END .Ltresor_transit\@
	popfq
.endm

.macro TRESOR_LOAD_KEY_VEX k1, k2
	pushfq
	TRESOR_CLI
.Ltresor_transit\@:
	TRESOR_TRANSIT_BEGIN
	TRESOR_KEY_WORD(0)
	vmovq		%rax, \k1
	xor		%eax, %eax
	TRESOR_KEY_WORD(1)
	vpinsrq		$1, %rax, \k1, \k1
	xor		%eax, %eax
	TRESOR_KEY_WORD(2)
	vmovq		%rax, \k2
	xor		%eax, %eax
	TRESOR_KEY_WORD(3)
	vpinsrq		$1, %rax, \k2, \k2
	xor		%eax, %eax
	TRESOR_TRANSIT_END .Ltresor_transit\@
	popfq
.endm

#endif /* __ASSEMBLY__ || __ASSEMBLER__ */
#endif /* TRESOR_ASM_H */
