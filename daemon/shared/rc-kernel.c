/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rc-kernel.c - ramcryptd's view of the kernel: files only, under a root.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rc-kernel.h"
#include "rc-macro.h"

#define TRESOR_DIR	"sys/kernel/tresor"
#define RAMCRYPT_DIR	"sys/kernel/ramcrypt"
#define REGIONS_DIR	"sys/kernel/ramcrypt/regions"
#define POLICIES_DIR	"sys/kernel/config/ramcrypt/policies"
#define CGROUP_DIR	"sys/fs/cgroup"

bool rc_root_is_host(const char *root)
{
	if (!root)
		return true;
	while (*root == '/')
		root++;
	return *root == '\0';
}

int rc_path(const char *root, const char *rel, char **ret)
{
	size_t rl;
	char *p;

	if (!root)
		root = "";
	rl = strlen(root);
	while (rl > 0 && root[rl - 1] == '/')
		rl--;
	while (*rel == '/')
		rel++;
	if (asprintf(&p, "%.*s/%s", (int)rl, root, rel) < 0)
		return -ENOMEM;
	*ret = p;
	return 0;
}

int rc_read_full(const char *root, const char *rel, char **ret, size_t *len)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;
	size_t cap = 4096, n = 0;
	char *buf;
	int r;

	r = rc_path(root, rel, &path);
	if (r < 0)
		return r;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return rc_negative_errno();
	buf = malloc(cap + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t k;

		if (n == cap) {
			char *nb;

			if (cap >= (64u << 20)) {
				free(buf);
				return -EFBIG;
			}
			cap *= 2;
			nb = realloc(buf, cap + 1);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
		}
		k = read(fd, buf + n, cap - n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			r = rc_negative_errno();
			free(buf);
			return r;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	buf[n] = '\0';
	*ret = buf;
	if (len)
		*len = n;
	return 0;
}

int rc_read_string(const char *root, const char *rel, char **ret)
{
	size_t n;
	char *s;
	int r;

	r = rc_read_full(root, rel, &s, &n);
	if (r < 0)
		return r;
	if (memchr(s, '\0', n)) {
		free(s);
		return -EBADMSG;
	}
	while (n > 0 && s[n - 1] == '\n')
		s[--n] = '\0';
	*ret = s;
	return 0;
}

static int parse_u64(const char *s, uint64_t *ret)
{
	char *e;
	unsigned long long v;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &e, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (*e != '\0')
		return -EINVAL;
	*ret = v;
	return 0;
}

static int parse_int(const char *s, int *ret)
{
	char *e;
	long v;

	if (!isdigit((unsigned char)*s) &&
	    !(*s == '-' && isdigit((unsigned char)s[1])))
		return -EINVAL;
	errno = 0;
	v = strtol(s, &e, 10);
	if (errno == ERANGE || v < INT_MIN || v > INT_MAX)
		return -ERANGE;
	if (*e != '\0')
		return -EINVAL;
	*ret = (int)v;
	return 0;
}

int rc_read_u64(const char *root, const char *rel, uint64_t *ret)
{
	_cleanup_free_ char *s = NULL;
	int r;

	r = rc_read_string(root, rel, &s);
	if (r < 0)
		return r;
	return parse_u64(s, ret);
}

int rc_read_int(const char *root, const char *rel, int *ret)
{
	_cleanup_free_ char *s = NULL;
	int r;

	r = rc_read_string(root, rel, &s);
	if (r < 0)
		return r;
	return parse_int(s, ret);
}

static int read_u32(const char *root, const char *rel, uint32_t *ret)
{
	uint64_t v;
	int r;

	r = rc_read_u64(root, rel, &v);
	if (r < 0)
		return r;
	if (v > UINT32_MAX)
		return -ERANGE;
	*ret = (uint32_t)v;
	return 0;
}

int rc_read_cpuset(const char *root, const char *rel, struct rc_cpuset *ret)
{
	_cleanup_free_ char *s = NULL;
	int r;

	r = rc_read_string(root, rel, &s);
	if (r < 0)
		return r;
	return rc_cpuset_parse(s, ret);
}

int rc_write_string(const char *root, const char *rel, const char *s)
{
	_cleanup_free_ char *path = NULL, *line = NULL;
	_cleanup_close_ int fd = -1;
	int flags = O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY;
	size_t len;
	ssize_t k;
	int r;

	r = rc_path(root, rel, &path);
	if (r < 0)
		return r;
	/* On a real host the kernel makes the files; a missing one means the
	 * module (or feature) is not there, never a file to create. */
	if (!rc_root_is_host(root))
		flags |= O_CREAT;
	fd = open(path, flags, 0644);
	if (fd < 0)
		return rc_negative_errno();
	if (asprintf(&line, "%s\n", s) < 0)
		return -ENOMEM;
	len = strlen(line);
	/* sysfs and configfs take one write() per value */
	do
		k = write(fd, line, len);
	while (k < 0 && errno == EINTR);
	if (k < 0)
		return rc_negative_errno();
	if ((size_t)k != len)
		return -EIO;
	return 0;
}

static int write_u64(const char *root, const char *rel, uint64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	return rc_write_string(root, rel, buf);
}

static bool dir_exists(const char *root, const char *rel)
{
	_cleanup_free_ char *path = NULL;
	struct stat st;

	if (rc_path(root, rel, &path) < 0)
		return false;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int rc_tresor_read_status(const char *root, struct rc_tresor_status *ret)
{
	struct rc_tresor_status st;
	uint64_t v;
	int r;

	memset(&st, 0, sizeof(st));
	if (!dir_exists(root, TRESOR_DIR)) {
		*ret = st;
		return 0;
	}
	st.module_loaded = true;

	r = rc_read_u64(root, TRESOR_DIR "/key_loaded", &v);
	if (r < 0)
		return r;
	st.key_loaded = v != 0;
	r = rc_read_cpuset(root, TRESOR_DIR "/holders", &st.holders);
	if (r < 0)
		return r;
	r = rc_read_cpuset(root, TRESOR_DIR "/valid_holders", &st.valid_holders);
	if (r < 0)
		return r;
	r = rc_read_u64(root, TRESOR_DIR "/check_failures", &st.check_failures);
	if (r < 0)
		return r;
	r = rc_read_u64(root, TRESOR_DIR "/forwarded_requests",
			&st.forwarded_requests);
	if (r < 0)
		return r;
	r = rc_read_u64(root, TRESOR_DIR "/peer_copies", &st.peer_copies);
	if (r < 0)
		return r;
	r = rc_read_u64(root, TRESOR_DIR "/requests", &st.requests);
	if (r < 0)
		return r;
	*ret = st;
	return 0;
}

int rc_tresor_set_holders(const char *root, const struct rc_cpuset *holders)
{
	_cleanup_free_ char *list = NULL;
	int r;

	if (rc_cpuset_empty(holders))
		return -EINVAL;
	if (!dir_exists(root, TRESOR_DIR))
		return -ENOENT;
	r = rc_cpuset_format(holders, &list);
	if (r < 0)
		return r;
	return rc_write_string(root, TRESOR_DIR "/holders", list);
}

int rc_tresor_set_poll_cpus(const char *root, const struct rc_cpuset *cpus)
{
	_cleanup_free_ char *list = NULL;
	int r;

	if (!dir_exists(root, TRESOR_DIR))
		return -ENOENT;
	if (rc_cpuset_empty(cpus))
		return rc_write_string(root, TRESOR_DIR "/poll_cpus", "");
	r = rc_cpuset_format(cpus, &list);
	if (r < 0)
		return r;
	return rc_write_string(root, TRESOR_DIR "/poll_cpus", list);
}

static bool all_digits(const char *s);

static int count_regions(const char *root, uint64_t *ret)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	uint64_t n = 0;
	int r;

	r = rc_path(root, REGIONS_DIR, &path);
	if (r < 0)
		return r;
	d = opendir(path);
	if (!d)
		return rc_negative_errno();
	while ((de = readdir(d)))
		if (all_digits(de->d_name))
			n++;
	*ret = n;
	return 0;
}

int rc_ramcrypt_read_totals(const char *root, struct rc_ramcrypt_totals *ret)
{
	struct rc_ramcrypt_totals t;
	int r;

	memset(&t, 0, sizeof(t));
	if (!dir_exists(root, RAMCRYPT_DIR)) {
		*ret = t;
		return 0;
	}
	t.module_loaded = true;
	/* "regions" is the directory of live regions; an older module had a
	 * counter file of that name */
	r = rc_read_u64(root, RAMCRYPT_DIR "/regions", &t.regions);
	if (r == -EISDIR)
		r = count_regions(root, &t.regions);
	if (r < 0)
		return r;
	r = rc_read_u64(root, RAMCRYPT_DIR "/plaintext_pages", &t.plaintext_pages);
	if (r < 0)
		return r;
	r = rc_read_u64(root, RAMCRYPT_DIR "/encrypted_pages", &t.encrypted_pages);
	if (r < 0)
		return r;
	r = rc_read_u64(root, RAMCRYPT_DIR "/faults", &t.faults);
	if (r < 0)
		return r;
	r = rc_read_u64(root, RAMCRYPT_DIR "/window_pages", &t.window_pages);
	if (r < 0)
		return r;
	*ret = t;
	return 0;
}

int rc_ramcrypt_flush_all(const char *root)
{
	if (!dir_exists(root, RAMCRYPT_DIR))
		return -ENOENT;
	return rc_write_string(root, RAMCRYPT_DIR "/flush", "1");
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

/* One region directory; -ENOENT if it went away while being read. */
static int region_read(const char *root, const char *name, struct rc_region *rg)
{
	_cleanup_free_ char *dir = NULL;
	uint64_t pid;
	int r;

	memset(rg, 0, sizeof(*rg));
	rg->crypto_cpu = -1;
	r = parse_u64(name, &rg->id);
	if (r < 0)
		return r;
	if (asprintf(&dir, REGIONS_DIR "/%s", name) < 0)
		return -ENOMEM;

#define RD(fn, file, dst)						\
	do {								\
		_cleanup_free_ char *_p = NULL;				\
		r = asprintf(&_p, "%s/" file, dir) < 0 ? -ENOMEM :	\
			fn(root, _p, dst);				\
		if (r < 0)						\
			goto fail;					\
	} while (0)

	RD(rc_read_u64, "cgroup_id", &rg->cgroup_id);
	RD(rc_read_string, "cgroup", &rg->cgroup);
	RD(rc_read_u64, "pid", &pid);
	RD(rc_read_u64, "size", &rg->size);
	RD(read_u32, "window_pages", &rg->window_pages);
	RD(read_u32, "max_plaintext_age_ms", &rg->max_plaintext_age_ms);
	RD(rc_read_int, "crypto_cpu", &rg->crypto_cpu);
	RD(read_u32, "evict_ahead_pages", &rg->evict_ahead_pages);
	RD(rc_read_u64, "plaintext_pages", &rg->plaintext_pages);
	RD(rc_read_u64, "encrypted_pages", &rg->encrypted_pages);
	RD(rc_read_u64, "faults", &rg->faults);
	RD(rc_read_u64, "evictions", &rg->evictions);
	RD(rc_read_u64, "oldest_plaintext_age_ms", &rg->oldest_plaintext_age_ms);
#undef RD
	if (pid > INT32_MAX) {
		r = -ERANGE;
		goto fail;
	}
	rg->pid = (pid_t)pid;
	return 0;
fail:
	free(rg->cgroup);
	rg->cgroup = NULL;
	return r;
}

/*
 * Read the entries of dir that want() accepts into an array of elem_size
 * bytes per entry, sorted by cmp. An entry that went away while we looked
 * (its read says -ENOENT and its directory is gone) is left out; one whose
 * directory stays but lacks a file is -EBADMSG: another module ABI.
 */
struct rc_lister {
	const char *dir;
	bool (*want)(const char *name);
	int (*read)(const char *root, const char *name, void *elem);
	void (*free_list)(void *list, size_t n);
	int (*cmp)(const void *a, const void *b);
	size_t elem_size;
};

static int list_entries(const char *root, const struct rc_lister *l,
			void **ret, size_t *n)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_closedir_ DIR *d = NULL;
	char *list = NULL;
	size_t cnt = 0, cap = 0;
	struct dirent *de;
	int r;

	r = rc_path(root, l->dir, &path);
	if (r < 0)
		return r;
	d = opendir(path);
	if (!d)
		return rc_negative_errno();
	while ((errno = 0, de = readdir(d))) {
		if (!l->want(de->d_name))
			continue;
		if (cnt == cap) {
			char *nl;

			cap = cap ? cap * 2 : 8;
			nl = realloc(list, cap * l->elem_size);
			if (!nl) {
				r = -ENOMEM;
				goto fail;
			}
			list = nl;
		}
		r = l->read(root, de->d_name, list + cnt * l->elem_size);
		if (r == -ENOENT) {
			_cleanup_free_ char *rel = NULL;

			if (asprintf(&rel, "%s/%s", l->dir, de->d_name) < 0) {
				r = -ENOMEM;
				goto fail;
			}
			if (!dir_exists(root, rel))
				continue;
			r = -EBADMSG;
		}
		if (r < 0)
			goto fail;
		cnt++;
	}
	if (errno) {
		r = rc_negative_errno();
		goto fail;
	}
	if (cnt)
		qsort(list, cnt, l->elem_size, l->cmp);
	*ret = list;
	*n = cnt;
	return 0;
fail:
	l->free_list(list, cnt);
	return r;
}

static int cmp_region(const void *a, const void *b)
{
	const struct rc_region *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static int region_read_elem(const char *root, const char *name, void *elem)
{
	return region_read(root, name, elem);
}

static void regions_free_elem(void *list, size_t n)
{
	rc_regions_free(list, n);
}

int rc_regions_list(const char *root, struct rc_region **ret, size_t *n)
{
	static const struct rc_lister regions = {
		.dir = REGIONS_DIR,
		.want = all_digits,
		.read = region_read_elem,
		.free_list = regions_free_elem,
		.cmp = cmp_region,
		.elem_size = sizeof(struct rc_region),
	};

	return list_entries(root, &regions, (void **)ret, n);
}

void rc_regions_free(struct rc_region *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(r[i].cgroup);
	free(r);
}

int rc_policy_name_valid(const char *name)
{
	size_t len;

	if (!name)
		return -EINVAL;
	len = strlen(name);
	if (len == 0 || len > 200 || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0 || strchr(name, '/'))
		return -EINVAL;
	for (const char *p = name; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return -EINVAL;
	return 0;
}

static int policy_read(const char *root, const char *name, struct rc_policy *p)
{
	_cleanup_free_ char *dir = NULL;
	int r;

	memset(p, 0, sizeof(*p));
	p->crypto_cpu = -1;
	if (asprintf(&dir, POLICIES_DIR "/%s", name) < 0)
		return -ENOMEM;

#define RD(fn, file, dst)						\
	do {								\
		_cleanup_free_ char *_p = NULL;				\
		if (asprintf(&_p, "%s/" file, dir) < 0)			\
			return -ENOMEM;					\
		r = fn(root, _p, dst);					\
		if (r < 0)						\
			return r;					\
	} while (0)

	RD(rc_read_u64, "cgroup_id", &p->cgroup_id);
	RD(read_u32, "window_pages", &p->window_pages);
	RD(read_u32, "max_plaintext_age_ms", &p->max_plaintext_age_ms);
	RD(rc_read_int, "crypto_cpu", &p->crypto_cpu);
	RD(read_u32, "evict_ahead_pages", &p->evict_ahead_pages);
#undef RD
	p->name = strdup(name);
	if (!p->name)
		return -ENOMEM;
	return 0;
}

static bool policy_same(const struct rc_policy *a, const struct rc_policy *b)
{
	return a->cgroup_id == b->cgroup_id &&
	       a->window_pages == b->window_pages &&
	       a->max_plaintext_age_ms == b->max_plaintext_age_ms &&
	       a->crypto_cpu == b->crypto_cpu &&
	       a->evict_ahead_pages == b->evict_ahead_pages;
}

static int policy_write(const char *root, const char *dir,
			const struct rc_policy *p)
{
	_cleanup_free_ char *f1 = NULL, *f2 = NULL, *f3 = NULL, *f4 = NULL,
			    *f5 = NULL;
	char cpu[16];
	int r;

	if (asprintf(&f1, "%s/window_pages", dir) < 0 ||
	    asprintf(&f2, "%s/max_plaintext_age_ms", dir) < 0 ||
	    asprintf(&f3, "%s/crypto_cpu", dir) < 0 ||
	    asprintf(&f4, "%s/evict_ahead_pages", dir) < 0 ||
	    asprintf(&f5, "%s/cgroup_id", dir) < 0)
		return -ENOMEM;
	snprintf(cpu, sizeof(cpu), "%d", p->crypto_cpu);

	r = write_u64(root, f1, p->window_pages);
	if (r < 0)
		return r;
	r = write_u64(root, f2, p->max_plaintext_age_ms);
	if (r < 0)
		return r;
	r = rc_write_string(root, f3, cpu);
	if (r < 0)
		return r;
	r = write_u64(root, f4, p->evict_ahead_pages);
	if (r < 0)
		return r;
	/* last: from here on the policy matches and is frozen */
	return write_u64(root, f5, p->cgroup_id);
}

/* rmdir a policy item; a fixture tree has plain files in it, configfs
 * removes its attributes itself. */
static int policy_rmdir(const char *root, const char *name)
{
	_cleanup_free_ char *rel = NULL, *path = NULL;
	int r;

	if (asprintf(&rel, POLICIES_DIR "/%s", name) < 0)
		return -ENOMEM;
	r = rc_path(root, rel, &path);
	if (r < 0)
		return r;
	if (rmdir(path) == 0)
		return 0;
	if (errno != ENOTEMPTY && errno != EEXIST)
		return rc_negative_errno();
	if (rc_root_is_host(root))
		return -ENOTEMPTY;
	{
		_cleanup_closedir_ DIR *d = opendir(path);
		struct dirent *de;

		if (!d)
			return rc_negative_errno();
		while ((de = readdir(d)))
			if (de->d_name[0] != '.')
				(void)unlinkat(dirfd(d), de->d_name, 0);
	}
	if (rmdir(path) < 0)
		return rc_negative_errno();
	return 0;
}

int rc_policy_set(const char *root, const struct rc_policy *p)
{
	_cleanup_free_ char *rel = NULL, *path = NULL;
	struct rc_policy cur;
	int r;

	r = rc_policy_name_valid(p->name);
	if (r < 0)
		return r;
	if (p->cgroup_id == 0 || p->crypto_cpu < -1)
		return -EINVAL;
	if (!dir_exists(root, POLICIES_DIR))
		return -ENOENT;
	if (asprintf(&rel, POLICIES_DIR "/%s", p->name) < 0)
		return -ENOMEM;
	r = rc_path(root, rel, &path);
	if (r < 0)
		return r;

	if (mkdir(path, 0755) == 0)
		return policy_write(root, rel, p);
	if (errno != EEXIST)
		return rc_negative_errno();

	/* Already there (a daemon restart, or a second enrollment). */
	r = policy_read(root, p->name, &cur);
	if (r >= 0) {
		bool same = policy_same(&cur, p), frozen = cur.cgroup_id != 0;

		free(cur.name);
		if (same)
			return 0;
		if (!frozen)
			return policy_write(root, rel, p);
	}
	/* Frozen with other values (or unreadable): replace it. Between the
	 * rmdir and the new cgroup_id a region opened by the unit gets the
	 * strict module defaults, never something looser. */
	r = policy_rmdir(root, p->name);
	if (r < 0)
		return r;
	if (mkdir(path, 0755) < 0)
		return rc_negative_errno();
	return policy_write(root, rel, p);
}

int rc_policy_remove(const char *root, const char *name)
{
	int r;

	r = rc_policy_name_valid(name);
	if (r < 0)
		return r;
	if (!dir_exists(root, POLICIES_DIR))
		return -ENOENT;
	return policy_rmdir(root, name);
}

static int cmp_policy(const void *a, const void *b)
{
	const struct rc_policy *x = a, *y = b;

	return strcmp(x->name, y->name);
}

static bool not_hidden(const char *name)
{
	return name[0] != '.';
}

static int policy_read_elem(const char *root, const char *name, void *elem)
{
	return policy_read(root, name, elem);
}

static void policies_free_elem(void *list, size_t n)
{
	rc_policies_free(list, n);
}

int rc_policy_list(const char *root, struct rc_policy **ret, size_t *n)
{
	static const struct rc_lister policies = {
		.dir = POLICIES_DIR,
		.want = not_hidden,
		.read = policy_read_elem,
		.free_list = policies_free_elem,
		.cmp = cmp_policy,
		.elem_size = sizeof(struct rc_policy),
	};

	return list_entries(root, &policies, (void **)ret, n);
}

void rc_policies_free(struct rc_policy *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(p[i].name);
	free(p);
}

int rc_cgroup_id(const char *root, const char *cgroup_path, uint64_t *ret)
{
	_cleanup_free_ char *rel = NULL, *path = NULL;
	struct stat st;
	int r;

	if (!cgroup_path || cgroup_path[0] != '/')
		return -EINVAL;
	/* no "..": the path must stay inside the cgroup tree */
	for (const char *p = cgroup_path; (p = strstr(p, "..")); p += 2)
		if ((p == cgroup_path || p[-1] == '/') &&
		    (p[2] == '/' || p[2] == '\0'))
			return -EINVAL;
	if (asprintf(&rel, CGROUP_DIR "%s", cgroup_path) < 0)
		return -ENOMEM;
	r = rc_path(root, rel, &path);
	if (r < 0)
		return r;
	if (stat(path, &st) < 0)
		return rc_negative_errno();
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	*ret = (uint64_t)st.st_ino;
	return 0;
}
