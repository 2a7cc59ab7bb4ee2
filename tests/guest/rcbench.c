// SPDX-License-Identifier: GPL-2.0
/*
 * rcbench - page fault costs for bench_ramcrypt.py.
 *
 *   rcbench anon PAGES ROUNDS            first write to fresh anonymous pages
 *   rcbench zram PAGES ROUNDS            swap-in of MADV_PAGEOUT'ed pages
 *                                        (needs swap on a zram device)
 *   rcbench window PAGES WINDOW ROUNDS   ramcrypt window faults: a region of
 *                                        PAGES with a window of WINDOW, swept
 *                                        in order (each access faults:
 *                                        decrypt, evict a victim), read and
 *                                        write sweeps, and two cheaper faults
 *                                        to split the cost (see cmd_window)
 *   rcbench parallel PAGES WINDOW ROUNDS read sweeps over one region by one
 *                                        thread (CPU 0) and by two at once
 *                                        (CPUs 0 and 1, a half each): wall
 *                                        ns per fault of all faults, so a
 *                                        region that serialises its faults
 *                                        shows no speed-up
 *   rcbench time CMD [ARGS...]           run CMD, print "elapsed_ns=N rc=R"
 *
 * Each round times one access per page (a write for anon, a read for the
 * others; THP off) and prints
 *   round N: faults=F ns_per_fault=X [extra=...]
 * then "result KIND faults=F ns_per_fault=MEDIAN min=MIN" (window: four
 * KINDs, zram: also the MADV_PAGEOUT cost per page) and exits 0, or
 * "FAIL ..." and exits 1 when the faults did not happen as intended (pages
 * not swapped, content wrong, a window access that did not fault).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uapi/ramcrypt.h>

#include "mix64.h"

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

#define PAGE 4096UL
#define WORDS (PAGE / 8)
#define MAX_ROUNDS 64

static void fail(const char *what)
{
	printf("FAIL %s (errno %s)\n", what, strerrorname_np(errno));
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Half random, half a compressible counter pattern: zram compresses it to
 * roughly half a page, and no page is "same-filled" (which zram would store
 * without compressing). */
static uint64_t word(uint64_t seed, size_t page, size_t i)
{
	return i < WORDS / 2 ? mix(seed ^ (page * WORDS + i)) :
			       (page << 16 | i);
}

static void fill(uint8_t *mem, size_t pages, uint64_t seed)
{
	for (size_t p = 0; p < pages; p++) {
		uint64_t *w = (uint64_t *)(mem + p * PAGE);

		for (size_t i = 0; i < WORDS; i++)
			w[i] = word(seed, p, i);
	}
}

static size_t verify(const uint8_t *mem, size_t pages, uint64_t seed)
{
	size_t bad = 0;

	for (size_t p = 0; p < pages; p++) {
		const uint64_t *w = (const uint64_t *)(mem + p * PAGE);

		for (size_t i = 0; i < WORDS; i++)
			if (w[i] != word(seed, p, i)) {
				bad++;
				break;
			}
	}
	return bad;
}

