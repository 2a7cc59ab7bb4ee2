// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ramcryptctl - control and query ramcryptd over D-Bus (never the kernel).
 *
 * Exit codes: 0 success, 1 failure (refused, failed, or a host check
 * failed), 2 usage, 3 ramcryptd not reachable, 4 unit not enrolled.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcntl.h>
#include <pwd.h>

#include <json-c/json.h>
#include <systemd/sd-bus.h>

#define VERSION "0.1"
#define BUS_NAME "org.ramcrypt.RamCrypt1"
#define MANAGER_PATH "/org/ramcrypt/RamCrypt1"
#define MANAGER_IFACE "org.ramcrypt.RamCrypt1.Manager"
#define UNIT_IFACE "org.ramcrypt.RamCrypt1.Unit"
/* ramcryptd.h's RC_LIBVIRT_NS: a domain XML without it is not marked */
#define LIBVIRT_NS "urn:ramcrypt-host:libvirt:1"
#define LIBVIRT_XML_MAX (4U << 20)
#define QEMU_CONF_MAX (1U << 20)

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_NOBUS = 3,
       EXIT_NOUNIT = 4 };

static bool arg_json;
static const char *arg_size = "1G";
static const char *arg_name = "ramcrypt0";

static void help(void)
{
	printf("ramcryptctl [OPTIONS...] COMMAND ...\n\n"
	       "Query and control ramcryptd, the RamCrypt daemon.\n\n"
	       "Commands:\n"
	       "  status                 Show the key, CPU roles and totals\n"
	       "  units                  List enrolled units\n"
	       "  unit NAME              Show one enrolled unit\n"
	       "  enroll NAME            Enroll a unit (from its ExecStartPre=+)\n"
	       "  release NAME           Release a unit (from its ExecStopPost=+)\n"
	       "  flush                  Re-encrypt every region's plaintext now\n"
	       "  reload                 Re-read /etc/ramcrypt/ramcryptd.json\n"
	       "  check                  Run the host checks (exit 1 if one fails)\n"
	       "  qemu-args              Print the QEMU arguments of a protected guest\n"
	       "  setup-host             Apply the CPU roles (ramcrypt-host.service)\n"
	       "  restore-host           Undo them\n"
	       "  libvirt-hook DOMAIN OP SUBOP EXTRA\n"
	       "                         libvirt's qemu hook (domain XML on stdin)\n\n"
	       "Options:\n"
	       "  -h --help              Show this help\n"
	       "     --version           Show the package version\n"
	       "     --json              Print JSON instead of tables\n"
	       "     --size=N            qemu-args: guest RAM (default 1G; M/G, whole MiB)\n"
	       "     --name=ID           qemu-args: memory backend id (default ramcrypt0)\n\n"
	       "Exit status: 0 success, 1 failure or a failed check, 2 usage,\n"
	       "3 ramcryptd not reachable, 4 unit not enrolled.\n");
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "ramcryptctl: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'ramcryptctl --help' for more information.\n");
	return EXIT_USAGE;
}

static int bus_error_exit(const sd_bus_error *e, int r)
{
	if (e && e->name) {
		if (strcmp(e->name, "org.ramcrypt.RamCrypt1.NoSuchUnit") == 0)
			return EXIT_NOUNIT;
		if (strcmp(e->name, SD_BUS_ERROR_SERVICE_UNKNOWN) == 0 ||
		    strcmp(e->name, SD_BUS_ERROR_NAME_HAS_NO_OWNER) == 0 ||
		    strcmp(e->name, SD_BUS_ERROR_NO_REPLY) == 0 ||
		    strcmp(e->name, SD_BUS_ERROR_TIMEOUT) == 0)
			return EXIT_NOBUS;
	}
	return r == -ENOENT || r == -ECONNREFUSED ? EXIT_NOBUS : EXIT_FAIL;
}

static const char *err_msg(const sd_bus_error *e, int r)
{
	return e && e->message ? e->message : strerror(-r);
}

/* ---- D-Bus message -> JSON (every type ramcryptd sends) ---- */

static int to_json(sd_bus_message *m, json_object **ret);

