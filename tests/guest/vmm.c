// SPDX-License-Identifier: GPL-2.0
/*
 * vmm - the smallest useful KVM VMM, for tests inside the test guest.
 *
 *   vmm [--mem-file PATH] [--mem-size BYTES] [--cpu N] [--seed S] PROGRAM
 *
 * Creates a VM whose RAM is anonymous memory or a MAP_SHARED mapping of PATH
 * (e.g. /dev/ramcrypt), starts one vCPU directly in 64-bit long mode with
 * identity-mapped 2 MiB pages, runs a few dozen bytes of guest code and
 * prints what the guest reports over I/O port 0x10 (64-bit values sent as
 * two 32-bit OUTs, low half first).
 *
 * Programs:
 *   pattern  writes f(addr) over RAM [0x10000, size), reads it back twice
 *            with checksums; the VMM checks the sums, the mismatch counts
 *            and the memory as seen from its own mapping. Exit 0 on match.
 *   dr       reads DR0-DR3, writes seed+0..3 to them and enables them in
 *            DR7, reads them back, then makes 100 I/O exits. Prints
 *            "dr-before" and "dr-after" lines.
 *   hold     creates a VM and a vCPU that never runs, prints "holding"
 *            and sleeps until killed (see harness/guest.py load_kvm()).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define CODE_GPA	0x1000
#define PT_GPA		0x8000	/* PML4 0x8000, PDPT 0x9000, PD 0xa000 */
#define DATA_GPA	0x10000
#define REPORT_PORT	0x10
#define TICK_PORT	0x13
#define PATTERN_MUL	0x9E3779B97F4A7C15ull
#define MAX_REPORTS	64

/* Guest code, 64-bit. rsi = RAM size, rdi = seed. */
#define REPORT_RAX \
	"mov $0x10, %dx\n outl %eax, %dx\n shr $32, %rax\n outl %eax, %dx\n"
__asm__(
	".pushsection .rodata.guest, \"a\"\n"
	".globl guest_pattern, guest_pattern_end\n"
	"guest_pattern:\n"
	"	movabs $0x9E3779B97F4A7C15, %r9\n"
	"	mov $0x10000, %rbx\n"
	"	xor %r8d, %r8d\n"
	"1:	mov %rbx, %rax\n"
	"	imul %r9, %rax\n"
	"	xor %rdi, %rax\n"
	"	mov %rax, (%rbx)\n"
	"	add %rax, %r8\n"
	"	add $8, %rbx\n"
	"	cmp %rsi, %rbx\n"
	"	jb 1b\n"
	"	mov %r8, %rax\n"
	REPORT_RAX
	"	mov $2, %ecx\n"
	"2:	mov $0x10000, %rbx\n"
	"	xor %r8d, %r8d\n"
	"	xor %r10d, %r10d\n"
	"3:	mov (%rbx), %rax\n"
	"	add %rax, %r8\n"
	"	mov %rbx, %r11\n"
	"	imul %r9, %r11\n"
	"	xor %rdi, %r11\n"
	"	cmp %r11, %rax\n"
	"	je 4f\n"
	"	inc %r10\n"
	"4:	add $8, %rbx\n"
	"	cmp %rsi, %rbx\n"
	"	jb 3b\n"
	"	mov %r8, %rax\n"
	REPORT_RAX
	"	mov %r10, %rax\n"
	REPORT_RAX
	"	dec %ecx\n"
	"	jnz 2b\n"
	"	hlt\n"
	"guest_pattern_end:\n"
	".globl guest_dr, guest_dr_end\n"
	"guest_dr:\n"
	"	mov %dr0, %rax\n" REPORT_RAX
	"	mov %dr1, %rax\n" REPORT_RAX
	"	mov %dr2, %rax\n" REPORT_RAX
	"	mov %dr3, %rax\n" REPORT_RAX
	"	mov %rdi, %rax\n"
	"	mov %rax, %dr0\n"
	"	inc %rax\n"
	"	mov %rax, %dr1\n"
	"	inc %rax\n"
	"	mov %rax, %dr2\n"
	"	inc %rax\n"
	"	mov %rax, %dr3\n"
	"	mov $0xff, %eax\n"
	"	mov %rax, %dr7\n"
	"	mov %dr0, %rax\n" REPORT_RAX
	"	mov %dr1, %rax\n" REPORT_RAX
	"	mov %dr2, %rax\n" REPORT_RAX
	"	mov %dr3, %rax\n" REPORT_RAX
	"	mov $100, %ecx\n"
	"5:	mov $0x13, %dx\n"
	"	outl %eax, %dx\n"
	"	dec %ecx\n"
	"	jnz 5b\n"
	"	hlt\n"
	"guest_dr_end:\n"
	".popsection\n");

