/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rc-topology.c - CPU topology from sysfs and the split into host roles.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc-kernel.h"
#include "rc-macro.h"
#include "rc-topology.h"

#define CPU_DIR "sys/devices/system/cpu"

/*
 * The last-level cache of one CPU: the shared_cpu_list of its highest-level
 * Unified or Data cache. 0 and *ret filled, -ENOENT if sysfs has none.
 */
static int cpu_llc(const char *root, int cpu, struct rc_cpuset *ret)
{
	_cleanup_free_ char *rel = NULL, *path = NULL;
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	uint64_t best = 0;
	int r;

	if (asprintf(&rel, CPU_DIR "/cpu%d/cache", cpu) < 0)
		return -ENOMEM;
	r = rc_path(root, rel, &path);
	if (r < 0)
		return r;
	d = opendir(path);
	if (!d)
		return -ENOENT;
	while ((de = readdir(d))) {
		_cleanup_free_ char *lv = NULL, *ty = NULL, *sh = NULL,
				    *type = NULL;
		struct rc_cpuset set;
		uint64_t level;

		if (strncmp(de->d_name, "index", 5) != 0)
			continue;
		if (asprintf(&lv, "%s/%s/level", rel, de->d_name) < 0 ||
		    asprintf(&ty, "%s/%s/type", rel, de->d_name) < 0 ||
		    asprintf(&sh, "%s/%s/shared_cpu_list", rel, de->d_name) < 0)
			return -ENOMEM;
		if (rc_read_u64(root, lv, &level) < 0)
			continue;
		if (rc_read_string(root, ty, &type) < 0)
			continue;
		if (strcmp(type, "Unified") != 0 && strcmp(type, "Data") != 0)
			continue;
		if (rc_read_cpuset(root, sh, &set) < 0)
			continue;
		if (level > best) {
			best = level;
			*ret = set;
		}
	}
	return best ? 0 : -ENOENT;
}

int rc_topology_read(const char *root, struct rc_topology *ret)
{
	struct rc_cpuset seen;
	bool fallback = false;
	int cpu, r;

	memset(ret, 0, sizeof(*ret));
	r = rc_read_cpuset(root, CPU_DIR "/online", &ret->online);
	if (r < 0)
		return r;
	if (rc_cpuset_empty(&ret->online))
		return -ENODATA;

	rc_cpuset_foreach(cpu, &ret->online) {
		_cleanup_free_ char *rel = NULL;
		struct rc_cpuset sib;

		if (asprintf(&rel, CPU_DIR "/cpu%d/topology/thread_siblings_list",
			     cpu) < 0)
			return -ENOMEM;
		if (rc_read_cpuset(root, rel, &sib) < 0)
			rc_cpuset_zero(&sib);
		rc_cpuset_and(&sib, &ret->online);
		rc_cpuset_set(&sib, (unsigned int)cpu);
		ret->siblings[cpu] = sib;
	}

	/* Cache domains: every online CPU must have one that contains it, and
	 * two CPUs' domains are either the same or disjoint; anything less
	 * (TCG guests have none, or only some CPUs') is one domain. */
	rc_cpuset_zero(&seen);
	rc_cpuset_foreach(cpu, &ret->online) {
		struct rc_cpuset llc;
		bool found = false;

		if (cpu_llc(root, cpu, &llc) < 0) {
			fallback = true;
			break;
		}
		rc_cpuset_and(&llc, &ret->online);
		if (!rc_cpuset_isset(&llc, (unsigned int)cpu)) {
			fallback = true;
			break;
		}
		for (unsigned int i = 0; i < ret->n_domains; i++) {
			if (rc_cpuset_equal(&ret->domains[i], &llc)) {
				found = true;
				break;
			}
		}
		if (found)
			continue;
		if (rc_cpuset_intersects(&seen, &llc) ||
		    ret->n_domains == RC_MAX_CACHE_DOMAINS) {
			fallback = true;
			break;
		}
		ret->domains[ret->n_domains++] = llc;
		rc_cpuset_or(&seen, &llc);
	}
	if (fallback) {
		ret->n_domains = 1;
		ret->domains[0] = ret->online;
		memset(ret->domains + 1, 0,
		       sizeof(ret->domains) - sizeof(ret->domains[0]));
	}
	return 0;
}

static int domain_of(const struct rc_topology *t, unsigned int cpu)
{
	for (unsigned int i = 0; i < t->n_domains; i++)
		if (rc_cpuset_isset(&t->domains[i], cpu))
			return (int)i;
	return -1;
}

/* Take the first CPU of *left and its SMT siblings (within *left). */
static void take_core(const struct rc_topology *t, struct rc_cpuset *left,
		      struct rc_cpuset *into)
{
	int cpu = rc_cpuset_first(left);
	struct rc_cpuset core;

	if (cpu < 0)
		return;
	core = t->siblings[cpu];
	rc_cpuset_set(&core, (unsigned int)cpu);
	rc_cpuset_and(&core, left);
	rc_cpuset_or(into, &core);
	rc_cpuset_andnot(left, &core);
}

