// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * enroll.c - EnrollUnit / ReleaseUnit, post-start verification and
 * rediscovery after a restart.
 *
 * Enrollment runs from the unit's ExecStartPre=+ (before its main process):
 * marker -> key -> ExecStart= argv -> VM CPUs -> crypto CPU -> key holders ->
 * region policy (keyed by the unit's cgroup id) -> AllowedCPUs=. Anything
 * that cannot be honoured refuses the start (EnrollRefused): a marked unit
 * never runs unprotected.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rc-kernel.h"
#include "rc-qemu.h"
#include "ramcryptd.h"
#include "confinement.h"

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + ts.tv_nsec / 1000;
}

/* configfs item name: '%', '/' and '\\' as %25, %2f, %5c (unit names never
 * contain '%', so the escape is reversible). */
char *policy_name_escape(const char *unit)
{
	size_t l = strlen(unit);
	char *s = malloc(l * 3 + 1), *p = s;

	if (!s)
		return NULL;
	for (const char *c = unit; *c; c++) {
		if (*c == '%' || *c == '/' || *c == '\\')
			p += sprintf(p, "%%%02x", (unsigned char)*c);
		else
			*p++ = *c;
	}
	*p = 0;
	return s;
}

char *policy_name_unescape(const char *item)
{
	char *s = malloc(strlen(item) + 1), *p = s;

	if (!s)
		return NULL;
	for (const char *c = item; *c; c++) {
		unsigned int x;

		if (*c == '%' && c[1] && c[2] && sscanf(c + 1, "%2x", &x) == 1) {
			*p++ = (char)x;
			c += 2;
		} else {
			*p++ = *c;
		}
	}
	*p = 0;
	return s;
}

void manager_taken_cpus(struct manager *m, struct rc_cpuset *ret)
{
	rc_cpuset_zero(ret);
	for (struct unit *u = m->units; u; u = u->next)
		rc_cpuset_or(ret, &u->cpus);
}

static bool unit_name_valid(const char *n)
{
	size_t l = strlen(n);

	if (l == 0 || l > 255)
		return false;
	for (const char *c = n; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || strchr(":-_.\\@", *c)))
			return false;
	return strchr(n, '.') != NULL;
}

static int refuse(sd_bus_error *error, const char *name, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_err("Refusing to enroll %s: %s", name, buf);
	return sd_bus_error_setf(error, RC_ERROR_ENROLL_REFUSED, "%s", buf);
}

void unit_free(struct unit *u)
{
	if (!u)
		return;
	sd_bus_slot_unref(u->match_slot);
	free(u->name);
	free(u->path);
	free(u->sd_path);
	free(u->cgroup);
	free(u->reason);
	free(u->machine);
	free(u->domain);
	free(u->uuid);
	free(u->memory_dir);
	free(u);
}

static int on_sd_properties(sd_bus_message *msg, void *userdata,
			    sd_bus_error *error)
{
	(void)msg; (void)error;
	(void)unit_verify(userdata);
	return 0;
}

struct unit *unit_new(struct manager *m, const char *name,
		      const char *sd_path, const char *cgroup)
{
	struct unit *u = calloc(1, sizeof(*u));

	if (!u)
		return NULL;
	u->m = m;
	u->crypto_cpu = -1;
	u->name = strdup(name);
	u->sd_path = strdup(sd_path);
	u->cgroup = strdup(cgroup ? cgroup : "");
	u->reason = strdup("");
	if (!u->name || !u->sd_path || !u->cgroup || !u->reason ||
	    sd_bus_path_encode(RC_UNIT_PREFIX, name, &u->path) < 0) {
		unit_free(u);
		return NULL;
	}
	rc_cpuset_zero(&u->cpus);
	return u;
}

