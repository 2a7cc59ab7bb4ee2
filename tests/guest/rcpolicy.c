// SPDX-License-Identifier: GPL-2.0
/*
 * rcpolicy - ramcrypt region policies and crypto CPUs, from tests.
 *
 *   rcpolicy region PAGES [--cpu N] [--verify] [--wait FILE] [--hold]
 *       Open a region of PAGES pages (pinned to CPU N), read its window
 *       before the first fault, write every page once (a word at each end)
 *       reading RAMCRYPT_IOC_STATS after each page, then (--verify) read
 *       them all back. Prints
 *         region: id=I window0=W max_plaintext=M pages=P mismatches=X
 *       --wait FILE: then print "waiting", wait until FILE exists and read
 *       every page again (a fault may get SIGBUS: "sigbus page=N", exit 3).
 *       --hold: then print "ready" and wait for a signal (the region stays
 *       open until this process dies).
 *       Ends with "stats: key=value ..." of the region.
 *   rcpolicy [--as-user UID] write PATH VALUE    write(2) VALUE to PATH
 *   rcpolicy [--as-user UID] mkdir PATH
 *       Print "ok" or "errno=NAME".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uapi/ramcrypt.h>

#define PAGE 4096UL

static sigjmp_buf bus_jmp;

static void on_sigbus(int sig)
{
	(void)sig;
	siglongjmp(bus_jmp, 1);
}

static uint64_t pattern(uint64_t page, int end)
{
	return 0x9e3779b97f4a7c15ULL * (page + 1) ^ (end ? 0xff00ff00ULL : 0);
}

static int stats(int fd, struct ramcrypt_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (ioctl(fd, RAMCRYPT_IOC_STATS, st) < 0) {
		perror("rcpolicy: RAMCRYPT_IOC_STATS");
		return -1;
	}
	return 0;
}

static void print_stats(int fd)
{
	struct ramcrypt_stats st;

	if (stats(fd, &st))
		return;
	printf("stats: abi=%u id=%llu window=%u plaintext=%llu encrypted=%llu "
	       "faults=%llu ev_ahead=%llu crypto_errors=%llu "
	       "crypto_cpu_errors=%llu\n",
	       st.abi_version, (unsigned long long)st.region_id,
	       st.window_pages, (unsigned long long)st.plaintext_pages,
	       (unsigned long long)st.encrypted_pages,
	       (unsigned long long)st.faults,
	       (unsigned long long)st.evictions_ahead,
	       (unsigned long long)st.crypto_errors,
	       (unsigned long long)st.crypto_cpu_errors);
}

/* Read every page back: mismatches, or -1 - page on SIGBUS */
static long verify(volatile uint64_t *mem, uint64_t pages)
{
	static volatile uint64_t at;
	long bad = 0;

	if (sigsetjmp(bus_jmp, 1))
		return -1 - (long)at;
	for (at = 0; at < pages; at++) {
		volatile uint64_t *p = mem + at * (PAGE / 8);

		bad += p[0] != pattern(at, 0);
		bad += p[PAGE / 8 - 1] != pattern(at, 1);
	}
	return bad;
}

/*
 * Write every page, the region's plaintext_pages read after each: its
 * maximum into *max_plain. 0, or -1 - page on SIGBUS.
 */
static long write_all(int fd, volatile uint64_t *mem, uint64_t pages,
		      uint64_t *max_plain)
{
	static volatile uint64_t at;
	struct ramcrypt_stats st;

	if (sigsetjmp(bus_jmp, 1))
		return -1 - (long)at;
	for (at = 0; at < pages; at++) {
		volatile uint64_t *p = mem + at * (PAGE / 8);

		p[0] = pattern(at, 0);
		p[PAGE / 8 - 1] = pattern(at, 1);
		if (stats(fd, &st))
			exit(1);
		if (st.plaintext_pages > *max_plain)
			*max_plain = st.plaintext_pages;
	}
	return 0;
}

