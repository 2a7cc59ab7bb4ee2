// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * confinement.c - CacheConfinement= of enrolled units.
 *
 * (a) resctrl (Documentation/x86/resctrl.rst, Linux 6.1): a control group
 *     sys/fs/resctrl/ramcrypt-<unit> with the unit's VM CPUs and its crypto
 *     CPU in cpus_list, mode "exclusive", and in schemata the L3 ways its
 *     window needs in the cache of those CPUs (min_cbm_bits in every other
 *     cache: rdtgroup_mode_test_exclusive() checks every domain). A group
 *     is exclusive only if no other group overlaps it, the default group
 *     included ("Example 4" of resctrl.rst), so those ways are taken out of
 *     the default group's schemata and given back at release. Tasks of the
 *     default group running on a CPU of the group use the group's ways
 *     (resctrl.rst, "Resource allocation rules" 2).
 * (b) SMT siblings of those CPUs that are not theirs go offline
 *     (cpuN/online = 0), back online at release; a sibling that another
 *     unit uses, a housekeeping CPU or one that cannot go offline refuses.
 * (c) pm_qos_resume_latency_us = n/a on them (a 0 us limit: no idle state
 *     deeper than polling; drivers/base/power/sysfs.c), as SetupHost sets
 *     it; a CPU found otherwise is set again.
 * (d) WBINVD sources (rc_wbinvd_sources): logged as a warning and named in
 *     CacheConfinementReason; they do not refuse.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include "confinement.h"
#include "rc-kernel.h"
#include "rc-resctrl.h"

struct confine {
	struct confine *next;
	char *unit;
	bool active;
	char group[300];
	struct rc_schemata mine;	/* our ways per cache id */
	unsigned int cache_id;		/* the cache of the unit's CPUs */
	uint64_t bytes;			/* of the partition in that cache */
	struct rc_cpuset cpus;		/* in the group */
	struct rc_cpuset offlined;	/* siblings we took offline */
	char reason[512];
};

static struct confine *confines;

static struct confine *find(const char *name)
{
	for (struct confine *c = confines; c; c = c->next)
		if (!strcmp(c->unit, name))
			return c;
	return NULL;
}

static void drop(const char *name)
{
	for (struct confine **p = &confines; *p; p = &(*p)->next)
		if (!strcmp((*p)->unit, name)) {
			struct confine *c = *p;

			*p = c->next;
			free(c->unit);
			free(c);
			return;
		}
}

static struct confine *get(const char *name)
{
	struct confine *c = find(name);

	if (c)
		return c;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->unit = strdup(name);
	if (!c->unit) {
		free(c);
		return NULL;
	}
	c->next = confines;
	confines = c;
	return c;
}

int confine_host_capable(struct manager *m, char *reason, size_t len)
{
	struct rc_l3_info info;
	char *p = NULL;
	bool cdp = false;
	int r;

	if (!rc_cpu_has_flag(m->root, "cat_l3")) {
		snprintf(reason, len, "no L3 CAT on this CPU (no cat_l3 in /proc/cpuinfo flags, CPUID 0x10)");
		return -EOPNOTSUPP;
	}
	r = rc_l3_info_read(m->root, &info, &cdp);
	if (r == -ENOENT && cdp) {
		snprintf(reason, len, "resctrl is mounted with cdp (L3CODE/L3DATA): ramcryptd allocates plain L3 ways, remount /sys/fs/resctrl without -o cdp");
		return -EOPNOTSUPP;
	}
	if (r == -ENOENT) {
		snprintf(reason, len, "the CPU has L3 CAT, but resctrl is not mounted on /sys/fs/resctrl (mount -t resctrl resctrl /sys/fs/resctrl)");
		return -EOPNOTSUPP;
	}
	if (r < 0) {
		snprintf(reason, len, "cannot read /sys/fs/resctrl/info/L3: %s",
			 r == -EBADMSG ? "a file is malformed" : strerror(-r));
		return -EOPNOTSUPP;
	}
	if (rc_path(m->root, RC_RESCTRL_DIR "/info/L2", &p) >= 0 &&
	    access(p, F_OK) == 0) {
		free(p);
		snprintf(reason, len, "resctrl also allocates L2 (info/L2): ramcryptd partitions L3 only, and an exclusive group would overlap the default group's L2 ways");
		return -EOPNOTSUPP;
	}
	free(p);
	snprintf(reason, len, "L3 CAT through resctrl: %u ways (cbm_mask %" PRIx64 "), min_cbm_bits %u, shareable_bits %" PRIx64 ", %u CLOSIDs",
		 info.cbm_len, info.cbm_mask, info.min_cbm_bits,
		 info.shareable_bits, info.num_closids);
	return 0;
}