void unit_link(struct manager *m, struct unit *u)
{
	struct unit **p = &m->units;

	/* sorted by name, so ListUnits and busctl tree are stable */
	while (*p && strcmp((*p)->name, u->name) < 0)
		p = &(*p)->next;
	u->next = *p;
	*p = u;
	if (u->kind == UNIT_KIND_SERVICE &&
	    sd_bus_match_signal(m->bus, &u->match_slot, "org.freedesktop.systemd1",
				u->sd_path, "org.freedesktop.DBus.Properties",
				"PropertiesChanged", on_sd_properties, u) < 0)
		log_warning("%s: cannot watch its systemd object, verifying every %" PRIu32 " ms only.",
			    u->name, m->cfg.verify_interval_ms);
}

void unit_unlink(struct manager *m, struct unit *u)
{
	for (struct unit **p = &m->units; *p; p = &(*p)->next)
		if (*p == u) {
			*p = u->next;
			break;
		}
}

/* A VM core: cpu with its SMT siblings among the VM CPUs (a sibling shares
 * the core's L1/L2 with the guest, so it is never given to another unit). */
static void core_of(struct manager *m, int cpu, struct rc_cpuset *ret)
{
	rc_cpuset_zero(ret);
	if (m->topo && cpu < RC_MAX_CPUS && !rc_cpuset_empty(&m->topo->siblings[cpu]))
		*ret = m->topo->siblings[cpu];
	rc_cpuset_set(ret, cpu);
	rc_cpuset_and(ret, &m->roles.vm);
}

/* Whole free cores of cand, lowest first, until n cores are taken. */
static unsigned int take_cores(struct manager *m, const struct rc_cpuset *cand,
			       unsigned int n, struct rc_cpuset *ret)
{
	struct rc_cpuset seen;
	unsigned int got = 0;
	int cpu;

	rc_cpuset_zero(ret);
	rc_cpuset_zero(&seen);
	rc_cpuset_foreach(cpu, cand) {
		struct rc_cpuset core;

		if (got == n)
			break;
		if (rc_cpuset_isset(&seen, cpu))
			continue;
		core_of(m, cpu, &core);
		rc_cpuset_or(&seen, &core);
		if (!rc_cpuset_subset(&core, cand))
			continue;	/* part of it is taken */
		rc_cpuset_or(ret, &core);
		got++;
	}
	return got;
}

/* n free VM cores (CPUs= counts cores, each with its SMT siblings), all in
 * one cache domain where possible. */
static int pick_cpus(struct manager *m, unsigned int n, struct rc_cpuset *ret)
{
	struct rc_cpuset free_cpus, taken;

	free_cpus = m->roles.vm;
	manager_taken_cpus(m, &taken);
	rc_cpuset_andnot(&free_cpus, &taken);
	for (unsigned int d = 0; m->topo && d < m->topo->n_domains; d++) {
		struct rc_cpuset f = free_cpus;

		rc_cpuset_and(&f, &m->topo->domains[d]);
		if (take_cores(m, &f, n, ret) == n)
			return 0;
	}
	if (take_cores(m, &free_cpus, n, ret) == n)
		return 0;
	return -ENOSPC;
}

static int check_argv(const struct sd_unit_info *info, const char *name,
		      bool *unknown, sd_bus_error *error)
{
	bool any_qemu = false, any_unknown = false;
	const char *first = "?";

	for (size_t i = 0; i < info->n_exec; i++) {
		struct rc_qemu_result res;
		int r;

		memset(&res, 0, sizeof(res));
		r = rc_qemu_check_argv(info->exec_all[i], &res);
		if (r < 0)
			return refuse(error, name, "cannot check ExecStart=%s: %s",
				      info->exec_all[i][0], strerror(-r));
		if (i == 0)
			first = info->exec_all[i][0];
		switch (res.verdict) {
		case RC_QEMU_UNPROTECTED:
			return refuse(error, name, "%s", res.reason);
		case RC_QEMU_PROTECTED:
			any_qemu = true;
			break;
		case RC_QEMU_UNKNOWN:
			any_unknown = true;
			break;
		case RC_QEMU_NOT_QEMU:
			break;
		}
	}
	if (!any_qemu && !any_unknown)
		return refuse(error, name,
			      "RamCrypt protects guest RAM on ramcrypt regions only; %s is not a QEMU guest (ExecStart=%s).",
			      name, first);
	*unknown = !any_qemu;
	return 0;
}

