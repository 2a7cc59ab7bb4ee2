/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kasm_shim.h - stand-ins for <linux/linkage.h> so module/tresor_*.S build
 * as ordinary userspace objects (tests/unit, tests/bench).  Only used when
 * __KERNEL__ is not defined.
 */
#ifndef KASM_SHIM_H
#define KASM_SHIM_H

#ifdef __KERNEL__
#error "kasm_shim.h is for userspace builds only"
#endif

#define SYM_FUNC_START(name)		\
	.globl name;			\
	.type name, @function;		\
	.p2align 4;			\
	name:

#define SYM_FUNC_END(name)		\
	.size name, .-name

#define RET	ret

/*
 * <linux/cfi_types.h>, for the kernel's own arch/x86/crypto/
 * aes-xts-avx-x86_64.S that tests/bench/xts_bench builds as its anchor:
 * no kCFI type hash in userspace, so a plain function start.
 */
#define SYM_TYPED_FUNC_START(name)	SYM_FUNC_START(name)

/* No executable stack for the test binaries. */
	.section .note.GNU-stack, "", @progbits
	.text

#endif /* KASM_SHIM_H */
