/* SPDX-License-Identifier: GPL-2.0 */
/* Multiboot (v1) header and entry of mbguest: 32-bit protected mode, paging
 * off, flat segments (set up by the loader). eax = 0x2BADB002, ebx = info. */
#define MB_MAGIC	0x1BADB002
#define MB_FLAGS	0x00000003	/* page-aligned modules, memory info */

	.section .multiboot, "a"
	.align 4
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)

	.section .text
	.globl _start
_start:
	cli
	cld
	mov $stack_top, %esp
	push %ebx
	push %eax
	call mb_main
	/* mb_main exits QEMU; if that fails, halt for good. */
1:	hlt
	jmp 1b

	.section .bss
	.align 16
	.space 16384
stack_top:

	.section .note.GNU-stack, "", @progbits