/*
 * AllowedCPUs= applies only within the unit's slice: a cgroup v2 cpuset lies
 * within its parent's (SetupHost limits system.slice, user.slice and
 * init.scope to the housekeeping CPUs; machine.slice, where the generator
 * puts marked units, is not restricted). Fail closed unless the unit
 * cgroup's cpuset.cpus.effective is exactly the VM CPUs. systemd applies the
 * property from its cgroup realize queue, possibly after the reply: retried
 * for up to a second.
 */
static int check_effective_cpus(struct manager *m, const char *name,
				const char *cgroup, const struct rc_cpuset *cpus,
				sd_bus_error *error)
{
	struct rc_cpuset eff, slice_eff;
	char rel[4200], *slice, *p, *want, *got, *allows;
	int r = -ENOENT;

	for (int i = 0; i < 20; i++) {
		snprintf(rel, sizeof(rel), "sys/fs/cgroup/%s/cpuset.cpus.effective",
			 cgroup);
		r = rc_read_cpuset(m->root, rel, &eff);
		if (r >= 0 && rc_cpuset_equal(&eff, cpus))
			return 0;
		nanosleep(&(struct timespec){ .tv_nsec = 50 * 1000 * 1000 }, NULL);
	}
	want = cpuset_str(cpus);
	if (r < 0) {
		r = refuse(error, name, "cannot read %s of its cgroup to check AllowedCPUs=%s: %s",
			   "cpuset.cpus.effective", want, strerror(-r));
		free(want);
		return r;
	}
	/* the slice: the cgroup's parent ("/system.slice/vm.service") */
	slice = strdup(cgroup);
	if (!slice) {
		free(want);
		return -ENOMEM;
	}
	p = strrchr(slice, '/');
	if (p)
		*p = 0;
	snprintf(rel, sizeof(rel), "sys/fs/cgroup/%s/cpuset.cpus.effective",
		 slice);
	if (rc_read_cpuset(m->root, rel, &slice_eff) < 0)
		slice_eff = eff;
	got = cpuset_str(&eff);
	allows = cpuset_str(&slice_eff);
	p = slice + strspn(slice, "/");
	r = refuse(error, name, "its slice %s limits it to CPUs %s (AllowedCPUs=%s took effect as %s); put the unit in machine.slice or a slice that allows CPU%s %s.",
		   *p ? p : "-.slice", allows, want, got,
		   rc_cpuset_count(cpus) == 1 ? "" : "s", want);
	free(want);
	free(got);
	free(allows);
	free(slice);
	return r;
}