static int container_to_json(sd_bus_message *m, char type, const char *contents,
			     json_object **ret)
{
	json_object *o;
	int r;

	r = sd_bus_message_enter_container(m, type, contents);
	if (r < 0)
		return r;
	if (type == 'v') {
		r = to_json(m, &o);
		if (r < 0)
			return r;
	} else if (type == 'a' && contents[0] == '{') {
		char entry[64];
		size_t l = strlen(contents);

		if (l < 2 || l - 2 >= sizeof(entry))
			return -EINVAL;
		memcpy(entry, contents + 1, l - 2);
		entry[l - 2] = 0;
		o = json_object_new_object();
		while ((r = sd_bus_message_enter_container(m, 'e', entry)) > 0) {
			const char *k;
			json_object *v;

			r = sd_bus_message_read_basic(m, 's', &k);
			if (r < 0)
				return r;
			{
				char *key = strdup(k);

				if (!key)
					return -ENOMEM;
				r = to_json(m, &v);
				if (r < 0) {
					free(key);
					return r;
				}
				json_object_object_add(o, key, v);
				free(key);
			}
			r = sd_bus_message_exit_container(m);
			if (r < 0)
				return r;
		}
		if (r < 0)
			return r;
	} else {
		o = json_object_new_array();
		for (;;) {
			json_object *v;

			r = sd_bus_message_peek_type(m, NULL, NULL);
			if (r < 0)
				return r;
			if (r == 0)
				break;
			r = to_json(m, &v);
			if (r < 0)
				return r;
			json_object_array_add(o, v);
		}
	}
	r = sd_bus_message_exit_container(m);
	if (r < 0)
		return r;
	*ret = o;
	return 0;
}

static int to_json(sd_bus_message *m, json_object **ret)
{
	const char *contents;
	char type;
	union {
		uint8_t y; int b; int16_t n; uint16_t q; int32_t i;
		uint32_t u; int64_t x; uint64_t t; double d; const char *s;
	} v;
	int r;

	r = sd_bus_message_peek_type(m, &type, &contents);
	if (r < 0)
		return r;
	if (r == 0)
		return -ENXIO;
	if (type == 'a' || type == 'r' || type == 'v' || type == 'e')
		return container_to_json(m, type, contents, ret);
	r = sd_bus_message_read_basic(m, type, &v);
	if (r < 0)
		return r;
	switch (type) {
	case 'y': *ret = json_object_new_int(v.y); break;
	case 'b': *ret = json_object_new_boolean(v.b); break;
	case 'n': *ret = json_object_new_int(v.n); break;
	case 'q': *ret = json_object_new_int(v.q); break;
	case 'i': *ret = json_object_new_int(v.i); break;
	case 'u': *ret = json_object_new_int64(v.u); break;
	case 'x': *ret = json_object_new_int64(v.x); break;
	case 't': *ret = json_object_new_uint64(v.t); break;
	case 'd': *ret = json_object_new_double(v.d); break;
	default: *ret = json_object_new_string(v.s); break;
	}
	return 0;
}

/* ---- human output ---- */

static char *cpus_str(json_object *a)
{
	size_t n = json_object_array_length(a), off = 0;
	char *buf = malloc(n * 24 + 2);

	if (!buf)
		abort();
	buf[0] = 0;
	for (size_t i = 0; i < n; ) {
		int64_t s = json_object_get_int64(json_object_array_get_idx(a, i)), e = s;
		size_t j = i + 1;

		while (j < n && json_object_get_int64(json_object_array_get_idx(a, j)) == e + 1)
			e++, j++;
		off += sprintf(buf + off, "%s%" PRId64, off ? "," : "", s);
		if (e > s)
			off += sprintf(buf + off, "-%" PRId64, e);
		i = j;
	}
	if (!off)
		strcpy(buf, "(none)");
	return buf;
}