static uint64_t touch_read(const uint8_t *mem, size_t pages)
{
	uint64_t sum = 0, t0 = now_ns();

	for (size_t p = 0; p < pages; p++)
		sum += *(const volatile uint64_t *)(mem + p * PAGE);
	__asm__ volatile("" : : "r"(sum));
	return now_ns() - t0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void result(const char *kind, uint64_t faults, uint64_t *ns,
		   int rounds)
{
	qsort(ns, rounds, sizeof(*ns), cmp_u64);
	printf("result %s faults=%llu ns_per_fault=%llu min=%llu\n", kind,
	       (unsigned long long)faults,
	       (unsigned long long)ns[rounds / 2],
	       (unsigned long long)ns[0]);
}

static uint8_t *anon_map(size_t pages)
{
	uint8_t *mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (mem == MAP_FAILED)
		fail("mmap anonymous");
	if (madvise(mem, pages * PAGE, MADV_NOHUGEPAGE))
		fail("MADV_NOHUGEPAGE");
	return mem;
}

static long vmstat(const char *name)
{
	char key[64];
	long val;
	FILE *f = fopen("/proc/vmstat", "r");

	if (!f)
		fail("/proc/vmstat");
	while (fscanf(f, "%63s %ld", key, &val) == 2)
		if (!strcmp(key, name)) {
			fclose(f);
			return val;
		}
	fclose(f);
	return -1;
}

/* -- anonymous first touch --------------------------------------------- */
static int cmd_anon(size_t pages, int rounds)
{
	uint64_t ns[MAX_ROUNDS];

	for (int r = 0; r < rounds; r++) {
		uint8_t *mem = anon_map(pages);
		long flt0 = vmstat("pgfault"), flt;
		uint64_t t0 = now_ns(), t;

		for (size_t p = 0; p < pages; p++)
			*(volatile uint64_t *)(mem + p * PAGE) = p + 1;
		t = now_ns() - t0;
		flt = vmstat("pgfault") - flt0;
		if (flt < (long)pages) {
			printf("FAIL anon: %ld faults for %zu pages\n", flt,
			       pages);
			return 1;
		}
		ns[r] = t / pages;
		printf("round %d: faults=%zu ns_per_fault=%llu pgfault=%ld\n",
		       r, pages, (unsigned long long)ns[r], flt);
		munmap(mem, pages * PAGE);
	}
	result("anon_first_touch", pages, ns, rounds);
	return 0;
}

/* -- zram swap-in ---------------------------------------------------------- */
/* orig_data_size and compr_data_size of zram0, KiB (0 if unreadable). */
static void zram_mm_stat(unsigned long long *orig, unsigned long long *compr)
{
	FILE *f = fopen("/sys/block/zram0/mm_stat", "r");

	*orig = *compr = 0;
	if (f) {
		if (fscanf(f, "%llu %llu", orig, compr) != 2)
			*orig = *compr = 0;
		fclose(f);
	}
	*orig >>= 10;
	*compr >>= 10;
}

static int cmd_zram(size_t pages, int rounds)
{
	uint64_t ns[MAX_ROUNDS], pageout[MAX_ROUNDS];
	uint8_t *mem = anon_map(pages);

	fill(mem, pages, 0x5a5a);
	for (int r = 0; r < rounds; r++) {
		long out0 = vmstat("pswpout"), in0, out, in;
		unsigned long long orig, compr;
		uint64_t t, t0 = now_ns();

		if (madvise(mem, pages * PAGE, MADV_PAGEOUT))
			fail("MADV_PAGEOUT");
		pageout[r] = (now_ns() - t0) / pages;
		out = vmstat("pswpout") - out0;
		zram_mm_stat(&orig, &compr);
		in0 = vmstat("pswpin");
		t = touch_read(mem, pages);
		in = vmstat("pswpin") - in0;
		ns[r] = t / pages;
		printf("round %d: faults=%zu ns_per_fault=%llu pswpout=%ld "
		       "pswpin=%ld zram_orig_kib=%llu zram_compr_kib=%llu "
		       "pageout_ns=%llu\n",
		       r, pages, (unsigned long long)ns[r], out, in, orig,
		       compr, (unsigned long long)pageout[r]);
		/* Every page must really have gone out to and come back from
		 * swap (no swap-cache hits, no readahead): one swap-in each. */
		if (out < (long)pages || in < (long)pages) {
			printf("FAIL zram: pswpout=%ld pswpin=%ld for %zu "
			       "pages\n", out, in, pages);
			return 1;
		}
		if (verify(mem, pages, 0x5a5a)) {
			printf("FAIL zram: content changed\n");
			return 1;
		}
	}
	result("zram_swapin", pages, ns, rounds);
	/* Swap-out (compression) happens at MADV_PAGEOUT, outside the
	 * swap-in fault: per page, for comparison with a dirty eviction. */
	result("zram_pageout", pages, pageout, rounds);
	return 0;
}

/* -- ramcrypt window faults ------------------------------------------------ */
/* A counter of /sys/kernel/ramcrypt/ (totals of all regions), -1 if none. */
static long rc_sysfs(const char *name)
{
	char path[128];
	long val = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/kernel/ramcrypt/%s", name);
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%ld", &val) != 1)
			val = -1;
		fclose(f);
	}
	return val;
}

static void rc_stats(int fd, struct ramcrypt_stats *st)
{
	if (ioctl(fd, RAMCRYPT_IOC_STATS, st))
		fail("RAMCRYPT_IOC_STATS");
}

struct rc_region {
	int fd;
	uint8_t *mem;
};

static struct rc_region rc_new(size_t pages, uint32_t window)
{
	uint64_t size = pages * PAGE;
	struct rc_region r = { .fd = open(RAMCRYPT_DEVICE_PATH, O_RDWR) };

	if (r.fd < 0)
		fail("open /dev/ramcrypt");
	if (ioctl(r.fd, RAMCRYPT_IOC_SET_SIZE, &size))
		fail("SET_SIZE");
	if (ioctl(r.fd, RAMCRYPT_IOC_SET_WINDOW, &window))
		fail("SET_WINDOW");
	r.mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, r.fd, 0);
	if (r.mem == MAP_FAILED)
		fail("mmap /dev/ramcrypt");
	return r;
}