int unit_enroll(struct manager *m, const char *name, struct unit **ret,
		sd_bus_error *error)
{
	struct sd_unit_info info;
	struct rc_marker mk;
	struct rc_marker_error merr;
	struct rc_tresor_status ts;
	struct rc_ramcrypt_totals tot;
	struct rc_policy pol;
	struct rc_cpuset cpus, holders, none;
	enum rc_confinement conf;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	struct unit *u, *old;
	uint64_t cgid = 0;
	bool unknown = false, confined = false;
	char *pname = NULL, *s;
	int r, crypto;

	if (!unit_name_valid(name))
		return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
					 "Not a valid unit name: \"%s\".", name);

	r = sd1_read_unit(m->bus, name, true, &info, &e);
	if (r < 0) {
		r = refuse(error, name, "systemd does not know it: %s",
			   e.message ? e.message : strerror(-r));
		sd_bus_error_free(&e);
		return r;
	}

	old = manager_find_unit(m, name);
	if (old) {
		if (rc_cgroup_id(m->root, info.cgroup, &cgid) >= 0 &&
		    cgid == old->cgroup_id) {
			sd_unit_info_free(&info);
			*ret = old;	/* same run of the unit: idempotent */
			return 0;
		}
		log_notice("%s: releasing its previous enrollment (its cgroup changed).",
			   name);
		(void)unit_release(m, old, NULL);
	}

	if (!info.fragment || !*info.fragment) {
		r = refuse(error, name, "it has no unit file to read [X-RamCrypt] from.");
		goto out;
	}
	rc_marker_init(&mk);
	memset(&merr, 0, sizeof(merr));
	r = rc_marker_parse_unit(info.fragment, info.dropins, &mk, &merr);
	if (r == -EINVAL) {
		r = refuse(error, name, "%s:%u: [X-RamCrypt] %s=%s: %s",
			   merr.file, merr.line, merr.key, merr.value,
			   merr.message);
		goto out;
	}
	if (r < 0) {
		r = refuse(error, name, "cannot read %s: %s",
			   merr.file[0] ? merr.file : info.fragment, strerror(-r));
		goto out;
	}
	if (!mk.ramcrypt) {
		r = refuse(error, name, "%s is not marked RamCrypt=yes in an [X-RamCrypt] section.",
			   name);
		goto out;
	}

	conf = mk.confinement;
	if (m->cfg.cache_confinement == RC_CONFINE_REQUIRED)
		conf = RC_CONFINE_REQUIRED;
	else if (m->cfg.cache_confinement == RC_CONFINE_OFF &&
		 conf == RC_CONFINE_AUTO)
		conf = RC_CONFINE_OFF;
	if (conf == RC_CONFINE_REQUIRED) {
		char why[512];

		/* what the host lacks refuses before anything else is checked */
		if (confine_host_capable(m, why, sizeof(why)) < 0) {
			r = refuse(error, name, "cache confinement required but unavailable: %s",
				   why);
			goto out;
		}
	}

	memset(&ts, 0, sizeof(ts));
	r = rc_tresor_read_status(m->root, &ts);
	if (r < 0 || !ts.module_loaded) {
		r = refuse(error, name, "tresor.ko is not loaded (no key in the CPU registers).");
		goto out;
	}
	if (!ts.key_loaded) {
		r = refuse(error, name, "no key is loaded in tresor.ko: guest RAM cannot be encrypted.");
		goto out;
	}
	memset(&tot, 0, sizeof(tot));
	r = rc_ramcrypt_read_totals(m->root, &tot);
	if (r < 0 || !tot.module_loaded) {
		r = refuse(error, name, "ramcrypt.ko is not loaded.");
		goto out;
	}

	if (info.n_exec == 0) {
		r = refuse(error, name, "it has no ExecStart= to check.");
		goto out;
	}
	r = check_argv(&info, name, &unknown, error);
	if (r < 0)
		goto out;

	if (!m->roles_applied) {
		r = refuse(error, name, "the host's CPU roles are not applied (start ramcrypt-host.service).");
		goto out;
	}
	if (mk.cpus == 0)
		mk.cpus = 1;
	r = pick_cpus(m, mk.cpus, &cpus);
	if (r == -ENOSPC) {
		struct rc_cpuset taken;
		char names[512] = "";
		size_t off = 0;

		manager_taken_cpus(m, &taken);
		for (struct unit *x = m->units; x; x = x->next)
			off += snprintf(names + off, off < sizeof(names) ? sizeof(names) - off : 0,
					"%s%s", off ? ", " : "", x->name);
		r = refuse(error, name, "no free VM CPUs: %u of %u taken%s%s (%s needs %u core%s).",
			   rc_cpuset_count(&taken), rc_cpuset_count(&m->roles.vm),
			   m->units ? " by " : "", names, name, mk.cpus,
			   mk.cpus == 1 ? "" : "s");
		goto out;
	}
	crypto = rc_roles_crypto_cpu_for(m->topo, &m->roles, &cpus);
	if (crypto < 0) {
		r = refuse(error, name, "no crypto CPU for VM CPUs %s.",
			   (s = cpuset_str(&cpus)));
		free(s);
		goto out;
	}

	/* VM CPUs must not hold the key. */
	if (rc_cpuset_intersects(&ts.holders, &cpus)) {
		holders = m->roles.housekeeping;
		rc_cpuset_or(&holders, &m->roles.crypto);
		r = rc_tresor_set_holders(m->root, &holders);
		if (r >= 0)
			r = rc_tresor_read_status(m->root, &ts);
		if (r < 0 || rc_cpuset_intersects(&ts.holders, &cpus)) {
			r = refuse(error, name, "its VM CPUs %s are tresor key holders and cannot be taken off (%s).",
				   (s = cpuset_str(&cpus)),
				   r < 0 ? strerror(-r) : "holders unchanged");
			free(s);
			goto out;
		}
	}

	if (!info.cgroup || !*info.cgroup) {
		r = refuse(error, name, "it has no control group yet (enroll from ExecStartPre=+).");
		goto out;
	}
	r = rc_cgroup_id(m->root, info.cgroup, &cgid);
	if (r < 0) {
		r = refuse(error, name, "cannot find its cgroup %s: %s", info.cgroup,
			   strerror(-r));
		goto out;
	}

	pname = policy_name_escape(name);
	if (!pname) {
		r = -ENOMEM;
		goto out;
	}
	memset(&pol, 0, sizeof(pol));
	pol.name = pname;
	pol.cgroup_id = cgid;
	pol.window_pages = mk.window_pages ? mk.window_pages : m->cfg.window_pages;
	{
		char why[512];

		r = confine_unit(m, name, conf, &cpus, crypto, &pol.window_pages,
				 why, sizeof(why));
		if (r == -EPERM) {
			r = refuse(error, name, "cache confinement required but unavailable: %s",
				   why);
			goto out;
		}
		if (r < 0)
			goto out;
		confined = true;
	}
	pol.max_plaintext_age_ms = mk.max_plaintext_age_ms ?
		mk.max_plaintext_age_ms : m->cfg.max_plaintext_age_ms;
	pol.crypto_cpu = crypto;
	pol.evict_ahead_pages = m->cfg.evict_ahead_pages;
	(void)rc_policy_remove(m->root, pname);	/* a stale one of a crashed run */
	r = rc_policy_set(m->root, &pol);
	if (r < 0) {
		r = refuse(error, name, "cannot set the region policy: %s", strerror(-r));
		(void)rc_policy_remove(m->root, pname);
		goto out;
	}
	r = sd1_set_allowed_cpus(m->bus, name, &cpus, &e);
	if (r < 0) {
		r = refuse(error, name, "cannot set AllowedCPUs=%s: %s",
			   (s = cpuset_str(&cpus)), e.message ? e.message : strerror(-r));
		free(s);
		sd_bus_error_free(&e);
		(void)rc_policy_remove(m->root, pname);
		goto out;
	}

	r = check_effective_cpus(m, name, info.cgroup, &cpus, error);
	if (r < 0) {
		rc_cpuset_zero(&none);
		(void)sd1_set_allowed_cpus(m->bus, name, &none, &e);
		sd_bus_error_free(&e);
		(void)rc_policy_remove(m->root, pname);
		goto out;
	}

	u = unit_new(m, name, info.sd_path, info.cgroup);
	if (!u) {
		(void)rc_policy_remove(m->root, pname);
		r = -ENOMEM;
		goto out;
	}
	u->cgroup_id = cgid;
	u->cpus = cpus;
	u->crypto_cpu = crypto;
	u->window_pages = pol.window_pages;
	u->max_plaintext_age_ms = pol.max_plaintext_age_ms;
	u->evict_ahead_pages = pol.evict_ahead_pages;
	u->confinement = conf;
	u->argv_unknown = unknown;
	u->main_pid = info.main_pid;
	u->state = UNIT_ENROLLING;
	unit_link(m, u);

	log_info("Enrolled %s: VM CPUs %s, crypto CPU %d, window %" PRIu32 " pages, max plaintext age %" PRIu32 " ms%s.",
		 name, (s = cpuset_str(&cpus)), crypto, u->window_pages,
		 u->max_plaintext_age_ms,
		 unknown ? "; ExecStart= is a wrapper, QEMU is checked after the start" : "");
	free(s);
	(void)sd_bus_emit_signal(m->bus, RC_MANAGER_PATH, RC_MANAGER_IFACE,
				 "UnitEnrolled", "so", u->name, u->path);
	(void)sd_bus_emit_properties_changed(m->bus, RC_MANAGER_PATH,
					     RC_MANAGER_IFACE, "FreeVMCPUs", NULL);
	if (u->main_pid)
		(void)unit_verify(u);
	*ret = u;
	r = 0;
