// SPDX-License-Identifier: GPL-2.0
/*
 * vmwalk - a KVM guest walking its RAM, timed phase by phase, for the
 * window-size bench (tests/bench/bench_window.py).
 *
 *   vmwalk [--mem-file PATH] [--window PAGES] [--mem-size BYTES] [--cpu N]
 *          [--passes N] [--hot-pages N] [--hot-accesses N]
 *          [--cold-shift K] [--seed S]
 *
 * Creates a VM whose RAM is anonymous memory (THP off) or a MAP_SHARED
 * mapping of PATH; for /dev/ramcrypt the region gets the size and, with
 * --window, RAMCRYPT_IOC_SET_WINDOW. One vCPU starts in 64-bit long mode
 * (identity-mapped 2 MiB pages) and runs, over the data pages
 * [0x10000, size):
 *
 *   populate  writes w(a) = a * 0x9E3779B97F4A7C15 ^ seed to every qword
 *   sweep     --passes passes in address order: reads every qword (sum),
 *             then adds 1 to the first qword of the page
 *   hot       --hot-accesses accesses at xorshift64 addresses: one in
 *             2^K (--cold-shift) to a uniformly random page of all data
 *             pages, the others to the first --hot-pages data pages; each
 *             reads a 64-byte line (sum) and writes its first qword back
 *             unchanged (the page becomes dirty)
 *
 * The guest marks each phase boundary with an OUT to port 0x11; at each
 * mark the VMM reads CLOCK_MONOTONIC, its minor faults (getrusage: KVM's
 * faults on guest memory run in this thread) and, for a ramcrypt region,
 * RAMCRYPT_IOC_STATS. It prints one line per phase (sweep passes each and
 * together)
 *   phase NAME ns=T minflt=M faults=F evictions=E clean=C refaults=R
 * (faults.. 0 without a region), checks every sum the guest reported
 * against its own computation (the hot phase's addresses replayed) and all
 * of RAM from its own mapping, and ends with "vmwalk: ok" (exit 0) or
 * "vmwalk: MISMATCH ..." (exit 1).
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
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <uapi/ramcrypt.h>

#define CODE_GPA	0x1000
#define PT_GPA		0x8000	/* PML4 0x8000, PDPT 0x9000, PD 0xa000 */
#define DATA_GPA	0x10000
#define PAGE		4096ull
#define REPORT_PORT	0x10
#define MARK_PORT	0x11
#define MUL		0x9E3779B97F4A7C15ull
#define MAX_REPORTS	64
#define MAX_MARKS	64
#define MAX_PASSES	16

/*
 * Guest code, 64-bit. rsi = RAM size, rdi = seed, r12 = hot pages,
 * r13 = hot accesses, r14 = cold mask (2^K - 1), r15 = sweep passes,
 * rbp = xorshift state. Reports: per sweep pass its sum, then the hot
 * phase's sum.
 */
#define REPORT_RAX \
	"mov $0x10, %dx\n outl %eax, %dx\n shr $32, %rax\n outl %eax, %dx\n"