static bool unit_uses_cpu(struct manager *m, const char *except, unsigned int cpu,
			  const char **who)
{
	for (struct unit *u = m->units; u; u = u->next) {
		if (!strcmp(u->name, except))
			continue;
		if (rc_cpuset_isset(&u->cpus, cpu) || u->crypto_cpu == (int)cpu) {
			*who = u->name;
			return true;
		}
	}
	return false;
}

static void last_status(struct manager *m, char *buf, size_t len)
{
	char *s = NULL;

	buf[0] = 0;
	if (rc_read_string(m->root, RC_RESCTRL_DIR "/info/last_cmd_status", &s) >= 0 &&
	    *s)
		snprintf(buf, len, " (info/last_cmd_status: %s)", s);
	free(s);
}

static int rmdir_group(struct manager *m, const char *group)
{
	char rel[400], *path = NULL;
	int r = 0;

	snprintf(rel, sizeof(rel), RC_RESCTRL_DIR "/%s", group);
	if (rc_path(m->root, rel, &path) < 0)
		return -ENOMEM;
	if (rmdir(path) < 0) {
		r = -errno;
		/* Only a fixture root has regular files in a group (resctrl's
		 * rmdir takes the group with its files). */
		if (r == -ENOTEMPTY && !rc_root_is_host(m->root)) {
			DIR *d = opendir(path);
			struct dirent *de;

			while (d && (de = readdir(d))) {
				char *f = NULL;

				if (de->d_name[0] == '.')
					continue;
				if (asprintf(&f, "%s/%s", path, de->d_name) >= 0)
					(void)unlink(f);
				free(f);
			}
			if (d)
				closedir(d);
			r = rmdir(path) < 0 ? -errno : 0;
		}
	}
	free(path);
	return r == -ENOENT ? 0 : r;
}

/* Give ways back to the default group (they were exclusive: nobody else
 * has them). */
static void restore_default(struct manager *m, const struct rc_schemata *mine)
{
	struct rc_l3_info info;
	unsigned int cbm_len = 0;
	char *s = NULL, line[1024];
	struct rc_schemata d;

	if (rc_l3_info_read(m->root, &info, NULL) >= 0)
		cbm_len = info.cbm_len;
	if (rc_read_string(m->root, RC_RESCTRL_DIR "/schemata", &s) < 0)
		return;
	if (rc_schemata_parse(s, "L3", &d) < 0) {
		free(s);
		return;
	}
	free(s);
	for (unsigned int i = 0; i < d.n; i++) {
		uint64_t mk;

		if (rc_schemata_get(mine, d.id[i], &mk) == 0)
			d.mask[i] |= mk;
	}
	rc_schemata_format(&d, "L3", cbm_len, line, sizeof(line));
	if (rc_write_string(m->root, RC_RESCTRL_DIR "/schemata", line) < 0)
		log_warning("Cannot give the L3 ways back to the default resctrl group (%s).",
			    line);
}

static void state_path(struct manager *m, const char *name, char *buf, size_t len)
{
	char *e = policy_name_escape(name);

	snprintf(buf, len, "%s/confine-%s", m->state_dir, e ? e : "x");
	free(e);
}

