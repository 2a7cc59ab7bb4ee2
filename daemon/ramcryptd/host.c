// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * host.c - SetupHost / RestoreHost: CPU roles applied to the host (slices,
 * IRQs, unbound workqueues, tresor holders, PM QoS), and what was changed,
 * kept in <state_dir>/host.json so a restarted daemon can still restore it.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "rc-kernel.h"
#include "ramcryptd.h"

static const char *const host_slices[] = {
	"system.slice", "user.slice", "init.scope", NULL
};

/* The kernel's cpumask format: 32-bit hex groups, highest first. */
static char *cpuset_hexmask(const struct rc_cpuset *s)
{
	int top = -1, cpu;
	char *buf, *p;

	rc_cpuset_foreach(cpu, s)
		top = cpu;
	if (top < 0)
		return strdup("0");
	buf = malloc((top / 32 + 1) * 9 + 1);
	if (!buf)
		return NULL;
	p = buf;
	for (int g = top / 32; g >= 0; g--) {
		uint32_t w = 0;

		for (int b = 0; b < 32; b++)
			if (rc_cpuset_isset(s, g * 32 + b))
				w |= 1u << b;
		p += sprintf(p, g == top / 32 ? "%x" : ",%08x", w);
	}
	return buf;
}

static char *state_file(struct manager *m)
{
	char *p = NULL;

	if (asprintf(&p, "%s/host.json", m->state_dir) < 0)
		return NULL;
	return p;
}

static int save_state(struct manager *m, json_object *st)
{
	char *path = state_file(m), *tmp = NULL;
	int r = 0;

	if (!path)
		return -ENOMEM;
	r = mkdir_p(m->state_dir, 0755);
	if (r < 0)
		goto out;
	if (asprintf(&tmp, "%s.tmp", path) < 0) {
		r = -ENOMEM;
		goto out;
	}
	if (json_object_to_file_ext(tmp, st, JSON_C_TO_STRING_PRETTY) < 0 ||
	    rename(tmp, path) < 0)
		r = -EIO;
out:
	if (r < 0)
		log_err("Cannot write %s: %s", path, strerror(-r));
	free(tmp);
	free(path);
	return r;
}

static json_object *load_state_json(struct manager *m)
{
	char *path = state_file(m);
	json_object *o;

	if (!path)
		return NULL;
	if (access(path, F_OK) < 0) {
		free(path);
		return NULL;
	}
	o = json_object_from_file(path);
	if (!o || !json_object_is_type(o, json_type_object)) {
		log_err("%s is not a JSON object; ignoring it.", path);
		json_object_put(o);
		o = NULL;
	}
	free(path);
	return o;
}

static void put_cpus(json_object *o, const char *k, const struct rc_cpuset *s)
{
	char *str = cpuset_str(s);

	json_object_object_add(o, k, json_object_new_string(str));
	free(str);
}

static int get_cpus(json_object *o, const char *k, struct rc_cpuset *s)
{
	json_object *v;

	rc_cpuset_zero(s);
	if (!json_object_object_get_ex(o, k, &v) ||
	    !json_object_is_type(v, json_type_string))
		return -EINVAL;
	return rc_cpuset_parse(json_object_get_string(v), s);
}

int host_load_state(struct manager *m)
{
	json_object *st = load_state_json(m);
	struct rc_roles roles;

	if (!st)
		return 0;
	if (get_cpus(st, "housekeeping", &roles.housekeeping) < 0 ||
	    get_cpus(st, "crypto", &roles.crypto) < 0 ||
	    get_cpus(st, "vm", &roles.vm) < 0) {
		log_err("%s/host.json has no valid roles; ignoring it.", m->state_dir);
		json_object_put(st);
		return -EINVAL;
	}
	m->roles = roles;
	m->roles_applied = true;
	(void)get_cpus(st, "irqs_not_moved", &m->irqs_not_moved);
	json_object_put(st);
	log_info("CPU roles are applied (from %s/host.json).", m->state_dir);
	return 1;
}

static int compute_roles(struct manager *m, struct rc_roles *roles,
			 sd_bus_error *error)
{
	const char *reason = NULL;
	int r;

	if (m->cfg.roles_auto) {
		r = rc_roles_default(m->topo, roles, &reason);
		if (r < 0)
			return sd_bus_error_setf(error, RC_ERROR_HOST,
				"No default CPU roles for this host: %s",
				reason ? reason : strerror(-r));
		return 0;
	}
	roles->housekeeping = m->cfg.housekeeping;
	roles->crypto = m->cfg.crypto;
	roles->vm = m->cfg.vm;
	r = rc_roles_validate(m->topo, roles, &reason);
	if (r < 0)
		return sd_bus_error_setf(error, RC_ERROR_HOST,
			"The CPU roles of %s are not valid: %s", m->config_path,
			reason ? reason : strerror(-r));
	return 0;
}

