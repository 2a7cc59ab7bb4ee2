/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rc-hostchecks.c - host security checks (fwupd HSI style): name, ok, detail.
 *
 * Every check reads files under the root only (a fixture tree in the unit
 * tests, the real /proc and /sys on a host), so each one can be shown to
 * pass and to fail.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc-hostchecks.h"
#include "rc-kernel.h"
#include "rc-macro.h"

/* details are bounded sentences: a long value is cut, by design */
#pragma GCC diagnostic ignored "-Wformat-truncation"

static void set(struct rc_hostcheck *c, const char *name, bool ok,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void set(struct rc_hostcheck *c, const char *name, bool ok,
		const char *fmt, ...)
{
	va_list ap;

	c->name = name;
	c->ok = ok;
	va_start(ap, fmt);
	vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
	va_end(ap);
}

static char *fmt_set(const struct rc_cpuset *s)
{
	char *f = NULL;

	if (rc_cpuset_format(s, &f) < 0)
		return NULL;
	return f;
}

/* Is word (whole, space separated) in s? */
static bool has_word(const char *s, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = s; (p = strstr(p, word)); p += n)
		if ((p == s || p[-1] == ' ' || p[-1] == '\t') &&
		    (p[n] == '\0' || p[n] == ' ' || p[n] == '\t' ||
		     p[n] == '\n'))
			return true;
	return false;
}

/* The value of the last "key=value" word of the kernel command line. */
static bool cmdline_value(const char *cmdline, const char *key, char *val,
			  size_t len)
{
	size_t n = strlen(key);
	bool found = false;

	for (const char *p = cmdline; (p = strstr(p, key)); p += n) {
		size_t k;

		if ((p != cmdline && p[-1] != ' ') || p[n] != '=')
			continue;
		k = strcspn(p + n + 1, " \t\n");
		snprintf(val, len, "%.*s", (int)k, p + n + 1);
		found = true;
	}
	return found;
}

static bool kbool_on(const char *v)
{
	return !strcmp(v, "1") || !strcasecmp(v, "y") || !strcasecmp(v, "yes") ||
	       !strcasecmp(v, "on") || !strcasecmp(v, "true");
}

static void check_key(const char *root, const struct rc_tresor_status *st,
		      int r, struct rc_hostcheck *c1, struct rc_hostcheck *c2)
{
	_cleanup_free_ char *h = NULL, *v = NULL, *impl = NULL;

	if (r < 0) {
		set(c1, "key-loaded", false, "tresor.ko's status is unreadable: %s",
		    strerror(-r));
		set(c2, "key-on-all-holders", false,
		    "tresor.ko's status is unreadable: %s", strerror(-r));
		return;
	}
	if (!st->module_loaded) {
		set(c1, "key-loaded", false,
		    "tresor.ko is not loaded (no /sys/kernel/tresor)");
		set(c2, "key-on-all-holders", false,
		    "tresor.ko is not loaded, so no CPU holds a key");
		return;
	}
	if (!st->key_loaded) {
		set(c1, "key-loaded", false,
		    "tresor.ko is loaded but holds no key (tresor-unlock has not run)");
		set(c2, "key-on-all-holders", false,
		    "no key is loaded, so no CPU holds one");
		return;
	}
	(void)rc_read_string(root, "sys/kernel/tresor/implementation", &impl);
	set(c1, "key-loaded", true,
	    "a key is loaded in the debug registers (cipher implementation %s)",
	    impl ? impl : "unknown");

	h = fmt_set(&st->holders);
	v = fmt_set(&st->valid_holders);
	if (!h || !v) {
		set(c2, "key-on-all-holders", false, "out of memory");
		return;
	}
	if (rc_cpuset_empty(&st->holders)) {
		set(c2, "key-on-all-holders", false, "tresor.ko has no holder CPUs");
	} else if (rc_cpuset_equal(&st->holders, &st->valid_holders)) {
		set(c2, "key-on-all-holders", true,
		    "every holder CPU (%s) passed its last key check", h);
	} else {
		struct rc_cpuset bad = st->holders;
		_cleanup_free_ char *b = NULL;

		rc_cpuset_andnot(&bad, &st->valid_holders);
		b = fmt_set(&bad);
		set(c2, "key-on-all-holders", false,
		    "holder CPUs %s lost the key or failed its check (holders %s, valid %s, %llu check failures)",
		    b ? b : "?", h, v[0] ? v : "none",
		    (unsigned long long)st->check_failures);
	}
}

