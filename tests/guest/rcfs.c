// SPDX-License-Identifier: GPL-2.0
/*
 * rcfs - exercise ramcryptfs files (regions as files) from tests.
 *
 *   rcfs create PATH BYTES         O_CREAT|O_EXCL, ftruncate to BYTES
 *   rcfs fill PATH SEED            map it whole, write a pattern, FLUSH
 *   rcfs verify PATH SEED [ZFROM ZTO]
 *                                  read it back: the pattern, zeros in
 *                                  pages [ZFROM, ZTO) (a punched hole)
 *   rcfs punch PATH OFFSET LEN     fallocate(PUNCH_HOLE | KEEP_SIZE)
 *   rcfs truncate PATH BYTES       ftruncate of an existing file
 *   rcfs bad PATH                  invalid uses -> errno (makes PATH)
 *   rcfs unlink PATH               unlink while mapped: the region stays
 *                                  until munmap + close, then goes
 *   rcfs punchrace PATH SECS       two threads write a token through one
 *                                  mapping and read it back through a
 *                                  second while a third punches pages:
 *                                  a read with no punch since the write
 *                                  must see the token (a fault racing a
 *                                  punch must not map an orphaned frame)
 *   rcfs dirpolicy DIR WINDOW AGE_MS EVICT_AHEAD CPU
 *                                  RAMCRYPT_IOC_SET_DIR_POLICY on DIR
 *   rcfs dirpolicy DIR             RAMCRYPT_IOC_GET_DIR_POLICY: prints it
 *   rcfs rename OLD NEW            rename(2) (busybox mv copies on EXDEV)
 *   rcfs as UID GID PROG [ARG...]  exec PROG as UID:GID, no other groups
 *
 * Each prints key=value words, "stats: ..." of the region, and exits 0,
 * or 1 on a failed check ("FAIL ..." on stderr); a system call that fails
 * prints "errno=NAME" and exits 2.
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
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <uapi/ramcrypt.h>

#include "mix64.h"

#define PAGE 4096UL
#define WORDS (PAGE / 8)

static void fail(const char *what)
{
	fprintf(stderr, "FAIL %s (errno %s)\n", what, strerrorname_np(errno));
	exit(1);
}

static void sys_fail(const char *what)
{
	printf("%s: errno=%s\n", what, strerrorname_np(errno));
	exit(2);
}

static struct ramcrypt_stats stats_of(int fd)
{
	struct ramcrypt_stats st;

	memset(&st, 0, sizeof(st));
	if (ioctl(fd, RAMCRYPT_IOC_STATS, &st))
		fail("RAMCRYPT_IOC_STATS");
	return st;
}

static void print_stats(int fd)
{
	struct ramcrypt_stats st = stats_of(fd);

	printf("stats: id=%llu size=%llu window=%u plaintext=%llu encrypted=%llu memory=%llu faults=%llu\n",
	       (unsigned long long)st.region_id,
	       (unsigned long long)st.size, st.window_pages,
	       (unsigned long long)st.plaintext_pages,
	       (unsigned long long)st.encrypted_pages,
	       (unsigned long long)st.memory_pages,
	       (unsigned long long)st.faults);
}

static int open_file(const char *path, int flags)
{
	int fd = open(path, flags | O_RDWR, 0600);

	if (fd < 0)
		sys_fail("open");
	return fd;
}

static uint64_t size_of(int fd)
{
	struct stat sb;

	if (fstat(fd, &sb))
		fail("fstat");
	return sb.st_size;
}

static uint64_t *map_all(int fd, uint64_t size)
{
	void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			 0);

	if (mem == MAP_FAILED)
		sys_fail("mmap");
	return mem;
}

static uint64_t word(uint64_t seed, uint64_t page, uint64_t i)
{
	return mix(seed ^ (page << 12) ^ i) | 1;	/* never zero */
}

static int cmd_create(const char *path, uint64_t bytes)
{
	int fd = open_file(path, O_CREAT | O_EXCL);
	struct statfs sfs;

	if (fstatfs(fd, &sfs))
		fail("fstatfs");
	if (sfs.f_type != RAMCRYPTFS_MAGIC) {
		fprintf(stderr, "FAIL %s is on no ramcryptfs (f_type %lx)\n",
			path, (unsigned long)sfs.f_type);
		return 1;
	}
	if (ftruncate(fd, bytes))
		sys_fail("ftruncate");
	printf("created size=%llu\n", (unsigned long long)size_of(fd));
	print_stats(fd);
	return 0;
}