extern const uint8_t guest_pattern[], guest_pattern_end[];
extern const uint8_t guest_dr[], guest_dr_end[];

static void die(const char *what)
{
	fprintf(stderr, "vmm: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void setup_long_mode(int vcpu, uint8_t *mem)
{
	uint64_t *pml4 = (uint64_t *)(mem + PT_GPA);
	uint64_t *pdpt = (uint64_t *)(mem + PT_GPA + 0x1000);
	uint64_t *pd = (uint64_t *)(mem + PT_GPA + 0x2000);
	struct kvm_sregs sregs;
	struct kvm_segment seg = {
		.base = 0, .limit = 0xffffffff, .present = 1, .dpl = 0,
		.s = 1, .g = 1,
	};

	pml4[0] = (PT_GPA + 0x1000) | 3;
	pdpt[0] = (PT_GPA + 0x2000) | 3;
	for (int i = 0; i < 512; i++)
		pd[i] = ((uint64_t)i << 21) | 0x83;	/* P, RW, PS */

	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
		die("KVM_GET_SREGS");
	sregs.cr3 = PT_GPA;
	sregs.cr4 = 1 << 5;				/* PAE */
	sregs.cr0 = 0x80000001 | 0x10 | 0x20;		/* PG, PE, ET, NE */
	sregs.efer = 0x500;				/* LME, LMA */
	seg.type = 11;					/* code: execute/read */
	seg.selector = 8;
	seg.l = 1;
	sregs.cs = seg;
	seg.type = 3;					/* data: read/write */
	seg.selector = 16;
	seg.l = 0;
	seg.db = 1;
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = seg;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
		die("KVM_SET_SREGS");
}

int main(int argc, char **argv)
{
	const char *mem_file = NULL, *prog;
	uint64_t mem_size = 16 << 20, seed = 0x5eed1234abcd0000ull;
	uint64_t reports[MAX_REPORTS];
	int cpu = -1, nreports = 0, ticks = 0, i;
	int kvm, vm, vcpu, run_size;
	struct kvm_run *run;
	const uint8_t *code, *code_end;
	uint8_t *mem;
	uint32_t half = 0;
	int have_half = 0;

	for (i = 1; i < argc - 1 && argv[i][0] == '-'; i += 2) {
		if (!strcmp(argv[i], "--mem-file"))
			mem_file = argv[i + 1];
		else if (!strcmp(argv[i], "--mem-size"))
			mem_size = strtoull(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--cpu"))
			cpu = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--seed"))
			seed = strtoull(argv[i + 1], NULL, 0);
		else
			break;
	}
	if (i != argc - 1) {
		fprintf(stderr, "usage: vmm [--mem-file PATH] [--mem-size BYTES] "
			"[--cpu N] [--seed S] pattern|dr|hold\n");
		return 2;
	}
	prog = argv[i];
	if (!strcmp(prog, "hold")) {
		code = guest_dr;	/* never run */
		code_end = guest_dr_end;
	} else if (!strcmp(prog, "pattern")) {
		code = guest_pattern;
		code_end = guest_pattern_end;
	} else if (!strcmp(prog, "dr")) {
		code = guest_dr;
		code_end = guest_dr_end;
	} else {
		fprintf(stderr, "vmm: unknown program '%s'\n", prog);
		return 2;
	}
	if (mem_size < 2 * DATA_GPA || mem_size > (1ull << 30) ||
	    mem_size % 4096) {
		fprintf(stderr, "vmm: --mem-size must be a multiple of 4096 in "
			"[128 KiB, 1 GiB]\n");
		return 2;
	}
	if (cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) < 0)
			die("sched_setaffinity");
	}

	if (mem_file) {
		int fd = open(mem_file, O_RDWR);

		if (fd < 0)
			die(mem_file);
		mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_SHARED,
			   fd, 0);
	} else {
		mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	}
	if (mem == MAP_FAILED)
		die("mmap guest memory");

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		die("/dev/kvm");
	if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		fprintf(stderr, "vmm: unexpected KVM API version\n");
		return 1;
	}
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		die("KVM_CREATE_VM");
	struct kvm_userspace_memory_region region = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = mem_size,
		.userspace_addr = (uintptr_t)mem,
	};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		die("KVM_SET_USER_MEMORY_REGION");
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		die("KVM_CREATE_VCPU");
	run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size < (int)sizeof(*run))
		die("KVM_GET_VCPU_MMAP_SIZE");
	run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		die("mmap kvm_run");

	memcpy(mem + CODE_GPA, code, code_end - code);
	setup_long_mode(vcpu, mem);
	struct kvm_regs regs = {
		.rip = CODE_GPA, .rflags = 2, .rsp = CODE_GPA,
		.rsi = mem_size, .rdi = seed,
	};
	if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
		die("KVM_SET_REGS");

	if (!strcmp(prog, "hold")) {
		printf("holding\n");
		fflush(stdout);
		for (;;)
			pause();
	}

	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0)
			die("KVM_RUN");
		if (run->exit_reason == KVM_EXIT_HLT)
			break;
		if (run->exit_reason == KVM_EXIT_IO &&
		    run->io.direction == KVM_EXIT_IO_OUT && run->io.size == 4) {
			uint32_t v;

			memcpy(&v, (uint8_t *)run + run->io.data_offset, 4);
			if (run->io.port == TICK_PORT) {
				ticks++;
				continue;
			}
			if (run->io.port != REPORT_PORT)
				goto unexpected;
			if (!have_half) {
				half = v;
				have_half = 1;
			} else if (nreports < MAX_REPORTS) {
				reports[nreports++] = half | (uint64_t)v << 32;
				have_half = 0;
			}
			continue;
		}
