/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A tiny test framework for daemon/shared's unit tests. */
#ifndef RC_TEST_UTIL_H
#define RC_TEST_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int failures, checks;

#define CHECK(cond, ...) do {						\
	checks++;							\
	if (!(cond)) {							\
		failures++;						\
		printf("FAIL %s:%d: ", __FILE__, __LINE__);		\
		printf(__VA_ARGS__);					\
		printf("\n");						\
	}								\
} while (0)

#define CHECK_STR(got, want) do {					\
	const char *_g = (got), *_w = (want);				\
	CHECK(_g && strcmp(_g, _w) == 0, "got '%s', want '%s'",		\
	      _g ? _g : "(null)", _w);					\
} while (0)

#define CHECK_CONTAINS(got, needle) do {				\
	const char *_g = (got), *_n = (needle);				\
	CHECK(_g && strstr(_g, _n), "'%s' lacks '%s'",			\
	      _g ? _g : "(null)", _n);					\
} while (0)

/* tests/unit/fixtures/<name> ($RC_FIXTURES, set by make check). */
static inline char *fixture(const char *name)
{
	const char *base = getenv("RC_FIXTURES");
	static char buf[8][4096];
	static int i;
	char *p = buf[i++ % 8];

	if (!base) {
		fprintf(stderr, "RC_FIXTURES is not set (run make check)\n");
		exit(2);
	}
	snprintf(p, 4096, "%s/%s", base, name);
	return p;
}

/* A scratch root in $TMPDIR, removed by rm_tree(). */
static inline char *scratch_root(void)
{
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *p;

	if (asprintf(&p, "%s/rcshared-test.XXXXXX", tmp) < 0 || !mkdtemp(p)) {
		perror("mkdtemp");
		exit(2);
	}
	return p;
}

/* mkdir -p root/rel */
static inline void mkdirs(const char *root, const char *rel)
{
	char p[4096];

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	for (char *s = p + strlen(root) + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			mkdir(p, 0755);
			*s = '/';
		}
	mkdir(p, 0755);
}

/* write root/rel with content (parents made) */
static inline void put(const char *root, const char *rel, const char *content)
{
	char p[4096], d[4096];
	FILE *f;

	snprintf(d, sizeof(d), "%s", rel);
	if (strrchr(d, '/')) {
		*strrchr(d, '/') = '\0';
		mkdirs(root, d);
	}
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	f = fopen(p, "w");
	if (!f) {
		perror(p);
		exit(2);
	}
	fputs(content, f);
	fclose(f);
}

static inline char *slurp(const char *root, const char *rel)
{
	static char buf[4096];
	char p[4096];
	FILE *f;
	size_t n;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	f = fopen(p, "r");
	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static inline int rm_one(const char *p, const struct stat *st, int type,
			 struct FTW *ftw)
{
	(void)st; (void)type; (void)ftw;
	return remove(p);
}

static inline void rm_tree(char *root)
{
	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(root);
}

/* "PASS name (N checks)" or the failures and exit 1. */
static inline int test_done(const char *name)
{
	if (failures) {
		printf("FAILED %s: %d of %d checks\n", name, failures, checks);
		return 1;
	}
	printf("PASS %s (%d checks)\n", name, checks);
	return 0;
}

#endif /* RC_TEST_UTIL_H */