static void rc_free(struct rc_region *r, size_t pages)
{
	munmap(r->mem, pages * PAGE);
	close(r->fd);
}

/*
 * One timed in-order sweep over a region: ns per fault. Checks that every
 * page faulted, that at least min_ev pages were evicted by the window and
 * that the window held.
 */
static uint64_t rc_sweep(struct rc_region *r, size_t pages, int write,
			 uint64_t min_ev, const char *what, int round)
{
	struct ramcrypt_stats a, b;
	uint64_t t, faults, ev;
	long clean = rc_sysfs("evictions_clean");
	long ahead = rc_sysfs("evictions_ahead");

	rc_stats(r->fd, &a);
	if (write) {
		uint64_t t0 = now_ns();

		for (size_t p = 0; p < pages; p++)
			*(volatile uint64_t *)(r->mem + p * PAGE) = p + write;
		t = now_ns() - t0;
	} else {
		t = touch_read(r->mem, pages);
	}
	rc_stats(r->fd, &b);
	clean = rc_sysfs("evictions_clean") - clean;
	ahead = rc_sysfs("evictions_ahead") - ahead;
	faults = b.faults - a.faults;
	ev = b.evictions_window - a.evictions_window;
	printf("round %d %s: faults=%llu ns_per_fault=%llu evictions=%llu "
	       "clean_evictions=%ld evict_ahead=%ld plaintext=%llu\n", round,
	       what, (unsigned long long)faults,
	       (unsigned long long)(faults ? t / faults : 0),
	       (unsigned long long)ev, clean, ahead,
	       (unsigned long long)b.plaintext_pages);
	if (faults < pages || ev < min_ev ||
	    b.plaintext_pages > b.window_pages) {
		printf("FAIL %s: faults=%llu evictions=%llu for %zu pages, "
		       "window %u\n", what, (unsigned long long)faults,
		       (unsigned long long)ev, pages, b.window_pages);
		exit(1);
	}
	return t / faults;
}

/* The fill pattern of @seed with word 0 of every page replaced by p + @w0 */
static size_t verify_written(const uint8_t *mem, size_t pages, uint64_t seed,
			     uint64_t w0)
{
	size_t bad = 0;

	for (size_t p = 0; p < pages; p++) {
		const uint64_t *w = (const uint64_t *)(mem + p * PAGE);

		if (w[0] != p + w0) {
			bad++;
			continue;
		}
		for (size_t i = 1; i < WORDS; i++)
			if (w[i] != word(seed, p, i)) {
				bad++;
				break;
			}
	}
	return bad;
}

/*
 * Four costs per fault, each from an in-order sweep over PAGES:
 *   zero_fill    never-written pages, window >= region: the fault path
 *                and a zeroed frame, no cipher, no eviction
 *   first_evict  never-written pages, small window, writes: zero fill plus
 *                evicting and encrypting a dirty victim (one page cipher)
 *   window_fault written pages, small window, reads: decrypt plus evicting
 *                a victim that was only read (clean: its ciphertext is
 *                kept, no encryption), the steady state of a read sweep
 *   window_write written pages, small window, writes: decrypt plus
 *                evict-encrypt a dirty victim (two page ciphers), the
 *                steady state of a write sweep (after an untimed one, so
 *                that every victim is dirty)
 */
static int cmd_window(size_t pages, uint32_t window, int rounds)
{
	uint64_t zero[MAX_ROUNDS], first[MAX_ROUNDS], ns[MAX_ROUNDS];
	uint64_t wr[MAX_ROUNDS];

	for (int r = 0; r < rounds; r++) {
		struct rc_region big = rc_new(pages, pages);
		struct rc_region small;

		zero[r] = rc_sweep(&big, pages, 1, 0, "zero_fill", r);
		rc_free(&big, pages);
		small = rc_new(pages, window);
		first[r] = rc_sweep(&small, pages, 1, pages - window,
				    "first_evict", r);
		fill(small.mem, pages, 0xa5a5 + r);
		/* CLOCK keeps no page of a sweep larger than the window:
		 * every access faults and evicts (with evict-ahead, some
		 * evictions fall before or after the timed sweep). */
		ns[r] = rc_sweep(&small, pages, 0, pages - window,
				 "window_fault", r);
		if (verify(small.mem, pages, 0xa5a5 + r)) {
			printf("FAIL window: content changed\n");
			return 1;
		}
		rc_sweep(&small, pages, 2, pages - window, "write_warmup", r);
		wr[r] = rc_sweep(&small, pages, 3, pages - window,
				 "window_write", r);
		if (verify_written(small.mem, pages, 0xa5a5 + r, 3)) {
			printf("FAIL window_write: content changed\n");
			return 1;
		}
		rc_free(&small, pages);
	}
	result("window_zero_fill", pages, zero, rounds);
	result("window_first_evict", pages, first, rounds);
	result("window_fault", pages, ns, rounds);
	result("window_write_fault", pages, wr, rounds);
	return 0;
}