static int cmd_fill(const char *path, uint64_t seed)
{
	int fd = open_file(path, 0);
	uint64_t size = size_of(fd), pages = size / PAGE;
	uint64_t *mem = map_all(fd, size);

	for (uint64_t p = 0; p < pages; p++)
		for (uint64_t i = 0; i < WORDS; i++)
			mem[p * WORDS + i] = word(seed, p, i);
	if (ioctl(fd, RAMCRYPT_IOC_FLUSH))
		fail("RAMCRYPT_IOC_FLUSH");
	printf("filled pages=%llu\n", (unsigned long long)pages);
	print_stats(fd);
	return 0;
}

static int cmd_verify(const char *path, uint64_t seed, uint64_t zfrom,
		      uint64_t zto)
{
	int fd = open_file(path, 0);
	uint64_t size = size_of(fd), pages = size / PAGE;
	uint64_t *mem = map_all(fd, size);
	uint64_t bad = 0, zeros = 0;

	for (uint64_t p = 0; p < pages; p++) {
		int hole = p >= zfrom && p < zto;

		for (uint64_t i = 0; i < WORDS; i++) {
			uint64_t want = hole ? 0 : word(seed, p, i);

			if (mem[p * WORDS + i] != want) {
				bad++;
				break;
			}
		}
		zeros += hole;
	}
	printf("verify pages=%llu zero_pages=%llu mismatches=%llu\n",
	       (unsigned long long)pages, (unsigned long long)zeros,
	       (unsigned long long)bad);
	print_stats(fd);
	return bad ? 1 : 0;
}

static int cmd_punch(const char *path, uint64_t off, uint64_t len)
{
	int fd = open_file(path, 0);

	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len))
		sys_fail("punch");
	printf("punched size=%llu\n", (unsigned long long)size_of(fd));
	print_stats(fd);
	return 0;
}

static int cmd_truncate(const char *path, uint64_t bytes)
{
	int fd = open_file(path, 0);

	if (ftruncate(fd, bytes))
		sys_fail("ftruncate");
	printf("truncated size=%llu\n", (unsigned long long)size_of(fd));
	print_stats(fd);
	return 0;
}

static const char *result(int ret)
{
	return ret ? strerrorname_np(errno) : "ok";
}

static sigjmp_buf sigbus_jmp;

static void on_sigbus(int sig)
{
	(void)sig;
	siglongjmp(sigbus_jmp, 1);
}

/* Read one word at @p: "sigbus" or its value */
static const char *probe(volatile uint64_t *p)
{
	static char buf[32];

	if (sigsetjmp(sigbus_jmp, 1))
		return "sigbus";
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)*p);
	return buf;
}

static int cmd_bad(const char *path)
{
	int fd = open_file(path, O_CREAT | O_EXCL);
	uint64_t size64 = 8 * PAGE;
	uint64_t *mem;
	void *priv;

	signal(SIGBUS, on_sigbus);
	printf("ftruncate_unaligned: %s\n", result(ftruncate(fd, PAGE + 1)));
	printf("ftruncate_negative: %s\n", result(ftruncate(fd, -(off_t)PAGE)));
	printf("set_size_ioctl: %s\n",
	       result(ioctl(fd, RAMCRYPT_IOC_SET_SIZE, &size64)));
	if (ftruncate(fd, 4 * PAGE))
		fail("ftruncate 4 pages");
	priv = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	printf("map_private: %s\n", priv == MAP_FAILED ?
	       strerrorname_np(errno) : "mapped");
	priv = mmap(NULL, 4 * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	printf("map_private_ro: %s\n", priv == MAP_FAILED ?
	       strerrorname_np(errno) : "mapped");
	printf("punch_unaligned: %s\n",
	       result(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				100, PAGE)));
	printf("fallocate_alloc: %s\n", result(fallocate(fd, 0, 0, PAGE)));
	printf("read_syscall: %s\n",
	       result(read(fd, &size64, sizeof(size64)) < 0 ? -1 : 0));
	/* Mapped past the end: allowed, as other files; the fault SIGBUSes */
	mem = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED)
		fail("mmap past the end");
	mem[0] = 42;
	printf("page0: %s\n", probe(mem));
	printf("past_end: %s\n", probe(mem + 5 * WORDS));
	/* Shrunk under the mapping: the page is gone, the fault SIGBUSes */
	if (ftruncate(fd, 0))
		fail("ftruncate 0");
	printf("after_shrink: %s\n", probe(mem));
	if (ftruncate(fd, 4 * PAGE))
		fail("ftruncate 4 pages again");
	printf("regrown_page0: %s\n", probe(mem));
	print_stats(fd);
	munmap(mem, 8 * PAGE);
	close(fd);
	if (unlink(path))
		fail("unlink");
	printf("bad: ok\n");
	return 0;
}

