// SPDX-License-Identifier: GPL-2.0
/*
 * rcmem - exercise /dev/ramcrypt regions from tests.
 *
 *   rcmem stress THREADS OPS SIZE_MB [WINDOW]   random r/w/verify
 *   rcmem fork PAGES                            parent/child sharing
 *   rcmem munmap PAGES                          partial munmap, remap
 *   rcmem mremap PAGES                          move and shrink
 *   rcmem odirect DEV PAGES                     O_DIRECT into/out of region
 *                                               (also into pages mapped
 *                                               read-only)
 *   rcmem bad                                   invalid uses -> errno
 *   rcmem touch PAGES [WINDOW]                  write every page (SIGBUS?)
 *   rcmem read PAGES                            read page 0 (SIGBUS?)
 *   rcmem capclean                              at max_memory_mb=1, window
 *                                               128: a clean frame goes when
 *                                               dirty ones cannot be stored
 *   rcmem age PAGES HOT_MS                      keep PAGES hot for HOT_MS,
 *                                               then time how long until
 *                                               no plaintext is left
 *
 * Every command prints key=value words and "stats: ..." of its region, and
 * exits 0 on success, 1 on a failed check ("FAIL ..." on stderr).
 * A SIGBUS prints "sigbus page=N" and exits 3.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
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

#define PAGE 4096UL
#define WORDS (PAGE / 8)

static volatile uint8_t *sigbus_base;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	char buf[64];
	int n;

	(void)sig;
	(void)uc;
	n = snprintf(buf, sizeof(buf), "sigbus page=%ld\n",
		     sigbus_base ? (long)(((uint8_t *)si->si_addr -
				   (uint8_t *)sigbus_base) / PAGE) : -1L);
	if (write(1, buf, n) < 0)
		_exit(4);
	_exit(3);
}

static void fail(const char *what)
{
	fprintf(stderr, "FAIL %s (errno %s)\n", what, strerrorname_np(errno));
	exit(1);
}

static int rc_open(void)
{
	int fd = open(RAMCRYPT_DEVICE_PATH, O_RDWR);

	if (fd < 0)
		fail("open /dev/ramcrypt");
	return fd;
}

static void rc_set_window(int fd, uint32_t w)
{
	if (w && ioctl(fd, RAMCRYPT_IOC_SET_WINDOW, &w))
		fail("SET_WINDOW");
}

static uint8_t *rc_map(int fd, size_t pages, uint32_t window)
{
	uint64_t size = pages * PAGE;
	uint8_t *p;

	if (ioctl(fd, RAMCRYPT_IOC_SET_SIZE, &size))
		fail("SET_SIZE");
	rc_set_window(fd, window);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		fail("mmap");
	sigbus_base = p;
	return p;
}

static void print_stats(int fd)
{
	struct ramcrypt_stats st;

	if (ioctl(fd, RAMCRYPT_IOC_STATS, &st))
		fail("STATS");
	printf("stats: window=%u size=%llu plaintext=%llu encrypted=%llu "
	       "faults=%llu ev_window=%llu ev_age=%llu ev_flush=%llu "
	       "skipped=%llu oldest_ms=%llu overflows=%llu crypto_errors=%llu "
	       "memory=%llu region=%llu ev_clean=%llu ev_ahead=%llu "
	       "refaults=%llu\n", st.window_pages,
	       (unsigned long long)st.size,
	       (unsigned long long)st.plaintext_pages,
	       (unsigned long long)st.encrypted_pages,
	       (unsigned long long)st.faults,
	       (unsigned long long)st.evictions_window,
	       (unsigned long long)st.evictions_age,
	       (unsigned long long)st.evictions_flush,
	       (unsigned long long)st.skipped_referenced,
	       (unsigned long long)st.oldest_plaintext_age_ms,
	       (unsigned long long)st.window_overflows,
	       (unsigned long long)st.crypto_errors,
	       (unsigned long long)st.memory_pages,
	       (unsigned long long)st.region_id,
	       (unsigned long long)st.evictions_clean,
	       (unsigned long long)st.evictions_ahead,
	       (unsigned long long)st.refaults);
	fflush(stdout);
}

/* Page content for (page, seed); seed 0 = never written = zeros. */
static void fill(uint8_t *p, uint64_t page, uint64_t seed)
{
	uint64_t *w = (uint64_t *)p;

	for (size_t i = 0; i < WORDS; i++)
		w[i] = seed ? mix(seed * 0x9E3779B97F4A7C15ULL + page * WORDS + i)
			    : 0;
}