out:
	if (r < 0 && confined)
		confine_release(m, name);
	free(pname);
	sd_unit_info_free(&info);
	return r;
}

int unit_release(struct manager *m, struct unit *u, sd_bus_error *error)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	struct rc_cpuset none;
	char *pname, *s;
	int r;

	(void)error;
	pname = policy_name_escape(u->name);
	if (!pname)
		return -ENOMEM;
	r = rc_policy_remove(m->root, pname);
	if (r < 0 && r != -ENOENT)
		log_warning("%s: cannot remove its region policy: %s", u->name,
			    strerror(-r));
	free(pname);
	rc_cpuset_zero(&none);
	r = sd1_set_allowed_cpus(m->bus, u->name, &none, &e);
	if (r < 0)
		log_debug("%s: cannot reset AllowedCPUs=: %s", u->name,
			  e.message ? e.message : strerror(-r));
	sd_bus_error_free(&e);
	confine_release(m, u->name);

	unit_set_state(u, UNIT_RELEASED, "");
	log_info("Released %s: VM CPUs %s back to the pool.", u->name,
		 (s = cpuset_str(&u->cpus)));
	free(s);
	(void)sd_bus_emit_signal(m->bus, RC_MANAGER_PATH, RC_MANAGER_IFACE,
				 "UnitReleased", "so", u->name, u->path);
	unit_unlink(m, u);
	unit_free(u);
	(void)sd_bus_emit_properties_changed(m->bus, RC_MANAGER_PATH,
					     RC_MANAGER_IFACE, "FreeVMCPUs", NULL);
	return 0;
}