static int region_dir_exists(uint64_t id)
{
	char dir[80];
	struct stat sb;

	snprintf(dir, sizeof(dir), "/sys/kernel/ramcrypt/regions/%llu",
		 (unsigned long long)id);
	return !stat(dir, &sb);
}

static int cmd_unlink(const char *path)
{
	int fd = open_file(path, O_CREAT | O_EXCL);
	uint64_t *mem, id;

	if (ftruncate(fd, 16 * PAGE))
		fail("ftruncate");
	mem = map_all(fd, 16 * PAGE);
	for (uint64_t i = 0; i < 16 * WORDS; i++)
		mem[i] = word(7, i / WORDS, i % WORDS);
	id = stats_of(fd).region_id;
	close(fd);
	if (unlink(path))
		fail("unlink");
	printf("after_unlink_mapped: region %s\n",
	       region_dir_exists(id) ? "present" : "gone");
	printf("content: %s\n", mem[17] == word(7, 0, 17) ? "intact" : "lost");
	munmap(mem, 16 * PAGE);
	printf("after_munmap: region %s\n",
	       region_dir_exists(id) ? "present" : "gone");
	return 0;
}

/* punchrace: the file's pages are few, so faults and punches meet */
#define RACE_WRITERS 2

struct race {
	int fd;
	uint64_t pages;
	volatile uint64_t *a, *b;	/* two mappings of the file */
	uint64_t seq;			/* odd while a punch runs */
	int stop;
	uint64_t checks[RACE_WRITERS], skipped[RACE_WRITERS];
	uint64_t mismatches[RACE_WRITERS], punches;
};

struct race_thread {
	struct race *r;
	int t;				/* its word in each page */
};

static void *race_writer(void *arg)
{
	struct race_thread *rt = arg;
	struct race *r = rt->r;
	int t = rt->t;
	uint64_t n = 0, rnd = mix(t + 1);

	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		uint64_t i, s1, s2, tok, got;

		rnd = mix(rnd);
		i = rnd % r->pages;
		tok = (uint64_t)(t + 1) << 56 | ++n;
		s1 = __atomic_load_n(&r->seq, __ATOMIC_SEQ_CST);
		if (s1 & 1) {
			r->skipped[t]++;
			continue;
		}
		r->a[i * WORDS + t] = tok;
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		got = r->b[i * WORDS + t];
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		s2 = __atomic_load_n(&r->seq, __ATOMIC_SEQ_CST);
		if (s1 != s2) {
			r->skipped[t]++;
			continue;
		}
		r->checks[t]++;
		if (got != tok && r->mismatches[t]++ < 3)
			printf("mismatch page=%llu wrote=%#llx read=%#llx\n",
			       (unsigned long long)i, (unsigned long long)tok,
			       (unsigned long long)got);
	}
	return NULL;
}