static void print_value(const char *key, json_object *v)
{
	if (json_object_is_type(v, json_type_array) &&
	    (strstr(key, "CPUs") || strcmp(key, "KeyHolders") == 0 ||
	     strcmp(key, "ValidKeyHolders") == 0 || strcmp(key, "IRQsNotMoved") == 0)) {
		char *s = cpus_str(v);

		printf("%s", s);
		free(s);
	} else if (json_object_is_type(v, json_type_boolean)) {
		printf("%s", json_object_get_boolean(v) ? "yes" : "no");
	} else if (json_object_is_type(v, json_type_string)) {
		const char *s = json_object_get_string(v);

		printf("%s", *s ? s : "-");
	} else {
		printf("%s", json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
	}
}

static void print_props(json_object *o, const char *const *skip)
{
	json_object_object_foreach(o, key, val) {
		bool s = false;

		for (size_t i = 0; skip && skip[i]; i++)
			s = s || strcmp(skip[i], key) == 0;
		if (s)
			continue;
		printf("%24s: ", key);
		print_value(key, val);
		printf("\n");
	}
}

static void print_json(json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
						      JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* ---- calls ---- */

static int get_all(sd_bus *bus, const char *path, const char *iface,
		   json_object **ret, sd_bus_error *e)
{
	sd_bus_message *reply = NULL;
	int r;

	r = sd_bus_call_method(bus, BUS_NAME, path, "org.freedesktop.DBus.Properties",
			       "GetAll", e, &reply, "s", iface);
	if (r < 0)
		return r;
	r = to_json(reply, ret);
	sd_bus_message_unref(reply);
	return r;
}

static int cmd_status(sd_bus *bus)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	json_object *o;
	static const char *const skip[] = { "HostChecks", NULL };
	int r;

	r = get_all(bus, MANAGER_PATH, MANAGER_IFACE, &o, &e);
	if (r < 0) {
		fprintf(stderr, "Failed to query ramcryptd: %s\n", err_msg(&e, r));
		r = bus_error_exit(&e, r);
		sd_bus_error_free(&e);
		return r;
	}
	if (arg_json) {
		print_json(o);
	} else {
		json_object *hc;
		size_t bad = 0, n = 0;

		print_props(o, skip);
		if (json_object_object_get_ex(o, "HostChecks", &hc)) {
			n = json_object_array_length(hc);
			for (size_t i = 0; i < n; i++)
				if (!json_object_get_boolean(json_object_array_get_idx(
					json_object_array_get_idx(hc, i), 1)))
					bad++;
		}
		printf("%24s: %zu of %zu pass%s\n", "HostChecks", n - bad, n,
		       bad ? " (see 'ramcryptctl check')" : "");
	}
	json_object_put(o);
	return EXIT_OK;
}

static int cmd_units(sd_bus *bus)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	json_object *list, *out;
	int r;

	r = sd_bus_call_method(bus, BUS_NAME, MANAGER_PATH, MANAGER_IFACE,
			       "ListUnits", &e, &reply, NULL);
	if (r < 0) {
		fprintf(stderr, "Failed to list units: %s\n", err_msg(&e, r));
		r = bus_error_exit(&e, r);
		sd_bus_error_free(&e);
		return r;
	}
	r = to_json(reply, &list);
	sd_bus_message_unref(reply);
	if (r < 0) {
		fprintf(stderr, "Failed to parse the reply: %s\n", strerror(-r));
		return EXIT_FAIL;
	}
	out = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		json_object *t = json_object_array_get_idx(list, i), *u;
		const char *path = json_object_get_string(json_object_array_get_idx(t, 2));

		r = get_all(bus, path, UNIT_IFACE, &u, &e);
		if (r < 0) {	/* released meanwhile */
			sd_bus_error_free(&e);
			continue;
		}
		json_object_object_add(u, "Path", json_object_new_string(path));
		json_object_array_add(out, u);
	}
	json_object_put(list);
	if (arg_json) {
		print_json(out);
	} else {
		size_t n = json_object_array_length(out);

		printf("%-32s %-12s %-10s %-6s %-8s %-7s %-9s\n", "UNIT", "STATE",
		       "CPUS", "CRYPTO", "WINDOW", "REGIONS", "PLAINTEXT");
		for (size_t i = 0; i < n; i++) {
			json_object *u = json_object_array_get_idx(out, i), *v;
			char *cpus;

			json_object_object_get_ex(u, "CPUs", &v);
			cpus = cpus_str(v);
#define G(k) (json_object_object_get_ex(u, k, &v) ? json_object_get_string(v) : "?")
			printf("%-32s %-12s %-10s %-6s %-8s %-7s %-9s\n", G("Unit"),
			       G("State"), cpus, G("CryptoCPU"), G("WindowPages"),
			       G("Regions"), G("PlaintextPages"));
#undef G
			free(cpus);
		}
		printf("\n%zu unit%s enrolled.\n", n, n == 1 ? "" : "s");
	}
	json_object_put(out);
	return EXIT_OK;
}