unexpected:
		fprintf(stderr, "vmm: unexpected exit reason %u (port 0x%x)\n",
			run->exit_reason, run->io.port);
		return 1;
	}

	if (!strcmp(prog, "dr")) {
		if (nreports != 8) {
			fprintf(stderr, "vmm: dr: got %d reports, want 8\n",
				nreports);
			return 1;
		}
		printf("dr-before %016llx %016llx %016llx %016llx\n",
		       (unsigned long long)reports[0], (unsigned long long)reports[1],
		       (unsigned long long)reports[2], (unsigned long long)reports[3]);
		printf("dr-after %016llx %016llx %016llx %016llx\n",
		       (unsigned long long)reports[4], (unsigned long long)reports[5],
		       (unsigned long long)reports[6], (unsigned long long)reports[7]);
		printf("ticks %d\n", ticks);
		for (i = 0; i < 4; i++)
			if (reports[4 + i] != seed + i) {
				printf("dr: DR%d reads back wrong\n", i);
				return 1;
			}
		return 0;
	}

	/* pattern: recompute everything the guest should have seen. */
	uint64_t sum = 0, host_mismatch = 0;

	for (uint64_t a = DATA_GPA; a < mem_size; a += 8) {
		uint64_t want = (a * PATTERN_MUL) ^ seed, got;

		memcpy(&got, mem + a, 8);
		sum += want;
		if (got != want)
			host_mismatch++;
	}
	if (nreports != 5) {
		fprintf(stderr, "vmm: pattern: got %d reports, want 5\n", nreports);
		return 1;
	}
	printf("pattern size=%llu write-sum=%016llx read1=%016llx/%llu "
	       "read2=%016llx/%llu expected=%016llx host-mismatches=%llu\n",
	       (unsigned long long)mem_size, (unsigned long long)reports[0],
	       (unsigned long long)reports[1], (unsigned long long)reports[2],
	       (unsigned long long)reports[3], (unsigned long long)reports[4],
	       (unsigned long long)sum, (unsigned long long)host_mismatch);
	if (reports[0] != sum || reports[1] != sum || reports[3] != sum ||
	    reports[2] || reports[4] || host_mismatch) {
		printf("pattern: MISMATCH\n");
		return 1;
	}
	printf("pattern: ok\n");
	return 0;
}