#define MARK "mov $0x11, %dx\n outl %eax, %dx\n"
__asm__(
	".pushsection .rodata.guest, \"a\"\n"
	".globl guest_walk, guest_walk_end\n"
	"guest_walk:\n"
	"	movabs $0x9E3779B97F4A7C15, %r9\n"
	MARK					/* mark 0: populate */
	"	mov $0x10000, %rbx\n"
	"1:	mov %rbx, %rax\n"
	"	imul %r9, %rax\n"
	"	xor %rdi, %rax\n"
	"	mov %rax, (%rbx)\n"
	"	add $8, %rbx\n"
	"	cmp %rsi, %rbx\n"
	"	jb 1b\n"
	MARK					/* mark 1: sweep pass 1 */
	"	mov %r15, %rcx\n"
	"2:	mov $0x10000, %rbx\n"
	"	xor %r8d, %r8d\n"
	"3:	add (%rbx), %r8\n"
	"	add 8(%rbx), %r8\n"
	"	add 16(%rbx), %r8\n"
	"	add 24(%rbx), %r8\n"
	"	add $32, %rbx\n"
	"	test $0xfff, %ebx\n"
	"	jnz 3b\n"
	"	addq $1, -4096(%rbx)\n"
	"	cmp %rsi, %rbx\n"
	"	jb 3b\n"
	"	mov %r8, %rax\n"
	REPORT_RAX
	MARK					/* end of a pass */
	"	dec %rcx\n"
	"	jnz 2b\n"
	/* hot: rbp = xorshift64 state, r10 = data pages */
	"	mov %rsi, %r10\n"
	"	sub $0x10000, %r10\n"
	"	shr $12, %r10\n"
	"	xor %r8d, %r8d\n"
	"	mov %r13, %rcx\n"
	"4:	mov %rbp, %rax\n"
	"	shl $13, %rax\n"
	"	xor %rax, %rbp\n"
	"	mov %rbp, %rax\n"
	"	shr $7, %rax\n"
	"	xor %rax, %rbp\n"
	"	mov %rbp, %rax\n"
	"	shl $17, %rax\n"
	"	xor %rax, %rbp\n"
	"	mov %r12, %r11\n"		/* hot pages ... */
	"	test %r14, %rbp\n"
	"	cmovz %r10, %r11\n"		/* ... or all when cold */
	"	mov %rbp, %rax\n"
	"	shr $16, %rax\n"
	"	xor %edx, %edx\n"
	"	div %r11\n"			/* rdx = page */
	"	shl $12, %rdx\n"
	"	mov %rbp, %rax\n"
	"	shr $8, %rax\n"
	"	and $0xfc0, %eax\n"		/* line */
	"	lea 0x10000(%rdx,%rax), %rbx\n"
	"	mov (%rbx), %rax\n"
	"	add %rax, %r8\n"
	"	mov %rax, (%rbx)\n"
	"	add 8(%rbx), %r8\n"
	"	add 16(%rbx), %r8\n"
	"	add 24(%rbx), %r8\n"
	"	add 32(%rbx), %r8\n"
	"	add 40(%rbx), %r8\n"
	"	add 48(%rbx), %r8\n"
	"	add 56(%rbx), %r8\n"
	"	dec %rcx\n"
	"	jnz 4b\n"
	"	mov %r8, %rax\n"
	REPORT_RAX
	MARK					/* end of hot */
	"	hlt\n"
	"guest_walk_end:\n"
	".popsection\n");

extern const uint8_t guest_walk[], guest_walk_end[];

struct mark {
	uint64_t ns, minflt;
	struct ramcrypt_stats st;
};

static int rc_fd = -1;