static void save_state(struct manager *m, struct confine *c)
{
	char p[4200], *s = cpuset_str(&c->offlined);
	FILE *f;

	state_path(m, c->unit, p, sizeof(p));
	(void)mkdir_p(m->state_dir, 0755);
	f = fopen(p, "we");
	if (f) {
		fprintf(f, "offlined=%s\n", s);
		fclose(f);
	}
	free(s);
}

static int resctrl_confine(struct manager *m, struct confine *c,
			   enum rc_confinement mode, uint32_t *window_pages,
			   char *err, size_t errlen)
{
	struct rc_l3_info info;
	struct rc_resctrl_group *groups = NULL;
	struct rc_bit_usage bu;
	bool have_bu = false;
	size_t ng = 0;
	char *s = NULL, rel[400], line[1024], st[300];
	struct rc_schemata dflt, newdflt;
	uint64_t size = 0, way_bytes, window;
	unsigned int want, cache = 0;
	int cpu, r;

	r = rc_l3_info_read(m->root, &info, NULL);
	if (r < 0) {
		snprintf(err, errlen, "cannot read /sys/fs/resctrl/info/L3: %s",
			 strerror(-r));
		return r;
	}
	rc_cpuset_foreach(cpu, &c->cpus) {
		unsigned int id;
		uint64_t sz;

		r = rc_cpu_l3(m->root, (unsigned int)cpu, &id, &sz);
		if (r < 0) {
			snprintf(err, errlen, "no L3 cache of CPU %d in /sys/devices/system/cpu/cpu%d/cache", cpu, cpu);
			return -ENOENT;
		}
		if (size && id != cache) {
			s = cpuset_str(&c->cpus);
			snprintf(err, errlen, "CPUs %s span L3 caches %u and %u", s,
				 cache, id);
			free(s);
			return -EXDEV;
		}
		cache = id;
		size = sz;
	}
	r = rc_resctrl_groups(m->root, &groups, &ng);
	if (r < 0) {
		snprintf(err, errlen, "cannot list the resctrl groups: %s", strerror(-r));
		return r;
	}
	if (!groups[0].has_l3) {
		snprintf(err, errlen, "the default resctrl group has no L3 line in its schemata");
		r = -EBADMSG;
		goto out;
	}
	dflt = groups[0].l3;
	if (rc_read_string(m->root, RC_RESCTRL_DIR "/info/L3/bit_usage", &s) >= 0) {
		r = rc_bit_usage_parse(s, info.cbm_len, &bu);
		free(s);
		s = NULL;
		if (r < 0) {
			snprintf(err, errlen, "cannot parse /sys/fs/resctrl/info/L3/bit_usage");
			goto out;
		}
		have_bu = true;
	}
	/* a stale group of ours (a crashed daemon): its ways go back first */
	for (size_t i = 1; i < ng; i++)
		if (!strcmp(groups[i].name, c->group)) {
			log_notice("%s: removing the stale resctrl group %s.", c->unit,
				   c->group);
			(void)rmdir_group(m, c->group);
			for (unsigned int k = 0; k < dflt.n; k++) {
				uint64_t mk;

				if (rc_schemata_get(&groups[i].l3, dflt.id[k], &mk) == 0 &&
				    !strcmp(groups[i].mode, "exclusive"))
					dflt.mask[k] |= mk;
			}
			memmove(&groups[i], &groups[i + 1], (ng - i - 1) * sizeof(*groups));
			ng--;
			have_bu = false;	/* it counted the stale group */
			break;
		}
	if (ng >= info.num_closids) {
		snprintf(err, errlen, "no free resctrl CLOSID: %zu groups use all %u", ng,
			 info.num_closids);
		r = -ENOSPC;
		goto out;
	}
	for (size_t i = 1; i < ng; i++) {
		if (rc_cpuset_intersects(&groups[i].cpus, &c->cpus)) {
			struct rc_cpuset both = groups[i].cpus;

			rc_cpuset_and(&both, &c->cpus);
			s = cpuset_str(&both);
			if (!strncmp(groups[i].name, RC_RESCTRL_GROUP_PREFIX,
				     strlen(RC_RESCTRL_GROUP_PREFIX)))
				snprintf(err, errlen, "CPU %s is already in the exclusive group %s of another unit", s, groups[i].name);
			else
				snprintf(err, errlen, "CPU %s is already in resctrl group %s", s, groups[i].name);
			free(s);
			s = NULL;
			r = -EBUSY;
			goto out;
		}
	}

	way_bytes = size / info.cbm_len;
	window = (uint64_t)*window_pages * 4096;
	want = (unsigned int)((window + way_bytes - 1) / way_bytes);
	if (want < info.min_cbm_bits)
		want = info.min_cbm_bits;
	memset(&c->mine, 0, sizeof(c->mine));
	newdflt = dflt;
	for (unsigned int k = 0; k < dflt.n; k++) {
		uint64_t avail = info.cbm_mask & ~info.shareable_bits, mk;
		unsigned int w = dflt.id[k] == cache ? want : info.min_cbm_bits;

		for (size_t i = 1; i < ng; i++)
			if (groups[i].has_l3 &&
			    rc_schemata_get(&groups[i].l3, dflt.id[k], &mk) == 0)
				avail &= ~mk;
		if (have_bu)
			for (unsigned int b = 0; b < bu.n; b++)
				if (bu.id[b] == dflt.id[k])
					avail &= ~(bu.exclusive[b] | bu.hardware[b]);
		mk = rc_cbm_pick(avail, dflt.mask[k], w, info.min_cbm_bits,
				 info.cbm_len);
		if (!mk && dflt.id[k] == cache) {
			unsigned int run = rc_cbm_max_run(avail, dflt.mask[k],
							  info.min_cbm_bits,
							  info.cbm_len);

			if (run && mode == RC_CONFINE_REQUIRED) {
				mk = rc_cbm_pick(avail, dflt.mask[k], run,
						 info.min_cbm_bits, info.cbm_len);
				log_notice("%s: window capped from %" PRIu32 " to %" PRIu64 " pages: the exclusive partition is %u ways of L3 cache %u.",
					   c->unit, *window_pages,
					   run * way_bytes / 4096, run, cache);
				*window_pages = (uint32_t)(run * way_bytes / 4096);
			} else if (run) {
				snprintf(err, errlen, "not enough L3 ways: the window of %" PRIu64 " KiB needs %u ways of cache %u (%" PRIu64 " KiB each), %u are free",
					 window >> 10, want, cache, way_bytes >> 10, run);
				r = -ENOSPC;
				goto out;
			}
		}
		if (!mk) {
			snprintf(err, errlen, "not enough L3 ways in cache %u: %u free of %u outside exclusive groups and shareable_bits %" PRIx64 ", %u needed (min_cbm_bits %u), and the default group keeps %u",
				 dflt.id[k], rc_popcount64(avail), info.cbm_len,
				 info.shareable_bits, w, info.min_cbm_bits,
				 info.min_cbm_bits);
			r = -ENOSPC;
			goto out;
		}
		c->mine.id[c->mine.n] = dflt.id[k];
		c->mine.mask[c->mine.n++] = mk;
		newdflt.mask[k] &= ~mk;
		if (dflt.id[k] == cache)
			c->bytes = rc_popcount64(mk) * way_bytes;
	}
	c->cache_id = cache;

	/* apply: mkdir, default group shrinks, our ways, exclusive, CPUs */
	snprintf(rel, sizeof(rel), RC_RESCTRL_DIR "/%s", c->group);
	r = rc_path(m->root, rel, &s);
	if (r < 0)
		goto out;
	if (mkdir(s, 0755) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot create the resctrl group %s: %s%s",
			 c->group, strerror(-r), r == -ENOSPC ? " (no free CLOSID)" : "");
		goto out;
	}
	free(s);
	s = NULL;
	rc_schemata_format(&newdflt, "L3", info.cbm_len, line, sizeof(line));
	r = rc_write_string(m->root, RC_RESCTRL_DIR "/schemata", line);
	if (r < 0) {
		last_status(m, st, sizeof(st));
		snprintf(err, errlen, "cannot write %s to the default group's schemata: %s%s",
			 line, strerror(-r), st);
		(void)rmdir_group(m, c->group);
		goto out;
	}
	rc_schemata_format(&c->mine, "L3", info.cbm_len, line, sizeof(line));
	snprintf(rel, sizeof(rel), RC_RESCTRL_DIR "/%s/schemata", c->group);
	r = rc_write_string(m->root, rel, line);
	if (r >= 0) {
		snprintf(rel, sizeof(rel), RC_RESCTRL_DIR "/%s/mode", c->group);
		r = rc_write_string(m->root, rel, "exclusive");
		if (r >= 0 && (r = rc_read_string(m->root, rel, &s)) >= 0 &&
		    strcmp(s, "exclusive") != 0)
			r = -EINVAL;
		free(s);
		s = NULL;
	}
	if (r >= 0) {
		s = cpuset_str(&c->cpus);
		snprintf(rel, sizeof(rel), RC_RESCTRL_DIR "/%s/cpus_list", c->group);
		r = rc_write_string(m->root, rel, s);
		free(s);
		s = NULL;
	}
	if (r < 0) {
		last_status(m, st, sizeof(st));
		snprintf(err, errlen, "cannot make %s an exclusive group with %s: %s%s",
			 c->group, line, strerror(-r), st);
		(void)rmdir_group(m, c->group);
		restore_default(m, &c->mine);
		goto out;
	}
	r = 0;
