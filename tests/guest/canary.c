// SPDX-License-Identifier: GPL-2.0
/*
 * canary - fill memory with known pages so a RAM dump can be searched for
 * them (generator shared with tests/harness/memsearch.py).
 *
 *   canary [--file PATH] [--sweep] [--hold] SET_ID COUNT
 *   canary --print SET_ID INDEX     (one page to stdout, for tests)
 *
 * Writes COUNT canary pages of set SET_ID into anonymous memory, or into a
 * MAP_SHARED mapping of PATH (e.g. /dev/ramcrypt). Then prints "ready" and,
 * with --sweep, keeps reading and re-writing every page (verifying each);
 * otherwise sleeps until killed. Exits 1 on a verify mismatch.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096

static void canary_page(uint8_t *p, uint64_t set_id, uint64_t index)
{
	uint64_t x = set_id * 0x9E3779B97F4A7C15ull + index + 1;
	uint64_t w;

	if (!x)
		x = 1;
	memcpy(p, "RCCANARY", 8);
	memcpy(p + 8, &set_id, 8);
	memcpy(p + 16, &index, 8);
	for (size_t off = 24; off + 8 <= PAGE; off += 8) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		w = x * 0x2545F4914F6CDD1Dull;
		memcpy(p + off, &w, 8);
	}
}

int main(int argc, char **argv)
{
	const char *file = NULL;
	int sweep = 0, i = 1;
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
		else if (strcmp(argv[i], "--hold")) {
			fprintf(stderr, "canary: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	if (argc - i != 2) {
		fprintf(stderr, "usage: canary [--file PATH] [--sweep] SET_ID COUNT\n");
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
		mem = mmap(NULL, count * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
			   fd, 0);
	} else {
		mem = mmap(NULL, count * PAGE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	}
	if (mem == MAP_FAILED) {
		fprintf(stderr, "canary: mmap: %s\n", strerror(errno));
		return 1;
	}
	for (uint64_t n = 0; n < count; n++)
		canary_page(mem + n * PAGE, set_id, n);
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		if (!sweep) {
			pause();
			continue;
		}
		for (uint64_t n = 0; n < count; n++) {
			canary_page(want, set_id, n);
			if (memcmp(mem + n * PAGE, want, PAGE)) {
				fprintf(stderr, "canary: page %llu corrupted\n",
					(unsigned long long)n);
				return 1;
			}
			memcpy(mem + n * PAGE, want, PAGE);
		}
		if (++pass % 16 == 0) {
			printf("pass %llu\n", (unsigned long long)pass);
			fflush(stdout);
		}
	}
}