static int check(const uint8_t *p, uint64_t page, uint64_t seed)
{
	const uint64_t *w = (const uint64_t *)p;

	for (size_t i = 0; i < WORDS; i++) {
		uint64_t want = seed ?
			mix(seed * 0x9E3779B97F4A7C15ULL + page * WORDS + i) : 0;

		if (w[i] != want)
			return 0;
	}
	return 1;
}

/* -- stress ------------------------------------------------------------ */
struct worker {
	pthread_t tid;
	int id, nthreads;
	uint8_t *mem;
	size_t pages;
	uint64_t ops, mismatches, rng;
	uint64_t *seeds;	/* per owned page */
};

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void *stress_thread(void *arg)
{
	struct worker *w = arg;
	size_t owned = (w->pages - w->id + w->nthreads - 1) / w->nthreads;

	for (uint64_t n = 0; n < w->ops; n++) {
		uint64_t r = rnd(&w->rng);
		size_t slot = r % owned;
		size_t page = slot * w->nthreads + w->id;
		uint8_t *p = w->mem + page * PAGE;

		switch ((r >> 32) % 4) {
		case 0:	/* write the whole page */
			w->seeds[slot] = (r >> 8) | 1;
			fill(p, page, w->seeds[slot]);
			break;
		case 1: {	/* write one word, keep the pattern */
			size_t i = (r >> 40) % WORDS;
			uint64_t *q = (uint64_t *)p;

			q[i] = w->seeds[slot] ?
				mix(w->seeds[slot] * 0x9E3779B97F4A7C15ULL +
				    page * WORDS + i) : 0;
			break;
		}
		case 2:	/* read any page (another thread's too) */
			(void)*(volatile uint64_t *)(w->mem +
						     ((r >> 16) % w->pages) * PAGE);
			/* and verify our own */
			__attribute__((fallthrough));
		default:
			if (!check(p, page, w->seeds[slot])) {
				if (w->mismatches++ < 5)
					fprintf(stderr, "mismatch page %zu\n",
						page);
			}
		}
	}
	/* Final full verify of owned pages. */
	for (size_t slot = 0; slot < owned; slot++) {
		size_t page = slot * w->nthreads + w->id;

		if (!check(w->mem + page * PAGE, page, w->seeds[slot]))
			w->mismatches++;
	}
	return NULL;
}

static int cmd_stress(int nthreads, uint64_t ops, size_t size_mb,
		      uint32_t window)
{
	size_t pages = size_mb << 8;
	int fd = rc_open();
	uint8_t *mem = rc_map(fd, pages, window);
	struct worker *w = calloc(nthreads, sizeof(*w));
	uint64_t mism = 0;

	for (int i = 0; i < nthreads; i++) {
		w[i].id = i;
		w[i].nthreads = nthreads;
		w[i].mem = mem;
		w[i].pages = pages;
		w[i].ops = ops / nthreads;
		w[i].rng = 0x1234567ULL * (i + 1) + (uint64_t)getpid();
		w[i].seeds = calloc(pages / nthreads + 1, sizeof(uint64_t));
		if (pthread_create(&w[i].tid, NULL, stress_thread, &w[i]))
			fail("pthread_create");
	}
	for (int i = 0; i < nthreads; i++) {
		pthread_join(w[i].tid, NULL);
		mism += w[i].mismatches;
	}
	printf("ops=%llu mismatches=%llu\n", (unsigned long long)ops,
	       (unsigned long long)mism);
	print_stats(fd);
	return mism ? 1 : 0;
}

