// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * bus-unit.c - /org/ramcrypt/RamCrypt1/unit/<unit>, org.ramcrypt.RamCrypt1.Unit:
 * a fallback vtable resolved by unit_object_find and a node enumerator.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rc-kernel.h"
#include "ramcryptd.h"

const char *unit_state_to_string(enum unit_state s)
{
	switch (s) {
	case UNIT_ENROLLING: return "enrolling";
	case UNIT_PROTECTED: return "protected";
	case UNIT_UNPROTECTED: return "unprotected";
	case UNIT_RELEASED: return "released";
	case UNIT_FAILED: return "failed";
	}
	return "failed";
}

static const char *confinement_to_string(enum rc_confinement c)
{
	switch (c) {
	case RC_CONFINE_AUTO: return "auto";
	case RC_CONFINE_REQUIRED: return "required";
	case RC_CONFINE_OFF: return "off";
	}
	return "off";
}

struct unit *manager_find_unit(struct manager *m, const char *name)
{
	for (struct unit *u = m->units; u; u = u->next)
		if (strcmp(u->name, name) == 0)
			return u;
	return NULL;
}

void unit_set_state(struct unit *u, enum unit_state s, const char *reason)
{
	const char *r = reason ? reason : "";

	if (u->state == s && u->reason && strcmp(u->reason, r) == 0)
		return;
	u->state = s;
	free(u->reason);
	u->reason = strdup(r);
	if (!u->reason)
		abort();
	(void)sd_bus_emit_properties_changed(u->m->bus, u->path, RC_UNIT_IFACE,
					     "State", "StateReason", NULL);
}

int unit_object_find(sd_bus *bus, const char *path, const char *interface,
		     void *userdata, void **found, sd_bus_error *error)
{
	struct manager *m = userdata;
	char *name = NULL;
	struct unit *u;
	int r;

	(void)bus; (void)interface; (void)error;
	r = sd_bus_path_decode(path, RC_UNIT_PREFIX, &name);
	if (r <= 0)
		return 0;
	u = manager_find_unit(m, name);
	free(name);
	if (!u)
		return 0;
	*found = u;
	return 1;
}

int unit_node_enumerator(sd_bus *bus, const char *path, void *userdata,
			 char ***nodes, sd_bus_error *error)
{
	struct manager *m = userdata;
	size_t n = 0, i = 0;
	char **l;

	(void)bus; (void)path; (void)error;
	for (struct unit *u = m->units; u; u = u->next)
		n++;
	l = calloc(n + 1, sizeof(char *));
	if (!l)
		return -ENOMEM;
	for (struct unit *u = m->units; u; u = u->next) {
		l[i] = strdup(u->path);
		if (!l[i]) {
			while (i > 0)
				free(l[--i]);
			free(l);
			return -ENOMEM;
		}
		i++;
	}
	*nodes = l;
	return 0;
}

struct unit_stats {
	uint32_t regions;
	uint64_t bytes, plaintext, faults, evictions, oldest;
};

static bool region_is_unit(const struct unit *u, const struct rc_region *r)
{
	size_t l;

	if (u->cgroup_id && r->cgroup_id == u->cgroup_id)
		return true;
	/* a region opened from a child cgroup of the unit (Delegate=yes) */
	if (!r->cgroup || !u->cgroup || !*u->cgroup)
		return false;
	l = strlen(u->cgroup);
	return strncmp(r->cgroup, u->cgroup, l) == 0 && r->cgroup[l] == '/';
}