static int check_pid(struct manager *m, pid_t pid, struct rc_qemu_result *res)
{
	memset(res, 0, sizeof(*res));
	return rc_qemu_check_process(m->root, pid, m->cfg.anonymous_ram_threshold,
				     res);
}

int unit_verify(struct unit *u)
{
	struct manager *m = u->m;
	struct rc_qemu_result res, best, pending;
	uint64_t grace = (uint64_t)m->cfg.verify_grace_ms * 1000;
	bool have = false, have_pending = false, running;
	uint32_t pid = 0;
	char *procs = NULL, *active = NULL, rel[4200];
	size_t l;
	int r;

	if (u->kind == UNIT_KIND_LIBVIRT)
		return libvirt_unit_check_running(u);
	r = sd1_main_pid(m->bus, u->sd_path, &pid);
	if (r < 0)
		return r;
	if (pid != u->main_pid) {
		u->main_pid = pid;
		(void)sd_bus_emit_properties_changed(m->bus, u->path,
						     RC_UNIT_IFACE, "MainPID", NULL);
	}
	if (pid == 0)
		return 0;
	/* Only a running unit is judged: while it stops (deactivating, its
	 * ExecStop= and ExecStopPost= running) QEMU is exiting or gone, which
	 * is not "no QEMU guest" — judging it then stopped a clean stop as
	 * unprotected. While it starts, the grace counts from "active". */
	r = sd1_active_state(m->bus, u->sd_path, &active);
	if (r < 0)
		return r;
	running = strcmp(active, "active") == 0 ||
		  strcmp(active, "reloading") == 0;
	free(active);
	if (!running)
		return 0;
	if (!u->main_seen_usec)
		u->main_seen_usec = now_usec();

	memset(&best, 0, sizeof(best));
	best.verdict = RC_QEMU_NOT_QEMU;
	memset(&pending, 0, sizeof(pending));
	/* A verdict is definite when protected, or unprotected for a reason
	 * other than "no ramcrypt mapping yet" (a QEMU that has not mapped its
	 * backend yet is re-checked until the grace ends). */
	r = check_pid(m, pid, &res);
	if (r >= 0 && res.verdict == RC_QEMU_UNPROTECTED && res.ramcrypt_pending) {
		pending = res;
		have_pending = true;
	} else if (r >= 0 && (res.verdict == RC_QEMU_PROTECTED ||
			      res.verdict == RC_QEMU_UNPROTECTED)) {
		best = res;
		have = true;
	}
	/* QEMU behind a wrapper: any other process of the unit's cgroup. */
	snprintf(rel, sizeof(rel), "sys/fs/cgroup/%s/cgroup.procs", u->cgroup);
	if (best.verdict != RC_QEMU_UNPROTECTED &&
	    rc_read_string(m->root, rel, &procs) >= 0) {
		char *save = NULL;

		for (char *t = strtok_r(procs, "\n", &save); t;
		     t = strtok_r(NULL, "\n", &save)) {
			long p = strtol(t, NULL, 10);

			if (p <= 0 || (uint32_t)p == pid)
				continue;
			if (check_pid(m, p, &res) < 0)
				continue;
			if (res.verdict == RC_QEMU_UNPROTECTED && res.ramcrypt_pending) {
				if (!have_pending)
					pending = res;
				have_pending = true;
				continue;
			}
			if (res.verdict == RC_QEMU_UNPROTECTED ||
			    (res.verdict == RC_QEMU_PROTECTED && !have)) {
				best = res;
				have = true;
			}
			if (res.verdict == RC_QEMU_UNPROTECTED)
				break;
		}
		free(procs);
	}
	/* A protected QEMU next to one still mapping: wait for that one too. */
	if (have && best.verdict == RC_QEMU_PROTECTED && have_pending)
		have = false;

	if (!have) {
		if (now_usec() - u->main_seen_usec < grace)
			return 0;
		if (have_pending) {
			best = pending;
			l = strlen(best.reason);
			snprintf(best.reason + l, sizeof(best.reason) - l,
				 " %u ms after the start", m->cfg.verify_grace_ms);
		} else {
			memset(&best, 0, sizeof(best));
			best.verdict = RC_QEMU_UNPROTECTED;
			snprintf(best.reason, sizeof(best.reason),
				 "no QEMU guest process in %s %u ms after the start; RamCrypt protects guest RAM on ramcrypt regions only.",
				 u->cgroup, m->cfg.verify_grace_ms);
		}
	}
	unit_set_anonymous_bytes(u, best.anonymous_bytes);
	if (best.verdict == RC_QEMU_PROTECTED) {
		if (u->state != UNIT_PROTECTED)
			log_info("%s: protected: %" PRIu64 " MiB of guest RAM on ramcrypt, drives bypass the page cache%s.",
				 u->name, best.ramcrypt_bytes >> 20,
				 best.anonymous_bytes ? " (some anonymous RAM below the threshold is not counted)" : "");
		unit_set_state(u, UNIT_PROTECTED, "");
		return 0;
	}
	if (u->state != UNIT_UNPROTECTED)
		log_err("%s is UNPROTECTED: %s", u->name, best.reason);
	unit_set_state(u, UNIT_UNPROTECTED, best.reason);
	unit_stop_unprotected(u, "unit");
	return 0;
}