out:
	free(s);
	free(groups);
	return r;
}

static int smt_check(struct manager *m, struct confine *c, struct rc_cpuset *off,
		     char *err, size_t errlen)
{
	struct rc_cpuset online;
	int cpu;

	rc_cpuset_zero(off);
	if (rc_read_cpuset(m->root, "sys/devices/system/cpu/online", &online) < 0)
		online = m->topo->online;
	rc_cpuset_foreach(cpu, &c->cpus) {
		int sib;

		rc_cpuset_foreach(sib, &m->topo->siblings[cpu]) {
			const char *who = NULL;
			char rel[128], *p = NULL;
			bool can;

			if (rc_cpuset_isset(&c->cpus, sib) ||
			    !rc_cpuset_isset(&online, sib))
				continue;
			if (unit_uses_cpu(m, c->unit, sib, &who)) {
				snprintf(err, errlen, "SMT sibling %d of CPU %d is busy: %s uses it",
					 sib, cpu, who);
				return -EBUSY;
			}
			if (rc_cpuset_isset(&m->roles.housekeeping, sib)) {
				snprintf(err, errlen, "SMT sibling %d of CPU %d is busy: it is a housekeeping CPU",
					 sib, cpu);
				return -EBUSY;
			}
			snprintf(rel, sizeof(rel), "sys/devices/system/cpu/cpu%d/online", sib);
			can = rc_path(m->root, rel, &p) >= 0 && access(p, W_OK) == 0;
			free(p);
			if (!can) {
				snprintf(err, errlen, "SMT sibling %d of CPU %d cannot be taken offline (no writable cpu%d/online)",
					 sib, cpu, sib);
				return -EBUSY;
			}
			rc_cpuset_set(off, sib);
		}
	}
	return 0;
}