static void check_livepatch(const char *root, struct rc_hostcheck *c)
{
	uint64_t en, tr;
	int r;

	r = rc_read_u64(root, "sys/kernel/livepatch/tresor_showregs/enabled", &en);
	if (r == -ENOENT) {
		set(c, "livepatch", false,
		    "the tresor_showregs livepatch is not loaded: an oops or SysRq register dump prints DR0-DR3, the key, into the kernel log");
		return;
	}
	if (r < 0) {
		set(c, "livepatch", false,
		    "the tresor_showregs livepatch state is unreadable: %s",
		    strerror(-r));
		return;
	}
	if (en != 1) {
		set(c, "livepatch", false,
		    "the tresor_showregs livepatch is loaded but disabled: register dumps print DR0-DR3");
		return;
	}
	r = rc_read_u64(root, "sys/kernel/livepatch/tresor_showregs/transition",
			&tr);
	if (r < 0 || tr != 0) {
		set(c, "livepatch", false,
		    "the tresor_showregs livepatch is still in transition: some tasks run the unpatched register dump");
		return;
	}
	set(c, "livepatch", true,
	    "the tresor_showregs livepatch is enabled and every task is patched: register dumps leave out DR0-DR3");
}

static void check_bare_metal(const char *root, struct rc_hostcheck *c)
{
	_cleanup_free_ char *info = NULL;
	bool hv = false, any = false;
	int r;

	r = rc_read_string(root, "proc/cpuinfo", &info);
	if (r < 0) {
		set(c, "bare-metal", false, "proc/cpuinfo is unreadable: %s",
		    strerror(-r));
		return;
	}
	for (char *line = info; line && *line;) {
		char *nl = strchr(line, '\n');

		if (nl)
			*nl = '\0';
		if (strncmp(line, "flags", 5) == 0 && strchr(line, ':')) {
			any = true;
			if (has_word(strchr(line, ':') + 1, "hypervisor"))
				hv = true;
		}
		line = nl ? nl + 1 : NULL;
	}
	if (!any)
		set(c, "bare-metal", false,
		    "proc/cpuinfo has no CPU flags, so the CPUID hypervisor bit cannot be checked");
	else if (hv)
		set(c, "bare-metal", false,
		    "inside a hypervisor (CPUID hypervisor bit): it saves DR0-DR3 to its RAM on every exit, so TRESOR protects nothing");
	else
		set(c, "bare-metal", true,
		    "no CPUID hypervisor bit: running on bare metal, the key leaves the CPU nowhere");
}

static void check_init_on_free(const char *cmdline, struct rc_hostcheck *c)
{
	char v[32];

	if (!cmdline) {
		set(c, "init-on-free", false, "proc/cmdline is unreadable");
		return;
	}
	if (!cmdline_value(cmdline, "init_on_free", v, sizeof(v)))
		set(c, "init-on-free", false,
		    "init_on_free=1 is not on the kernel command line: freed pages keep their plaintext until reused");
	else if (!kbool_on(v))
		set(c, "init-on-free", false,
		    "the kernel command line sets init_on_free=%s: freed pages keep their plaintext until reused", v);
	else
		set(c, "init-on-free", true,
		    "init_on_free=%s: the kernel zeroes every page it frees", v);
}

static void check_zswap(const char *root, struct rc_hostcheck *c)
{
	_cleanup_free_ char *v = NULL;
	int r;

	r = rc_read_string(root, "sys/module/zswap/parameters/enabled", &v);
	if (r == -ENOENT)
		set(c, "zswap-off", true,
		    "zswap is not in this kernel (no sys/module/zswap)");
	else if (r < 0)
		set(c, "zswap-off", false, "zswap's state is unreadable: %s",
		    strerror(-r));
	else if (!strcmp(v, "N") || !strcmp(v, "0"))
		set(c, "zswap-off", true, "zswap is disabled (enabled=%s)", v);
	else
		set(c, "zswap-off", false,
		    "zswap is enabled (enabled=%s): pages being swapped are kept compressed and unencrypted in RAM (zswap.enabled=0)",
		    v);
}

static void check_hibernation(const char *root, const char *cmdline,
			      struct rc_hostcheck *c)
{
	_cleanup_free_ char *state = NULL, *disk = NULL, *lock = NULL;
	char v[32];
	int r;