static int region(int argc, char **argv)
{
	const char *wait_file = NULL;
	int cpu = -1, do_verify = 0, hold = 0, fd;
	uint64_t pages, max_plain = 0;
	struct ramcrypt_stats st;
	volatile uint64_t *mem;
	long bad = 0;
	uint32_t window0;

	if (argc < 1)
		return 2;
	pages = strtoull(argv[0], NULL, 0);
	for (int a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--cpu") && a + 1 < argc) {
			cpu = atoi(argv[++a]);
		} else if (!strcmp(argv[a], "--verify")) {
			do_verify = 1;
		} else if (!strcmp(argv[a], "--wait") && a + 1 < argc) {
			wait_file = argv[++a];
		} else if (!strcmp(argv[a], "--hold")) {
			hold = 1;
		} else {
			fprintf(stderr, "rcpolicy: unknown option '%s'\n",
				argv[a]);
			return 2;
		}
	}
	if (!pages) {
		fprintf(stderr, "rcpolicy: PAGES must be > 0\n");
		return 2;
	}
	if (cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set)) {
			perror("rcpolicy: sched_setaffinity");
			return 1;
		}
	}
	signal(SIGBUS, on_sigbus);
	fd = open(RAMCRYPT_DEVICE_PATH, O_RDWR);
	if (fd < 0) {
		perror("rcpolicy: open " RAMCRYPT_DEVICE_PATH);
		return 1;
	}
	mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
		   fd, 0);
	if (mem == MAP_FAILED) {
		perror("rcpolicy: mmap");
		return 1;
	}
	if (stats(fd, &st))
		return 1;
	window0 = st.window_pages;
	bad = write_all(fd, mem, pages, &max_plain);
	if (bad < 0) {
		printf("sigbus page=%ld (writing)\n", -1 - bad);
		print_stats(fd);
		return 3;
	}
	if (do_verify) {
		bad = verify(mem, pages);
		if (bad < 0) {
			printf("sigbus page=%ld\n", -1 - bad);
			print_stats(fd);
			return 3;
		}
	}
	if (stats(fd, &st))
		return 1;
	printf("region: id=%llu window0=%u max_plaintext=%llu pages=%llu "
	       "mismatches=%ld\n", (unsigned long long)st.region_id, window0,
	       (unsigned long long)max_plain, (unsigned long long)pages, bad);
	if (wait_file) {
		struct stat sb;

		print_stats(fd);
		printf("waiting\n");
		fflush(stdout);
		while (stat(wait_file, &sb))
			usleep(10000);
		bad = verify(mem, pages);
		if (bad < 0) {
			printf("sigbus page=%ld\n", -1 - bad);
			print_stats(fd);
			return 3;
		}
		printf("verified mismatches=%ld\n", bad);
	}
	print_stats(fd);
	if (hold) {
		printf("ready\n");
		fflush(stdout);
		for (;;)
			pause();
	}
	return bad ? 1 : 0;
}

static void result(int ret)
{
	if (ret < 0)
		printf("errno=%s\n", strerrorname_np(errno));
	else
		printf("ok\n");
}

int main(int argc, char **argv)
{
	int i = 1;

	if (argc > 2 && !strcmp(argv[1], "--as-user")) {
		uid_t uid = atoi(argv[2]);

		if (setgroups(0, NULL) || setresgid(uid, uid, uid) ||
		    setresuid(uid, uid, uid)) {
			perror("rcpolicy: dropping root");
			return 1;
		}
		i = 3;
	}
	if (argc - i >= 2 && !strcmp(argv[i], "region"))
		return region(argc - i - 1, argv + i + 1);
	if (argc - i == 3 && !strcmp(argv[i], "write")) {
		const char *val = argv[i + 2];
		int fd = open(argv[i + 1], O_WRONLY);

		if (fd < 0) {
			result(-1);
			return 0;
		}
		result(write(fd, val, strlen(val)) < 0 ? -1 : 0);
		return 0;
	}
	if (argc - i == 2 && !strcmp(argv[i], "mkdir")) {
		result(mkdir(argv[i + 1], 0755));
		return 0;
	}
	fprintf(stderr, "usage: rcpolicy region PAGES [--cpu N] [--verify] "
		"[--wait FILE] [--hold] | [--as-user UID] write PATH VALUE | "
		"[--as-user UID] mkdir PATH\n");
	return 2;
}