static void siblings_online(struct manager *m, const struct rc_cpuset *off)
{
	int cpu;

	rc_cpuset_foreach(cpu, off) {
		char rel[128];
		int r;

		snprintf(rel, sizeof(rel), "sys/devices/system/cpu/cpu%d/online", cpu);
		r = rc_write_string(m->root, rel, "1");
		if (r < 0)
			log_warning("Cannot bring CPU %d back online: %s", cpu, strerror(-r));
	}
}

static int do_confine(struct manager *m, struct confine *c,
		      enum rc_confinement mode, uint32_t *window_pages,
		      char *err, size_t errlen)
{
	struct rc_cpuset off;
	char wb[512];
	int cpu, r;

	r = confine_host_capable(m, err, errlen);
	if (r < 0)
		return r;
	r = smt_check(m, c, &off, err, errlen);
	if (r < 0)
		return r;
	r = resctrl_confine(m, c, mode, window_pages, err, errlen);
	if (r < 0)
		return r;
	rc_cpuset_foreach(cpu, &off) {
		char rel[128];

		snprintf(rel, sizeof(rel), "sys/devices/system/cpu/cpu%d/online", cpu);
		r = rc_write_string(m->root, rel, "0");
		if (r < 0) {
			snprintf(err, errlen, "cannot take SMT sibling %d offline: %s",
				 cpu, strerror(-r));
			goto undo;
		}
		rc_cpuset_set(&c->offlined, cpu);
	}
	rc_cpuset_foreach(cpu, &c->cpus) {
		char rel[128], *v = NULL;

		snprintf(rel, sizeof(rel),
			 "sys/devices/system/cpu/cpu%d/power/pm_qos_resume_latency_us", cpu);
		if (rc_read_string(m->root, rel, &v) >= 0 && !strcmp(v, "n/a")) {
			free(v);
			continue;
		}
		free(v);
		r = rc_write_string(m->root, rel, "n/a");
		if (r < 0) {
			snprintf(err, errlen, "cannot keep CPU %d out of deep C-states (%s): %s",
				 cpu, rel, strerror(-r));
			goto undo;
		}
	}
	save_state(m, c);
	{
		char *cs = cpuset_str(&c->cpus), *os = cpuset_str(&c->offlined);

		snprintf(c->reason, sizeof(c->reason),
			 "exclusive resctrl group %s: %u L3 ways of cache %u (%" PRIu64 " KiB) for CPUs %s; SMT siblings offline: %s; no deep C-states",
			 c->group, 0u, c->cache_id, c->bytes >> 10, cs,
			 *os ? os : "none");
		for (unsigned int i = 0; i < c->mine.n; i++)
			if (c->mine.id[i] == c->cache_id)
				snprintf(c->reason, sizeof(c->reason),
					 "exclusive resctrl group %s: %u L3 ways (%" PRIx64 ") of cache %u (%" PRIu64 " KiB) for CPUs %s; SMT siblings offline: %s; no deep C-states",
					 c->group, rc_popcount64(c->mine.mask[i]),
					 c->mine.mask[i], c->cache_id, c->bytes >> 10,
					 cs, *os ? os : "none");
		free(cs);
		free(os);
	}
	if (rc_wbinvd_sources(m->root, wb, sizeof(wb)) > 0)
		log_warning("%s: cache confinement can be defeated: %s", c->unit, wb);
	return 0;
undo:
	siblings_online(m, &c->offlined);
	rc_cpuset_zero(&c->offlined);
	(void)rmdir_group(m, c->group);
	restore_default(m, &c->mine);
	return r;
}