	if (cmdline && has_word(cmdline, "nohibernate")) {
		set(c, "hibernation-off", true,
		    "hibernation is disabled by nohibernate on the kernel command line");
		return;
	}
	if (cmdline && cmdline_value(cmdline, "hibernate", v, sizeof(v)) &&
	    !strcmp(v, "no")) {
		set(c, "hibernation-off", true,
		    "hibernation is disabled by hibernate=no on the kernel command line");
		return;
	}
	if (rc_read_string(root, "sys/kernel/security/lockdown", &lock) >= 0 &&
	    (strstr(lock, "[integrity]") || strstr(lock, "[confidentiality]"))) {
		set(c, "hibernation-off", true,
		    "hibernation is disabled by kernel lockdown (%s)", lock);
		return;
	}
	if (rc_read_string(root, "sys/power/disk", &disk) >= 0 &&
	    !strcmp(disk, "[disabled]")) {
		set(c, "hibernation-off", true,
		    "hibernation is disabled (sys/power/disk is [disabled])");
		return;
	}
	r = rc_read_string(root, "sys/power/state", &state);
	if (r == -ENOENT) {
		set(c, "hibernation-off", true,
		    "this kernel has no power management states (no sys/power/state)");
		return;
	}
	if (r < 0) {
		set(c, "hibernation-off", false,
		    "sys/power/state is unreadable: %s", strerror(-r));
		return;
	}
	if (!has_word(state, "disk")) {
		set(c, "hibernation-off", true,
		    "hibernation is not offered (sys/power/state: '%s')", state);
		return;
	}
	set(c, "hibernation-off", false,
	    "hibernation is possible (sys/power/state offers 'disk', sys/power/disk '%s'): an image of RAM, plaintext windows included, would be written to disk (boot with nohibernate)",
	    disk ? disk : "?");
}

static void check_pmu_xmm(const char *root, const struct rc_tresor_status *st,
			  int r, struct rc_hostcheck *c)
{
	_cleanup_free_ char *v = NULL;

	if (r < 0 || !st->module_loaded || !st->key_loaded) {
		set(c, "pmu-xmm-sampling", true,
		    "no key is loaded, so no round key can be sampled");
		return;
	}
	r = rc_read_string(root, "sys/kernel/tresor/pmu_xmm_exposed", &v);
	if (r < 0) {
		set(c, "pmu-xmm-sampling", false,
		    "sys/kernel/tresor/pmu_xmm_exposed is unreadable (%s): tresor.ko too old to say whether the PMU can copy XMM registers to RAM",
		    strerror(-r));
		return;
	}
	if (strcmp(v, "0") != 0) {
		set(c, "pmu-xmm-sampling", false,
		    "the key was loaded with tresor.allow_pebs_xmm=1: this CPU's PMU can write XMM registers, the AES round keys during a request, to RAM (adaptive PEBS); boot with lockdown=confidentiality");
		return;
	}
	set(c, "pmu-xmm-sampling", true,
	    "the PMU cannot write XMM registers to RAM (no adaptive PEBS, or lockdown forbids it)");
}

static void check_vm_cpus(const struct rc_tresor_status *st, int r,
			  const struct rc_cpuset *vm, struct rc_hostcheck *c)
{
	_cleanup_free_ char *v = NULL, *both_s = NULL;
	struct rc_cpuset both;

	if (!vm || rc_cpuset_empty(vm)) {
		set(c, "vm-cpus-keyless", true,
		    "no VM CPUs are assigned (host roles not applied), so none can hold the key");
		return;
	}
	v = fmt_set(vm);
	if (r < 0) {
		set(c, "vm-cpus-keyless", false,
		    "tresor.ko's holders are unreadable: %s", strerror(-r));
		return;
	}
	if (!st->module_loaded || !st->key_loaded) {
		set(c, "vm-cpus-keyless", true,
		    "no key is loaded, so VM CPUs %s hold none", v ? v : "?");
		return;
	}
	both = *vm;
	rc_cpuset_and(&both, &st->holders);
	if (rc_cpuset_empty(&both)) {
		set(c, "vm-cpus-keyless", true,
		    "no VM CPU (%s) is a key holder", v ? v : "?");
		return;
	}
	both_s = fmt_set(&both);
	set(c, "vm-cpus-keyless", false,
	    "VM CPUs %s are key holders: a guest running there shares the CPU whose debug registers hold the key",
	    both_s ? both_s : "?");
}

int rc_hostchecks_run(const char *root, const struct rc_cpuset *vm_cpus,
		      struct rc_hostcheck *ret, size_t *n)
{
	_cleanup_free_ char *cmdline = NULL;
	struct rc_tresor_status st;
	int r;

	memset(ret, 0, sizeof(*ret) * 9);
	r = rc_tresor_read_status(root, &st);
	if (rc_read_string(root, "proc/cmdline", &cmdline) < 0)
		cmdline = NULL;

	check_key(root, &st, r, &ret[0], &ret[1]);
	check_livepatch(root, &ret[2]);
	check_bare_metal(root, &ret[3]);
	check_init_on_free(cmdline, &ret[4]);
	check_zswap(root, &ret[5]);
	check_hibernation(root, cmdline, &ret[6]);
	check_vm_cpus(&st, r, vm_cpus, &ret[7]);
	check_pmu_xmm(root, &st, r, &ret[8]);
	*n = 9;
	return 0;
}