void unit_set_anonymous_bytes(struct unit *u, uint64_t bytes)
{
	if (bytes == u->anonymous_bytes)
		return;
	u->anonymous_bytes = bytes;
	(void)sd_bus_emit_properties_changed(u->m->bus, u->path, RC_UNIT_IFACE,
					     "AnonymousRAMBytes", NULL);
}

/* unprotected_action=stop: stop the systemd unit @u->name, once */
void unit_stop_unprotected(struct unit *u, const char *what)
{
	struct manager *m = u->m;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	int r;

	if (m->cfg.unprotected_warn || u->stop_requested)
		return;
	u->stop_requested = true;
	log_err("Stopping %s: a marked %s never runs unprotected (unprotected_action=stop).",
		u->name, what);
	r = sd1_stop_unit(m->bus, u->name, &e);
	if (r < 0)
		log_err("%s: cannot stop it: %s", u->name,
			e.message ? e.message : strerror(-r));
	sd_bus_error_free(&e);
}

void manager_verify_all(struct manager *m)
{
	struct unit *u, *next;

	for (u = m->units; u; u = next) {
		next = u->next;
		(void)unit_verify(u);
	}
}

int manager_rediscover(struct manager *m)
{
	struct rc_policy *pols = NULL;
	size_t n = 0;
	int r;

	r = rc_policy_list(m->root, &pols, &n);
	if (r == -ENOENT)
		return 0;
	if (r < 0) {
		log_err("Cannot list the region policies: %s", strerror(-r));
		return r;
	}
	for (size_t i = 0; i < n; i++) {
		struct sd_unit_info info;
		sd_bus_error e = SD_BUS_ERROR_NULL;
		uint64_t cgid = 0;
		struct unit *u;
		char *name = policy_name_unescape(pols[i].name), *s;

		if (!name)
			continue;
		r = sd1_read_unit(m->bus, name, false, &info, &e);
		if (r < 0 || !info.cgroup || !*info.cgroup ||
		    rc_cgroup_id(m->root, info.cgroup, &cgid) < 0 ||
		    cgid != pols[i].cgroup_id) {
			log_notice("Removing the stale region policy of %s (the unit is gone or was restarted).",
				   name);
			(void)rc_policy_remove(m->root, pols[i].name);
			if (r >= 0)
				sd_unit_info_free(&info);
			sd_bus_error_free(&e);
			free(name);
			continue;
		}
		u = unit_new(m, name, info.sd_path, info.cgroup);
		if (!u) {
			sd_unit_info_free(&info);
			free(name);
			continue;
		}
		u->cgroup_id = cgid;
		u->cpus = info.allowed_cpus;
		if (m->roles_applied) {
			struct rc_cpuset notvm = u->cpus;

			rc_cpuset_andnot(&notvm, &m->roles.vm);
			rc_cpuset_andnot(&u->cpus, &notvm);
		}
		u->crypto_cpu = pols[i].crypto_cpu;
		u->window_pages = pols[i].window_pages;
		u->max_plaintext_age_ms = pols[i].max_plaintext_age_ms;
		u->evict_ahead_pages = pols[i].evict_ahead_pages;
		u->main_pid = info.main_pid;
		u->state = UNIT_ENROLLING;
		unit_link(m, u);
		confine_adopt(m, u->name);
		if (rc_cpuset_empty(&u->cpus))
			unit_set_state(u, UNIT_FAILED,
				       "rediscovered after a restart, but its AllowedCPUs= holds no VM CPU");
		log_info("Rediscovered %s: VM CPUs %s, crypto CPU %d.", name,
			 (s = cpuset_str(&u->cpus)), u->crypto_cpu);
		free(s);
		if (u->state == UNIT_ENROLLING)
			(void)unit_verify(u);
		sd_unit_info_free(&info);
		free(name);
	}
	rc_policies_free(pols, n);
	return 0;
}