static bool is_number(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

int host_setup(struct manager *m, sd_bus_error *error)
{
	struct rc_tresor_status ts;
	struct rc_roles roles;
	struct rc_cpuset holders, lat;
	json_object *st, *irqs, *qos;
	char *hk = NULL, *path = NULL, *s;
	DIR *d;
	int r, cpu, failed = 0;
	bool fresh;

	r = compute_roles(m, &roles, error);
	if (r < 0)
		return r;
	if (m->units && m->roles_applied &&
	    (!rc_cpuset_equal(&roles.vm, &m->roles.vm) ||
	     !rc_cpuset_equal(&roles.crypto, &m->roles.crypto) ||
	     !rc_cpuset_equal(&roles.housekeeping, &m->roles.housekeeping)))
		return sd_bus_error_setf(error, RC_ERROR_HOST,
			"The CPU roles cannot change while units are enrolled (first: %s).",
			m->units->name);
	memset(&ts, 0, sizeof(ts));
	r = rc_tresor_read_status(m->root, &ts);
	if (r < 0 || !ts.module_loaded)
		return sd_bus_error_setf(error, RC_ERROR_HOST,
			"tresor.ko is not loaded: the key holders cannot be set.");

	/* What we change is recorded before we change it, once: a second
	 * SetupHost keeps the host's original values. */
	st = load_state_json(m);
	fresh = !st;
	if (!st)
		st = json_object_new_object();
	put_cpus(st, "housekeeping", &roles.housekeeping);
	put_cpus(st, "crypto", &roles.crypto);
	put_cpus(st, "vm", &roles.vm);
	if (!json_object_object_get_ex(st, "irq", &irqs)) {
		irqs = json_object_new_object();
		json_object_object_add(st, "irq", irqs);
	}
	if (!json_object_object_get_ex(st, "pm_qos_resume_latency_us", &qos)) {
		qos = json_object_new_object();
		json_object_object_add(st, "pm_qos_resume_latency_us", qos);
	}
	if (fresh) {
		if (rc_read_string(m->root, "sys/devices/virtual/workqueue/cpumask",
				   &s) >= 0) {
			json_object_object_add(st, "workqueue_cpumask",
					       json_object_new_string(s));
			free(s);
		}
	}
	r = save_state(m, st);
	if (r < 0) {
		json_object_put(st);
		return sd_bus_error_setf(error, RC_ERROR_HOST,
			"Cannot record the host's state in %s: %s", m->state_dir,
			strerror(-r));
	}

	hk = cpuset_str(&roles.housekeeping);
	/* 1. slices */
	for (size_t i = 0; host_slices[i]; i++) {
		sd_bus_error e = SD_BUS_ERROR_NULL;

		r = sd1_set_allowed_cpus(m->bus, host_slices[i],
					 &roles.housekeeping, &e);
		if (r < 0) {
			log_err("Cannot set AllowedCPUs=%s on %s: %s", hk,
				host_slices[i], e.message ? e.message : strerror(-r));
			sd_bus_error_setf(error, RC_ERROR_HOST,
				"Cannot set AllowedCPUs=%s on %s: %s", hk,
				host_slices[i], e.message ? e.message : strerror(-r));
			sd_bus_error_free(&e);
			failed = r;
			goto done;
		}
	}

	/* 2. IRQs (some refuse: per-CPU and managed interrupts) */
	rc_cpuset_zero(&m->irqs_not_moved);
	if (rc_path(m->root, "proc/irq", &path) >= 0 && (d = opendir(path))) {
		struct dirent *de;

		while ((de = readdir(d))) {
			char rel[300], *old = NULL;

			if (!is_number(de->d_name))
				continue;
			snprintf(rel, sizeof(rel), "proc/irq/%s/smp_affinity_list",
				 de->d_name);
			{
				char *full = NULL;
				bool exists;

				if (rc_path(m->root, rel, &full) < 0)
					continue;
				exists = access(full, F_OK) == 0;
				free(full);
				if (!exists)
					continue;
			}
			/* an IRQ whose affinity cannot even be read is still
			 * tried, and reported if it refuses */
			if (rc_read_string(m->root, rel, &old) >= 0 &&
			    !json_object_object_get_ex(irqs, de->d_name, NULL))
				json_object_object_add(irqs, de->d_name,
						       json_object_new_string(old));
			free(old);
			r = rc_write_string(m->root, rel, hk);
			if (r < 0) {
				unsigned long irq = strtoul(de->d_name, NULL, 10);

				if (irq < RC_MAX_CPUS)
					rc_cpuset_set(&m->irqs_not_moved, irq);
				log_notice("IRQ %s stays where it is (its affinity cannot be set: %s).",
					   de->d_name, strerror(-r));
			}
		}
		closedir(d);
	}
	free(path);
	path = NULL;
	put_cpus(st, "irqs_not_moved", &m->irqs_not_moved);

	/* 3. unbound workqueues */
	s = cpuset_hexmask(&roles.housekeeping);
	if (s) {
		r = rc_write_string(m->root, "sys/devices/virtual/workqueue/cpumask", s);
		if (r < 0)
			log_warning("Cannot move the unbound workqueues to %s: %s", hk,
				    strerror(-r));
		free(s);
	}

	/* 4. key holders = housekeeping + crypto */
	holders = roles.housekeeping;
	rc_cpuset_or(&holders, &roles.crypto);
	r = rc_tresor_set_holders(m->root, &holders);
	if (r < 0) {
		s = cpuset_str(&holders);
		log_err("Cannot set the tresor key holders to %s: %s", s, strerror(-r));
		sd_bus_error_setf(error, RC_ERROR_HOST,
			"Cannot set the tresor key holders to %s: %s", s, strerror(-r));
		free(s);
		failed = r;
		goto done;
	}

	/* 4b. the crypto CPUs are tresor's polling CPUs: with the admin's
	 * tresor.poll_us > 0 they spin for forwarded page ciphers, and a
	 * window fault on a VM CPU costs no IPI or wake-up */
	r = rc_tresor_set_poll_cpus(m->root, &roles.crypto);
	if (r < 0)
		log_warning("Cannot make the crypto CPUs polling ones (tresor's poll_cpus): %s; forwarded page ciphers go by IPI.",
			    strerror(-r));

	/* 5. no deep C-states on crypto and VM CPUs: the sysfs value "n/a"
	 * is a resume latency limit of 0 (only polling idle); "0" means no
	 * limit (Documentation/ABI/testing/sysfs-devices-power). */
	lat = roles.crypto;
	rc_cpuset_or(&lat, &roles.vm);
	rc_cpuset_foreach(cpu, &lat) {
		char rel[128], key[16], *old = NULL;

		snprintf(rel, sizeof(rel),
			 "sys/devices/system/cpu/cpu%d/power/pm_qos_resume_latency_us", cpu);
		snprintf(key, sizeof(key), "%d", cpu);
		if (rc_read_string(m->root, rel, &old) < 0)
			continue;
		if (!json_object_object_get_ex(qos, key, NULL))
			json_object_object_add(qos, key, json_object_new_string(old));
		free(old);
		r = rc_write_string(m->root, rel, "n/a");
		if (r < 0)
			log_warning("CPU %d: cannot limit its resume latency: %s", cpu,
				    strerror(-r));
	}

	m->roles = roles;
	m->roles_applied = true;
	(void)sd_bus_emit_properties_changed(m->bus, RC_MANAGER_PATH, RC_MANAGER_IFACE,
		"RolesApplied", "HousekeepingCPUs", "CryptoCPUs", "VMCPUs",
		"FreeVMCPUs", "IRQsNotMoved", "KeyHolders", NULL);
	{
		char *c = cpuset_str(&roles.crypto), *v = cpuset_str(&roles.vm);

		log_info("CPU roles applied: housekeeping %s, crypto %s, VM %s; %u IRQs stay where they are.",
			 hk, c, v, rc_cpuset_count(&m->irqs_not_moved));
		free(c);
		free(v);
	}
done:
	(void)save_state(m, st);
	json_object_put(st);
	free(hk);
	return failed;
}

int host_restore(struct manager *m, sd_bus_error *error)
{
	json_object *st, *irqs = NULL, *qos = NULL, *v;
	struct rc_cpuset online;
	char *all, *path = NULL;
	int r, failed = 0;

	if (m->units) {
		char names[512] = "";
		size_t off = 0, n = 0;

		for (struct unit *u = m->units; u; u = u->next, n++)
			off += snprintf(names + off, off < sizeof(names) ? sizeof(names) - off : 0,
					"%s%s", off ? ", " : "", u->name);
		return sd_bus_error_setf(error, RC_ERROR_HOST,
			"Cannot restore the host while %zu unit%s enrolled (%s): stop %s first.",
			n, n == 1 ? " is" : "s are", names, n == 1 ? "it" : "them");
	}
	online = m->topo->online;
	if (rc_cpuset_empty(&online))
		return sd_bus_error_setf(error, RC_ERROR_HOST,
			"Cannot read the online CPUs: nothing restored.");
	all = cpuset_str(&online);
	st = load_state_json(m);
	if (st) {
		json_object_object_get_ex(st, "irq", &irqs);
		json_object_object_get_ex(st, "pm_qos_resume_latency_us", &qos);
	}

	{
		struct rc_cpuset none;

		rc_cpuset_zero(&none);
		r = rc_tresor_set_poll_cpus(m->root, &none);
		if (r < 0 && r != -ENOENT)
			log_warning("Cannot stop the polling crypto CPUs: %s", strerror(-r));
	}
	r = rc_tresor_set_holders(m->root, &online);
	if (r < 0) {
		log_err("Cannot set the tresor key holders back to %s: %s", all,
			strerror(-r));
		sd_bus_error_setf(error, RC_ERROR_HOST,
			"Cannot set the tresor key holders back to %s: %s", all,
			strerror(-r));
		failed = r;
	}
	for (size_t i = 0; host_slices[i]; i++) {
		sd_bus_error e = SD_BUS_ERROR_NULL;
		struct rc_cpuset none;

		rc_cpuset_zero(&none);
		r = sd1_set_allowed_cpus(m->bus, host_slices[i], &none, &e);
		if (r < 0) {
			log_err("Cannot lift AllowedCPUs= of %s: %s", host_slices[i],
				e.message ? e.message : strerror(-r));
			if (!failed)
				sd_bus_error_setf(error, RC_ERROR_HOST,
					"Cannot lift AllowedCPUs= of %s: %s",
					host_slices[i], e.message ? e.message : strerror(-r));
			failed = failed ? failed : r;
		}
		sd_bus_error_free(&e);
	}
	if (irqs) {
		json_object_object_foreach(irqs, irq, val) {
			char rel[300];

			snprintf(rel, sizeof(rel), "proc/irq/%s/smp_affinity_list", irq);
			(void)rc_write_string(m->root, rel, json_object_get_string(val));
		}
	} else if (rc_path(m->root, "proc/irq", &path) >= 0) {
		DIR *d = opendir(path);
		struct dirent *de;

		while (d && (de = readdir(d))) {
			char rel[300];

			if (!is_number(de->d_name))
				continue;
			snprintf(rel, sizeof(rel), "proc/irq/%s/smp_affinity_list",
				 de->d_name);
			(void)rc_write_string(m->root, rel, all);
		}
		if (d)
			closedir(d);
	}
	free(path);
	if (st && json_object_object_get_ex(st, "workqueue_cpumask", &v)) {
		(void)rc_write_string(m->root, "sys/devices/virtual/workqueue/cpumask",
				      json_object_get_string(v));
	} else {
		char *mask = cpuset_hexmask(&online);

		if (mask)
			(void)rc_write_string(m->root,
					      "sys/devices/virtual/workqueue/cpumask", mask);
		free(mask);
	}
	if (qos) {
		json_object_object_foreach(qos, cpu, val) {
			char rel[128];

			snprintf(rel, sizeof(rel),
				 "sys/devices/system/cpu/cpu%s/power/pm_qos_resume_latency_us",
				 cpu);
			(void)rc_write_string(m->root, rel, json_object_get_string(val));
		}
	}
	json_object_put(st);

	if (!failed) {
		char *sf = state_file(m);

		if (sf)
			(void)unlink(sf);
		free(sf);
		m->roles_applied = false;
		memset(&m->roles, 0, sizeof(m->roles));
		rc_cpuset_zero(&m->irqs_not_moved);
		log_info("Host restored: key holders %s, slices unrestricted, IRQs and workqueues back.",
			 all);
	}
	(void)sd_bus_emit_properties_changed(m->bus, RC_MANAGER_PATH, RC_MANAGER_IFACE,
		"RolesApplied", "HousekeepingCPUs", "CryptoCPUs", "VMCPUs",
		"FreeVMCPUs", "IRQsNotMoved", "KeyHolders", NULL);
	free(all);
	return failed;
}
