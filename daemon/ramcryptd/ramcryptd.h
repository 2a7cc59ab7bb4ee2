/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ramcryptd.h - the daemon's state: config, roles, enrolled units.
 */
#ifndef RAMCRYPTD_H
#define RAMCRYPTD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "rc-cpuset.h"
#include "rc-marker.h"
#include "rc-topology.h"

#define RC_VERSION "0.1"
#define RC_BUS_NAME "org.ramcrypt.RamCrypt1"
#define RC_MANAGER_PATH "/org/ramcrypt/RamCrypt1"
#define RC_UNIT_PREFIX "/org/ramcrypt/RamCrypt1/unit"
#define RC_MANAGER_IFACE "org.ramcrypt.RamCrypt1.Manager"
#define RC_UNIT_IFACE "org.ramcrypt.RamCrypt1.Unit"
#define RC_ERROR_NO_SUCH_UNIT "org.ramcrypt.RamCrypt1.NoSuchUnit"
#define RC_ERROR_ENROLL_REFUSED "org.ramcrypt.RamCrypt1.EnrollRefused"
#define RC_ERROR_BAD_CONFIG "org.ramcrypt.RamCrypt1.BadConfig"
#define RC_ERROR_HOST "org.ramcrypt.RamCrypt1.HostSetupFailed"
#define RC_DEFAULT_CONFIG "/etc/ramcrypt/ramcryptd.json"
#define RC_DEFAULT_STATE_DIR "/run/ramcrypt"
/* the XML namespace of the libvirt domain marker (<metadata>) */
#define RC_LIBVIRT_NS "urn:ramcrypt-host:libvirt:1"
/* the per-user directories of session libvirt domains (on ramcryptfs) */
#define RC_SESSION_DIR "/run/ramcryptfs/session"

