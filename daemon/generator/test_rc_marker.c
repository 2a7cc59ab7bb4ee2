// SPDX-License-Identifier: GPL-2.0-or-later
/* test_rc_marker.c - unit test of the [X-RamCrypt] parser (rc-marker.c) */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rc-marker.h"

static char dir[] = "/tmp/test_rc_marker.XXXXXX";
static int checks, failures;

#define CHECK(cond, ...)                                                  \
	do {                                                              \
		checks++;                                                 \
		if (!(cond)) {                                            \
			failures++;                                       \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__,     \
				__LINE__, #cond);                         \
			fprintf(stderr, __VA_ARGS__);                     \
			fputc('\n', stderr);                              \
		}                                                         \
	} while (0)

static int rm_one(const char *path, const struct stat *st, int type,
		  struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path);
}

static char *put(const char *name, const char *text)
{
	char *path;
	FILE *f;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		abort();
	f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		abort();
	return path;
}

/* Parse `text` as one file; returns the result, m and err filled. */
static int parse(const char *text, struct rc_marker *m,
		 struct rc_marker_error *err)
{
	char *p = put("unit.service", text);
	int r;

	memset(err, 0, sizeof(*err));
	rc_marker_init(m);
	r = rc_marker_parse_file(p, m, err);
	free(p);
	return r;
}

/* A [X-RamCrypt] value that must be refused with `msg` at line 2. */
static void bad(const char *key, const char *value, const char *msg)
{
	struct rc_marker m;
	struct rc_marker_error err;
	char *text;
	int r;

	if (asprintf(&text, "[X-RamCrypt]\n%s=%s\n", key, value) < 0)
		abort();
	r = parse(text, &m, &err);
	CHECK(r == -EINVAL, "%s=%s: r=%d", key, value, r);
	CHECK(err.line == 2 && !strcmp(err.key, key) &&
	      !strcmp(err.value, value) && strstr(err.message, msg) &&
	      strstr(err.file, "/unit.service"),
	      "%s=%s: got %s:%u key '%s' value '%s' message '%s'", key, value,
	      err.file, err.line, err.key, err.value, err.message);
	free(text);
}

/* A good value: the parsed field equals `want`. */
static void good(const char *key, const char *value, unsigned long want)
{
	struct rc_marker m;
	struct rc_marker_error err;
	unsigned long got = 0;
	char *text;
	int r;

	if (asprintf(&text, "[X-RamCrypt]\n%s=%s\n", key, value) < 0)
		abort();
	r = parse(text, &m, &err);
	CHECK(r == 0, "%s=%s: r=%d (%s)", key, value, r, err.message);
	if (!strcmp(key, "RamCrypt"))
		got = m.ramcrypt;
	else if (!strcmp(key, "Window"))
		got = m.window_pages;
	else if (!strcmp(key, "MaxPlaintextAge"))
		got = m.max_plaintext_age_ms;
	else if (!strcmp(key, "CPUs"))
		got = m.cpus;
	else if (!strcmp(key, "CacheConfinement"))
		got = m.confinement;
	CHECK(got == want, "%s=%s: got %lu, want %lu", key, value, got, want);
	free(text);
}

