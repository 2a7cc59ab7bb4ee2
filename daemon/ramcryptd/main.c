// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ramcryptd - the RamCrypt D-Bus daemon (org.ramcrypt.RamCrypt1).
 *
 * sd-event loop, sd-bus on the system bus ($DBUS_SYSTEM_BUS_ADDRESS for
 * tests), Manager and Unit objects, enrollment of [X-RamCrypt] units, host
 * roles. See daemon/README.md (the API) and ramcryptd(8).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "rc-kernel.h"
#include "ramcryptd.h"

static void help(void)
{
	printf("ramcryptd [OPTIONS...]\n\n"
	       "The RamCrypt daemon: enrolls [X-RamCrypt] RamCrypt=yes units, keeps\n"
	       "the host's CPU roles, and answers on org.ramcrypt.RamCrypt1.\n\n"
	       "  -h --help              Show this help\n"
	       "     --version           Show the package version\n"
	       "     --config=PATH       Configuration file (default %s)\n"
	       "     --root=DIR          Prefix of every kernel file (default $RAMCRYPTD_ROOT or /)\n"
	       "     --state-dir=DIR     Where host changes are recorded (default %s)\n"
	       "     --check-config      Parse the configuration, print it and exit\n"
	       "     --debug             Log at debug level\n",
	       RC_DEFAULT_CONFIG, RC_DEFAULT_STATE_DIR);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si,
		     void *userdata)
{
	(void)si; (void)userdata;
	return sd_event_exit(sd_event_source_get_event(s), 0);
}

static void poll_changes(struct manager *m)
{
	struct rc_tresor_status ts;
	struct rc_ramcrypt_totals t;

	memset(&ts, 0, sizeof(ts));
	if (rc_tresor_read_status(m->root, &ts) < 0)
		memset(&ts, 0, sizeof(ts));
	if (ts.key_loaded != m->last_key_loaded ||
	    !rc_cpuset_equal(&ts.holders, &m->last_holders) ||
	    !rc_cpuset_equal(&ts.valid_holders, &m->last_valid)) {
		m->last_key_loaded = ts.key_loaded;
		m->last_holders = ts.holders;
		m->last_valid = ts.valid_holders;
		(void)sd_bus_emit_properties_changed(m->bus, RC_MANAGER_PATH,
			RC_MANAGER_IFACE, "KeyLoaded", "KeyHolders",
			"ValidKeyHolders", NULL);
	}
	memset(&t, 0, sizeof(t));
	if (rc_ramcrypt_read_totals(m->root, &t) < 0)
		memset(&t, 0, sizeof(t));
	if (t.regions != m->last_regions) {
		m->last_regions = t.regions;
		(void)sd_bus_emit_properties_changed(m->bus, RC_MANAGER_PATH,
			RC_MANAGER_IFACE, "Regions", NULL);
	}
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct manager *m = userdata;

	(void)usec;
	poll_changes(m);
	manager_verify_all(m);
	(void)sd_event_source_set_time_relative(s,
		(uint64_t)m->cfg.verify_interval_ms * 1000);
	return 0;
}

static int print_config(const struct manager *m)
{
	char *h = cpuset_str(&m->cfg.housekeeping), *c = cpuset_str(&m->cfg.crypto),
	     *v = cpuset_str(&m->cfg.vm);

	printf("config: %s\n", m->config_path);
	if (m->cfg.roles_auto)
		printf("roles: auto\n");
	else
		printf("roles: housekeeping %s, crypto %s, vm %s\n", h, c, v);
	printf("window_pages: %u\nmax_plaintext_age_ms: %u\nevict_ahead_pages: %u\n"
	       "unprotected_action: %s\nanonymous_ram_threshold: %llu\n"
	       "verify_interval_ms: %u\ncache_confinement: %s\n",
	       m->cfg.window_pages, m->cfg.max_plaintext_age_ms,
	       m->cfg.evict_ahead_pages, m->cfg.unprotected_warn ? "warn" : "stop",
	       (unsigned long long)m->cfg.anonymous_ram_threshold,
	       m->cfg.verify_interval_ms,
	       m->cfg.cache_confinement == RC_CONFINE_AUTO ? "auto" :
	       m->cfg.cache_confinement == RC_CONFINE_REQUIRED ? "required" : "off");
	free(h);
	free(c);
	free(v);
	return 0;
}

