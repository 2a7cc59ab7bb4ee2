// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * bus-manager.c - /org/ramcrypt/RamCrypt1, org.ramcrypt.RamCrypt1.Manager.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rc-hostchecks.h"
#include "rc-resctrl.h"
#include "rc-kernel.h"
#include "ramcryptd.h"

/* The sender's EUID, from credentials the bus vouches for (never ones
 * sd-bus augmented from /proc, which a sender can race), as systemd's
 * bus-polkit.c does. */
int bus_caller_euid(sd_bus_message *msg, const char *what, uid_t *ret,
		    sd_bus_error *error)
{
	sd_bus_creds *creds = NULL;
	int r;

	r = sd_bus_query_sender_creds(msg, SD_BUS_CREDS_EUID, &creds);
	if (r < 0)
		return sd_bus_error_set_errnof(error, r,
			"Cannot determine the caller's credentials: %s",
			strerror(-r));
	if (sd_bus_creds_get_augmented_mask(creds) & SD_BUS_CREDS_EUID) {
		sd_bus_creds_unref(creds);
		return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
			"%s needs the caller's EUID, which the bus does not vouch for.",
			what);
	}
	r = sd_bus_creds_get_euid(creds, ret);
	sd_bus_creds_unref(creds);
	if (r < 0)
		return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
			"%s needs the caller's EUID, which is unknown.", what);
	return 0;
}

/* Changing methods: the sender's EUID must be 0. */
int check_root(sd_bus_message *msg, const char *what, sd_bus_error *error)
{
	uid_t euid;
	int r;

	r = bus_caller_euid(msg, what, &euid, error);
	if (r < 0)
		return r;
	if (euid != 0)
		return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
			"%s requires root (caller has EUID %u).", what,
			(unsigned int)euid);
	return 0;
}

static int prop_version(sd_bus *bus, const char *path, const char *iface,
			const char *prop, sd_bus_message *reply, void *userdata,
			sd_bus_error *error)
{
	(void)bus; (void)path; (void)iface; (void)prop; (void)userdata;
	(void)error;
	return sd_bus_message_append(reply, "s", RC_VERSION);
}

static int prop_tresor(sd_bus *bus, const char *path, const char *iface,
		       const char *prop, sd_bus_message *reply, void *userdata,
		       sd_bus_error *error)
{
	struct manager *m = userdata;
	struct rc_tresor_status st;
	int r;

	(void)bus; (void)path; (void)iface; (void)error;
	memset(&st, 0, sizeof(st));
	r = rc_tresor_read_status(m->root, &st);
	if (r < 0)
		memset(&st, 0, sizeof(st));
	if (strcmp(prop, "KeyLoaded") == 0)
		return sd_bus_message_append(reply, "b", st.key_loaded);
	if (strcmp(prop, "KeyHolders") == 0)
		return append_cpuset(reply, &st.holders);
	if (strcmp(prop, "ValidKeyHolders") == 0)
		return append_cpuset(reply, &st.valid_holders);
	if (strcmp(prop, "CheckFailures") == 0)
		return sd_bus_message_append(reply, "t", st.check_failures);
	return sd_bus_message_append(reply, "t", st.forwarded_requests);
}

static int prop_roles(sd_bus *bus, const char *path, const char *iface,
		      const char *prop, sd_bus_message *reply, void *userdata,
		      sd_bus_error *error)
{
	struct manager *m = userdata;
	struct rc_cpuset s;

	(void)bus; (void)path; (void)iface; (void)error;
	rc_cpuset_zero(&s);
	if (strcmp(prop, "RolesApplied") == 0)
		return sd_bus_message_append(reply, "b", m->roles_applied);
	if (strcmp(prop, "IRQsNotMoved") == 0)
		return append_cpuset(reply, &m->irqs_not_moved);
	if (m->roles_applied) {
		if (strcmp(prop, "HousekeepingCPUs") == 0)
			s = m->roles.housekeeping;
		else if (strcmp(prop, "CryptoCPUs") == 0)
			s = m->roles.crypto;
		else if (strcmp(prop, "VMCPUs") == 0)
			s = m->roles.vm;
		else { /* FreeVMCPUs */
			struct rc_cpuset taken;

			s = m->roles.vm;
			manager_taken_cpus(m, &taken);
			rc_cpuset_andnot(&s, &taken);
		}
	}
	return append_cpuset(reply, &s);
}

