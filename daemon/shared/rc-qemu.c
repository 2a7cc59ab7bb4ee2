/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rc-qemu.c - is a QEMU guest's RAM (and disk I/O) kept off plaintext RAM?
 *
 * The argv check walks QEMU's command line the way QEMU does (-opt value,
 * --opt value, -opt=value; key=value lists with ",," for a comma) and
 * collects the memory backends, what guest RAM uses (-machine
 * memory-backend=, -numa node,memdev=, -device ...,memdev=) and every
 * drive's cache mode. The process check reads /proc/PID: the command line
 * again, the mappings (what really is on /dev/ramcrypt, what is anonymous)
 * and the open disk images' O_DIRECT flag.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rc-kernel.h"
#include "rc-macro.h"
#include "rc-qemu.h"

#define RAMCRYPT_DEV "/dev/ramcrypt"
#define MAX_BACKENDS 64
#define MAX_REFS 64
#define MAX_FILES 64

/* reasons are bounded sentences: a long path is cut, by design */
#pragma GCC diagnostic ignored "-Wformat-truncation"

/* ---- key=value lists ---- */

struct kv {
	char *key;
	char *val;		/* NULL: a bare word ("readonly") */
};

struct opts {
	struct kv *v;
	size_t n;
};

static void opts_free(struct opts *o)
{
	for (size_t i = 0; i < o->n; i++) {
		free(o->v[i].key);
		free(o->v[i].val);
	}
	free(o->v);
	o->v = NULL;
	o->n = 0;
}

/* QEMU's QemuOpts syntax: "a=b,c=d", ",," is a literal comma, the first
 * element may be a bare value of implied_key ("q35,memory-backend=..."). */
static int opts_parse(const char *s, const char *implied_key, struct opts *o)
{
	size_t len = strlen(s);
	_cleanup_free_ char *buf = malloc(len + 1);

	o->v = NULL;
	o->n = 0;
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i <= len;) {
		size_t k = 0;
		struct kv *nv;
		char *eq;

		/* one element, ",," unescaped */
		while (i < len) {
			if (s[i] == ',') {
				if (s[i + 1] == ',') {
					buf[k++] = ',';
					i += 2;
					continue;
				}
				break;
			}
			buf[k++] = s[i++];
		}
		buf[k] = '\0';
		i++;	/* the ',' (or past the end) */
		if (k == 0)
			continue;
		nv = realloc(o->v, (o->n + 1) * sizeof(*o->v));
		if (!nv) {
			opts_free(o);
			return -ENOMEM;
		}
		o->v = nv;
		eq = strchr(buf, '=');
		if (eq) {
			o->v[o->n].key = strndup(buf, (size_t)(eq - buf));
			o->v[o->n].val = strdup(eq + 1);
		} else if (o->n == 0 && implied_key) {
			o->v[o->n].key = strdup(implied_key);
			o->v[o->n].val = strdup(buf);
		} else {
			o->v[o->n].key = strdup(buf);
			o->v[o->n].val = NULL;
		}
		o->n++;
		if (!o->v[o->n - 1].key ||
		    (eq && !o->v[o->n - 1].val)) {
			opts_free(o);
			return -ENOMEM;
		}
	}
	return 0;
}

/* ---- the JSON syntax of -object/-blockdev/-device (libvirt's) ----
 * Flattened into the same key list: {"file":{"filename":"x"}} becomes
 * file.filename=x, arrays k.0, k.1, true/false on/off, numbers as text. */

struct jp {
	const char *p;
	int depth;
};

static void jp_ws(struct jp *j)
{
	while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
		j->p++;
}

static int opts_add(struct opts *o, const char *key, const char *val)
{
	struct kv *nv = realloc(o->v, (o->n + 1) * sizeof(*o->v));

	if (!nv)
		return -ENOMEM;
	o->v = nv;
	o->v[o->n].key = strdup(key);
	o->v[o->n].val = strdup(val);
	o->n++;
	if (!o->v[o->n - 1].key || !o->v[o->n - 1].val)
		return -ENOMEM;
	return 0;
}

/* A JSON string into a malloc'd buffer; only ASCII \u escapes. */
static int jp_string(struct jp *j, char **ret)
{
	size_t cap = strlen(j->p) + 1, n = 0;
	char *b;

	if (*j->p != '"')
		return -EINVAL;
	j->p++;
	b = malloc(cap);
	if (!b)
		return -ENOMEM;
	while (*j->p && *j->p != '"') {
		char ch = *j->p++;

		if (ch == '\\') {
			ch = *j->p++;
			switch (ch) {
			case '"': case '\\': case '/': break;
			case 'b': ch = '\b'; break;
			case 'f': ch = '\f'; break;
			case 'n': ch = '\n'; break;
			case 'r': ch = '\r'; break;
			case 't': ch = '\t'; break;
			case 'u': {
				unsigned int u;

				if (sscanf(j->p, "%4x", &u) != 1 || u == 0 ||
				    u > 0x7f) {
					free(b);
					return -EINVAL;
				}
				for (int i = 0; i < 4; i++)
					if (!isxdigit((unsigned char)j->p[i])) {
						free(b);
						return -EINVAL;
					}
				j->p += 4;
				ch = (char)u;
				break;
			}
			default:
				free(b);
				return -EINVAL;
			}
		}
		b[n++] = ch;
	}
	if (*j->p != '"') {
		free(b);
		return -EINVAL;
	}
	j->p++;
	b[n] = '\0';
	*ret = b;
	return 0;
}

static int jp_value(struct jp *j, const char *key, struct opts *o);

static int jp_child(struct jp *j, const char *key, const char *sub,
		    struct opts *o)
{
	_cleanup_free_ char *k = NULL;

	if (asprintf(&k, "%s%s%s", key, *key ? "." : "", sub) < 0)
		return -ENOMEM;
	return jp_value(j, k, o);
}