/* -- fork / munmap / mremap ---------------------------------------------- */
static int verify_range(const uint8_t *p, size_t first, size_t n,
			uint64_t seed, const char *what)
{
	for (size_t i = 0; i < n; i++) {
		if (!check(p + i * PAGE, first + i, seed)) {
			fprintf(stderr, "FAIL %s: page %zu\n", what, first + i);
			return 0;
		}
	}
	return 1;
}

static int cmd_fork(size_t pages)
{
	int fd = rc_open(), status;
	uint8_t *mem = rc_map(fd, pages, 0);
	pid_t pid;

	for (size_t i = 0; i < pages; i++)
		fill(mem + i * PAGE, i, 7);
	pid = fork();
	if (pid < 0)
		fail("fork");
	if (!pid) {
		if (!verify_range(mem, 0, pages, 7, "child sees parent data"))
			_exit(1);
		for (size_t i = 0; i < pages; i += 2)
			fill(mem + i * PAGE, i, 9);
		_exit(0);
	}
	/* The parent keeps touching pages meanwhile (both evict). */
	for (size_t i = 1; i < pages; i += 2)
		if (!check(mem + i * PAGE, i, 7))
			fail("parent during child");
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		fail("child");
	for (size_t i = 0; i < pages; i++)
		if (!check(mem + i * PAGE, i, i % 2 ? 7 : 9)) {
			fprintf(stderr, "FAIL parent sees child write %zu\n", i);
			return 1;
		}
	printf("fork: ok\n");
	print_stats(fd);
	return 0;
}

static int cmd_munmap(size_t pages)
{
	int fd = rc_open();
	uint8_t *mem = rc_map(fd, pages, 0), *mid;
	size_t a = pages / 4, b = pages / 2;

	for (size_t i = 0; i < pages; i++)
		fill(mem + i * PAGE, i, 11);
	/* Punch the middle out of the mapping (splits the VMA). */
	if (munmap(mem + a * PAGE, (b - a) * PAGE))
		fail("munmap");
	if (!verify_range(mem, 0, a, 11, "head after munmap") ||
	    !verify_range(mem + b * PAGE, b, pages - b, 11, "tail after munmap"))
		return 1;
	if (ioctl(fd, RAMCRYPT_IOC_FLUSH))
		fail("FLUSH");
	/* Map the middle again elsewhere: the region kept its data. */
	mid = mmap(NULL, (b - a) * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
		   fd, a * PAGE);
	if (mid == MAP_FAILED)
		fail("mmap middle");
	if (!verify_range(mid, a, b - a, 11, "middle remapped"))
		return 1;
	/* Write through one mapping, read through another (same page). */
	fill(mid, a, 13);
	if (munmap(mem, a * PAGE) || munmap(mem + b * PAGE, (pages - b) * PAGE))
		fail("munmap rest");
	mem = mmap(NULL, pages * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED)
		fail("mmap read-only");
	if (!check(mem + a * PAGE, a, 13) ||
	    !verify_range(mem + (a + 1) * PAGE, a + 1, pages - a - 1, 11,
			  "second mapping"))
		return 1;
	printf("munmap: ok\n");
	print_stats(fd);
	return 0;
}