static int prop_ramcrypt(sd_bus *bus, const char *path, const char *iface,
			 const char *prop, sd_bus_message *reply,
			 void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;
	struct rc_ramcrypt_totals t;

	(void)bus; (void)path; (void)iface; (void)error;
	memset(&t, 0, sizeof(t));
	if (rc_ramcrypt_read_totals(m->root, &t) < 0)
		memset(&t, 0, sizeof(t));
	if (strcmp(prop, "Regions") == 0)
		return sd_bus_message_append(reply, "u", (uint32_t)t.regions);
	if (strcmp(prop, "PlaintextPages") == 0)
		return sd_bus_message_append(reply, "t", t.plaintext_pages);
	return sd_bus_message_append(reply, "t", t.encrypted_pages);
}

static int prop_confinement(sd_bus *bus, const char *path, const char *iface,
			    const char *prop, sd_bus_message *reply,
			    void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;
	const char *state;
	char reason[2048];

	(void)bus; (void)path; (void)iface; (void)error;
	cache_confinement(m, &state, reason, sizeof(reason));
	if (strcmp(prop, "CacheConfinement") == 0)
		return sd_bus_message_append(reply, "s", state);
	return sd_bus_message_append(reply, "s", reason);
}

static int prop_hostchecks(sd_bus *bus, const char *path, const char *iface,
			   const char *prop, sd_bus_message *reply,
			   void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;
	struct rc_hostcheck checks[RC_HOSTCHECKS_MAX];
	struct rc_cpuset vm;
	size_t n = 0;
	int r;

	(void)bus; (void)path; (void)iface; (void)prop;
	rc_cpuset_zero(&vm);
	if (m->roles_applied)
		vm = m->roles.vm;
	r = rc_hostchecks_run(m->root, &vm, checks, &n);
	if (r < 0)
		return sd_bus_error_set_errnof(error, r,
			"Cannot run the host checks: %s", strerror(-r));
	if (n < RC_HOSTCHECKS_MAX) {
		/* cache confinement: what can write cached plaintext back */
		checks[n].name = "wbinvd-sources";
		checks[n].ok = rc_wbinvd_sources(m->root, checks[n].detail,
						 sizeof(checks[n].detail)) == 0;
		n++;
	}
	r = sd_bus_message_open_container(reply, 'a', "(sbs)");
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		r = sd_bus_message_append(reply, "(sbs)", checks[i].name,
					  checks[i].ok, checks[i].detail);
		if (r < 0)
			return r;
	}
	return sd_bus_message_close_container(reply);
}

static int method_list_units(sd_bus_message *msg, void *userdata,
			     sd_bus_error *error)
{
	struct manager *m = userdata;
	sd_bus_message *reply = NULL;
	int r;

	(void)error;
	r = sd_bus_message_new_method_return(msg, &reply);
	if (r < 0)
		return r;
	r = sd_bus_message_open_container(reply, 'a', "(sso)");
	for (struct unit *u = m->units; r >= 0 && u; u = u->next)
		r = sd_bus_message_append(reply, "(sso)", u->name,
					  unit_state_to_string(u->state),
					  u->path);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r >= 0)
		r = sd_bus_send(NULL, reply, NULL);
	sd_bus_message_unref(reply);
	return r;
}

static int method_get_unit(sd_bus_message *msg, void *userdata,
			   sd_bus_error *error)
{
	struct manager *m = userdata;
	const char *name;
	struct unit *u;
	int r;

	r = sd_bus_message_read(msg, "s", &name);
	if (r < 0)
		return r;
	u = manager_find_unit(m, name);
	if (!u)
		return sd_bus_error_setf(error, RC_ERROR_NO_SUCH_UNIT,
					 "%s is not enrolled.", name);
	return sd_bus_reply_method_return(msg, "o", u->path);
}