static int jp_value(struct jp *j, const char *key, struct opts *o)
{
	int r;

	jp_ws(j);
	if (++j->depth > 16)
		return -EINVAL;
	if (*j->p == '{' || *j->p == '[') {
		bool obj = *j->p == '{';
		char close = obj ? '}' : ']';
		unsigned int idx = 0;

		j->p++;
		jp_ws(j);
		if (*j->p == close) {
			j->p++;
			j->depth--;
			return 0;
		}
		for (;;) {
			_cleanup_free_ char *sub = NULL;

			jp_ws(j);
			if (obj) {
				r = jp_string(j, &sub);
				if (r < 0)
					return r;
				jp_ws(j);
				if (*j->p++ != ':')
					return -EINVAL;
			} else if (asprintf(&sub, "%u", idx++) < 0) {
				return -ENOMEM;
			}
			if (!*sub || strchr(sub, '.') || strchr(sub, ','))
				return -EINVAL;
			r = jp_child(j, key, sub, o);
			if (r < 0)
				return r;
			jp_ws(j);
			if (*j->p == ',') {
				j->p++;
				continue;
			}
			if (*j->p++ != close)
				return -EINVAL;
			break;
		}
		j->depth--;
		return 0;
	}
	if (!*key)
		return -EINVAL;	/* the top level must be an object */
	if (*j->p == '"') {
		_cleanup_free_ char *v = NULL;

		r = jp_string(j, &v);
		if (r < 0)
			return r;
		r = opts_add(o, key, v);
	} else if (strncmp(j->p, "true", 4) == 0) {
		j->p += 4;
		r = opts_add(o, key, "on");
	} else if (strncmp(j->p, "false", 5) == 0) {
		j->p += 5;
		r = opts_add(o, key, "off");
	} else if (strncmp(j->p, "null", 4) == 0) {
		j->p += 4;
		r = 0;
	} else if (*j->p == '-' || isdigit((unsigned char)*j->p)) {
		const char *st = j->p;
		_cleanup_free_ char *v = NULL;

		j->p++;
		while (isdigit((unsigned char)*j->p) || *j->p == '.' ||
		       *j->p == 'e' || *j->p == 'E' || *j->p == '+' ||
		       *j->p == '-')
			j->p++;
		v = strndup(st, (size_t)(j->p - st));
		if (!v)
			return -ENOMEM;
		r = opts_add(o, key, v);
	} else {
		return -EINVAL;
	}
	j->depth--;
	return r;
}

/* 0, -EINVAL (not JSON we understand), -ENOMEM */
static int opts_parse_json(const char *s, struct opts *o)
{
	struct jp j = { .p = s };
	int r;

	o->v = NULL;
	o->n = 0;
	r = jp_value(&j, "", o);
	if (r >= 0) {
		jp_ws(&j);
		if (*j.p)
			r = -EINVAL;
	}
	if (r < 0)
		opts_free(o);
	return r;
}

/* key=value or JSON; -EINVAL names itself in the reason via fail_fn */
static int opts_parse_any(const char *s, const char *implied_key,
			  struct opts *o)
{
	if (s[0] == '{')
		return opts_parse_json(s, o);
	return opts_parse(s, implied_key, o);
}

/* The last value of key (QEMU: later wins); "" if present without value
 * (a bare word means "on"). NULL if absent. */
static const char *opt_get(const struct opts *o, const char *key)
{
	const char *r = NULL;

	for (size_t i = 0; i < o->n; i++)
		if (strcmp(o->v[i].key, key) == 0)
			r = o->v[i].val ? o->v[i].val : "";
	return r;
}

/* -1 not a boolean, 0 off, 1 on */
static int parse_bool(const char *v)
{
	static const char *const on[] = { "", "on", "yes", "true", "y", "1" };
	static const char *const off[] = { "off", "no", "false", "n", "0" };

	for (size_t i = 0; i < ELEMENTSOF(on); i++)
		if (strcmp(v, on[i]) == 0)
			return 1;
	for (size_t i = 0; i < ELEMENTSOF(off); i++)
		if (strcmp(v, off[i]) == 0)
			return 0;
	return -1;
}

/* qemu_strtosz: "4G", "512", "1.5G"; default_shift for a bare number
 * (20 for -m, 0 for size=). */
static int parse_size(const char *s, unsigned int default_shift, uint64_t *ret)
{
	char *e;
	double v;
	unsigned int shift = default_shift;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &e);
	if (errno || e == s)
		return -EINVAL;
	if (*e) {
		switch (tolower((unsigned char)*e)) {
		case 'b': shift = 0; break;
		case 'k': shift = 10; break;
		case 'm': shift = 20; break;
		case 'g': shift = 30; break;
		case 't': shift = 40; break;
		case 'p': shift = 50; break;
		case 'e': shift = 60; break;
		default: return -EINVAL;
		}
		if (e[1])
			return -EINVAL;
	}
	v *= (double)(UINT64_C(1) << shift);
	if (v >= 18446744073709551615.0)
		return -ERANGE;
	*ret = (uint64_t)v;
	return 0;
}

static void fmt_bytes(uint64_t b, char *buf, size_t len)
{
	if (b >= (UINT64_C(1) << 30))
		snprintf(buf, len, "%.1f GiB", (double)b / (1 << 30));
	else if (b >= (UINT64_C(1) << 20))
		snprintf(buf, len, "%.1f MiB", (double)b / (1 << 20));
	else
		snprintf(buf, len, "%" PRIu64 " KiB", b >> 10);
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

/* ---- what argv[0] is ---- */

enum kind { K_QEMU, K_WRAPPER, K_OTHER };

static bool has_suffix(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);

	return a >= b && strcmp(s + a - b, suf) == 0;
}

static enum kind classify_name(const char *name)
{
	static const char *const wrappers[] = {
		"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox",
		"env", "perl", "python", "python3", "ruby", "nice", "ionice",
		"taskset", "numactl", "chrt", "setpriv", "runuser", "sudo",
		"su", "nohup", "stdbuf", "timeout", "exec", "systemd-run",
		"unshare", "nsenter", "setsid", "prlimit",
	};
	const char *b = base_name(name);