static int cmd_mremap(size_t pages)
{
	int fd = rc_open();
	uint8_t *mem = rc_map(fd, pages, 0), *to, *moved;

	for (size_t i = 0; i < pages; i++)
		fill(mem + i * PAGE, i, 17);
	/* Reserve a destination, then move the whole mapping there. */
	to = mmap(NULL, pages * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		  -1, 0);
	if (to == MAP_FAILED)
		fail("mmap destination");
	moved = mremap(mem, pages * PAGE, pages * PAGE,
		       MREMAP_MAYMOVE | MREMAP_FIXED, to);
	if (moved != to)
		fail("mremap move");
	if (!verify_range(moved, 0, pages, 17, "after move"))
		return 1;
	for (size_t i = 0; i < pages; i += 3)
		fill(moved + i * PAGE, i, 19);
	/* Shrink in place. */
	if (mremap(moved, pages * PAGE, pages / 2 * PAGE, 0) != moved)
		fail("mremap shrink");
	for (size_t i = 0; i < pages / 2; i++)
		if (!check(moved + i * PAGE, i, i % 3 ? 17 : 19)) {
			fprintf(stderr, "FAIL after shrink: page %zu\n", i);
			return 1;
		}
	/* Growing past the mapping is refused (VM_DONTEXPAND). */
	if (mremap(moved, pages / 2 * PAGE, pages * 2 * PAGE, 0) != MAP_FAILED)
		fail("mremap grow succeeded");
	printf("mremap: ok\n");
	print_stats(fd);
	return 0;
}

/* -- O_DIRECT --------------------------------------------------------------- */
static int cmd_odirect(const char *dev, size_t pages)
{
	int fd = rc_open(), bfd;
	uint8_t *mem = rc_map(fd, pages, 0), *anon;
	size_t len = pages * PAGE;

	anon = mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (anon == MAP_FAILED)
		fail("mmap anon");
	for (size_t i = 0; i < pages; i++)
		fill(anon + i * PAGE, i, 23);
	bfd = open(dev, O_RDWR | O_DIRECT);
	if (bfd < 0)
		fail("open disk O_DIRECT");
	if (pwrite(bfd, anon, len, 0) != (ssize_t)len || fsync(bfd))
		fail("pwrite disk");
	/* Disk -> region: DMA into GUP-pinned region pages. */
	if (ioctl(fd, RAMCRYPT_IOC_FLUSH))
		fail("FLUSH");
	if (pread(bfd, mem, len, 0) != (ssize_t)len)
		fail("pread into region");
	if (ioctl(fd, RAMCRYPT_IOC_FLUSH))
		fail("FLUSH");
	if (!verify_range(mem, 0, pages, 23, "O_DIRECT pread into region"))
		return 1;
	/* Region -> disk, then back through anonymous memory. */
	for (size_t i = 0; i < pages; i++)
		fill(mem + i * PAGE, i, 29);
	if (pwrite(bfd, mem, len, len) != (ssize_t)len || fsync(bfd))
		fail("pwrite from region");
	if (pread(bfd, anon, len, len) != (ssize_t)len)
		fail("pread back");
	if (!verify_range(anon, 0, pages, 29, "O_DIRECT pwrite from region"))
		return 1;
	/*
	 * Disk -> region pages that are resident and mapped read-only (clean
	 * frames): the GUP for the DMA must fault them writable (page_mkwrite),
	 * or the eviction would keep their old ciphertext. 16 pages at a time,
	 * well inside the window.
	 */
	if (ioctl(fd, RAMCRYPT_IOC_FLUSH))
		fail("FLUSH");
	for (size_t i = 0; i < pages; i += 16) {
		size_t n = pages - i < 16 ? pages - i : 16;
		uint64_t sum = 0;

		for (size_t j = 0; j < n; j++)
			sum += *(volatile uint64_t *)(mem + (i + j) * PAGE);
		__asm__ volatile("" : : "r"(sum));
		if (pread(bfd, mem + i * PAGE, n * PAGE, i * PAGE) !=
		    (ssize_t)(n * PAGE))
			fail("pread into read-mapped region pages");
	}
	if (ioctl(fd, RAMCRYPT_IOC_FLUSH))
		fail("FLUSH");
	if (!verify_range(mem, 0, pages, 23,
			  "O_DIRECT pread into read-mapped region pages"))
		return 1;
	printf("odirect: ok\n");
	print_stats(fd);
	return 0;
}