int confine_unit(struct manager *m, const char *name, enum rc_confinement mode,
		 const struct rc_cpuset *vm, int crypto, uint32_t *window_pages,
		 char *err, size_t errlen)
{
	struct confine *c;
	char *e;
	int r;

	drop(name);
	if (mode == RC_CONFINE_OFF)
		return 0;
	c = get(name);
	if (!c)
		return -ENOMEM;
	e = policy_name_escape(name);
	if (!e)
		return -ENOMEM;
	snprintf(c->group, sizeof(c->group), RC_RESCTRL_GROUP_PREFIX "%s", e);
	free(e);
	c->cpus = *vm;
	if (crypto >= 0)
		rc_cpuset_set(&c->cpus, (unsigned int)crypto);
	r = do_confine(m, c, mode, window_pages, err, errlen);
	if (r >= 0) {
		c->active = true;
		log_info("%s: cache confinement active: %s.", name, c->reason);
		return 0;
	}
	if (mode == RC_CONFINE_REQUIRED) {
		drop(name);
		return -EPERM;
	}
	snprintf(c->reason, sizeof(c->reason), "%s", err);
	log_notice("%s: cache confinement none: %s.", name, err);
	return 0;
}

void confine_release(struct manager *m, const char *name)
{
	struct confine *c = find(name);
	char p[4200];
	int r;

	if (!c)
		return;
	if (c->active) {
		r = rmdir_group(m, c->group);
		if (r < 0)
			log_warning("%s: cannot remove the resctrl group %s: %s", name,
				    c->group, strerror(-r));
		else
			restore_default(m, &c->mine);
		siblings_online(m, &c->offlined);
	}
	state_path(m, name, p, sizeof(p));
	(void)unlink(p);
	drop(name);
}