	if (strncmp(b, "qemu-system-", 12) == 0 || strcmp(b, "kvm") == 0 ||
	    strcmp(b, "qemu-kvm") == 0)
		return K_QEMU;
	for (size_t i = 0; i < ELEMENTSOF(wrappers); i++)
		if (strcmp(b, wrappers[i]) == 0)
			return K_WRAPPER;
	if (strncmp(b, "python", 6) == 0 || has_suffix(b, ".sh") ||
	    has_suffix(b, ".py") || has_suffix(b, ".pl") ||
	    has_suffix(b, ".bash"))
		return K_WRAPPER;
	return K_OTHER;
}

/* An absolute path to a script ("#!") is a wrapper too. */
static enum kind classify_argv0(const char *argv0)
{
	enum kind k = classify_name(argv0);
	char head[2];
	int fd;

	if (k != K_OTHER || argv0[0] != '/')
		return k;
	fd = open(argv0, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return k;
	if (read(fd, head, 2) == 2 && head[0] == '#' && head[1] == '!')
		k = K_WRAPPER;
	close(fd);
	return k;
}

/* ---- the argv check ---- */

struct backend {
	char *id;
	char *type;
	char *mem_path;
	int share;		/* -1 unset */
	uint64_t size;
};

/*
 * ramcryptfs mounts in the mount namespace of a checked process (from its
 * mountinfo): a memory backend's mem-path under one of them, mapped
 * shared, is guest RAM on ramcrypt regions, as /dev/ramcrypt is. Before
 * the start (argv only) there is no namespace to look at, so only
 * /dev/ramcrypt counts.
 */
#define MAX_RCFS 8
struct rcfs_mounts {
	char *dir[MAX_RCFS];
	unsigned int major[MAX_RCFS], minor[MAX_RCFS];
	size_t n;
};

static void rcfs_mounts_free(struct rcfs_mounts *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->dir[i]);
	m->n = 0;
}

/* mountinfo escapes ' ', '\t', '\n' and '\\' as octal \ooo */
static void unescape_octal(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
				      (s[3] - '0'));
			s += 3;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

static int read_rcfs_mounts(const char *root, pid_t pid,
			    struct rcfs_mounts *m)
{
	_cleanup_free_ char *rel = NULL, *buf = NULL;
	char *line, *save = NULL;
	int r;

	memset(m, 0, sizeof(*m));
	if (asprintf(&rel, "proc/%d/mountinfo", (int)pid) < 0)
		return -ENOMEM;
	r = rc_read_full(root, rel, &buf, NULL);
	if (r == -ENOENT)
		return 0;	/* no namespace to look at: /dev/ramcrypt only */
	if (r < 0)
		return r;
	for (line = strtok_r(buf, "\n", &save); line && m->n < MAX_RCFS;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned int maj, min;
		char dir[4096], *sep;
		int n = 0;

		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT ... - FSTYPE SOURCE OPTS */
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s %n", &maj, &min, dir,
			   &n) < 3)
			continue;
		sep = strstr(line + n, " - ");
		if (!sep || strncmp(sep + 3, "ramcryptfs ", 11) != 0)
			continue;
		unescape_octal(dir);
		m->dir[m->n] = strdup(dir);
		if (!m->dir[m->n])
			return -ENOMEM;
		m->major[m->n] = maj;
		m->minor[m->n] = min;
		m->n++;
	}
	return 0;
}

/* @path is a ramcryptfs mount point of the process or lies below one */
static bool on_rcfs(const struct rcfs_mounts *m, const char *path)
{
	for (size_t i = 0; m && i < m->n; i++) {
		size_t l = strlen(m->dir[i]);

		if (strcmp(m->dir[i], "/") == 0 ||
		    (strncmp(path, m->dir[i], l) == 0 &&
		     (path[l] == '/' || path[l] == '\0')))
			return true;
	}
	return false;
}

static bool rcfs_dev(const struct rcfs_mounts *m, unsigned int maj,
		     unsigned int min)
{
	for (size_t i = 0; m && i < m->n; i++)
		if (m->major[i] == maj && m->minor[i] == min)
			return true;
	return false;
}

struct ctx {
	struct rc_qemu_result *res;
	unsigned int failures, ram_failures;
	struct backend be[MAX_BACKENDS];
	size_t n_be;
	char *refs[MAX_REFS];	/* memdev= / memory-backend= ids */
	const char *ref_what[MAX_REFS];
	size_t n_refs;
	char *machine_backend;
	bool have_m;
	uint64_t m_bytes;
	unsigned int numa_nodes, numa_memdev;
	unsigned int drives_direct;
	bool no_default_vga;
	char *vga;		/* an explicit display device or -vga model */
	char *files[MAX_FILES];	/* disk image paths named on the command line */
	size_t n_files;
	const struct rcfs_mounts *rcfs;	/* process check: its ramcryptfs mounts */
};