/* -- invalid uses ------------------------------------------------------------ */
static void expect_errno(const char *what, int ok, int want)
{
	if (ok || errno != want) {
		printf("%s: FAIL (got %s, want %s)\n", what,
		       ok ? "success" : strerrorname_np(errno),
		       strerrorname_np(want));
		exit(1);
	}
	printf("%s: %s\n", what, strerrorname_np(want));
}

static int cmd_bad(void)
{
	int fd = rc_open(), fd2 = rc_open();
	uint64_t size = 16 * PAGE;
	uint32_t w = 8;
	void *p;
	pid_t pid;
	int status;

	p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	expect_errno("map_private", p != MAP_FAILED, EINVAL);

	if (ioctl(fd, RAMCRYPT_IOC_SET_SIZE, &size))
		fail("SET_SIZE");
	p = mmap(NULL, 17 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	expect_errno("mmap_past_set_size", p != MAP_FAILED, EINVAL);
	p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 16 * PAGE);
	expect_errno("mmap_offset_past_size", p != MAP_FAILED, EINVAL);
	size = 32 * PAGE;
	expect_errno("set_size_twice", !ioctl(fd, RAMCRYPT_IOC_SET_SIZE, &size),
		     EBUSY);
	size = 100;
	expect_errno("set_size_unaligned",
		     !ioctl(fd2, RAMCRYPT_IOC_SET_SIZE, &size), EINVAL);

	/* The first mmap fixes the size. */
	p = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, 0);
	if (p == MAP_FAILED)
		fail("first mmap");
	p = mmap(NULL, 5 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, 0);
	expect_errno("mmap_past_first_mmap", p != MAP_FAILED, EINVAL);

	expect_errno("set_window_zero",
		     !ioctl(fd, RAMCRYPT_IOC_SET_WINDOW, &(uint32_t){0}),
		     EINVAL);
	pid = fork();
	if (!pid) {
		if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) ||
		    setresuid(65534, 65534, 65534))
			_exit(2);
		expect_errno("set_window_nonroot",
			     !ioctl(fd, RAMCRYPT_IOC_SET_WINDOW, &w), EPERM);
		/* Non-root may still use an open region. */
		if (ioctl(fd, RAMCRYPT_IOC_FLUSH))
			_exit(1);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		fail("non-root child");
	if (ioctl(fd, RAMCRYPT_IOC_SET_WINDOW, &w))
		fail("SET_WINDOW as root");
	printf("bad: ok\n");
	return 0;
}

static void install_sigbus(void)
{
	struct sigaction sa = { .sa_sigaction = on_sigbus,
				.sa_flags = SA_SIGINFO };

	sigaction(SIGBUS, &sa, NULL);
}

static int cmd_touch(size_t pages, uint32_t window)
{
	int fd = rc_open();
	uint8_t *mem = rc_map(fd, pages, window);

	install_sigbus();
	for (size_t i = 0; i < pages; i++)
		fill(mem + i * PAGE, i, 31);
	if (!verify_range(mem, 0, pages, 31, "touch"))
		return 1;
	printf("touch: ok\n");
	print_stats(fd);
	return 0;
}

static int cmd_read(size_t pages)
{
	int fd = rc_open();
	uint8_t *mem = rc_map(fd, pages, 0);
	volatile uint64_t v;

	install_sigbus();
	v = *(volatile uint64_t *)mem;
	printf("read: value=%llu\n", (unsigned long long)v);
	return 0;
}

/*
 * At the memory cap (the test loads the module with max_memory_mb=1: 256
 * pages of frames and ciphertext) with a window of 128 frames, a fault
 * that needs room evicts a clean frame when no dirty one can be stored
 * (each would need a new ciphertext page). Write pages 0..127 (128
 * frames), then 128..254 (127 first evictions, each a new ciphertext
 * page: 255 pages), read page 0 back (one more first eviction: 256; page
 * 0 is now clean), write page 255: only page 0's frame can go. Pages
 * 128..255 read back right; page 0 then faults with SIGBUS (every frame
 * dirty, the cap reached).
 */
