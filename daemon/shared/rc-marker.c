// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rc-marker.c - the [X-RamCrypt] section of unit files, see rc-marker.h.
 *
 * The line syntax is systemd's (systemd.syntax(7)): '#' and ';' start a
 * comment line, also in the middle of a continuation; a line ending in an
 * unescaped backslash continues on the next one (the backslash becomes a
 * space); whitespace around the key and the value is dropped; section and key
 * names are case-sensitive. Only [X-RamCrypt] is checked strictly: systemd
 * itself ignores X- sections, so a typo there would otherwise run a unit the
 * admin meant to protect unprotected. Errors name the first line of the
 * assignment.
 */
#define _GNU_SOURCE	/* strcasestr() */
#include "rc-marker.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define WHITESPACE " \t\n\r"
#define PAGE_BYTES 4096ULL
#define USEC_PER_MSEC 1000ULL
#define USEC_PER_SEC 1000000ULL
#define USEC_PER_MIN (60 * USEC_PER_SEC)
#define USEC_PER_HOUR (60 * USEC_PER_MIN)
#define USEC_PER_DAY (24 * USEC_PER_HOUR)
#define MAX_AGE_MS 3600000U	/* 1h */
#define MAX_CPUS 1024U

enum section { SEC_NONE, SEC_MARKER, SEC_OTHER };

struct ctx {
	const char *path;
	unsigned int line;
	enum section section;
	bool service;		/* the current section is [Service] */
	struct rc_marker *m;
	struct rc_marker_error *err;
};

/* Copy a string into a fixed field, ending in "..." if it was cut. */
static void copy(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n < size) {
		memcpy(dst, src, n + 1);
		return;
	}
	memcpy(dst, src, size - 4);
	memcpy(dst + size - 4, "...", 4);
}