static void die(const char *what)
{
	fprintf(stderr, "vmwalk: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void take_mark(struct mark *m)
{
	struct timespec ts;
	struct rusage ru;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	m->ns = ts.tv_sec * 1000000000ull + ts.tv_nsec;
	if (getrusage(RUSAGE_THREAD, &ru))
		die("getrusage");
	m->minflt = ru.ru_minflt;
	memset(&m->st, 0, sizeof(m->st));
	if (rc_fd >= 0 && ioctl(rc_fd, RAMCRYPT_IOC_STATS, &m->st))
		die("RAMCRYPT_IOC_STATS");
}

static void print_phase(const char *name, const struct mark *a,
			const struct mark *b)
{
	printf("phase %s ns=%llu minflt=%llu faults=%llu evictions=%llu "
	       "clean=%llu refaults=%llu\n", name,
	       (unsigned long long)(b->ns - a->ns),
	       (unsigned long long)(b->minflt - a->minflt),
	       (unsigned long long)(b->st.faults - a->st.faults),
	       (unsigned long long)(b->st.evictions_window -
				    a->st.evictions_window),
	       (unsigned long long)(b->st.evictions_clean -
				    a->st.evictions_clean),
	       (unsigned long long)(b->st.refaults - a->st.refaults));
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
	seg.type = 11;
	seg.selector = 8;
	seg.l = 1;
	sregs.cs = seg;
	seg.type = 3;
	seg.selector = 16;
	seg.l = 0;
	seg.db = 1;
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = seg;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
		die("KVM_SET_SREGS");
}

static uint64_t word(uint64_t a, uint64_t seed, uint64_t passes)
{
	return ((a * MUL) ^ seed) + (a % PAGE ? 0 : passes);
}

static uint64_t xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static uint64_t arg(const char *name, const char *s, uint64_t lo, uint64_t hi)
{
	char *end;
	uint64_t v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || v < lo || v > hi) {
		fprintf(stderr, "vmwalk: %s must be in [%llu, %llu], got '%s'\n",
			name, (unsigned long long)lo, (unsigned long long)hi, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	const char *mem_file = NULL;
	uint64_t mem_size = 64 << 20, seed = 0x5eed1234abcd0000ull;
	uint64_t passes = 2, hot_pages = 0, hot_acc = 1 << 18, cold_shift = 4;
	uint64_t window = 0, reports[MAX_REPORTS];
	struct mark marks[MAX_MARKS];
	int cpu = -1, nreports = 0, nmarks = 0, i;
	int kvm, vm, vcpu, run_size, have_half = 0;
	struct kvm_run *run;
	uint32_t half = 0;
	uint8_t *mem;

	for (i = 1; i + 1 < argc && argv[i][0] == '-'; i += 2) {
		const char *o = argv[i], *v = argv[i + 1];

		if (!strcmp(o, "--mem-file"))
			mem_file = v;
		else if (!strcmp(o, "--window"))
			window = arg(o, v, 1, 1 << 20);
		else if (!strcmp(o, "--mem-size"))
			mem_size = arg(o, v, 2 * DATA_GPA, 1ull << 30);
		else if (!strcmp(o, "--cpu"))
			cpu = arg(o, v, 0, 4095);
		else if (!strcmp(o, "--passes"))
			passes = arg(o, v, 1, MAX_PASSES);
		else if (!strcmp(o, "--hot-pages"))
			hot_pages = arg(o, v, 1, 1 << 18);
		else if (!strcmp(o, "--hot-accesses"))
			hot_acc = arg(o, v, 1, 1ull << 32);
		else if (!strcmp(o, "--cold-shift"))
			cold_shift = arg(o, v, 1, 32);
		else if (!strcmp(o, "--seed"))
			seed = strtoull(v, NULL, 0);
		else
			break;
	}
	if (i != argc) {
		fprintf(stderr, "usage: vmwalk [--mem-file PATH] [--window PAGES] "
			"[--mem-size BYTES] [--cpu N] [--passes N] "
			"[--hot-pages N] [--hot-accesses N] [--cold-shift K] "
			"[--seed S]\n");
		return 2;
	}
	if (mem_size % PAGE) {
		fprintf(stderr, "vmwalk: --mem-size must be a multiple of 4096\n");
		return 2;
	}
	uint64_t data_pages = (mem_size - DATA_GPA) / PAGE;

	if (!hot_pages)
		hot_pages = data_pages / 32;
	if (!hot_pages || hot_pages > data_pages) {
		fprintf(stderr, "vmwalk: --hot-pages must be in [1, %llu]\n",
			(unsigned long long)data_pages);
		return 2;
	}
	if (window && !mem_file) {
		fprintf(stderr, "vmwalk: --window needs --mem-file\n");
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
		if (!strcmp(mem_file, RAMCRYPT_DEVICE_PATH)) {
			rc_fd = fd;
			if (ioctl(fd, RAMCRYPT_IOC_SET_SIZE, &mem_size))
				die("RAMCRYPT_IOC_SET_SIZE");
			if (window) {
				uint32_t w = window;

				if (ioctl(fd, RAMCRYPT_IOC_SET_WINDOW, &w))
					die("RAMCRYPT_IOC_SET_WINDOW");
			}
		} else if (window) {
			fprintf(stderr, "vmwalk: --window needs %s\n",
				RAMCRYPT_DEVICE_PATH);
			return 2;
		}
		mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_SHARED,
			   fd, 0);
	} else {
		mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mem != MAP_FAILED && madvise(mem, mem_size, MADV_NOHUGEPAGE))
			die("madvise MADV_NOHUGEPAGE");
	}
	if (mem == MAP_FAILED)
		die("mmap guest memory");

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		die("/dev/kvm");
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

	memcpy(mem + CODE_GPA, guest_walk, guest_walk_end - guest_walk);
	setup_long_mode(vcpu, mem);
	struct kvm_regs regs = {
		.rip = CODE_GPA, .rflags = 2, .rsp = CODE_GPA,
		.rsi = mem_size, .rdi = seed, .r12 = hot_pages,
		.r13 = hot_acc, .r14 = (1ull << cold_shift) - 1,
		.r15 = passes, .rbp = seed | 1,
	};
	if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
		die("KVM_SET_REGS");

	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0)
			die("KVM_RUN");
		if (run->exit_reason == KVM_EXIT_HLT)
			break;
		if (run->exit_reason == KVM_EXIT_IO &&
		    run->io.direction == KVM_EXIT_IO_OUT && run->io.size == 4) {
			uint32_t v;

			memcpy(&v, (uint8_t *)run + run->io.data_offset, 4);
			if (run->io.port == MARK_PORT) {
				if (nmarks == MAX_MARKS) {
					fprintf(stderr, "vmwalk: too many marks\n");
					return 1;
				}
				take_mark(&marks[nmarks++]);
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
		fprintf(stderr, "vmwalk: unexpected exit reason %u (port 0x%x)\n",
			run->exit_reason, run->io.port);
		return 1;
	}
	if (nmarks != (int)passes + 3 || nreports != (int)passes + 1) {
		printf("vmwalk: MISMATCH: %d marks and %d reports, want %d and "
		       "%d\n", nmarks, nreports, (int)passes + 3,
		       (int)passes + 1);
		return 1;
	}

	char name[32];

	print_phase("populate", &marks[0], &marks[1]);
	for (i = 0; i < (int)passes; i++) {
		snprintf(name, sizeof(name), "sweep%d", i + 1);
		print_phase(name, &marks[1 + i], &marks[2 + i]);
	}
	print_phase("sweep", &marks[1], &marks[1 + passes]);
	print_phase("hot", &marks[1 + passes], &marks[2 + passes]);

	/* What the guest must have read, and what RAM must hold now. */
	int bad = 0;
	uint64_t s0 = 0, x = seed | 1, hot = 0;

	for (uint64_t a = DATA_GPA; a < mem_size; a += 8)
		s0 += word(a, seed, 0);
	for (i = 0; i < (int)passes; i++) {
		uint64_t want = s0 + i * data_pages;

		if (reports[i] != want) {
			printf("vmwalk: MISMATCH: sweep pass %d sum %016llx, want "
			       "%016llx\n", i + 1, (unsigned long long)reports[i],
			       (unsigned long long)want);
			bad = 1;
		}
	}
	for (uint64_t n = 0; n < hot_acc; n++) {
		uint64_t r = xorshift(&x);
		uint64_t pages = r & ((1ull << cold_shift) - 1) ? hot_pages
								 : data_pages;
		uint64_t a = DATA_GPA + ((r >> 16) % pages) * PAGE +
			     ((r >> 8) & 0xfc0);

		for (int w = 0; w < 8; w++)
			hot += word(a + 8 * w, seed, passes);
	}
	if (reports[passes] != hot) {
		printf("vmwalk: MISMATCH: hot sum %016llx, want %016llx\n",
		       (unsigned long long)reports[passes],
		       (unsigned long long)hot);
		bad = 1;
	}
	uint64_t ram_bad = 0;

	for (uint64_t a = DATA_GPA; a < mem_size; a += 8) {
		uint64_t got;

		memcpy(&got, mem + a, 8);
		ram_bad += got != word(a, seed, passes);
	}
	if (ram_bad) {
		printf("vmwalk: MISMATCH: %llu qwords of RAM wrong as the VMM "
		       "sees them\n", (unsigned long long)ram_bad);
		bad = 1;
	}
	printf("vmwalk: %s data_pages=%llu hot_pages=%llu hot_accesses=%llu "
	       "cold=1/%llu window=%llu\n", bad ? "FAILED" : "ok",
	       (unsigned long long)data_pages, (unsigned long long)hot_pages,
	       (unsigned long long)hot_acc, 1ull << cold_shift,
	       (unsigned long long)window);
	return bad;
}