static int cmd_capclean(void)
{
	int fd = rc_open();
	uint8_t *mem = rc_map(fd, 256, 128);

	install_sigbus();
	for (size_t p = 0; p < 255; p++)
		fill(mem + p * PAGE, p, 7);
	if (!check(mem, 0, 7))
		fail("page 0 read back");
	printf("page0=clean\n");
	fill(mem + 255 * PAGE, 255, 7);
	printf("page255=written\n");
	for (size_t p = 128; p < 256; p++)
		if (!check(mem + p * PAGE, p, 7))
			fail("pages 128..255 read back");
	printf("verified\n");
	print_stats(fd);
	return check(mem, 0, 7) ? 0 : 1;	/* SIGBUS expected */
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * The time bound, seen from the process: write PAGES pages, read them
 * over and over for HOT_MS (every age scan unmaps them, every sweep
 * faults them back in), then stop and poll the region's plaintext_pages
 * (resident and stale frames) every 2 ms until it is 0. Prints
 * "idle_ms=N": from the last access to no plaintext left.
 */
static int cmd_age(size_t pages, uint64_t hot_ms)
{
	int fd = rc_open();
	uint8_t *mem = rc_map(fd, pages, 0);
	uint64_t t0, last, sum = 0;
	struct ramcrypt_stats st;

	for (size_t p = 0; p < pages; p++)
		fill(mem + p * PAGE, p, 1);
	t0 = now_ms();
	do {
		for (size_t p = 0; p < pages; p++)
			sum += *(volatile uint64_t *)(mem + p * PAGE);
		last = now_ms();
	} while (last - t0 < hot_ms);
	for (;;) {
		if (ioctl(fd, RAMCRYPT_IOC_STATS, &st))
			fail("STATS");
		if (!st.plaintext_pages || now_ms() - last > 10000)
			break;
		usleep(2000);
	}
	printf("idle_ms=%llu sum=%llx\n", (unsigned long long)(now_ms() - last),
	       (unsigned long long)sum);
	print_stats(fd);
	return st.plaintext_pages ? 1 : 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 5 && !strcmp(argv[1], "stress"))
		return cmd_stress(atoi(argv[2]), strtoull(argv[3], NULL, 0),
				  strtoull(argv[4], NULL, 0),
				  argc > 5 ? atoi(argv[5]) : 0);
	if (argc == 3 && !strcmp(argv[1], "fork"))
		return cmd_fork(strtoull(argv[2], NULL, 0));
	if (argc == 3 && !strcmp(argv[1], "munmap"))
		return cmd_munmap(strtoull(argv[2], NULL, 0));
	if (argc == 3 && !strcmp(argv[1], "mremap"))
		return cmd_mremap(strtoull(argv[2], NULL, 0));
	if (argc == 4 && !strcmp(argv[1], "odirect"))
		return cmd_odirect(argv[2], strtoull(argv[3], NULL, 0));
	if (argc == 2 && !strcmp(argv[1], "bad"))
		return cmd_bad();
	if (argc >= 3 && !strcmp(argv[1], "touch"))
		return cmd_touch(strtoull(argv[2], NULL, 0),
				 argc > 3 ? atoi(argv[3]) : 0);
	if (argc == 2 && !strcmp(argv[1], "capclean"))
		return cmd_capclean();
	if (argc == 4 && !strcmp(argv[1], "age"))
		return cmd_age(strtoul(argv[2], NULL, 0),
			       strtoull(argv[3], NULL, 0));
	if (argc == 3 && !strcmp(argv[1], "read"))
		return cmd_read(strtoull(argv[2], NULL, 0));
	fprintf(stderr, "usage: see the comment at the top of rcmem.c\n");
	return 2;
}