static unsigned int count_cores(const struct rc_topology *t,
				const struct rc_cpuset *s)
{
	struct rc_cpuset left = *s, sink;
	unsigned int n = 0;

	while (!rc_cpuset_empty(&left)) {
		rc_cpuset_zero(&sink);
		take_core(t, &left, &sink);
		n++;
	}
	return n;
}

static __thread char reason_buf[256];

int rc_roles_default(const struct rc_topology *t, struct rc_roles *ret,
		     const char **reason)
{
	memset(ret, 0, sizeof(*ret));
	if (reason)
		*reason = NULL;

	for (unsigned int i = 0; i < t->n_domains; i++) {
		struct rc_cpuset left = t->domains[i];
		unsigned int cores = count_cores(t, &left);

		rc_cpuset_and(&left, &t->online);
		if (i == 0 || cores >= 3) {
			/* housekeeping, crypto, VMs */
			take_core(t, &left, &ret->housekeeping);
			take_core(t, &left, &ret->crypto);
			rc_cpuset_or(&ret->vm, &left);
		} else if (cores == 2) {
			/* a crypto core for the other one; housekeeping
			 * lives in the first domain */
			take_core(t, &left, &ret->crypto);
			rc_cpuset_or(&ret->vm, &left);
		} else {
			/* one core: no VM could have a crypto CPU here */
			rc_cpuset_or(&ret->housekeeping, &left);
		}
	}
	if (rc_cpuset_empty(&ret->vm)) {
		snprintf(reason_buf, sizeof(reason_buf),
			 "%u online CPUs (%u cores in %u cache domains) leave none for VMs after one housekeeping and one crypto core; at least 3 cores are needed",
			 rc_cpuset_count(&t->online),
			 count_cores(t, &t->online), t->n_domains);
		if (reason)
			*reason = reason_buf;
		return -ENOSPC;
	}
	return 0;
}

static int fail(const char **reason, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(const char **reason, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason_buf, sizeof(reason_buf), fmt, ap);
	va_end(ap);
	if (reason)
		*reason = reason_buf;
	return -EINVAL;
}

static const char *fmt_set(const struct rc_cpuset *s, char *buf, size_t len)
{
	char *f = NULL;

	if (rc_cpuset_format(s, &f) < 0) {
		snprintf(buf, len, "?");
		return buf;
	}
	snprintf(buf, len, "%s", f);
	free(f);
	return buf;
}

int rc_roles_validate(const struct rc_topology *t, const struct rc_roles *r,
		      const char **reason)
{
	static const char *const names[] = { "housekeeping", "crypto", "VM" };
	const struct rc_cpuset *sets[] = { &r->housekeeping, &r->crypto, &r->vm };
	char b1[128], b2[128];
	int cpu;

	if (reason)
		*reason = NULL;
	for (int i = 0; i < 3; i++) {
		struct rc_cpuset off = *sets[i];

		rc_cpuset_andnot(&off, &t->online);
		if (!rc_cpuset_empty(&off))
			return fail(reason, "%s CPUs %s are not online (online: %s)",
				    names[i], fmt_set(&off, b1, sizeof(b1)),
				    fmt_set(&t->online, b2, sizeof(b2)));
		for (int j = i + 1; j < 3; j++) {
			struct rc_cpuset both = *sets[i];

			rc_cpuset_and(&both, sets[j]);
			if (!rc_cpuset_empty(&both))
				return fail(reason, "CPUs %s are both %s and %s CPUs",
					    fmt_set(&both, b1, sizeof(b1)),
					    names[i], names[j]);
		}
	}
	if (rc_cpuset_empty(&r->housekeeping))
		return fail(reason, "no housekeeping CPU: the host's own tasks and IRQs need one");
	if (rc_cpuset_empty(&r->crypto))
		return fail(reason, "no crypto CPU: page crypto for the VMs needs a key holder");
	rc_cpuset_foreach(cpu, &r->vm) {
		int d = domain_of(t, (unsigned int)cpu);

		if (d < 0 || !rc_cpuset_intersects(&t->domains[d], &r->crypto))
			return fail(reason, "VM CPU %d has no crypto CPU in its cache domain (CPUs %s)",
				    cpu, d < 0 ? "?" :
				    fmt_set(&t->domains[d], b1, sizeof(b1)));
	}
	return 0;
}

int rc_roles_crypto_cpu_for(const struct rc_topology *t,
			    const struct rc_roles *r,
			    const struct rc_cpuset *vm_cpus)
{
	int first = rc_cpuset_first(vm_cpus);

	if (first >= 0) {
		int d = domain_of(t, (unsigned int)first);

		if (d >= 0) {
			struct rc_cpuset c = t->domains[d];

			rc_cpuset_and(&c, &r->crypto);
			if (!rc_cpuset_empty(&c))
				return rc_cpuset_first(&c);
		}
	}
	return rc_cpuset_first(&r->crypto);
}