int main(void)
{
	struct rc_marker m;
	struct rc_marker_error err;
	int r;

	if (!mkdtemp(dir))
		abort();

	/* booleans, as systemd's parse_boolean() */
	good("RamCrypt", "yes", 1);
	good("RamCrypt", "YES", 1);
	good("RamCrypt", "on", 1);
	good("RamCrypt", "true", 1);
	good("RamCrypt", "1", 1);
	good("RamCrypt", "y", 1);
	good("RamCrypt", "no", 0);
	good("RamCrypt", "off", 0);
	good("RamCrypt", "false", 0);
	good("RamCrypt", "0", 0);
	bad("RamCrypt", "maybe", "not a boolean");
	bad("RamCrypt", "yes please", "not a boolean");

	/* Window=: bytes with K/M/G in whole pages, or pages */
	good("Window", "64M", 16384);
	good("Window", "64 M", 16384);
	good("Window", "4K", 1);
	good("Window", "1G", 262144);
	good("Window", "256", 256);
	good("Window", "4294967295", 4294967295UL);
	bad("Window", "banana", "not a size in bytes or pages");
	bad("Window", "64MB", "not a size in bytes or pages");
	bad("Window", "64m", "not a size in bytes or pages");
	bad("Window", "-1", "not a size in bytes or pages");
	bad("Window", "1.5M", "not a size in bytes or pages");
	bad("Window", "1K", "not a multiple of the page size");
	bad("Window", "6K", "not a multiple of the page size");
	bad("Window", "0", "out of range");
	bad("Window", "0K", "out of range");
	bad("Window", "4294967296", "out of range");
	bad("Window", "16384G", "out of range");	/* 2^32 pages */
	bad("Window", "99999999999999999999999", "out of range");

	/* MaxPlaintextAge=: systemd time spans, a bare number is seconds */
	good("MaxPlaintextAge", "100ms", 100);
	good("MaxPlaintextAge", "1s", 1000);
	good("MaxPlaintextAge", "2", 2000);
	good("MaxPlaintextAge", "1.5s", 1500);
	good("MaxPlaintextAge", "1min 30s", 90000);
	good("MaxPlaintextAge", "1s500ms", 1500);
	good("MaxPlaintextAge", "2500us", 2);	/* rounded down */
	good("MaxPlaintextAge", "1h", 3600000);
	good("MaxPlaintextAge", "60min", 3600000);
	good("MaxPlaintextAge", "250 msec", 250);
	bad("MaxPlaintextAge", "fast", "not a time span");
	bad("MaxPlaintextAge", "10 parsecs", "not a time span");
	bad("MaxPlaintextAge", "1sx", "not a time span");
	bad("MaxPlaintextAge", ".", "not a time span");
	bad("MaxPlaintextAge", "-5s", "not a time span");
	bad("MaxPlaintextAge", "0", "out of range (1ms to 1h)");
	bad("MaxPlaintextAge", "999us", "out of range (1ms to 1h)");
	bad("MaxPlaintextAge", "1h 1ms", "out of range");
	bad("MaxPlaintextAge", "2d", "out of range");
	bad("MaxPlaintextAge", "99999999999999999999y", "out of range");
	bad("MaxPlaintextAge", "99999999999999999999.1s", "out of range");
	bad("MaxPlaintextAge", "584542y 0.9y", "out of range");

	/* CPUs=, CacheConfinement= */
	good("CPUs", "1", 1);
	good("CPUs", "1024", 1024);
	bad("CPUs", "0", "out of range (1 to 1024)");
	bad("CPUs", "1025", "out of range (1 to 1024)");
	bad("CPUs", "two", "not a number");
	bad("CPUs", "2x", "not a number");
	bad("CPUs", "-1", "not a number");
	good("CacheConfinement", "auto", RC_CONFINE_AUTO);
	good("CacheConfinement", "required", RC_CONFINE_REQUIRED);
	good("CacheConfinement", "off", RC_CONFINE_OFF);
	bad("CacheConfinement", "Required", "not one of auto, required, off");

	/* keys are case-sensitive, unknown ones refused */
	bad("Windows", "64M", "unknown key in [X-RamCrypt]");
	bad("ramcrypt", "yes", "unknown key in [X-RamCrypt]");

	/* syntax: comments, continuation, whitespace, sections */
	r = parse("# comment\n"
		  "; another\n"
		  "[Unit]\n"
		  "Description=a VM \\\n"
		  "  with a long description\n"
		  "\n"
		  "[X-RamCrypt]\n"
		  "  RamCrypt  =  yes  \n"
		  "Window=\\\n"
		  "# a comment inside the continuation is skipped\n"
		  "64M\n"
		  "MaxPlaintextAge=100ms\n"
		  "CPUs=2\n"
		  "CacheConfinement=required\n"
		  "[Service]\n"
		  "ExecStart=/bin/true\n", &m, &err);
	CHECK(r == 0, "syntax: r=%d %s:%u %s", r, err.file, err.line, err.message);
	CHECK(m.present && m.ramcrypt && m.window_pages == 16384 &&
	      m.max_plaintext_age_ms == 100 && m.cpus == 2 &&
	      m.confinement == RC_CONFINE_REQUIRED && !m.service_hint,
	      "syntax: present %d ramcrypt %d window %u age %u cpus %u conf %d",
	      m.present, m.ramcrypt, m.window_pages, m.max_plaintext_age_ms,
	      m.cpus, m.confinement);

	/* an error in a continued assignment names its first line */
	r = parse("[X-RamCrypt]\nRamCrypt=yes\nWindow=64\\\nM banana\n", &m, &err);
	CHECK(r == -EINVAL && err.line == 3 && !strcmp(err.value, "64 M banana"),
	      "continuation error: r=%d line %u value '%s'", r, err.line, err.value);

	/* a continuation at the end of the file is still parsed */
	r = parse("[X-RamCrypt]\nWindow=banana\\", &m, &err);
	CHECK(r == -EINVAL && err.line == 2, "eof continuation: r=%d line %u",
	      r, err.line);

	/* an escaped backslash does not continue */
	r = parse("[Service]\nExecStart=/bin/echo \\\\\n[X-RamCrypt]\nRamCrypt=on\n",
		  &m, &err);
	CHECK(r == 0 && m.ramcrypt, "escaped backslash: r=%d ramcrypt %d", r,
	      m.ramcrypt);

	/* a UTF-8 byte order mark before the first section */
	r = parse("\xef\xbb\xbf[X-RamCrypt]\nRamCrypt=yes\n", &m, &err);
	CHECK(r == 0 && m.ramcrypt, "BOM: r=%d", r);

	/* section headers: bad ones and a case typo in ours are errors */
	r = parse("[X-RamCrypt\nRamCrypt=yes\n", &m, &err);
	CHECK(r == -EINVAL && err.line == 1 &&
	      strstr(err.message, "invalid section header"), "bad header: r=%d %s",
	      r, err.message);
	r = parse("[Unit]\n[x-ramcrypt]\nRamCrypt=yes\n", &m, &err);
	CHECK(r == -EINVAL && err.line == 2 && !strcmp(err.value, "[x-ramcrypt]") &&
	      strstr(err.message, "not the section name [X-RamCrypt]"),
	      "case typo: r=%d '%s' %s", r, err.value, err.message);
	r = parse("[RamCrypt]\nRamCrypt=yes\n", &m, &err);
	CHECK(r == -EINVAL && err.line == 1 && !strcmp(err.value, "[RamCrypt]"),
	      "no X-: r=%d '%s'", r, err.value);
	r = parse("[ X-RamCrypt ]\nRamCrypt=yes\n", &m, &err);
	CHECK(r == -EINVAL && !strcmp(err.value, "[ X-RamCrypt ]"),
	      "spaces in header: r=%d '%s'", r, err.value);
	r = parse("[X-RamCrypt]\nRamCrypt\n", &m, &err);
	CHECK(r == -EINVAL && strstr(err.message, "missing '='"),
	      "no '=': r=%d %s", r, err.message);
	/* other sections: no '=' and assignments before any section are
	 * systemd's business (it ignores them) */
	r = parse("Foo=bar\n[Unit]\nnonsense\n[X-Other]\nRamCrypt=banana\n", &m, &err);
	CHECK(r == 0 && !m.present && !m.ramcrypt, "other sections: r=%d", r);

	/* RamCrypt= in [Service] is a hint, not a marker */
	r = parse("[Unit]\nDescription=x\n[Service]\nExecStart=/bin/true\n"
		  "RamCrypt=yes\n", &m, &err);
	CHECK(r == 0 && !m.ramcrypt && !m.present && m.service_hint &&
	      m.hint_line == 5 && strstr(m.hint_file, "/unit.service"),
	      "hint: r=%d ramcrypt %d hint %d line %u", r, m.ramcrypt,
	      m.service_hint, m.hint_line);

	r = parse("[Service]\nRamcrypt=on\n", &m, &err);
	CHECK(r == 0 && m.service_hint && m.hint_line == 2, "hint, case: r=%d", r);
	r = parse("[Service]\nX-RamCrypt=on\n", &m, &err);
	CHECK(r == 0 && m.service_hint, "hint, X-: r=%d", r);

	/* [Service] device access (for DeviceAllow=/dev/ramcrypt) */
	r = parse("[Service]\nDeviceAllow=/dev/kvm rw\n", &m, &err);
	CHECK(r == 0 && m.device_allow && !m.device_policy_closed &&
	      !m.private_devices, "DeviceAllow: r=%d", r);
	r = parse("[Service]\nDeviceAllow=/dev/kvm rw\nDeviceAllow=\n"
		  "DevicePolicy=strict\nPrivateDevices=yes\n", &m, &err);
	CHECK(r == 0 && !m.device_allow && m.device_policy_closed &&
	      m.private_devices, "device reset: r=%d allow %d", r, m.device_allow);
	r = parse("[Unit]\nDeviceAllow=/dev/kvm rw\n[Service]\nDevicePolicy=auto\n",
		  &m, &err);
	CHECK(r == 0 && !m.device_allow && !m.device_policy_closed,
	      "device outside [Service]: r=%d", r);

	/* an empty ExecStartPre= in [Service] is seen (not elsewhere) */
	r = parse("[Service]\nExecStartPre=/bin/true\n", &m, &err);
	CHECK(r == 0 && !m.exec_start_pre_reset, "ExecStartPre set: r=%d", r);
	r = parse("[Service]\nExecStartPre=\nExecStartPre=/bin/true\n", &m, &err);
	CHECK(r == 0 && m.exec_start_pre_reset, "ExecStartPre reset: r=%d", r);
	r = parse("[Unit]\nExecStartPre=\n", &m, &err);
	CHECK(r == 0 && !m.exec_start_pre_reset, "ExecStartPre in [Unit]: r=%d", r);

	/* the one-line form of errors */
	{
		char buf[5000];

		r = parse("[X-RamCrypt]\nWindow=banana\n", &m, &err);
		CHECK(r == -EINVAL && !strcmp(strstr(rc_marker_error_string(&err, buf, sizeof(buf)),
						     "/unit.service"),
					      "/unit.service:2: Window=banana: not a size in bytes or pages"),
		      "error string: %s", buf);
		r = parse("[X-RamCrypt\n", &m, &err);
		CHECK(r == -EINVAL && !strcmp(strstr(rc_marker_error_string(&err, buf, sizeof(buf)),
						     "/unit.service"),
					      "/unit.service:1: [X-RamCrypt: invalid section header"),
		      "error string (line): %s", buf);
		rc_marker_init(&m);
		r = rc_marker_parse_file("/nonexistent", &m, &err);
		CHECK(!strcmp(rc_marker_error_string(&err, buf, sizeof(buf)),
			      "/nonexistent: cannot be read: No such file or directory"),
		      "error string (file): %s", buf);
		CHECK(!strcmp(rc_marker_error_string(&err, buf, 6), "/none"),
		      "error string cut: %s", buf);
	}

	/* unreadable file: -errno, the file named */
	rc_marker_init(&m);
	r = rc_marker_parse_file("/nonexistent/x.service", &m, &err);
	CHECK(r == -ENOENT && !strcmp(err.file, "/nonexistent/x.service") &&
	      strstr(err.message, "cannot be read"), "ENOENT: r=%d %s", r,
	      err.message);

	/* a long value is cut in the error, not overflowed */
	{
		char text[2000];

		memset(text, 0, sizeof(text));
		strcpy(text, "[X-RamCrypt]\nWindow=");
		memset(text + strlen(text), 'x', 1500);
		strcat(text, "\n");
		r = parse(text, &m, &err);
		CHECK(r == -EINVAL && strlen(err.value) == sizeof(err.value) - 1 &&
		      !strcmp(err.value + sizeof(err.value) - 4, "..."),
		      "long value: r=%d len %zu", r, strlen(err.value));
	}

	/* fragment then drop-ins in order: later keys win, empty resets */
	{
		char *frag = put("vm.service",
				 "[Service]\nExecStart=/bin/true\n"
				 "[X-RamCrypt]\nRamCrypt=yes\nWindow=64M\nCPUs=2\n");
		char *d1 = put("10-window.conf", "[X-RamCrypt]\nWindow=128\n");
		char *d2 = put("20-reset.conf", "[X-RamCrypt]\nCPUs=\n");
		char *d3 = put("30-off.conf", "[X-RamCrypt]\nRamCrypt=no\n");
		char *d4 = put("40-bad.conf", "[X-RamCrypt]\nCPUs=many\n");
		char *ok[] = { d1, d2, NULL };
		char *off[] = { d1, d2, d3, NULL };
		char *broken[] = { d1, d4, d3, NULL };

		r = rc_marker_parse_unit(frag, ok, &m, &err);
		CHECK(r == 0 && m.ramcrypt && m.window_pages == 128 && m.cpus == 0,
		      "merge: r=%d ramcrypt %d window %u cpus %u", r, m.ramcrypt,
		      m.window_pages, m.cpus);
		r = rc_marker_parse_unit(frag, off, &m, &err);
		CHECK(r == 0 && !m.ramcrypt && m.present, "reset by drop-in: r=%d", r);
		r = rc_marker_parse_unit(frag, broken, &m, &err);
		CHECK(r == -EINVAL && !strcmp(err.file, d4) && err.line == 2 &&
		      !strcmp(err.key, "CPUs"), "merge error: r=%d %s:%u", r,
		      err.file, err.line);
		/* parse_unit starts over: nothing left from the last call */
		r = rc_marker_parse_unit(NULL, (char *[]){ d2, NULL }, &m, &err);
		CHECK(r == 0 && !m.ramcrypt && !m.window_pages, "fresh: r=%d", r);
		free(frag);
		free(d1);
		free(d2);
		free(d3);
		free(d4);
	}

	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	if (failures) {
		fprintf(stderr, "FAIL test_rc_marker: %d of %d checks failed\n",
			failures, checks);
		return 1;
	}
	printf("PASS test_rc_marker: %d checks\n", checks);
	return 0;
}