static int cmd_punchrace(const char *path, unsigned int secs)
{
	static struct race r;
	pthread_t th[RACE_WRITERS];
	struct race_thread args[RACE_WRITERS];
	uint64_t rnd = 12345, checks = 0, skipped = 0, bad = 0;
	time_t end = time(NULL) + secs;
	int t;

	r.fd = open_file(path, 0);
	r.pages = size_of(r.fd) / PAGE;
	if (!r.pages || r.pages < RACE_WRITERS)
		fail("punchrace needs a file of a few pages");
	r.a = map_all(r.fd, r.pages * PAGE);
	r.b = map_all(r.fd, r.pages * PAGE);
	for (t = 0; t < RACE_WRITERS; t++) {
		args[t].r = &r;
		args[t].t = t;
		if (pthread_create(&th[t], NULL, race_writer, &args[t]))
			fail("pthread_create");
	}
	while (time(NULL) < end) {
		struct timespec pause = { 0 };

		rnd = mix(rnd);
		__atomic_add_fetch(&r.seq, 1, __ATOMIC_SEQ_CST);
		if (fallocate(r.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      rnd % r.pages * PAGE, PAGE))
			sys_fail("punch");
		__atomic_add_fetch(&r.seq, 1, __ATOMIC_SEQ_CST);
		r.punches++;
		/*
		 * A pause of 0-400 us between punches, the CPU left to the
		 * writers: their read-backs mostly see no punch between (an
		 * orphan mapped by a racing fault lives until its page is
		 * punched again)
		 */
		pause.tv_nsec = (long)(rnd >> 40) % 400000;
		nanosleep(&pause, NULL);
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELAXED);
	for (t = 0; t < RACE_WRITERS; t++) {
		pthread_join(th[t], NULL);
		checks += r.checks[t];
		skipped += r.skipped[t];
		bad += r.mismatches[t];
	}
	printf("punchrace pages=%llu punches=%llu checks=%llu skipped=%llu mismatches=%llu\n",
	       (unsigned long long)r.pages, (unsigned long long)r.punches,
	       (unsigned long long)checks, (unsigned long long)skipped,
	       (unsigned long long)bad);
	print_stats(r.fd);
	return 0;
}

static int cmd_dirpolicy(int argc, char **argv)
{
	struct ramcrypt_dir_policy p;
	int fd = open(argv[2], O_RDONLY);

	if (fd < 0)
		sys_fail("open");
	memset(&p, 0, sizeof(p));
	if (argc == 3) {
		if (ioctl(fd, RAMCRYPT_IOC_GET_DIR_POLICY, &p))
			sys_fail("get");
		printf("policy window=%u age=%u evict_ahead=%u cpu=%d\n",
		       p.window_pages, p.max_plaintext_age_ms,
		       p.evict_ahead_pages, p.crypto_cpu);
		return 0;
	}
	p.window_pages = strtoul(argv[3], NULL, 0);
	p.max_plaintext_age_ms = strtoul(argv[4], NULL, 0);
	p.evict_ahead_pages = strtoul(argv[5], NULL, 0);
	p.crypto_cpu = strtol(argv[6], NULL, 0);
	if (ioctl(fd, RAMCRYPT_IOC_SET_DIR_POLICY, &p))
		sys_fail("set");
	printf("policy set\n");
	return 0;
}

static int cmd_as(uid_t uid, gid_t gid, char **argv)
{
	if (setgroups(0, NULL) || setgid(gid) || setuid(uid))
		fail("dropping privileges");
	execvp(argv[0], argv);
	fail("exec");
	return 1;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 5 && !strcmp(argv[1], "as"))
		return cmd_as(strtoul(argv[2], NULL, 0),
			      strtoul(argv[3], NULL, 0), argv + 4);
	if (argc == 4 && !strcmp(argv[1], "create"))
		return cmd_create(argv[2], strtoull(argv[3], NULL, 0));
	if (argc == 4 && !strcmp(argv[1], "fill"))
		return cmd_fill(argv[2], strtoull(argv[3], NULL, 0));
	if ((argc == 4 || argc == 6) && !strcmp(argv[1], "verify"))
		return cmd_verify(argv[2], strtoull(argv[3], NULL, 0),
				  argc == 6 ? strtoull(argv[4], NULL, 0) : 0,
				  argc == 6 ? strtoull(argv[5], NULL, 0) : 0);
	if (argc == 5 && !strcmp(argv[1], "punch"))
		return cmd_punch(argv[2], strtoull(argv[3], NULL, 0),
				 strtoull(argv[4], NULL, 0));
	if (argc == 4 && !strcmp(argv[1], "truncate"))
		return cmd_truncate(argv[2], strtoull(argv[3], NULL, 0));
	if (argc == 3 && !strcmp(argv[1], "bad"))
		return cmd_bad(argv[2]);
	if ((argc == 3 || argc == 7) && !strcmp(argv[1], "dirpolicy"))
		return cmd_dirpolicy(argc, argv);
	if (argc == 4 && !strcmp(argv[1], "punchrace"))
		return cmd_punchrace(argv[2], strtoul(argv[3], NULL, 0));
	if (argc == 3 && !strcmp(argv[1], "unlink"))
		return cmd_unlink(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "rename")) {
		if (rename(argv[2], argv[3]))
			sys_fail("rename");
		printf("renamed\n");
		return 0;
	}
	fprintf(stderr, "usage: see the comment at the top of rcfs.c\n");
	return 2;
}
