// SPDX-License-Identifier: GPL-2.0
/*
 * canary - fill memory with known pages so a RAM dump can be searched for
 * them (generator shared with tests/harness/memsearch.py).
 *
 *   canary [--file PATH] [--sweep | --fault-on-usr1] [--hold] SET_ID COUNT
 *   canary --print SET_ID INDEX     (one page to stdout, for tests)
 *
 * Writes COUNT canary pages of set SET_ID into anonymous memory, or into a
 * MAP_SHARED mapping of PATH (e.g. /dev/ramcrypt). Then prints "ready" and,
 * with --sweep, keeps reading and re-writing every page (verifying each);
 * otherwise sleeps until killed. Exits 1 on a verify mismatch.
 *
 * --fault-on-usr1: the mapping has one more page, left unwritten. On
 * SIGUSR1, write canary COUNT into it (print "wrote-extra"), then read and
 * verify pages 0..COUNT-1 (print "verified" or exit 1). A SIGBUS prints
 * "sigbus page=N" and the process then sleeps, its memory kept, until
 * killed.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096

/*
 * Page INDEX of set SET_ID: "RCCANARY", set id, index, then xorshift64*
 * words. Generated word by word, so that checking a page needs no second
 * plaintext copy of it: a page-sized buffer (on the stack, say) would be
 * one more canary in the RAM dump, found whenever its two virtual pages
 * happen to sit on adjacent frames.
 */
struct canary_gen {
	uint64_t x;
};

static void canary_start(struct canary_gen *g, uint64_t set_id,
			 uint64_t index, uint64_t head[3])
{
	g->x = set_id * 0x9E3779B97F4A7C15ull + index + 1;
	if (!g->x)
		g->x = 1;
	memcpy(&head[0], "RCCANARY", 8);
	head[1] = set_id;
	head[2] = index;
}

static uint64_t canary_next(struct canary_gen *g)
{
	g->x ^= g->x >> 12;
	g->x ^= g->x << 25;
	g->x ^= g->x >> 27;
	return g->x * 0x2545F4914F6CDD1Dull;
}

static void canary_page(uint8_t *p, uint64_t set_id, uint64_t index)
{
	struct canary_gen g;
	uint64_t head[3], w;

	canary_start(&g, set_id, index, head);
	memcpy(p, head, sizeof(head));
	for (size_t off = sizeof(head); off + 8 <= PAGE; off += 8) {
		w = canary_next(&g);
		memcpy(p + off, &w, 8);
	}
}

/* 1 if p holds canary INDEX of SET_ID, compared a word at a time. */
static int canary_ok(const uint8_t *p, uint64_t set_id, uint64_t index)
{
	struct canary_gen g;
	uint64_t head[3], w;

	canary_start(&g, set_id, index, head);
	if (memcmp(p, head, sizeof(head)))
		return 0;
	for (size_t off = sizeof(head); off + 8 <= PAGE; off += 8) {
		w = canary_next(&g);
		if (memcmp(p + off, &w, 8))
			return 0;
	}
	return 1;
}

static uint8_t *sigbus_base;
static volatile sig_atomic_t got_usr1;
static sigset_t usr1_mask, wait_mask;

static void on_usr1(int sig)
{
	(void)sig;
	got_usr1 = 1;
}

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	char buf[48];
	int n;

	(void)sig;
	(void)uc;
	n = snprintf(buf, sizeof(buf), "sigbus page=%ld\n",
		     (long)(((uint8_t *)si->si_addr - sigbus_base) / PAGE));
	if (write(STDOUT_FILENO, buf, (size_t)n) < 0)
		_exit(4);
	for (;;)
		pause();
}

/* Wait for SIGUSR1, then fault as the comment at the top says. */
static int fault_on_usr1(uint8_t *mem, uint64_t set_id, uint64_t count)
{
	struct sigaction sa = { .sa_sigaction = on_sigbus,
				.sa_flags = SA_SIGINFO };
	sigbus_base = mem;
	if (sigaction(SIGBUS, &sa, NULL))
		return 1;
	while (!got_usr1)
		sigsuspend(&wait_mask);
	canary_page(mem + count * PAGE, set_id, count);
	printf("wrote-extra\n");
	fflush(stdout);
	for (uint64_t n = 0; n < count; n++) {
		if (!canary_ok(mem + n * PAGE, set_id, n)) {
			printf("page %llu corrupted\n", (unsigned long long)n);
			return 1;
		}
	}
	printf("verified\n");
	fflush(stdout);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	const char *file = NULL;
	int sweep = 0, usr1 = 0, i = 1;
	uint64_t set_id, count, pass = 0;
	uint8_t *mem, want[PAGE];

	if (argc == 4 && !strcmp(argv[1], "--print")) {
		canary_page(want, strtoull(argv[2], NULL, 0),
			    strtoull(argv[3], NULL, 0));
		return fwrite(want, PAGE, 1, stdout) == 1 ? 0 : 1;
	}
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--file") && i + 1 < argc)
			file = argv[++i];
		else if (!strcmp(argv[i], "--sweep"))
			sweep = 1;
		else if (!strcmp(argv[i], "--fault-on-usr1"))
			usr1 = 1;
		else if (strcmp(argv[i], "--hold")) {
			fprintf(stderr, "canary: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	if (argc - i != 2) {
		fprintf(stderr, "usage: canary [--file PATH] [--sweep | --fault-on-usr1] SET_ID COUNT\n");
		return 2;
	}
	set_id = strtoull(argv[i], NULL, 0);
	count = strtoull(argv[i + 1], NULL, 0);
	if (file) {
		int fd = open(file, O_RDWR);

		if (fd < 0) {
			fprintf(stderr, "canary: open %s: %s\n", file, strerror(errno));
			return 1;
		}
		mem = mmap(NULL, (count + usr1) * PAGE, PROT_READ | PROT_WRITE,
			   MAP_SHARED, fd, 0);
	} else {
		mem = mmap(NULL, (count + usr1) * PAGE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	}
	if (mem == MAP_FAILED) {
		fprintf(stderr, "canary: mmap: %s\n", strerror(errno));
		return 1;
	}
	if (usr1 && signal(SIGUSR1, on_usr1) == SIG_ERR)
		return 1;
	/* Held until fault_on_usr1 waits for it: no wake-up is lost */
	sigemptyset(&usr1_mask);
	sigaddset(&usr1_mask, SIGUSR1);
	if (usr1 && sigprocmask(SIG_BLOCK, &usr1_mask, &wait_mask))
		return 1;
	for (uint64_t n = 0; n < count; n++)
		canary_page(mem + n * PAGE, set_id, n);
	printf("ready\n");
	fflush(stdout);
	if (usr1)
		return fault_on_usr1(mem, set_id, count);
	for (;;) {
		if (!sweep) {
			pause();
			continue;
		}
		for (uint64_t n = 0; n < count; n++) {
			if (!canary_ok(mem + n * PAGE, set_id, n)) {
				fprintf(stderr, "canary: page %llu corrupted\n",
					(unsigned long long)n);
				return 1;
			}
			canary_page(mem + n * PAGE, set_id, n);
		}
		if (++pass % 16 == 0) {
			printf("pass %llu\n", (unsigned long long)pass);
			fflush(stdout);
		}
	}
}