static int cmd_unit(sd_bus *bus, const char *name)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	const char *path;
	json_object *o;
	int r;

	r = sd_bus_call_method(bus, BUS_NAME, MANAGER_PATH, MANAGER_IFACE,
			       "GetUnit", &e, &reply, "s", name);
	if (r < 0) {
		fprintf(stderr, "%s\n", err_msg(&e, r));
		r = bus_error_exit(&e, r);
		sd_bus_error_free(&e);
		return r;
	}
	r = sd_bus_message_read(reply, "o", &path);
	if (r >= 0)
		r = get_all(bus, path, UNIT_IFACE, &o, &e);
	if (r < 0) {
		fprintf(stderr, "Failed to query %s: %s\n", name, err_msg(&e, r));
		sd_bus_message_unref(reply);
		r = bus_error_exit(&e, r);
		sd_bus_error_free(&e);
		return r;
	}
	json_object_object_add(o, "Path", json_object_new_string(path));
	sd_bus_message_unref(reply);
	if (arg_json)
		print_json(o);
	else
		print_props(o, NULL);
	json_object_put(o);
	return EXIT_OK;
}

static int simple_call(sd_bus *bus, const char *method, const char *arg,
		       const char *what)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	int r;

	if (arg)
		r = sd_bus_call_method(bus, BUS_NAME, MANAGER_PATH, MANAGER_IFACE,
				       method, &e, &reply, "s", arg);
	else
		r = sd_bus_call_method(bus, BUS_NAME, MANAGER_PATH, MANAGER_IFACE,
				       method, &e, &reply, NULL);
	if (r < 0) {
		fprintf(stderr, "Failed to %s%s%s: %s\n", what, arg ? " " : "",
			arg ? arg : "", err_msg(&e, r));
		r = bus_error_exit(&e, r);
		sd_bus_error_free(&e);
		return r;
	}
	if (strcmp(method, "EnrollUnit") == 0) {
		const char *path;

		if (sd_bus_message_read(reply, "o", &path) >= 0) {
			if (arg_json) {
				json_object *o = json_object_new_object();

				json_object_object_add(o, "Unit", json_object_new_string(arg));
				json_object_object_add(o, "Path", json_object_new_string(path));
				print_json(o);
				json_object_put(o);
			} else {
				printf("Enrolled %s (%s).\n", arg, path);
			}
		}
	} else if (arg_json) {
		printf("{}\n");
	}
	sd_bus_message_unref(reply);
	return EXIT_OK;
}

/* The unit's State before its release: a unit that ran (or was about to
 * run) unprotected makes "release" fail, so its ExecStopPost= leaves the
 * unit failed in systemd with the reason in its journal, not inactive as if
 * nothing had happened. The release itself is done either way. */
static int cmd_release(sd_bus *bus, const char *name)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	char *state = NULL, *reason = NULL;
	const char *path;
	int r;

	r = sd_bus_call_method(bus, BUS_NAME, MANAGER_PATH, MANAGER_IFACE,
			       "GetUnit", &e, &reply, "s", name);
	if (r >= 0 && sd_bus_message_read(reply, "o", &path) >= 0) {
		(void)sd_bus_get_property_string(bus, BUS_NAME, path, UNIT_IFACE,
						 "State", NULL, &state);
		(void)sd_bus_get_property_string(bus, BUS_NAME, path, UNIT_IFACE,
						 "StateReason", NULL, &reason);
	}
	sd_bus_message_unref(reply);
	sd_bus_error_free(&e);
	r = simple_call(bus, "ReleaseUnit", name, "release");
	if (r == EXIT_OK && state && strcmp(state, "unprotected") == 0) {
		fprintf(stderr, "%s ran UNPROTECTED: %s\n", name,
			reason && *reason ? reason : "no reason given");
		r = EXIT_FAIL;
	}
	free(state);
	free(reason);
	return r;
}