static void fail(struct ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void fail(struct ctx *c, const char *fmt, ...)
{
	va_list ap;

	/* guest RAM problems are named before drive and syntax problems */
	if (c->ram_failures == 0 && c->failures == 0) {
		va_start(ap, fmt);
		vsnprintf(c->res->reason, sizeof(c->res->reason), fmt, ap);
		va_end(ap);
	}
	c->failures++;
}

static void fail_ram(struct ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void fail_ram(struct ctx *c, const char *fmt, ...)
{
	va_list ap;

	if (c->ram_failures++ == 0) {
		va_start(ap, fmt);
		vsnprintf(c->res->reason, sizeof(c->res->reason), fmt, ap);
		va_end(ap);
	}
	c->failures++;
}

static void ctx_free(struct ctx *c)
{
	for (size_t i = 0; i < c->n_be; i++) {
		free(c->be[i].id);
		free(c->be[i].type);
		free(c->be[i].mem_path);
	}
	for (size_t i = 0; i < c->n_refs; i++)
		free(c->refs[i]);
	for (size_t i = 0; i < c->n_files; i++)
		free(c->files[i]);
	free(c->machine_backend);
	free(c->vga);
}

static void add_ref(struct ctx *c, const char *id, const char *what)
{
	if (c->n_refs < MAX_REFS && (c->refs[c->n_refs] = strdup(id)))
		c->ref_what[c->n_refs++] = what;
}

static void add_file(struct ctx *c, const char *f)
{
	if (strncmp(f, "file:", 5) == 0)
		f += 5;
	if (c->n_files < MAX_FILES && (c->files[c->n_files] = strdup(f)))
		c->n_files++;
}

static const char *const no_arg_opts[] = {
	"h", "help", "version", "S", "snapshot", "nographic", "portrait",
	"no-frame", "alt-grab", "ctrl-grab", "no-quit", "full-screen",
	"no-fd-bootchk", "no-acpi", "no-hpet", "no-reboot", "no-shutdown",
	"enable-kvm", "usb", "win2k-hack", "rtc-td-hack", "s", "daemonize",
	"singlestep", "preconfig", "nodefaults", "no-user-config",
	"nodefconfig", "only-migratable", "enable-fips", "mem-prealloc",
	"old-param", "semihosting", "xen-attach", "xen-domid-restrict",
	"no-kvm", "no-kvm-irqchip", "no-kvm-pit", "no-kvm-pit-reinjection",
	"enable-nesting", "curses", "sdl", "enable-sync-profile",
	"audio-help", "async-teardown", "no-graphic", "nouserconfig",
	"perfmap", "jitdump",
};

static bool takes_arg(const char *name)
{
	for (size_t i = 0; i < ELEMENTSOF(no_arg_opts); i++)
		if (strcmp(name, no_arg_opts[i]) == 0)
			return false;
	return true;
}

static void do_object(struct ctx *c, const char *val)
{
	struct opts o;
	const char *type, *id, *mp, *sh, *sz;
	struct backend *b;
	int r;

	r = opts_parse_any(val, "qom-type", &o);
	if (r == -EINVAL) {
		fail_ram(c, "-object '%.200s' is not JSON this check understands (write it as key=value)",
			 val);
		return;
	}
	if (r < 0) {
		fail(c, "out of memory");
		return;
	}
	type = opt_get(&o, "qom-type");
	if (!type || strncmp(type, "memory-backend-", 15) != 0)
		goto out;
	if (c->n_be == MAX_BACKENDS) {
		fail(c, "more than %d memory backends", MAX_BACKENDS);
		goto out;
	}
	b = &c->be[c->n_be++];
	id = opt_get(&o, "id");
	mp = opt_get(&o, "mem-path");
	sh = opt_get(&o, "share");
	sz = opt_get(&o, "size");
	b->id = strdup(id ? id : "");
	b->type = strdup(type);
	b->mem_path = mp ? strdup(mp) : NULL;
	b->share = sh ? parse_bool(sh) : -1;
	if (!sz || parse_size(sz, 0, &b->size) < 0)
		b->size = 0;
out:
	opts_free(&o);
}

static void do_machine(struct ctx *c, const char *val)
{
	struct opts o;
	const char *mb, *gr;

	if (opts_parse(val, "type", &o) < 0) {
		fail(c, "out of memory");
		return;
	}
	mb = opt_get(&o, "memory-backend");
	if (mb) {
		free(c->machine_backend);
		c->machine_backend = strdup(mb);
	}
	gr = opt_get(&o, "graphics");
	if (gr && parse_bool(gr) == 0)
		c->no_default_vga = true;
	opts_free(&o);
}

static void do_m(struct ctx *c, const char *val)
{
	struct opts o;
	const char *sz;

	if (opts_parse(val, "size", &o) < 0) {
		fail(c, "out of memory");
		return;
	}
	sz = opt_get(&o, "size");
	if (sz) {
		if (parse_size(sz, 20, &c->m_bytes) < 0)
			fail(c, "-m '%s': not a size", val);
		c->have_m = true;
	}
	opts_free(&o);
}

static void do_numa(struct ctx *c, const char *val)
{
	struct opts o;
	const char *type, *md;

	if (opts_parse(val, "type", &o) < 0) {
		fail(c, "out of memory");
		return;
	}
	type = opt_get(&o, "type");
	if (!type || strcmp(type, "node") == 0) {
		c->numa_nodes++;
		md = opt_get(&o, "memdev");
		if (md) {
			c->numa_memdev++;
			add_ref(c, md, "-numa node,memdev=");
		} else if (opt_get(&o, "mem")) {
			fail_ram(c, "-numa '%s' gives the node anonymous RAM (mem=): use memdev= with a memory-backend-file on " RAMCRYPT_DEV,
			     val);
		}
	}
	opts_free(&o);
}

static void do_device(struct ctx *c, const char *val)
{
	static const char *const displays[] = {
		"VGA", "cirrus-vga", "qxl-vga", "qxl", "virtio-vga",
		"virtio-gpu-pci", "virtio-vga-gl", "virtio-gpu-gl-pci",
		"bochs-display", "ramfb", "vmware-svga", "secondary-vga",
		"ati-vga",
	};
	struct opts o;
	const char *drv, *md;
	int r;

	r = opts_parse_any(val, "driver", &o);
	if (r == -EINVAL) {
		fail(c, "-device '%.200s' is not JSON this check understands (write it as key=value)",
		     val);
		return;
	}
	if (r < 0) {
		fail(c, "out of memory");
		return;
	}
	drv = opt_get(&o, "driver");
	md = opt_get(&o, "memdev");
	if (md)
		add_ref(c, md, "-device memdev=");
	for (size_t i = 0; drv && i < ELEMENTSOF(displays); i++)
		if (strcmp(drv, displays[i]) == 0 && !c->vga)
			c->vga = strdup(drv);
	opts_free(&o);
}

/*
 * Every "filename" (or -drive's "file") key with prefix P ("", "file.",
 * "file.file.") is a file QEMU opens; it bypasses the page cache when
 * P+"cache.direct" is on, or the nearest parent prefix's is, or (-drive)
 * cache=none/directsync.
 */
static void check_block(struct ctx *c, const char *opt, const char *val,
			const struct opts *o, int top_direct)
{
	for (size_t i = 0; i < o->n; i++) {
		const char *k = o->v[i].key, *f = o->v[i].val;
		size_t plen;
		int direct = top_direct;
		char prefix[256], key[300];
		bool is_file;

		if (!f || !*f)
			continue;
		if (has_suffix(k, "filename"))
			plen = strlen(k) - strlen("filename");
		else if (strcmp(opt, "drive") == 0 && strcmp(k, "file") == 0)
			plen = 0;
		else
			continue;
		if (plen >= sizeof(prefix) || (plen && k[plen - 1] != '.'))
			continue;
		is_file = true;
		memcpy(prefix, k, plen);
		prefix[plen] = '\0';
		/* walk from the node up to the top: the nearest setting wins */
		for (;;) {
			const char *d;

			snprintf(key, sizeof(key), "%scache.direct", prefix);
			d = opt_get(o, key);
			if (d) {
				direct = parse_bool(d);
				if (direct < 0) {
					fail(c, "%s '%s': %s=%s is not on or off",
					     opt, val, key, d);
					return;
				}
				break;
			}
			if (!plen)
				break;
			/* drop the last "x." */
			plen--;
			while (plen > 0 && prefix[plen - 1] != '.')
				plen--;
			prefix[plen] = '\0';
		}
		if (is_file)
			add_file(c, f);
		if (direct == 1) {
			c->drives_direct++;
			continue;
		}
		fail(c, "%s '%s=%s' reads through the host page cache (add cache=none or cache.direct=on)",
		     opt, k, f);
	}
}

static void do_drive(struct ctx *c, const char *val)
{
	struct opts o;
	const char *cache;
	int direct = 0;

	if (opts_parse(val, NULL, &o) < 0) {
		fail(c, "out of memory");
		return;
	}
	cache = opt_get(&o, "cache");
	if (cache) {
		if (strcmp(cache, "none") == 0 || strcmp(cache, "directsync") == 0)
			direct = 1;
		else if (strcmp(cache, "writeback") != 0 &&
			 strcmp(cache, "writethrough") != 0 &&
			 strcmp(cache, "unsafe") != 0) {
			fail(c, "drive '%s': cache=%s is not a cache mode", val,
			     cache);
			goto out;
		}
	}
	check_block(c, "drive", val, &o, direct);
out:
	opts_free(&o);
}

static void do_blockdev(struct ctx *c, const char *val)
{
	struct opts o;

	int r = opts_parse_any(val, NULL, &o);

	if (r == -EINVAL) {
		fail(c, "-blockdev '%.200s' is not JSON this check understands (write it as key=value)",
		     val);
		return;
	}
	if (r < 0) {
		fail(c, "out of memory");
		return;
	}
	check_block(c, "blockdev", val, &o, 0);
	opts_free(&o);
}

static void check_backends(struct ctx *c)
{
	for (size_t i = 0; i < c->n_be; i++) {
		struct backend *b = &c->be[i];

		if (strcmp(b->type, "memory-backend-file") != 0) {
			fail_ram(c, "memory backend '%s' is %s: anonymous guest RAM, not on " RAMCRYPT_DEV " (use memory-backend-file,mem-path=" RAMCRYPT_DEV ",share=on)",
			     b->id, b->type);
			continue;
		}
		if (!b->mem_path || (strcmp(b->mem_path, RAMCRYPT_DEV) != 0 &&
				     !on_rcfs(c->rcfs, b->mem_path))) {
			fail_ram(c, "memory backend '%s' maps '%s', not " RAMCRYPT_DEV "%s",
			     b->id, b->mem_path ? b->mem_path : "(no mem-path)",
			     c->rcfs ? " or a file on ramcryptfs" : "");
			continue;
		}
		if (b->share != 1) {
			fail_ram(c, "memory backend '%s' maps %s without share=on: its pages would be private anonymous copies",
			     b->id, b->mem_path);
			continue;
		}
		c->res->ramcrypt_bytes += b->size;
	}
}

static const struct backend *find_backend(const struct ctx *c, const char *id)
{
	for (size_t i = 0; i < c->n_be; i++)
		if (strcmp(c->be[i].id, id) == 0)
			return &c->be[i];
	return NULL;
}

static void check_guest_ram(struct ctx *c)
{
	char sz[32];

	for (size_t i = 0; i < c->n_refs; i++)
		if (!find_backend(c, c->refs[i]))
			fail_ram(c, "%s%s names no -object memory-backend-* of that id",
			     c->ref_what[i], c->refs[i]);
	if (c->machine_backend) {
		if (!find_backend(c, c->machine_backend))
			fail_ram(c, "-machine memory-backend=%s names no -object memory-backend-* of that id",
			     c->machine_backend);
		return;
	}
	if (c->numa_nodes && c->numa_memdev == c->numa_nodes)
		return;
	fmt_bytes(c->have_m ? c->m_bytes : UINT64_C(128) << 20, sz, sizeof(sz));
	fail_ram(c, "guest RAM (%s%s) has no memory backend, so it is anonymous RAM: add -object memory-backend-file,id=ram0,size=...,mem-path=" RAMCRYPT_DEV ",share=on and -machine memory-backend=ram0",
	     c->have_m ? "-m " : "QEMU's default ", sz);
}

static int check_argv(char *const *argv, struct rc_qemu_result *ret,
		      struct ctx *c, bool force_qemu)
{
	const struct rcfs_mounts *rcfs = c->rcfs;
	enum kind k;
	int argc;

	memset(ret, 0, sizeof(*ret));
	memset(c, 0, sizeof(*c));
	c->res = ret;
	c->rcfs = rcfs;
	if (!argv || !argv[0] || !argv[0][0])
		return -EINVAL;
	k = force_qemu ? K_QEMU : classify_argv0(argv[0]);
	if (k == K_WRAPPER) {
		ret->verdict = RC_QEMU_UNKNOWN;
		snprintf(ret->reason, sizeof(ret->reason),
			 "'%s' is a wrapper (shell, script or launcher), not QEMU itself: guest RAM and drives are checked from /proc after the start",
			 argv[0]);
		return 0;
	}
	if (k == K_OTHER) {
		ret->verdict = RC_QEMU_NOT_QEMU;
		snprintf(ret->reason, sizeof(ret->reason),
			 "'%s' is not QEMU: RamCrypt protects guest RAM on ramcrypt regions only (qemu-system-* with a memory backend on " RAMCRYPT_DEV "), not the memory of an ordinary service",
			 argv[0]);
		return 0;
	}

	for (argc = 1; argv[argc]; argc++) {
		const char *a = argv[argc], *name, *val = NULL;
		_cleanup_free_ char *nbuf = NULL;
		const char *eq;

		if (a[0] != '-' || a[1] == '\0') {
			fail(c, "disk image '%s' given as a bare argument (-hda) reads through the host page cache (use -drive file=%s,cache=none)",
			     a, a);
			add_file(c, a);
			continue;
		}
		name = a + 1;
		if (*name == '-')
			name++;
		if (*name == '\0')	/* "--": QEMU has no such end marker */
			continue;
		eq = strchr(name, '=');
		if (eq) {
			nbuf = strndup(name, (size_t)(eq - name));
			if (!nbuf)
				return -ENOMEM;
			name = nbuf;
			val = eq + 1;
		} else if (takes_arg(name)) {
			if (!argv[argc + 1]) {
				fail(c, "option -%s needs a value", name);
				break;
			}
			val = argv[++argc];
		}

		if (strcmp(name, "object") == 0)
			do_object(c, val);
		else if (strcmp(name, "machine") == 0 || strcmp(name, "M") == 0)
			do_machine(c, val);
		else if (strcmp(name, "m") == 0)
			do_m(c, val);
		else if (strcmp(name, "numa") == 0)
			do_numa(c, val);
		else if (strcmp(name, "device") == 0)
			do_device(c, val);
		else if (strcmp(name, "drive") == 0)
			do_drive(c, val);
		else if (strcmp(name, "blockdev") == 0)
			do_blockdev(c, val);
		else if (strcmp(name, "mem-path") == 0)
			fail_ram(c, "-mem-path %s maps guest RAM private (copy-on-write anonymous pages): use -object memory-backend-file,...,mem-path=" RAMCRYPT_DEV ",share=on and -machine memory-backend=",
			     val);
		else if (!strcmp(name, "hda") || !strcmp(name, "hdb") ||
			 !strcmp(name, "hdc") || !strcmp(name, "hdd") ||
			 !strcmp(name, "cdrom") || !strcmp(name, "fda") ||
			 !strcmp(name, "fdb") || !strcmp(name, "sd") ||
			 !strcmp(name, "mtdblock") || !strcmp(name, "pflash")) {
			if (val && *val) {
				add_file(c, val);
				fail(c, "-%s '%s' reads through the host page cache (use -drive file=%s,cache=none)",
				     name, val, val);
			}
		} else if (strcmp(name, "vga") == 0) {
			if (strcmp(val, "none") == 0) {
				c->no_default_vga = true;
			} else if (!c->vga) {
				c->vga = strdup(val);
			}
		} else if (strcmp(name, "nographic") == 0 ||
			   strcmp(name, "nodefaults") == 0) {
			c->no_default_vga = true;
		} else if (strcmp(name, "readconfig") == 0) {
			fail(c, "-readconfig %s: options in a config file are not checked (put them on the command line)",
			     val);
		} else if (strcmp(name, "set") == 0) {
			fail(c, "-set %s: changes to options are not checked (write the option itself)",
			     val);
		}
	}

	check_backends(c);
	check_guest_ram(c);

	if (c->failures) {
		ret->verdict = RC_QEMU_UNPROTECTED;
		if (c->failures > 1) {
			size_t l = strlen(ret->reason);

			snprintf(ret->reason + l, sizeof(ret->reason) - l,
				 " (and %u more)", c->failures - 1);
		}
		return 0;
	}
	{
		char sz[32];
		size_t l;

		ret->verdict = RC_QEMU_PROTECTED;
		fmt_bytes(ret->ramcrypt_bytes, sz, sizeof(sz));
		l = (size_t)snprintf(ret->reason, sizeof(ret->reason),
				     "guest RAM (%s) on " RAMCRYPT_DEV ", %u drive file%s bypassing the page cache",
				     sz, c->drives_direct,
				     c->drives_direct == 1 ? "" : "s");
		if (c->vga && strcmp(c->vga, "none") != 0)
			snprintf(ret->reason + l, sizeof(ret->reason) - l,
				 "; display device '%s' keeps its video RAM in anonymous memory", c->vga);
		else if (!c->no_default_vga)
			snprintf(ret->reason + l, sizeof(ret->reason) - l,
				 "; the default VGA keeps 16 MiB of video RAM in anonymous memory (add -vga none or -nographic for a headless guest)");
	}
	return 0;
}

int rc_qemu_check_argv(char *const *argv, struct rc_qemu_result *ret)
{
	struct ctx *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	r = check_argv(argv, ret, c, false);
	ctx_free(c);
	free(c);
	return r;
}

/* ---- the process check ---- */

static bool is_anon_path(const char *p)
{
	static const char *const anon[] = {
		"/memfd:", "/dev/shm/", "/dev/zero", "/SYSV", "/dev/hugepages",
		"/hugepages", "/run/shm/",
	};

	if (!*p)
		return true;
	for (size_t i = 0; i < ELEMENTSOF(anon); i++)
		if (strncmp(p, anon[i], strlen(anon[i])) == 0)
			return true;
	return false;
}

struct maps_result {
	uint64_t ramcrypt;
	uint64_t anon;		/* sum of blocks >= threshold */
	unsigned int anon_blocks;
	uint64_t largest;
	uint64_t largest_at;
	char largest_path[64];
	bool private_ramcrypt;
};

static int read_maps(const char *root, pid_t pid, uint64_t threshold,
		     const struct rcfs_mounts *rcfs, struct maps_result *m)
{
	_cleanup_free_ char *rel = NULL, *buf = NULL;
	char *line, *save = NULL;
	int r;

	memset(m, 0, sizeof(*m));
	if (asprintf(&rel, "proc/%d/maps", (int)pid) < 0)
		return -ENOMEM;
	r = rc_read_full(root, rel, &buf, NULL);
	if (r < 0)
		return r;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned long long lo, hi, off, ino;
		char perms[8], dev[32];
		unsigned int maj, min;
		int n = 0;
		const char *path;
		uint64_t len;

		if (sscanf(line, "%llx-%llx %7s %llx %31s %llu %n", &lo, &hi,
			   perms, &off, dev, &ino, &n) < 6 || hi < lo ||
		    strlen(perms) < 4)
			continue;
		path = n ? line + n : "";
		while (*path == ' ')
			path++;
		len = hi - lo;
		if ((strncmp(path, RAMCRYPT_DEV, strlen(RAMCRYPT_DEV)) == 0 &&
		     (path[strlen(RAMCRYPT_DEV)] == '\0' ||
		      path[strlen(RAMCRYPT_DEV)] == ' ')) ||
		    (sscanf(dev, "%x:%x", &maj, &min) == 2 &&
		     rcfs_dev(rcfs, maj, min))) {
			if (perms[3] == 's')
				m->ramcrypt += len;
			else
				m->private_ramcrypt = true;
			continue;
		}
		/* writable, not executable (TCG's translated-code buffer is
		 * rwx), no file behind it (or shmem/memfd, which is as
		 * plaintext as anonymous memory) */
		if (perms[0] != 'r' || perms[1] != 'w' || perms[2] == 'x')
			continue;
		if (!is_anon_path(path))
			continue;
		if (len < threshold)
			continue;
		m->anon += len;
		m->anon_blocks++;
		if (len > m->largest) {
			m->largest = len;
			m->largest_at = lo;
			snprintf(m->largest_path, sizeof(m->largest_path), "%s",
				 path);
		}
	}
	return 0;
}

static bool named_file(const struct ctx *c, const char *path)
{
	for (size_t i = 0; i < c->n_files; i++)
		if (strcmp(c->files[i], path) == 0)
			return true;
	return false;
}

static bool image_name(const char *path)
{
	static const char *const ext[] = {
		".img", ".qcow2", ".qcow", ".raw", ".iso", ".vmdk", ".vdi",
		".vhd", ".vhdx", ".qed", ".dmg", ".bin",
	};
	static const char *const skip[] = {
		"/proc/", "/sys/", "/dev/", "/run/", "/memfd:", "/usr/lib/",
		"/usr/share/", "/lib/",
	};

	for (size_t i = 0; i < ELEMENTSOF(skip); i++)
		if (strncmp(path, skip[i], strlen(skip[i])) == 0)
			return false;
	for (size_t i = 0; i < ELEMENTSOF(ext); i++)
		if (has_suffix(path, ext[i]))
			return true;
	return false;
}

/* The first disk image open without O_DIRECT: 1 and *bad_fd/path, or 0.
 * *n_images counts the disk images seen. */
static int check_fds(const char *root, pid_t pid, const struct ctx *c,
		     int *bad_fd, char *bad_path, size_t bad_len,
		     unsigned int *n_images)
{
	_cleanup_free_ char *rel = NULL, *dpath = NULL;
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int r, found = 0;

	*n_images = 0;
	if (asprintf(&rel, "proc/%d/fd", (int)pid) < 0)
		return -ENOMEM;
	r = rc_path(root, rel, &dpath);
	if (r < 0)
		return r;
	d = opendir(dpath);
	if (!d)
		return rc_negative_errno();
	while ((de = readdir(d))) {
		_cleanup_free_ char *info_rel = NULL, *info = NULL;
		char target[4096], *flags;
		struct stat st;
		unsigned long fl;
		ssize_t k;
		char *del;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		k = readlinkat(dirfd(d), de->d_name, target, sizeof(target) - 1);
		if (k <= 0)
			continue;
		target[k] = '\0';
		if (target[0] != '/')
			continue;	/* socket:, pipe:, anon_inode: */
		del = strstr(target, " (deleted)");
		if (del && del[10] == '\0')
			*del = '\0';
		if (!named_file(c, target)) {
			if (!image_name(target))
				continue;
			/* on a live /proc: only regular files */
			if (fstatat(dirfd(d), de->d_name, &st, 0) == 0 &&
			    !S_ISREG(st.st_mode))
				continue;
		}
		(*n_images)++;
		if (asprintf(&info_rel, "proc/%d/fdinfo/%s", (int)pid,
			     de->d_name) < 0)
			return -ENOMEM;
		if (rc_read_string(root, info_rel, &info) < 0)
			continue;	/* closed meanwhile */
		flags = strstr(info, "flags:");
		if (!flags)
			continue;
		fl = strtoul(flags + 6, NULL, 8);
		if (!(fl & O_DIRECT) && !found) {
			found = 1;
			*bad_fd = atoi(de->d_name);
			snprintf(bad_path, bad_len, "%s", target);
		}
	}
	return found;
}

int rc_qemu_check_process(const char *root, pid_t pid, uint64_t threshold,
			  struct rc_qemu_result *ret)
{
	_cleanup_free_ char *rel = NULL, *cmd = NULL, *exe_rel = NULL,
			    *exe_path = NULL;
	_cleanup_free_ char **argv = NULL;
	char exe[4096] = "", sz[32], sz2[32];
	struct rcfs_mounts rcfs = { .n = 0 };
	struct maps_result m;
	struct ctx *c = NULL;
	enum kind k0, ke;
	size_t len, argc = 0;
	int r, bad_fd = -1;
	unsigned int n_images = 0;
	char bad_path[512];

	memset(ret, 0, sizeof(*ret));
	if (pid <= 0)
		return -EINVAL;
	if (threshold == 0)
		threshold = RC_QEMU_ANON_THRESHOLD_DEFAULT;

	if (asprintf(&rel, "proc/%d/cmdline", (int)pid) < 0)
		return -ENOMEM;
	r = rc_read_full(root, rel, &cmd, &len);
	if (r < 0)
		return r == -ENOENT ? -ESRCH : r;
	if (len == 0)
		return -ESRCH;	/* a zombie or a kernel thread */
	if (cmd[len - 1] != '\0')
		len++;		/* rc_read_full NUL-terminates */
	argv = calloc(len + 1, sizeof(char *));
	if (!argv)
		return -ENOMEM;
	for (size_t i = 0; i < len; i += strlen(cmd + i) + 1)
		argv[argc++] = cmd + i;
	argv[argc] = NULL;

	if (asprintf(&exe_rel, "proc/%d/exe", (int)pid) < 0)
		return -ENOMEM;
	r = rc_path(root, exe_rel, &exe_path);
	if (r < 0)
		return r;
	{
		ssize_t k = readlink(exe_path, exe, sizeof(exe) - 1);
		char *del;

		exe[k > 0 ? k : 0] = '\0';
		del = strstr(exe, " (deleted)");
		if (del && del[10] == '\0')
			*del = '\0';
	}

	k0 = classify_name(argv[0]);
	ke = exe[0] ? classify_name(exe) : K_OTHER;
	if (k0 != K_QEMU && ke != K_QEMU) {
		const char *who = exe[0] ? base_name(exe) : argv[0];

		if (k0 == K_WRAPPER || ke == K_WRAPPER) {
			ret->verdict = RC_QEMU_UNKNOWN;
			snprintf(ret->reason, sizeof(ret->reason),
				 "process %d is '%s' running '%s', not QEMU itself: check the QEMU process it starts",
				 (int)pid, who, argc > 1 ? argv[1] : argv[0]);
		} else {
			ret->verdict = RC_QEMU_NOT_QEMU;
			snprintf(ret->reason, sizeof(ret->reason),
				 "process %d ('%s') is not QEMU: RamCrypt protects guest RAM on ramcrypt regions only (qemu-system-* with a memory backend on " RAMCRYPT_DEV "), not the memory of an ordinary service",
				 (int)pid, who);
		}
		return 0;
	}

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	r = read_rcfs_mounts(root, pid, &rcfs);
	if (r < 0)
		goto out;
	c->rcfs = &rcfs;
	r = check_argv(argv, ret, c, true);
	if (r < 0)
		goto out;

	r = read_maps(root, pid, threshold, &rcfs, &m);
	if (r < 0)
		goto out;
	r = check_fds(root, pid, c, &bad_fd, bad_path, sizeof(bad_path),
		      &n_images);
	if (r < 0)
		goto out;

	/* From here on, what the process really does. */
	ret->ramcrypt_bytes = m.ramcrypt;
	ret->anonymous_bytes = m.anon;
	if (ret->verdict == RC_QEMU_UNPROTECTED) {
		r = 0;	/* the command line already says why */
		goto out;
	}
	fmt_bytes(m.largest, sz, sizeof(sz));
	if (m.private_ramcrypt) {
		ret->verdict = RC_QEMU_UNPROTECTED;
		snprintf(ret->reason, sizeof(ret->reason),
			 "process %d maps its ramcrypt RAM private (share=off): written guest pages become anonymous copies",
			 (int)pid);
	} else if (m.ramcrypt == 0) {
		ret->verdict = RC_QEMU_UNPROTECTED;
		ret->ramcrypt_pending = m.largest < RC_QEMU_GUEST_RAM_MIN;
		if (m.anon_blocks)
			snprintf(ret->reason, sizeof(ret->reason),
				 "process %d has no mapping of " RAMCRYPT_DEV " or a ramcryptfs file: its guest RAM is anonymous (largest block %s at 0x%" PRIx64 ")",
				 (int)pid, sz, m.largest_at);
		else
			snprintf(ret->reason, sizeof(ret->reason),
				 "process %d has no mapping of " RAMCRYPT_DEV " or a ramcryptfs file: its guest RAM is not on ramcrypt",
				 (int)pid);
	} else if (m.largest >= RC_QEMU_GUEST_RAM_MIN) {
		ret->verdict = RC_QEMU_UNPROTECTED;
		snprintf(ret->reason, sizeof(ret->reason),
			 "process %d has an anonymous block of %s at 0x%" PRIx64 "%s%s%s: guest RAM outside ramcrypt (a memory backend added at runtime?)",
			 (int)pid, sz, m.largest_at,
			 m.largest_path[0] ? " (" : "", m.largest_path,
			 m.largest_path[0] ? ")" : "");
	} else if (r == 1) {
		ret->verdict = RC_QEMU_UNPROTECTED;
		snprintf(ret->reason, sizeof(ret->reason),
			 "disk image '%.300s' is open without O_DIRECT (fd %d): its blocks pass through the host page cache (use cache=none or cache.direct=on)",
			 bad_path, bad_fd);
	} else {
		size_t l;

		ret->verdict = RC_QEMU_PROTECTED;
		fmt_bytes(m.ramcrypt, sz2, sizeof(sz2));
		l = (size_t)snprintf(ret->reason, sizeof(ret->reason),
				     "guest RAM (%s) on ramcrypt, %u disk image%s open with O_DIRECT",
				     sz2, n_images, n_images == 1 ? "" : "s");
		if (m.anon_blocks) {
			fmt_bytes(m.anon, sz2, sizeof(sz2));
			snprintf(ret->reason + l, sizeof(ret->reason) - l,
				 "; %s in %u anonymous block%s of at least %" PRIu64 " MiB (largest %s, e.g. video RAM) outside it",
				 sz2, m.anon_blocks,
				 m.anon_blocks == 1 ? "" : "s",
				 threshold >> 20, sz);
		}
	}
	r = 0;
out:
	ctx_free(c);
	free(c);
	rcfs_mounts_free(&rcfs);
	return r;
}

const char *rc_qemu_verdict_to_string(enum rc_qemu_verdict v)
{
	switch (v) {
	case RC_QEMU_PROTECTED: return "protected";
	case RC_QEMU_NOT_QEMU: return "not-qemu";
	case RC_QEMU_UNKNOWN: return "unknown";
	case RC_QEMU_UNPROTECTED: return "unprotected";
	}
	return "invalid";
}