static int method_enroll(sd_bus_message *msg, void *userdata,
			 sd_bus_error *error)
{
	struct manager *m = userdata;
	const char *name;
	struct unit *u;
	char what[512];
	int r;

	r = sd_bus_message_read(msg, "s", &name);
	if (r < 0)
		return r;
	snprintf(what, sizeof(what), "Enrolling %s", name);
	r = check_root(msg, what, error);
	if (r < 0)
		return r;
	r = unit_enroll(m, name, &u, error);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(msg, "o", u->path);
}

static int method_release(sd_bus_message *msg, void *userdata,
			  sd_bus_error *error)
{
	struct manager *m = userdata;
	const char *name;
	struct unit *u;
	char what[512];
	int r;

	r = sd_bus_message_read(msg, "s", &name);
	if (r < 0)
		return r;
	snprintf(what, sizeof(what), "Releasing %s", name);
	r = check_root(msg, what, error);
	if (r < 0)
		return r;
	u = manager_find_unit(m, name);
	if (!u)
		return sd_bus_error_setf(error, RC_ERROR_NO_SUCH_UNIT,
					 "%s is not enrolled.", name);
	if (u->kind == UNIT_KIND_LIBVIRT)
		return sd_bus_error_setf(error, SD_BUS_ERROR_NOT_SUPPORTED,
			"%s is libvirt domain %s: it is released when libvirt stops it (virsh shutdown or destroy).",
			name, u->domain);
	r = unit_release(m, u, error);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(msg, NULL);
}

static int method_libvirt_hook(sd_bus_message *msg, void *userdata,
			       sd_bus_error *error)
{
	const char *domain, *op, *subop, *xml;
	char what[512];
	int r;

	r = sd_bus_message_read(msg, "ssss", &domain, &op, &subop, &xml);
	if (r < 0)
		return r;
	snprintf(what, sizeof(what), "The libvirt hook (%s %s)", op, domain);
	r = check_root(msg, what, error);
	if (r < 0)
		return r;
	r = libvirt_hook(userdata, &(struct lv_caller){ .uid = 0 }, domain,
			 op, subop, xml, error);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(msg, NULL);
}

/* A user's session libvirtd: anyone, for their own directory only
 * (libvirt.c decides, from the EUID the bus vouches for). */
static int method_libvirt_session_hook(sd_bus_message *msg, void *userdata,
				       sd_bus_error *error)
{
	const char *domain, *op, *subop, *xml, *conf, *text;
	struct lv_caller c = { .session = true };
	char what[512];
	int r;

	r = sd_bus_message_read(msg, "ssssss", &domain, &op, &subop, &xml,
				&conf, &text);
	if (r < 0)
		return r;
	snprintf(what, sizeof(what), "The session libvirt hook (%s %s)", op,
		 domain);
	r = bus_caller_euid(msg, what, &c.uid, error);
	if (r < 0)
		return r;
	c.qemu_conf = conf;
	c.qemu_conf_text = text;
	r = libvirt_hook(userdata, &c, domain, op, subop, xml, error);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(msg, NULL);
}

static int method_flush(sd_bus_message *msg, void *userdata,
			sd_bus_error *error)
{
	struct manager *m = userdata;
	int r;

	r = check_root(msg, "Flushing the plaintext windows", error);
	if (r < 0)
		return r;
	r = rc_ramcrypt_flush_all(m->root);
	if (r < 0)
		return sd_bus_error_set_errnof(error, r,
			"Cannot flush the ramcrypt regions: %s", strerror(-r));
	log_info("Flushed every region's plaintext window.");
	return sd_bus_reply_method_return(msg, NULL);
}

static int method_reload(sd_bus_message *msg, void *userdata,
			 sd_bus_error *error)
{
	struct manager *m = userdata;
	struct rc_config c;
	char err[1024];
	int r;

	r = check_root(msg, "Reloading the configuration", error);
	if (r < 0)
		return r;
	r = config_load(m->config_path, m->config_explicit, &c, err,
			sizeof(err));
	if (r < 0) {
		log_err("Reload refused, keeping the old configuration: %s", err);
		return sd_bus_error_setf(error, RC_ERROR_BAD_CONFIG, "%s", err);
	}
	m->cfg = c;
	if (m->verify_timer)
		(void)sd_event_source_set_time_relative(m->verify_timer,
			(uint64_t)m->cfg.verify_interval_ms * 1000);
	log_info("Reloaded %s%s.", m->config_path,
		 m->roles_applied ? " (CPU roles change at the next SetupHost)" : "");
	return sd_bus_reply_method_return(msg, NULL);
}