static int cmd_time(char **argv)
{
	uint64_t t0 = now_ns();
	int status;
	pid_t pid = fork();

	if (pid < 0)
		fail("fork");
	if (!pid) {
		execvp(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid)
		fail("waitpid");
	printf("elapsed_ns=%llu rc=%d\n", (unsigned long long)(now_ns() - t0),
	       WIFEXITED(status) ? WEXITSTATUS(status) : 128);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

/* -- faults of two threads on one region ---------------------------------- */
struct par_slice {
	const uint8_t *mem;
	size_t pages;
	int cpu;
	pthread_barrier_t *start;
};

static void *par_sweep(void *arg)
{
	struct par_slice *sl = arg;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(sl->cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		fail("sched_setaffinity");
	pthread_barrier_wait(sl->start);
	touch_read(sl->mem, sl->pages);
	return NULL;
}

/* Wall ns per fault of a read sweep over @r by @threads threads. */
static uint64_t par_round(struct rc_region *r, size_t pages, int threads,
			  int round)
{
	struct par_slice sl[2];
	struct ramcrypt_stats a, b;
	pthread_barrier_t start;
	pthread_t tid[2];
	uint64_t t0, t, faults;

	pthread_barrier_init(&start, NULL, threads + 1);
	rc_stats(r->fd, &a);
	for (int i = 0; i < threads; i++) {
		sl[i] = (struct par_slice){
			.mem = r->mem + i * (pages / threads) * PAGE,
			.pages = pages / threads, .cpu = i, .start = &start,
		};
		if (pthread_create(&tid[i], NULL, par_sweep, &sl[i]))
			fail("pthread_create");
	}
	pthread_barrier_wait(&start);
	t0 = now_ns();
	for (int i = 0; i < threads; i++)
		pthread_join(tid[i], NULL);
	t = now_ns() - t0;
	pthread_barrier_destroy(&start);
	rc_stats(r->fd, &b);
	faults = b.faults - a.faults;
	if (faults < pages || b.plaintext_pages > b.window_pages) {
		printf("FAIL parallel: faults=%llu for %zu pages, plaintext "
		       "%llu\n", (unsigned long long)faults, pages,
		       (unsigned long long)b.plaintext_pages);
		exit(1);
	}
	printf("round %d threads=%d: faults=%llu ns_per_fault=%llu "
	       "plaintext=%llu\n", round, threads, (unsigned long long)faults,
	       (unsigned long long)(t / faults),
	       (unsigned long long)b.plaintext_pages);
	return t / faults;
}

static int cmd_parallel(size_t pages, uint32_t window, int rounds)
{
	uint64_t one[MAX_ROUNDS], two[MAX_ROUNDS];
	struct rc_region r = rc_new(pages, window);

	fill(r.mem, pages, 0x3c3c);
	/* Untimed: after it every victim is clean (no encryption) */
	touch_read(r.mem, pages);
	for (int i = 0; i < rounds; i++) {
		one[i] = par_round(&r, pages, 1, i);
		two[i] = par_round(&r, pages, 2, i);
	}
	if (verify(r.mem, pages, 0x3c3c)) {
		printf("FAIL parallel: content changed\n");
		return 1;
	}
	rc_free(&r, pages);
	result("parallel_1", pages, one, rounds);
	result("parallel_2", pages, two, rounds);
	return 0;
}

int main(int argc, char **argv)
{
	size_t pages = argc > 2 ? strtoull(argv[2], NULL, 0) : 0;
	int rounds = argc > 3 ? atoi(argv[argc - 1]) : 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 2 && !strcmp(argv[1], "time"))
		return cmd_time(argv + 2);
	if (!pages || rounds < 1 || rounds > MAX_ROUNDS)
		goto usage;
	if (argc == 4 && !strcmp(argv[1], "anon"))
		return cmd_anon(pages, rounds);
	if (argc == 4 && !strcmp(argv[1], "zram"))
		return cmd_zram(pages, rounds);
	if (argc == 5 && !strcmp(argv[1], "window"))
		return cmd_window(pages, strtoul(argv[3], NULL, 0), rounds);
	if (argc == 5 && !strcmp(argv[1], "parallel"))
		return cmd_parallel(pages, strtoul(argv[3], NULL, 0), rounds);
usage:
	fprintf(stderr, "usage: see the comment at the top of rcbench.c\n");
	return 2;
}