int main(int argc, char **argv)
{
	enum { ARG_VERSION = 0x100, ARG_CONFIG, ARG_ROOT, ARG_STATE, ARG_CHECK,
	       ARG_DEBUG };
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, ARG_VERSION },
		{ "config", required_argument, NULL, ARG_CONFIG },
		{ "root", required_argument, NULL, ARG_ROOT },
		{ "state-dir", required_argument, NULL, ARG_STATE },
		{ "check-config", no_argument, NULL, ARG_CHECK },
		{ "debug", no_argument, NULL, ARG_DEBUG },
		{}
	};
	struct manager m;
	char err[1024];
	bool check_only = false;
	const char *env;
	sigset_t ss;
	int c, r;

	memset(&m, 0, sizeof(m));
	m.config_path = RC_DEFAULT_CONFIG;
	m.state_dir = RC_DEFAULT_STATE_DIR;
	env = getenv("RAMCRYPTD_ROOT");
	m.root = (char *)(env ? env : "");
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
		switch (c) {
		case 'h':
			help();
			return 0;
		case ARG_VERSION:
			printf("ramcryptd %s\n", RC_VERSION);
			return 0;
		case ARG_CONFIG:
			m.config_path = optarg;
			m.config_explicit = true;
			break;
		case ARG_ROOT:
			m.root = optarg;
			break;
		case ARG_STATE:
			m.state_dir = optarg;
			break;
		case ARG_CHECK:
			check_only = true;
			break;
		case ARG_DEBUG:
			rc_debug = true;
			break;
		default:
			if (optopt && optopt < 0x100)
				fprintf(stderr, "ramcryptd: invalid option -- '%c'\n", optopt);
			else
				fprintf(stderr, "ramcryptd: unrecognized option '%s'\n",
					argv[optind - 1]);
			fprintf(stderr, "Try 'ramcryptd --help' for more information.\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ramcryptd: takes no arguments ('%s').\n"
			"Try 'ramcryptd --help' for more information.\n", argv[optind]);
		return 2;
	}
	if (strcmp(m.root, "/") == 0)
		m.root = "";

	r = config_load(m.config_path, m.config_explicit, &m.cfg, err, sizeof(err));
	if (r < 0) {
		log_err("%s", err);
		return 1;
	}
	if (check_only)
		return print_config(&m);

	m.topo = calloc(1, sizeof(*m.topo));
	if (!m.topo)
		return 1;
	r = rc_topology_read(m.root, m.topo);
	if (r < 0)
		log_warning("Cannot read the CPU topology under %s/sys/devices/system/cpu: %s",
			    m.root, strerror(-r));
	(void)host_load_state(&m);

	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	r = sd_event_default(&m.event);
	if (r < 0)
		goto fail;
	(void)sd_event_add_signal(m.event, NULL, SIGTERM, on_signal, NULL);
	(void)sd_event_add_signal(m.event, NULL, SIGINT, on_signal, NULL);

	r = sd_bus_open_system(&m.bus);
	if (r < 0) {
		log_err("Cannot connect to the system bus: %s", strerror(-r));
		goto fail;
	}
	r = sd_bus_add_object_vtable(m.bus, NULL, RC_MANAGER_PATH, RC_MANAGER_IFACE,
				     manager_vtable, &m);
	if (r < 0)
		goto fail;
	r = sd_bus_add_fallback_vtable(m.bus, NULL, RC_UNIT_PREFIX, RC_UNIT_IFACE,
				       unit_vtable, unit_object_find, &m);
	if (r < 0)
		goto fail;
	r = sd_bus_add_node_enumerator(m.bus, NULL, RC_UNIT_PREFIX,
				       unit_node_enumerator, &m);
	if (r < 0)
		goto fail;
	r = sd_bus_attach_event(m.bus, m.event, 0);
	if (r < 0)
		goto fail;

	/* systemd sends its units' PropertiesChanged only while someone is
	 * subscribed (as machined does); the timer covers a refusal. */
	r = sd_bus_call_method_async(m.bus, NULL, "org.freedesktop.systemd1",
				     "/org/freedesktop/systemd1",
				     "org.freedesktop.systemd1.Manager",
				     "Subscribe", NULL, NULL, NULL);
	if (r < 0)
		log_warning("Cannot subscribe to systemd's signals: %s", strerror(-r));
	(void)manager_rediscover(&m);
	(void)libvirt_rediscover(&m);
	poll_changes(&m);

	r = sd_bus_request_name(m.bus, RC_BUS_NAME, 0);
	if (r < 0) {
		log_err("Cannot own the bus name %s: %s", RC_BUS_NAME, strerror(-r));
		goto fail;
	}
	r = sd_event_add_time_relative(m.event, &m.verify_timer, CLOCK_MONOTONIC,
				       (uint64_t)m.cfg.verify_interval_ms * 1000,
				       0, on_timer, &m);
	if (r < 0)
		goto fail;
	(void)sd_event_source_set_enabled(m.verify_timer, SD_EVENT_ON);

	(void)sd_notify(0, "READY=1\nSTATUS=Processing requests...");
	log_info("ramcryptd %s running on %s (root %s).", RC_VERSION, RC_BUS_NAME,
		 *m.root ? m.root : "/");
	r = sd_event_loop(m.event);
	(void)sd_notify(0, "STOPPING=1");
	/* Enrolled units keep their policies and CPUs: a restart rediscovers
	 * them. */
	while (m.units) {
		struct unit *u = m.units;

		m.units = u->next;
		unit_free(u);
	}
	sd_event_source_unref(m.verify_timer);
	sd_bus_flush_close_unref(m.bus);
	sd_event_unref(m.event);
	free(m.topo);
	return r < 0 ? 1 : 0;
fail:
	if (r < 0)
		log_err("Failed to start: %s", strerror(-r));
	sd_bus_flush_close_unref(m.bus);
	sd_event_unref(m.event);
	free(m.topo);
	return 1;
}