static void unit_stats(const struct unit *u, struct unit_stats *st)
{
	struct rc_region *regions = NULL;
	size_t n = 0;

	memset(st, 0, sizeof(*st));
	if (u->kind == UNIT_KIND_LIBVIRT) {
		libvirt_unit_stats(u, &st->regions, &st->bytes, &st->plaintext,
				   &st->faults, &st->evictions, &st->oldest);
		return;
	}
	if (rc_regions_list(u->m->root, &regions, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		const struct rc_region *r = &regions[i];

		if (!region_is_unit(u, r))
			continue;
		st->regions++;
		st->bytes += r->size;
		st->plaintext += r->plaintext_pages;
		st->faults += r->faults;
		st->evictions += r->evictions;
		if (r->oldest_plaintext_age_ms > st->oldest)
			st->oldest = r->oldest_plaintext_age_ms;
	}
	rc_regions_free(regions, n);
}

static int prop_unit(sd_bus *bus, const char *path, const char *iface,
		     const char *prop, sd_bus_message *reply, void *userdata,
		     sd_bus_error *error)
{
	struct unit *u = userdata;
	struct unit_stats st;

	(void)bus; (void)path; (void)iface; (void)error;
	if (strcmp(prop, "Unit") == 0)
		return sd_bus_message_append(reply, "s", u->name);
	if (strcmp(prop, "Kind") == 0)
		return sd_bus_message_append(reply, "s",
			u->kind == UNIT_KIND_LIBVIRT ? "libvirt-domain" : "service");
	if (strcmp(prop, "Domain") == 0)
		return sd_bus_message_append(reply, "s", u->domain ? u->domain : "");
	if (strcmp(prop, "DomainUUID") == 0)
		return sd_bus_message_append(reply, "s", u->uuid ? u->uuid : "");
	if (strcmp(prop, "DomainURI") == 0)
		return sd_bus_message_append(reply, "s",
			u->kind != UNIT_KIND_LIBVIRT ? "" :
			u->session ? "qemu:///session" : "qemu:///system");
	if (strcmp(prop, "Scope") == 0)	/* a session's domain has none */
		return sd_bus_message_append(reply, "s",
			u->kind == UNIT_KIND_LIBVIRT && !u->session ? u->name : "");
	if (strcmp(prop, "MemoryDirectory") == 0)
		return sd_bus_message_append(reply, "s",
					     u->memory_dir ? u->memory_dir : "");
	if (strcmp(prop, "ControlGroup") == 0)
		return sd_bus_message_append(reply, "s", u->cgroup ? u->cgroup : "");
	if (strcmp(prop, "MainPID") == 0)
		return sd_bus_message_append(reply, "u", u->main_pid);
	if (strcmp(prop, "State") == 0)
		return sd_bus_message_append(reply, "s", unit_state_to_string(u->state));
	if (strcmp(prop, "StateReason") == 0)
		return sd_bus_message_append(reply, "s", u->reason ? u->reason : "");
	if (strcmp(prop, "CPUs") == 0)
		return append_cpuset(reply, &u->cpus);
	if (strcmp(prop, "CryptoCPU") == 0)
		return sd_bus_message_append(reply, "i", (int32_t)u->crypto_cpu);
	if (strcmp(prop, "WindowPages") == 0)
		return sd_bus_message_append(reply, "u", u->window_pages);
	if (strcmp(prop, "MaxPlaintextAgeMs") == 0)
		return sd_bus_message_append(reply, "u", u->max_plaintext_age_ms);
	if (strcmp(prop, "CacheConfinement") == 0)
		return sd_bus_message_append(reply, "s",
					     confinement_to_string(u->confinement));
	if (strcmp(prop, "AnonymousRAMBytes") == 0)
		return sd_bus_message_append(reply, "t", u->anonymous_bytes);
	unit_stats(u, &st);
	if (strcmp(prop, "Regions") == 0)
		return sd_bus_message_append(reply, "u", st.regions);
	if (strcmp(prop, "RegionBytes") == 0)
		return sd_bus_message_append(reply, "t", st.bytes);
	if (strcmp(prop, "PlaintextPages") == 0)
		return sd_bus_message_append(reply, "t", st.plaintext);
	if (strcmp(prop, "Faults") == 0)
		return sd_bus_message_append(reply, "t", st.faults);
	if (strcmp(prop, "Evictions") == 0)
		return sd_bus_message_append(reply, "t", st.evictions);
	return sd_bus_message_append(reply, "t", st.oldest);
}

#define EC SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE
#define CONST SD_BUS_VTABLE_PROPERTY_CONST
const sd_bus_vtable unit_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_PROPERTY("Unit", "s", prop_unit, 0, CONST),
	SD_BUS_PROPERTY("Kind", "s", prop_unit, 0, CONST),
	SD_BUS_PROPERTY("Domain", "s", prop_unit, 0, CONST),
	SD_BUS_PROPERTY("DomainUUID", "s", prop_unit, 0, CONST),
	SD_BUS_PROPERTY("DomainURI", "s", prop_unit, 0, CONST),
	SD_BUS_PROPERTY("Scope", "s", prop_unit, 0, CONST),
	SD_BUS_PROPERTY("MemoryDirectory", "s", prop_unit, 0, CONST),
	SD_BUS_PROPERTY("ControlGroup", "s", prop_unit, 0, CONST),
	SD_BUS_PROPERTY("MainPID", "u", prop_unit, 0, EC),
	SD_BUS_PROPERTY("State", "s", prop_unit, 0, EC),
	SD_BUS_PROPERTY("StateReason", "s", prop_unit, 0, EC),
	SD_BUS_PROPERTY("CPUs", "au", prop_unit, 0, CONST),
	SD_BUS_PROPERTY("CryptoCPU", "i", prop_unit, 0, CONST),
	SD_BUS_PROPERTY("WindowPages", "u", prop_unit, 0, CONST),
	SD_BUS_PROPERTY("MaxPlaintextAgeMs", "u", prop_unit, 0, CONST),
	SD_BUS_PROPERTY("CacheConfinement", "s", prop_unit, 0, CONST),
	SD_BUS_PROPERTY("Regions", "u", prop_unit, 0, 0),
	SD_BUS_PROPERTY("RegionBytes", "t", prop_unit, 0, 0),
	SD_BUS_PROPERTY("PlaintextPages", "t", prop_unit, 0, 0),
	SD_BUS_PROPERTY("Faults", "t", prop_unit, 0, 0),
	SD_BUS_PROPERTY("Evictions", "t", prop_unit, 0, 0),
	SD_BUS_PROPERTY("OldestPlaintextAgeMs", "t", prop_unit, 0, 0),
	SD_BUS_PROPERTY("AnonymousRAMBytes", "t", prop_unit, 0, EC),
	SD_BUS_VTABLE_END
};