/* systemd's log levels as <N> prefixes on stderr (journald parses them). */
#define log_full(lvl, fmt, ...) fprintf(stderr, "<%d>" fmt "\n", lvl, ##__VA_ARGS__)
#define log_err(fmt, ...) log_full(3, fmt, ##__VA_ARGS__)
#define log_warning(fmt, ...) log_full(4, fmt, ##__VA_ARGS__)
#define log_notice(fmt, ...) log_full(5, fmt, ##__VA_ARGS__)
#define log_info(fmt, ...) log_full(6, fmt, ##__VA_ARGS__)
#define log_debug(fmt, ...) \
	do { if (rc_debug) log_full(7, fmt, ##__VA_ARGS__); } while (0)
extern bool rc_debug;

struct rc_config {
	bool roles_auto;
	struct rc_cpuset housekeeping, crypto, vm;
	uint32_t window_pages;
	uint32_t max_plaintext_age_ms;
	uint32_t evict_ahead_pages;
	bool unprotected_warn;
	uint64_t anonymous_ram_threshold;
	uint32_t verify_interval_ms;
	uint32_t verify_grace_ms;
	enum rc_confinement cache_confinement;
	/* session libvirt domains (qemu:///session): the loosest values a
	 * user's marker may ask for; 0 = window_pages, max_plaintext_age_ms */
	uint32_t session_max_window_pages;
	uint32_t session_max_plaintext_age_ms;
};

void config_defaults(struct rc_config *c);
/* 0, or -errno with a one-line message in err ("<path>: key 'x': ..."). A
 * missing file is an error only if must_exist. */
int config_load(const char *path, bool must_exist, struct rc_config *c,
		char *err, size_t errlen);
/* "64M", "4096" (pages), or a JSON integer (pages) -> pages. */
int parse_size_pages(const char *s, uint32_t *ret);
int parse_size_bytes(const char *s, uint64_t *ret);

enum unit_state {
	UNIT_ENROLLING,
	UNIT_PROTECTED,
	UNIT_UNPROTECTED,
	UNIT_RELEASED,
	UNIT_FAILED,
};
const char *unit_state_to_string(enum unit_state s);

struct manager;

enum unit_kind {
	UNIT_KIND_SERVICE,	/* a systemd service marked [X-RamCrypt] */
	UNIT_KIND_LIBVIRT,	/* a libvirt domain marked in its metadata */
};

struct unit {
	struct manager *m;
	struct unit *next;
	enum unit_kind kind;
	char *name;		/* the unit; a domain's machine scope */
	char *path;		/* our object path */
	char *sd_path;		/* systemd's object path of the unit */
	char *cgroup;
	uint64_t cgroup_id;
	uint32_t main_pid;
	enum unit_state state;
	char *reason;
	struct rc_cpuset cpus;
	int crypto_cpu;
	uint32_t window_pages;
	uint32_t max_plaintext_age_ms;
	uint32_t evict_ahead_pages;
	enum rc_confinement confinement;
	uint64_t anonymous_bytes;
	bool argv_unknown;	/* ExecStart= was a wrapper: decide after start */
	uint64_t main_seen_usec;	/* when MainPID was first non-zero */
	bool stop_requested;
	sd_bus_slot *match_slot;
	/* UNIT_KIND_LIBVIRT */
	char *machine;		/* libvirt's machine name, "qemu-1-vm" */
	char *domain;
	char *uuid;
	char *memory_dir;	/* on ramcryptfs, with the region policy */
	uint64_t memory_dir_dev, memory_dir_ino;	/* the one it was set on */
	bool session;		/* of a session libvirt (qemu:///session) */
	uid_t session_uid;	/* whose */
};

struct host_saved;

struct manager {
	sd_event *event;
	sd_bus *bus;
	char *root;
	char *config_path;
	bool config_explicit;
	char *state_dir;
	struct rc_config cfg;
	struct rc_topology *topo;

	bool roles_applied;
	struct rc_roles roles;
	struct rc_cpuset irqs_not_moved;	/* IRQ numbers that refused */

	struct unit *units;
	sd_event_source *verify_timer;

	/* last values seen, to emit PropertiesChanged */
	bool last_key_loaded;
	struct rc_cpuset last_holders, last_valid;
	uint64_t last_regions;
};

/* bus-manager.c */
extern const sd_bus_vtable manager_vtable[];
int check_root(sd_bus_message *msg, const char *what, sd_bus_error *error);
int bus_caller_euid(sd_bus_message *msg, const char *what, uid_t *ret,
		    sd_bus_error *error);
void manager_emit(struct manager *m, const char *prop, ...);

/* bus-unit.c */
extern const sd_bus_vtable unit_vtable[];
int unit_object_find(sd_bus *bus, const char *path, const char *interface,
		     void *userdata, void **found, sd_bus_error *error);
int unit_node_enumerator(sd_bus *bus, const char *path, void *userdata,
			 char ***nodes, sd_bus_error *error);
struct unit *manager_find_unit(struct manager *m, const char *name);
void unit_set_state(struct unit *u, enum unit_state s, const char *reason);

/* enroll.c */
int unit_enroll(struct manager *m, const char *name, struct unit **ret,
		sd_bus_error *error);
int unit_release(struct manager *m, struct unit *u, sd_bus_error *error);
void unit_free(struct unit *u);
struct unit *unit_new(struct manager *m, const char *name,
		      const char *sd_path, const char *cgroup);
void unit_link(struct manager *m, struct unit *u);
void unit_unlink(struct manager *m, struct unit *u);
int unit_verify(struct unit *u);
void unit_set_anonymous_bytes(struct unit *u, uint64_t bytes);
/* unprotected_action=stop: stop the unit (@what: "unit", "domain"), once */
void unit_stop_unprotected(struct unit *u, const char *what);
void manager_verify_all(struct manager *m);
int manager_rediscover(struct manager *m);
void manager_taken_cpus(struct manager *m, struct rc_cpuset *ret);
char *policy_name_escape(const char *unit);
char *policy_name_unescape(const char *item);

/* libvirt.c */
/* Who runs the hook: the system libvirtd (root), or a user's session
 * libvirtd, with the text of that user's qemu.conf as the hook read it
 * (ramcryptd never opens files in a home directory). */
struct lv_caller {
	bool session;
	uid_t uid;
	const char *qemu_conf;		/* session: its path, for messages */
	const char *qemu_conf_text;	/* session: its content ("" if none) */
};
int libvirt_hook(struct manager *m, const struct lv_caller *c,
		 const char *domain, const char *op, const char *subop,
		 const char *xml, sd_bus_error *error);
int libvirt_rediscover(struct manager *m);
int libvirt_unit_verify(struct unit *u, uint64_t *bytes, char *why,
			size_t len);
/* The running QEMU of a started domain, checked as services are */
int libvirt_unit_check_running(struct unit *u);
void libvirt_unit_stats(const struct unit *u, uint32_t *regions,
			uint64_t *bytes, uint64_t *plaintext, uint64_t *faults,
			uint64_t *evictions, uint64_t *oldest);
int libvirt_ram_dir(const char *root, char **ret, char *err, size_t errlen);
char *libvirt_machine_name(int id, const char *user, const char *name);

/* host.c */
int host_setup(struct manager *m, sd_bus_error *error);
int host_restore(struct manager *m, sd_bus_error *error);
int host_load_state(struct manager *m);
void cache_confinement(struct manager *m, const char **state, char *reason,
		       size_t len);

/* systemd1.c: calls to org.freedesktop.systemd1 (synchronous). */
struct sd_unit_info {
	char *sd_path;
	char *fragment;
	char **dropins;
	char *cgroup;
	char **exec_argv;	/* first ExecStart= argv, NULL-terminated */
	size_t n_exec;		/* number of ExecStart= commands */
	char ***exec_all;	/* every ExecStart= argv */
	uint32_t main_pid;
	struct rc_cpuset allowed_cpus;
	bool allowed_cpus_set;
};
void sd_unit_info_free(struct sd_unit_info *i);
int sd1_get_unit_path(sd_bus *bus, const char *name, bool load, char **ret,
		      sd_bus_error *error);
int sd1_read_unit(sd_bus *bus, const char *name, bool load,
		  struct sd_unit_info *ret, sd_bus_error *error);
int sd1_main_pid(sd_bus *bus, const char *sd_path, uint32_t *ret);
int sd1_active_state(sd_bus *bus, const char *sd_path, char **ret);
int sd1_set_allowed_cpus(sd_bus *bus, const char *name,
			 const struct rc_cpuset *cpus, sd_bus_error *error);
int sd1_stop_unit(sd_bus *bus, const char *name, sd_bus_error *error);

/* util */
char *cpuset_str(const struct rc_cpuset *s);	/* never NULL (aborts on OOM) */
int append_cpuset(sd_bus_message *reply, const struct rc_cpuset *s);
int mkdir_p(const char *path, mode_t mode);

#endif /* RAMCRYPTD_H */