void confine_adopt(struct manager *m, const char *name)
{
	struct rc_resctrl_group *groups = NULL;
	struct confine *c;
	size_t ng = 0;
	char *e, p[4200];

	e = policy_name_escape(name);
	if (!e)
		return;
	if (rc_resctrl_groups(m->root, &groups, &ng) < 0) {
		free(e);
		return;
	}
	snprintf(p, sizeof(p), RC_RESCTRL_GROUP_PREFIX "%s", e);
	for (size_t i = 1; i < ng; i++) {
		FILE *f;
		char buf[4200];

		if (strcmp(groups[i].name, p) != 0)
			continue;
		c = get(name);
		if (!c)
			break;
		snprintf(c->group, sizeof(c->group), "%s", groups[i].name);
		c->mine = groups[i].l3;
		c->cpus = groups[i].cpus;
		c->active = true;
		state_path(m, name, p, sizeof(p));
		f = fopen(p, "re");
		if (f && fgets(buf, sizeof(buf), f) && !strncmp(buf, "offlined=", 9))
			(void)rc_cpuset_parse(buf + 9, &c->offlined);
		if (f)
			fclose(f);
		snprintf(c->reason, sizeof(c->reason),
			 "exclusive resctrl group %s (taken over after a daemon restart)",
			 c->group);
		log_info("%s: cache confinement active: %s.", name, c->reason);
		break;
	}
	free(groups);
	free(e);
}

const char *confine_unit_state(const char *name, const char **reason)
{
	struct confine *c = find(name);

	if (!c) {
		*reason = "CacheConfinement=off";
		return "none";
	}
	*reason = c->reason;
	return c->active ? "active" : "none";
}

void cache_confinement(struct manager *m, const char **state, char *reason,
		       size_t len)
{
	char base[512], wb[512];
	size_t off = 0;
	bool any = false;

	if (confine_host_capable(m, base, sizeof(base)) < 0) {
		*state = "none";
		snprintf(reason, len, "%s", base);
		return;
	}
	for (struct confine *c = confines; c; c = c->next)
		if (c->active)
			any = true;
	*state = any ? "active" : "available";
	off = (size_t)snprintf(reason, len, "%s", any ? "" : base);
	for (struct confine *c = confines; c && off < len; c = c->next)
		off += (size_t)snprintf(reason + off, len - off, "%s%s: %s%s",
					off ? "; " : "", c->unit,
					c->active ? "" : "not confined: ", c->reason);
	if (off < len && rc_wbinvd_sources(m->root, wb, sizeof(wb)) > 0)
		snprintf(reason + off, len - off, "%swarning: %s", off ? "; " : "", wb);
}