static int cmd_check(sd_bus *bus)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	json_object *a, *out;
	size_t n, bad = 0;
	int r;

	r = sd_bus_get_property(bus, BUS_NAME, MANAGER_PATH, MANAGER_IFACE,
				"HostChecks", &e, &reply, "a(sbs)");
	if (r < 0) {
		fprintf(stderr, "Failed to run the host checks: %s\n", err_msg(&e, r));
		r = bus_error_exit(&e, r);
		sd_bus_error_free(&e);
		return r;
	}
	r = to_json(reply, &a);
	sd_bus_message_unref(reply);
	if (r < 0)
		return EXIT_FAIL;
	n = json_object_array_length(a);
	out = json_object_new_array();
	if (!arg_json)
		printf("%-22s %-5s %s\n", "CHECK", "OK", "DETAIL");
	for (size_t i = 0; i < n; i++) {
		json_object *t = json_object_array_get_idx(a, i), *o;
		const char *name = json_object_get_string(json_object_array_get_idx(t, 0));
		bool ok = json_object_get_boolean(json_object_array_get_idx(t, 1));
		const char *detail = json_object_get_string(json_object_array_get_idx(t, 2));

		bad += !ok;
		o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(name));
		json_object_object_add(o, "ok", json_object_new_boolean(ok));
		json_object_object_add(o, "detail", json_object_new_string(detail));
		json_object_array_add(out, o);
		if (!arg_json)
			printf("%-22s %-5s %s\n", name, ok ? "yes" : "NO", detail);
	}
	if (arg_json) {
		print_json(out);
	} else {
		char *st = NULL, *why = NULL;

		printf("\n%zu of %zu checks pass.\n", n - bad, n);
		/* informational: CacheConfinement=required units are refused
		 * at enrollment, the host check does not fail for it */
		if (sd_bus_get_property_string(bus, BUS_NAME, MANAGER_PATH,
					       MANAGER_IFACE, "CacheConfinement",
					       NULL, &st) >= 0 &&
		    sd_bus_get_property_string(bus, BUS_NAME, MANAGER_PATH,
					       MANAGER_IFACE, "CacheConfinementReason",
					       NULL, &why) >= 0)
			printf("Cache confinement: %s (%s)\n", st, why);
		free(st);
		free(why);
	}
	json_object_put(out);
	json_object_put(a);
	return bad ? EXIT_FAIL : EXIT_OK;
}

/* Whole MiB with K/M/G/T suffix (or bytes). */
static int parse_mib(const char *s, uint64_t *mib)
{
	char *end;
	unsigned long long v;
	uint64_t b;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -ERANGE;
	switch (*end) {
	case 0: b = v; break;
	case 'K': case 'k': b = v << 10; end++; break;
	case 'M': case 'm': b = v << 20; end++; break;
	case 'G': case 'g': b = v << 30; end++; break;
	case 'T': case 't': b = v << 40; end++; break;
	default: return -EINVAL;
	}
	if (*end == 'i' && end[1] == 'B')
		end += 2;
	else if (*end == 'B')
		end++;
	if (*end || b == 0 || b % (1 << 20) || v > (1ULL << 40))
		return -EINVAL;
	*mib = b >> 20;
	return 0;
}