static int fail(struct ctx *c, const char *key, const char *value,
		const char *fmt, ...)
{
	va_list ap;

	if (!c->err)
		return -EINVAL;
	memset(c->err, 0, sizeof(*c->err));
	copy(c->err->file, sizeof(c->err->file), c->path);
	c->err->line = c->line;
	copy(c->err->key, sizeof(c->err->key), key);
	copy(c->err->value, sizeof(c->err->value), value);
	va_start(ap, fmt);
	vsnprintf(c->err->message, sizeof(c->err->message), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static char *strip(char *s)
{
	char *e;

	s += strspn(s, WHITESPACE);
	for (e = s + strlen(s); e > s && strchr(WHITESPACE, e[-1]); e--)
		;
	*e = 0;
	return s;
}

/* systemd's parse_boolean() */
static int parse_boolean(const char *v)
{
	static const char *const yes[] = { "1", "yes", "y", "true", "t", "on" };
	static const char *const no[] = { "0", "no", "n", "false", "f", "off" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcasecmp(v, yes[i]))
			return 1;
		if (!strcasecmp(v, no[i]))
			return 0;
	}
	return -EINVAL;
}

/* Decimal digits only (no sign, no spaces), into *out; -EINVAL or -ERANGE. */
static int parse_u64(const char *s, const char **end, uint64_t *out)
{
	uint64_t v = 0;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	for (; isdigit((unsigned char)*s); s++) {
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*end = s;
	*out = v;
	return 0;
}

/* Window=: bytes with a binary K/M/G suffix (whole pages), or a bare page
 * count. Pages into *pages, or a reason. */
static const char *parse_window(const char *v, uint32_t *pages)
{
	static const char range[] = "out of range (1 to 4294967295 pages)";
	uint64_t n, mult = 0, bytes;
	const char *e;
	int r;

	r = parse_u64(v, &e, &n);
	if (r == -ERANGE)
		return range;
	if (r < 0)
		return "not a size in bytes or pages";
	e += strspn(e, WHITESPACE);
	if (!*e)
		mult = 0;	/* pages */
	else if (!strcmp(e, "K"))
		mult = 1ULL << 10;
	else if (!strcmp(e, "M"))
		mult = 1ULL << 20;
	else if (!strcmp(e, "G"))
		mult = 1ULL << 30;
	else
		return "not a size in bytes or pages";
	if (mult) {
		if (n > UINT64_MAX / mult)
			return range;
		bytes = n * mult;
		if (bytes % PAGE_BYTES)
			return "not a multiple of the page size (4096 bytes)";
		n = bytes / PAGE_BYTES;
	}
	if (n < 1 || n > UINT32_MAX)
		return range;
	*pages = (uint32_t)n;
	return NULL;
}

/* A systemd time span (systemd.time(7)): components like "1min 30s", each a
 * number (with an optional fraction) and a unit; a bare number is seconds.
 * Into microseconds, saturating at UINT64_MAX. */
static int parse_timespan_us(const char *v, uint64_t *out)
{
	static const struct {
		const char *suffix;
		uint64_t usec;
	} units[] = {	/* longest first where one is a prefix of another */
		{ "seconds", USEC_PER_SEC }, { "second", USEC_PER_SEC },
		{ "sec", USEC_PER_SEC }, { "s", USEC_PER_SEC },
		{ "minutes", USEC_PER_MIN }, { "minute", USEC_PER_MIN },
		{ "min", USEC_PER_MIN }, { "months", 2629800 * USEC_PER_SEC },
		{ "month", 2629800 * USEC_PER_SEC }, { "M", 2629800 * USEC_PER_SEC },
		{ "msec", USEC_PER_MSEC }, { "ms", USEC_PER_MSEC },
		{ "m", USEC_PER_MIN }, { "hours", USEC_PER_HOUR },
		{ "hour", USEC_PER_HOUR }, { "hr", USEC_PER_HOUR },
		{ "h", USEC_PER_HOUR }, { "days", USEC_PER_DAY },
		{ "day", USEC_PER_DAY }, { "d", USEC_PER_DAY },
		{ "weeks", 7 * USEC_PER_DAY }, { "week", 7 * USEC_PER_DAY },
		{ "w", 7 * USEC_PER_DAY }, { "years", 31557600 * USEC_PER_SEC },
		{ "year", 31557600 * USEC_PER_SEC }, { "y", 31557600 * USEC_PER_SEC },
		{ "usec", 1 }, { "us", 1 }, { "\xc2\xb5s", 1 }, { "\xce\xbcs", 1 },
	};
	uint64_t total = 0;
	bool any = false;
	const char *p = v;

	for (;;) {
		uint64_t n = 0, mult = USEC_PER_SEC, part;
		const char *digits, *frac = NULL, *e;
		size_t i;

		p += strspn(p, WHITESPACE);
		if (!*p)
			break;
		digits = p;
		if (isdigit((unsigned char)*p)) {
			if (parse_u64(p, &e, &n) < 0)
				n = UINT64_MAX;	/* too big: saturate */
			while (isdigit((unsigned char)*p))
				p++;
		}
		if (*p == '.') {
			frac = ++p;
			while (isdigit((unsigned char)*p))
				p++;
		}
		if (p == digits || (frac && p == frac && frac - 1 == digits))
			return -EINVAL;	/* no digits */
		e = p + strspn(p, WHITESPACE);
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (!strncmp(e, units[i].suffix, strlen(units[i].suffix)))
				break;
		if (i < sizeof(units) / sizeof(units[0])) {
			mult = units[i].usec;
			p = e + strlen(units[i].suffix);
		} else if (*e && !isdigit((unsigned char)*e) && *e != '.') {
			return -EINVAL;	/* an unknown unit */
		}
		part = n > UINT64_MAX / mult ? UINT64_MAX : n * mult;
		for (const char *f = frac; f && f < p && isdigit((unsigned char)*f); f++) {
			uint64_t d;

			mult /= 10;
			d = (uint64_t)(*f - '0') * mult;
			part = part > UINT64_MAX - d ? UINT64_MAX : part + d;
		}
		total = total > UINT64_MAX - part ? UINT64_MAX : total + part;
		any = true;
	}
	if (!any)
		return -EINVAL;
	*out = total;
	return 0;
}

static int marker_assignment(struct ctx *c, const char *key, const char *value)
{
	struct rc_marker *m = c->m;
	const char *why;
	uint64_t n;
	const char *e;
	int r;

	if (!strcmp(key, "RamCrypt")) {
		if (!*value) {
			m->ramcrypt = false;
			return 0;
		}
		r = parse_boolean(value);
		if (r < 0)
			return fail(c, key, value,
				    "not a boolean (yes/no, true/false, on/off, 1/0)");
		m->ramcrypt = r;
	} else if (!strcmp(key, "Window")) {
		if (!*value) {
			m->window_pages = 0;
			return 0;
		}
		why = parse_window(value, &m->window_pages);
		if (why)
			return fail(c, key, value, "%s", why);
	} else if (!strcmp(key, "MaxPlaintextAge")) {
		if (!*value) {
			m->max_plaintext_age_ms = 0;
			return 0;
		}
		if (parse_timespan_us(value, &n) < 0)
			return fail(c, key, value,
				    "not a time span (e.g. 100ms, 1s, 2min)");
		/* whole milliseconds, rounded down: never a longer bound */
		n /= USEC_PER_MSEC;
		if (n < 1 || n > MAX_AGE_MS)
			return fail(c, key, value, "out of range (1ms to 1h)");
		m->max_plaintext_age_ms = (uint32_t)n;
	} else if (!strcmp(key, "CPUs")) {
		if (!*value) {
			m->cpus = 0;
			return 0;
		}
		r = parse_u64(value, &e, &n);
		if (r == -EINVAL || (r == 0 && *e))
			return fail(c, key, value, "not a number");
		if (r < 0 || n < 1 || n > MAX_CPUS)
			return fail(c, key, value, "out of range (1 to %u)",
				    MAX_CPUS);
		m->cpus = (uint32_t)n;
	} else if (!strcmp(key, "CacheConfinement")) {
		if (!*value || !strcmp(value, "auto"))
			m->confinement = RC_CONFINE_AUTO;
		else if (!strcmp(value, "required"))
			m->confinement = RC_CONFINE_REQUIRED;
		else if (!strcmp(value, "off"))
			m->confinement = RC_CONFINE_OFF;
		else
			return fail(c, key, value, "not one of auto, required, off");
	} else {
		return fail(c, key, value, "unknown key in [X-RamCrypt]");
	}
	return 0;
}

int rc_marker_assign(struct rc_marker *m, const char *source,
		     const char *key, const char *value,
		     struct rc_marker_error *err)
{
	struct ctx c = { .path = source, .section = SEC_MARKER, .m = m,
			 .err = err };

	return marker_assignment(&c, key, value);
}

/* The [Service] keys the generator needs (see rc-marker.h); values
 * systemd would reject are left to systemd. */
static void service_assignment(struct ctx *c, const char *key,
			       const char *value)
{
	struct rc_marker *m = c->m;
	int r;

	if (!strcmp(key, "DeviceAllow")) {
		m->device_allow = *value != 0;
	} else if (!strcmp(key, "DevicePolicy")) {
		if (!*value || !strcmp(value, "auto"))
			m->device_policy_closed = false;
		else if (!strcmp(value, "closed") || !strcmp(value, "strict"))
			m->device_policy_closed = true;
	} else if (!strcmp(key, "ExecStartPre")) {
		if (!*value)
			m->exec_start_pre_reset = true;
	} else if (!strcmp(key, "PrivateDevices")) {
		r = *value ? parse_boolean(value) : 0;
		if (r >= 0)
			m->private_devices = r;
	}
}

static int parse_line(struct ctx *c, char *l)
{
	char *eq, *key, *value;
	size_t n;

	l = strip(l);
	if (!*l || strchr("#;", *l))
		return 0;

	if (*l == '[') {
		const char *name = l + 1;

		n = strlen(l);
		if (n < 2 || l[n - 1] != ']')
			return fail(c, "", l, "invalid section header");
		n -= 2;		/* the name's length */
		c->service = n == 7 && !strncmp(name, "Service", n);
		c->section = SEC_OTHER;
		if (n == 10 && !strncmp(name, "X-RamCrypt", n)) {
			c->section = SEC_MARKER;
			c->m->present = true;
		} else if (strcasestr(name, "ramcrypt")) {
			/* [X-Ramcrypt], [RamCrypt], [ X-RamCrypt ]: systemd
			 * would ignore the marker, so refuse it */
			return fail(c, "", l,
				    "not the section name [X-RamCrypt] (case-sensitive)");
		}
		return 0;
	}

	eq = strchr(l, '=');
	if (c->section == SEC_NONE)
		return 0;	/* systemd ignores assignments before a section */
	if (!eq) {
		if (c->section == SEC_MARKER)
			return fail(c, "", l, "not an assignment (missing '=')");
		return 0;	/* systemd warns and ignores it */
	}
	*eq = 0;
	key = strip(l);
	value = strip(eq + 1);

	if (c->section == SEC_MARKER)
		return marker_assignment(c, key, value);

	if (strcasestr(key, "ramcrypt") && !c->m->service_hint) {
		c->m->service_hint = true;
		copy(c->m->hint_file, sizeof(c->m->hint_file), c->path);
		c->m->hint_line = c->line;
	}
	if (c->service)
		service_assignment(c, key, value);
	return 0;
}

/* A line ends in an unescaped backslash. */
static bool continues(const char *s)
{
	bool escaped = false;

	for (; *s; s++)
		escaped = escaped ? false : *s == '\\';
	return escaped;
}

int rc_marker_parse_file(const char *path, struct rc_marker *m,
			 struct rc_marker_error *err)
{
	struct ctx c = { .path = path, .m = m, .err = err };
	char *buf = NULL, *cont = NULL;
	size_t cap = 0, contlen = 0;
	unsigned int lineno = 0;
	ssize_t len;
	FILE *f;
	int r = 0;

	f = fopen(path, "re");
	if (!f) {
		r = -errno;
		if (err) {
			memset(err, 0, sizeof(*err));
			copy(err->file, sizeof(err->file), path);
			snprintf(err->message, sizeof(err->message),
				 "cannot be read: %s", strerror(-r));
		}
		return r;
	}

	while ((len = getline(&buf, &cap, f)) >= 0) {
		char *l = buf, *t;

		lineno++;
		while (len > 0 && (l[len - 1] == '\n' || l[len - 1] == '\r'))
			l[--len] = 0;
		if (lineno == 1 && !strncmp(l, "\xef\xbb\xbf", 3)) {
			l += 3;
			len -= 3;
		}
		t = l + strspn(l, WHITESPACE);
		if (*t && strchr("#;", *t))
			continue;	/* comments are skipped, even in a continuation */

		if (!cont)
			c.line = lineno;
		t = realloc(cont, contlen + (size_t)len + 1);
		if (!t) {
			r = -ENOMEM;
			break;
		}
		cont = t;
		memcpy(cont + contlen, l, (size_t)len + 1);
		contlen += (size_t)len;

		if (continues(cont)) {
			cont[contlen - 1] = ' ';
			continue;
		}
		r = parse_line(&c, cont);
		free(cont);
		cont = NULL;
		contlen = 0;
		if (r < 0)
			break;
	}
	if (r == 0 && ferror(f))
		r = -EIO;
	if (r == 0 && cont)	/* a continuation at the end of the file */
		r = parse_line(&c, cont);
	if (r == -ENOMEM || r == -EIO) {
		if (err) {
			memset(err, 0, sizeof(*err));
			copy(err->file, sizeof(err->file), path);
			snprintf(err->message, sizeof(err->message),
				 "cannot be read: %s", strerror(-r));
		}
	}
	free(cont);
	free(buf);
	fclose(f);
	return r;
}

void rc_marker_init(struct rc_marker *m)
{
	memset(m, 0, sizeof(*m));
	m->confinement = RC_CONFINE_AUTO;
}

/* Starts from rc_marker_init(); stops at the first error. */
int rc_marker_parse_unit(const char *fragment, char *const *dropins,
			 struct rc_marker *m, struct rc_marker_error *err)
{
	int r;

	rc_marker_init(m);
	if (fragment) {
		r = rc_marker_parse_file(fragment, m, err);
		if (r < 0)
			return r;
	}
	for (; dropins && *dropins; dropins++) {
		r = rc_marker_parse_file(*dropins, m, err);
		if (r < 0)
			return r;
	}
	return 0;
}

const char *rc_marker_error_string(const struct rc_marker_error *err,
				   char *buf, size_t size)
{
	if (!err->line)
		snprintf(buf, size, "%s: %s", err->file, err->message);
	else if (*err->key)
		snprintf(buf, size, "%s:%u: %s=%s: %s", err->file, err->line,
			 err->key, err->value, err->message);
	else
		snprintf(buf, size, "%s:%u: %s: %s", err->file, err->line,
			 err->value, err->message);
	return buf;
}