static int method_setup_host(sd_bus_message *msg, void *userdata,
			     sd_bus_error *error)
{
	int r;

	r = check_root(msg, "Setting up the host's CPU roles", error);
	if (r < 0)
		return r;
	r = host_setup(userdata, error);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(msg, NULL);
}

static int method_restore_host(sd_bus_message *msg, void *userdata,
			       sd_bus_error *error)
{
	int r;

	r = check_root(msg, "Restoring the host", error);
	if (r < 0)
		return r;
	r = host_restore(userdata, error);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(msg, NULL);
}

#define EC SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE
const sd_bus_vtable manager_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_PROPERTY("Version", "s", prop_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("KeyLoaded", "b", prop_tresor, 0, EC),
	SD_BUS_PROPERTY("KeyHolders", "au", prop_tresor, 0, EC),
	SD_BUS_PROPERTY("ValidKeyHolders", "au", prop_tresor, 0, EC),
	SD_BUS_PROPERTY("CheckFailures", "t", prop_tresor, 0, 0),
	SD_BUS_PROPERTY("ForwardedRequests", "t", prop_tresor, 0, 0),
	SD_BUS_PROPERTY("RolesApplied", "b", prop_roles, 0, EC),
	SD_BUS_PROPERTY("HousekeepingCPUs", "au", prop_roles, 0, EC),
	SD_BUS_PROPERTY("CryptoCPUs", "au", prop_roles, 0, EC),
	SD_BUS_PROPERTY("VMCPUs", "au", prop_roles, 0, EC),
	SD_BUS_PROPERTY("FreeVMCPUs", "au", prop_roles, 0, EC),
	SD_BUS_PROPERTY("IRQsNotMoved", "au", prop_roles, 0, EC),
	SD_BUS_PROPERTY("Regions", "u", prop_ramcrypt, 0, EC),
	SD_BUS_PROPERTY("PlaintextPages", "t", prop_ramcrypt, 0, 0),
	SD_BUS_PROPERTY("EncryptedPages", "t", prop_ramcrypt, 0, 0),
	SD_BUS_PROPERTY("CacheConfinement", "s", prop_confinement, 0, 0),
	SD_BUS_PROPERTY("CacheConfinementReason", "s", prop_confinement, 0, 0),
	SD_BUS_PROPERTY("HostChecks", "a(sbs)", prop_hostchecks, 0, 0),
	SD_BUS_METHOD_WITH_ARGS("ListUnits", SD_BUS_NO_ARGS,
		SD_BUS_RESULT("a(sso)", units), method_list_units,
		SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("GetUnit", SD_BUS_ARGS("s", name),
		SD_BUS_RESULT("o", path), method_get_unit,
		SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("EnrollUnit", SD_BUS_ARGS("s", name),
		SD_BUS_RESULT("o", path), method_enroll,
		SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("ReleaseUnit", SD_BUS_ARGS("s", name),
		SD_BUS_NO_RESULT, method_release, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("LibvirtHook",
		SD_BUS_ARGS("s", domain, "s", operation, "s", suboperation,
			    "s", xml),
		SD_BUS_NO_RESULT, method_libvirt_hook,
		SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("LibvirtSessionHook",
		SD_BUS_ARGS("s", domain, "s", operation, "s", suboperation,
			    "s", xml, "s", qemu_conf, "s", qemu_conf_text),
		SD_BUS_NO_RESULT, method_libvirt_session_hook,
		SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("Flush", "", "", method_flush, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("Reload", "", "", method_reload, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("SetupHost", "", "", method_setup_host,
		      SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("RestoreHost", "", "", method_restore_host,
		      SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_SIGNAL_WITH_ARGS("UnitEnrolled", SD_BUS_ARGS("s", name, "o", path), 0),
	SD_BUS_SIGNAL_WITH_ARGS("UnitReleased", SD_BUS_ARGS("s", name, "o", path), 0),
	SD_BUS_VTABLE_END
};