static int cmd_qemu_args(void)
{
	char mem[64], obj[512], mach[128];
	uint64_t mib;
	const char *adv[] = {
		"drives: every -drive needs cache=none (or -blockdev ...,cache.direct=on): the host page cache would keep guest disk blocks in plaintext",
		"  e.g. -drive file=/var/lib/vm/disk.qcow2,if=virtio,format=qcow2,cache=none,aio=native",
		"video: -vga none -display none (or -nographic): VGA RAM is anonymous host memory",
		"no -mem-prealloc elsewhere, no other -object memory-backend-ram, no -m without memory-backend=",
		NULL
	};
	const char *p;

	if (parse_mib(arg_size, &mib) < 0) {
		fprintf(stderr, "ramcryptctl: --size=%s: not a size in whole MiB (e.g. 512M, 4G).\n"
			"Try 'ramcryptctl --help' for more information.\n", arg_size);
		return EXIT_USAGE;
	}
	for (p = arg_name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
			break;
	if (*p || !*arg_name || !((*arg_name >= 'a' && *arg_name <= 'z') ||
				  (*arg_name >= 'A' && *arg_name <= 'Z'))) {
		fprintf(stderr, "ramcryptctl: --name=%s: a QEMU id starts with a letter and has letters, digits, '-', '_', '.' only.\n"
			"Try 'ramcryptctl --help' for more information.\n", arg_name);
		return EXIT_USAGE;
	}
	snprintf(mem, sizeof(mem), "%" PRIu64 "M", mib);
	snprintf(obj, sizeof(obj),
		 "memory-backend-file,id=%s,size=%s,mem-path=/dev/ramcrypt,share=on",
		 arg_name, mem);
	snprintf(mach, sizeof(mach), "memory-backend=%s", arg_name);
	if (arg_json) {
		json_object *o = json_object_new_object(), *a = json_object_new_array(),
			    *ad = json_object_new_array();
		const char *args[] = { "-m", mem, "-object", obj, "-machine", mach,
				       "-vga", "none", "-display", "none", NULL };

		for (size_t i = 0; args[i]; i++)
			json_object_array_add(a, json_object_new_string(args[i]));
		json_object_object_add(o, "args", a);
		json_object_object_add(o, "drive_options",
				       json_object_new_string("cache=none"));
		json_object_object_add(o, "blockdev_options",
				       json_object_new_string("cache.direct=on"));
		for (size_t i = 0; adv[i]; i++)
			json_object_array_add(ad, json_object_new_string(adv[i]));
		json_object_object_add(o, "advice", ad);
		print_json(o);
		json_object_put(o);
		return EXIT_OK;
	}
	printf("-m %s -object %s -machine %s -vga none -display none\n", mem, obj, mach);
	for (size_t i = 0; adv[i]; i++)
		fprintf(stderr, "# %s\n", adv[i]);
	return EXIT_OK;
}

/*
 * The qemu.conf of this user's session libvirtd, as libvirt finds it
 * ($XDG_CONFIG_HOME/libvirt/qemu.conf, default $HOME/.config; libvirt
 * passes HOME, not XDG_CONFIG_HOME, to hooks) and its text ("" if there
 * is none), read as the user: ramcryptd never opens a user's files.
 */
static int session_qemu_conf(const char *domain, char **ret_path,
			     char **ret_text)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	char *path = NULL, *text = NULL;
	size_t len = 0, l;
	ssize_t n = 0;
	int fd, e = 0;

	if (!home || home[0] != '/') {
		struct passwd *pw = getpwuid(geteuid());

		home = pw ? pw->pw_dir : NULL;
	}
	if (!(xdg && xdg[0] == '/') && !home) {
		fprintf(stderr, "RamCrypt: domain %s is marked for RamCrypt, and the qemu.conf of your session libvirt cannot be found (no HOME).\n",
			domain);
		return -ENOENT;
	}
	l = strlen(xdg && xdg[0] == '/' ? xdg : home) + 32;
	path = malloc(l);
	text = malloc(QEMU_CONF_MAX + 1);
	if (!path || !text) {
		free(path);
		free(text);
		return -ENOMEM;
	}
	if (xdg && xdg[0] == '/')
		snprintf(path, l, "%s/libvirt/qemu.conf", xdg);
	else
		snprintf(path, l, "%s/.config/libvirt/qemu.conf", home);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 && errno != ENOENT)
		e = errno;
	while (fd >= 0 && len < QEMU_CONF_MAX) {
		n = read(fd, text + len, QEMU_CONF_MAX - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			e = errno;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (fd >= 0)
		close(fd);
	if (!e && len >= QEMU_CONF_MAX)
		e = EFBIG;
	if (e) {
		fprintf(stderr, "RamCrypt: domain %s is marked for RamCrypt, and %s cannot be read: %s\n",
			domain, path, strerror(e));
		free(path);
		free(text);
		return -e;
	}
	text[len] = 0;
	*ret_path = path;
	*ret_text = text;
	return 0;
}

/*
 * libvirt's qemu hook: argv DOMAIN OP SUBOP EXTRA, the domain XML on stdin.
 * A domain without the marker's namespace is not ours: exit 0 without
 * touching the bus, so unmarked domains start when ramcryptd is down. A
 * marked one fails closed: exit 1 with one sentence on stderr, which
 * libvirt appends to its "Hook script execution failed" error. Run by a
 * user (a session libvirtd, qemu:///session), it calls
 * LibvirtSessionHook with that user's qemu.conf.
 */
static int cmd_libvirt_hook(char **argv)
{
	const char *domain = argv[0], *op = argv[1], *subop = argv[2];
	sd_bus_error e = SD_BUS_ERROR_NULL;
	bool teardown = strcmp(op, "stopped") == 0 || strcmp(op, "release") == 0;
	bool session = geteuid() != 0;	/* the hook runs as the daemon's user */
	char *conf = NULL, *conf_text = NULL;
	sd_bus *bus = NULL;
	sd_bus_message *call = NULL;
	size_t len = 0, cap = 65536;
	char *xml = malloc(cap);
	ssize_t n;
	int r;

	if (!xml)
		return EXIT_FAIL;
	for (;;) {
		if (len + 1 >= cap) {
			char *x;

			if (cap >= LIBVIRT_XML_MAX) {
				fprintf(stderr, "RamCrypt: the XML of domain %s on stdin is larger than %u bytes.\n",
					domain, LIBVIRT_XML_MAX);
				free(xml);
				return EXIT_FAIL;
			}
			x = realloc(xml, cap * 2);
			if (!x) {
				free(xml);
				return EXIT_FAIL;
			}
			xml = x;
			cap *= 2;
		}
		n = read(STDIN_FILENO, xml + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "RamCrypt: cannot read the XML of domain %s: %m\n",
				domain);
			free(xml);
			return EXIT_FAIL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	xml[len] = 0;
	if (!strstr(xml, LIBVIRT_NS)) {
		free(xml);
		return EXIT_OK;
	}
	if (session && !teardown &&
	    session_qemu_conf(domain, &conf, &conf_text) < 0) {
		free(xml);
		return EXIT_FAIL;
	}
	r = sd_bus_open_system(&bus);
	if (r >= 0)
		r = sd_bus_message_new_method_call(bus, &call, BUS_NAME,
						   MANAGER_PATH, MANAGER_IFACE,
						   session ? "LibvirtSessionHook" :
						   "LibvirtHook");
	if (r >= 0)
		r = sd_bus_message_append(call, "ssss", domain, op, subop, xml);
	if (r >= 0 && session)	/* teardown needs no qemu.conf */
		r = sd_bus_message_append(call, "ss", conf ? conf : "",
					  conf_text ? conf_text : "");
	/* a stop must not wait long for a daemon that hangs */
	if (r >= 0)
		r = sd_bus_call(bus, call, teardown ? 10 * 1000000ULL : 0, &e,
				NULL);
	sd_bus_message_unref(call);
	free(xml);
	free(conf);
	free(conf_text);
	if (r < 0 && !teardown) {
		/* not ramcryptd's answer: unreachable, not activatable (a
		 * masked unit), timed out */
		if (!e.name || strncmp(e.name, BUS_NAME ".", strlen(BUS_NAME) + 1) != 0)
			fprintf(stderr, "RamCrypt: domain %s is marked for RamCrypt, and ramcryptd cannot be reached: %s\n",
				domain, err_msg(&e, r));
		else
			fprintf(stderr, "RamCrypt refuses domain %s: %s\n", domain,
				err_msg(&e, r));
	}
	sd_bus_error_free(&e);
	sd_bus_flush_close_unref(bus);
	return r < 0 && !teardown ? EXIT_FAIL : EXIT_OK;
}

int main(int argc, char **argv)
{
	enum { ARG_VERSION = 0x100, ARG_JSON, ARG_SIZE, ARG_NAME };
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, ARG_VERSION },
		{ "json", no_argument, NULL, ARG_JSON },
		{ "size", required_argument, NULL, ARG_SIZE },
		{ "name", required_argument, NULL, ARG_NAME },
		{}
	};
	static const struct {
		const char *verb;
		int args;	/* exact count after the verb */
	} verbs[] = {
		{ "status", 0 }, { "units", 0 }, { "unit", 1 }, { "enroll", 1 },
		{ "release", 1 }, { "flush", 0 }, { "reload", 0 }, { "check", 0 },
		{ "qemu-args", 0 }, { "setup-host", 0 }, { "restore-host", 0 },
		{ "libvirt-hook", 4 },
	};
	sd_bus *bus = NULL;
	const char *verb, *arg = NULL;
	bool size_set = false, name_set = false;
	int c, r, k;
	size_t i;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
		switch (c) {
		case 'h':
			help();
			return EXIT_OK;
		case ARG_VERSION:
			printf("ramcryptctl %s\n", VERSION);
			return EXIT_OK;
		case ARG_JSON:
			arg_json = true;
			break;
		case ARG_SIZE:
			arg_size = optarg;
			size_set = true;
			break;
		case ARG_NAME:
			arg_name = optarg;
			name_set = true;
			break;
		case ':':
			return usage_error("option '%s' requires an argument", argv[optind - 1]);
		default:
			if (optopt && optopt < 0x100)
				fprintf(stderr, "ramcryptctl: invalid option -- '%c'\n", optopt);
			else
				fprintf(stderr, "ramcryptctl: unrecognized option '%s'\n",
					argv[optind - 1]);
			fprintf(stderr, "Try 'ramcryptctl --help' for more information.\n");
			return EXIT_USAGE;
		}
	}
	if (optind >= argc)
		return usage_error("%s", "a command is needed (status, units, unit, enroll, release, flush, reload, check, qemu-args, setup-host, restore-host, libvirt-hook).");
	verb = argv[optind];
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcmp(verbs[i].verb, verb) == 0)
			break;
	if (i == sizeof(verbs) / sizeof(verbs[0]))
		return usage_error("unknown command '%s'.", verb);
	k = argc - optind - 1;
	if (k != verbs[i].args) {
		fprintf(stderr, "ramcryptctl: '%s' takes %s.\nTry 'ramcryptctl --help' for more information.\n",
			verb, verbs[i].args == 4 ? "four arguments (DOMAIN OP SUBOP EXTRA)" :
			verbs[i].args ? "one unit name" : "no arguments");
		return EXIT_USAGE;
	}
	if (k)
		arg = argv[optind + 1];
	if ((size_set || name_set) && strcmp(verb, "qemu-args"))
		return usage_error("--size and --name are options of qemu-args, not of '%s'.", verb);

	if (strcmp(verb, "qemu-args") == 0)
		return cmd_qemu_args();
	if (strcmp(verb, "libvirt-hook") == 0) {
		if (arg_json)
			return usage_error("%s", "libvirt-hook has no --json output.");
		return cmd_libvirt_hook(argv + optind + 1);
	}

	r = sd_bus_open_system(&bus);
	if (r < 0) {
		fprintf(stderr, "Failed to connect to the system bus: %s\n", strerror(-r));
		return EXIT_NOBUS;
	}
	if (strcmp(verb, "status") == 0)
		r = cmd_status(bus);
	else if (strcmp(verb, "units") == 0)
		r = cmd_units(bus);
	else if (strcmp(verb, "unit") == 0)
		r = cmd_unit(bus, arg);
	else if (strcmp(verb, "enroll") == 0)
		r = simple_call(bus, "EnrollUnit", arg, "enroll");
	else if (strcmp(verb, "release") == 0)
		r = cmd_release(bus, arg);
	else if (strcmp(verb, "flush") == 0)
		r = simple_call(bus, "Flush", NULL, "flush");
	else if (strcmp(verb, "reload") == 0)
		r = simple_call(bus, "Reload", NULL, "reload ramcryptd");
	else if (strcmp(verb, "setup-host") == 0)
		r = simple_call(bus, "SetupHost", NULL, "set up the host");
	else if (strcmp(verb, "restore-host") == 0)
		r = simple_call(bus, "RestoreHost", NULL, "restore the host");
	else
		r = cmd_check(bus);
	sd_bus_flush_close_unref(bus);
	return r;
}
