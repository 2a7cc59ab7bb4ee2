// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A fake org.freedesktop.systemd1 for ramcryptd's unit tests, on the bus of
 * $DBUS_SYSTEM_BUS_ADDRESS (sd-bus, like the daemon; no Python bindings).
 *
 *   ramcryptd_fake_systemd UNITS.json CALLS.jsonl [ROOT]
 *
 * UNITS.json maps unit names to {FragmentPath, DropInPaths, ControlGroup,
 * ExecStart: [[path, argv...], ...], MainPID, AllowedCPUs: [bytes]}; it is
 * re-read on every call, so a test changes a unit by rewriting it.
 * SetUnitProperties (AllowedCPUs only) and StopUnit update it; with ROOT,
 * a non-empty AllowedCPUs= of a unit with a ControlGroup is also written to
 * ROOT/sys/fs/cgroup/<ControlGroup>/cpuset.cpus.effective as the kernel
 * would: the set within the unit's "SliceCPUs" (a cpulist string standing
 * for its slice's cpuset, if given), the slice's whole set where nothing of
 * it is left (cgroup v2 falls back to the parent's). Every Manager
 * call is appended to CALLS.jsonl ({"method", "args"}). Besides systemd's
 * calls, org.ramcrypt.Test.EmitChanged(s unit) on /org/ramcrypt/Test sends
 * PropertiesChanged(MainPID) for the unit's Service interface, as systemd
 * does when the main process starts.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <systemd/sd-bus.h>

#define SD "org.freedesktop.systemd1"
#define SD_PATH "/org/freedesktop/systemd1"
#define UNIT_PREFIX "/org/freedesktop/systemd1/unit"
#define NO_SUCH_UNIT "org.freedesktop.systemd1.NoSuchUnit"

static const char *units_file, *calls_file, *root_dir;
static char current[512];	/* unit of the object being read */

static json_object *load(void)
{
	json_object *o = json_object_from_file(units_file);

	if (!o) {
		fprintf(stderr, "fake systemd: cannot read %s\n", units_file);
		exit(1);
	}
	return o;
}

static void save(json_object *o)
{
	char tmp[4096];

	snprintf(tmp, sizeof(tmp), "%s.tmp", units_file);
	if (json_object_to_file(tmp, o) < 0 || rename(tmp, units_file) < 0) {
		fprintf(stderr, "fake systemd: cannot write %s\n", units_file);
		exit(1);
	}
}

/* "0-3,8" -> bits; false on a malformed list */
static bool parse_cpulist(const char *s, bool *bits, size_t nbits)
{
	while (*s) {
		char *e;
		unsigned long a = strtoul(s, &e, 10), b = a;

		if (e == s)
			return false;
		if (*e == '-') {
			s = e + 1;
			b = strtoul(s, &e, 10);
			if (e == s)
				return false;
		}
		for (unsigned long i = a; i <= b && i < nbits; i++)
			bits[i] = true;
		s = e;
		if (*s == ',')
			s++;
		else if (*s && *s != '\n')
			return false;
		else
			break;
	}
	return true;
}

/* the kernel's effective cpuset for AllowedCPUs= bytes p[n] */
static void write_effective(json_object *u, const uint8_t *p, size_t n)
{
	json_object *cg, *slice;
	bool want[1024] = { 0 }, lim[1024] = { 0 }, any = false;
	char path[4096], list[4096] = "";
	size_t off = 0;
	FILE *f;

	if (!root_dir || !json_object_object_get_ex(u, "ControlGroup", &cg) ||
	    !*json_object_get_string(cg))
		return;
	for (size_t i = 0; i < n * 8 && i < 1024; i++)
		if (p[i / 8] & (1u << (i % 8)))
			want[i] = any = true;
	if (!any)
		return;		/* a reset: the parent's set, not modelled */
	if (json_object_object_get_ex(u, "SliceCPUs", &slice)) {
		bool left = false;

		if (!parse_cpulist(json_object_get_string(slice), lim, 1024)) {
			fprintf(stderr, "fake systemd: bad SliceCPUs\n");
			exit(1);
		}
		for (size_t i = 0; i < 1024; i++)
			left |= want[i] && lim[i];
		for (size_t i = 0; i < 1024; i++)
			want[i] = left ? want[i] && lim[i] : lim[i];
	}
	for (size_t i = 0; i < 1024; i++) {
		size_t j = i;

		if (!want[i])
			continue;
		while (j + 1 < 1024 && want[j + 1])
			j++;
		off += snprintf(list + off, sizeof(list) - off, "%s%zu", off ? "," : "", i);
		if (j > i)
			off += snprintf(list + off, sizeof(list) - off, "-%zu", j);
		i = j;
	}
	snprintf(path, sizeof(path), "%s/sys/fs/cgroup/%s/cpuset.cpus.effective",
		 root_dir, json_object_get_string(cg));
	f = fopen(path, "we");
	if (!f || fprintf(f, "%s\n", list) < 0 || fclose(f) != 0) {
		fprintf(stderr, "fake systemd: cannot write %s\n", path);
		exit(1);
	}
}

static void record(const char *method, json_object *args)
{
	json_object *o = json_object_new_object();
	FILE *f = fopen(calls_file, "ae");

	json_object_object_add(o, "method", json_object_new_string(method));
	json_object_object_add(o, "args", args);
	if (f) {
		fprintf(f, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		fclose(f);
	}
	json_object_put(o);
}

static json_object *unit_get(json_object *units, const char *name)
{
	json_object *u;

	return json_object_object_get_ex(units, name, &u) ? u : NULL;
}

static int reply_unit_path(sd_bus_message *m, const char *method,
			   sd_bus_error *error)
{
	json_object *units, *args;
	const char *name;
	char *path = NULL;
	int r;

	r = sd_bus_message_read(m, "s", &name);
	if (r < 0)
		return r;
	args = json_object_new_array();
	json_object_array_add(args, json_object_new_string(name));
	record(method, args);
	units = load();
	if (!unit_get(units, name)) {
		json_object_put(units);
		return sd_bus_error_setf(error, NO_SUCH_UNIT, "Unit %s not %s.", name,
					 strcmp(method, "GetUnit") ? "found" : "loaded");
	}
	json_object_put(units);
	r = sd_bus_path_encode(UNIT_PREFIX, name, &path);
	if (r < 0)
		return r;
	r = sd_bus_reply_method_return(m, "o", path);
	free(path);
	return r;
}

static int method_get_unit(sd_bus_message *m, void *ud, sd_bus_error *e)
{
	(void)ud;
	return reply_unit_path(m, "GetUnit", e);
}

static int method_load_unit(sd_bus_message *m, void *ud, sd_bus_error *e)
{
	(void)ud;
	return reply_unit_path(m, "LoadUnit", e);
}

static int method_set_props(sd_bus_message *m, void *ud, sd_bus_error *error)
{
	json_object *units, *u, *args, *props;
	const char *name, *key;
	int runtime, r;

	(void)ud;
	r = sd_bus_message_read(m, "sb", &name, &runtime);
	if (r < 0)
		return r;
	units = load();
	u = unit_get(units, name);
	if (!u) {
		u = json_object_new_object();
		json_object_object_add(units, name, u);
	}
	props = json_object_new_array();
	r = sd_bus_message_enter_container(m, 'a', "(sv)");
	if (r < 0)
		goto fail;
	while ((r = sd_bus_message_enter_container(m, 'r', "sv")) > 0) {
		json_object *pair = json_object_new_array(), *bytes;
		const void *p;
		size_t n;

		r = sd_bus_message_read(m, "s", &key);
		if (r < 0)
			goto fail;
		if (strcmp(key, "AllowedCPUs") != 0) {
			json_object_put(pair);
			json_object_put(props);
			json_object_put(units);
			return sd_bus_error_setf(error, SD_BUS_ERROR_PROPERTY_READ_ONLY,
				"fake systemd: property %s not supported", key);
		}
		r = sd_bus_message_enter_container(m, 'v', "ay");
		if (r < 0)
			goto fail;
		r = sd_bus_message_read_array(m, 'y', &p, &n);
		if (r < 0)
			goto fail;
		r = sd_bus_message_exit_container(m);
		if (r < 0)
			goto fail;
		r = sd_bus_message_exit_container(m);
		if (r < 0)
			goto fail;
		bytes = json_object_new_array();
		for (size_t i = 0; i < n; i++)
			json_object_array_add(bytes, json_object_new_int(((const uint8_t *)p)[i]));
		json_object_object_add(u, "AllowedCPUs", json_object_get(bytes));
		write_effective(u, p, n);
		json_object_array_add(pair, json_object_new_string(key));
		json_object_array_add(pair, bytes);
		json_object_array_add(props, pair);
	}
	if (r < 0)
		goto fail;
	args = json_object_new_array();
	json_object_array_add(args, json_object_new_string(name));
	json_object_array_add(args, json_object_new_boolean(runtime));
	json_object_array_add(args, props);
	record("SetUnitProperties", args);
	save(units);
	json_object_put(units);
	return sd_bus_reply_method_return(m, NULL);
fail:
	json_object_put(props);
	json_object_put(units);
	return r;
}

static int method_stop(sd_bus_message *m, void *ud, sd_bus_error *error)
{
	json_object *units, *u, *args;
	const char *name, *mode;
	int r;

	(void)ud;
	r = sd_bus_message_read(m, "ss", &name, &mode);
	if (r < 0)
		return r;
	args = json_object_new_array();
	json_object_array_add(args, json_object_new_string(name));
	json_object_array_add(args, json_object_new_string(mode));
	record("StopUnit", args);
	units = load();
	u = unit_get(units, name);
	if (!u) {
		json_object_put(units);
		return sd_bus_error_setf(error, NO_SUCH_UNIT, "Unit %s not loaded.", name);
	}
	json_object_object_add(u, "MainPID", json_object_new_int(0));
	json_object_object_add(u, "ActiveState", json_object_new_string("inactive"));
	save(units);
	json_object_put(units);
	return sd_bus_reply_method_return(m, "o", "/org/freedesktop/systemd1/job/1");
}

static int method_subscribe(sd_bus_message *m, void *ud, sd_bus_error *e)
{
	(void)ud; (void)e;
	record("Subscribe", json_object_new_array());
	return sd_bus_reply_method_return(m, NULL);
}

static int find_unit(sd_bus *bus, const char *path, const char *iface,
		     void *ud, void **found, sd_bus_error *error)
{
	json_object *units;
	char *name = NULL;
	bool ok;
	int r;

	(void)bus; (void)iface; (void)ud; (void)error;
	r = sd_bus_path_decode(path, UNIT_PREFIX, &name);
	if (r <= 0)
		return 0;
	units = load();
	ok = unit_get(units, name) != NULL;
	json_object_put(units);
	if (ok)
		snprintf(current, sizeof(current), "%s", name);
	free(name);
	if (!ok)
		return 0;
	*found = current;
	return 1;
}

static int prop(sd_bus *bus, const char *path, const char *iface,
		const char *property, sd_bus_message *reply, void *ud,
		sd_bus_error *error)
{
	json_object *units = load(), *u = unit_get(units, ud), *v;
	int r = 0;

	(void)bus; (void)path; (void)iface; (void)error;
#define GET(k) (u && json_object_object_get_ex(u, k, &v) ? v : NULL)
	if (strcmp(property, "Id") == 0) {
		r = sd_bus_message_append(reply, "s", (const char *)ud);
	} else if (strcmp(property, "FragmentPath") == 0 ||
		   strcmp(property, "ControlGroup") == 0) {
		v = GET(property);
		r = sd_bus_message_append(reply, "s", v ? json_object_get_string(v) : "");
	} else if (strcmp(property, "ActiveState") == 0) {
		v = GET(property);
		r = sd_bus_message_append(reply, "s", v ? json_object_get_string(v) : "activating");
	} else if (strcmp(property, "MainPID") == 0) {
		v = GET(property);
		r = sd_bus_message_append(reply, "u", v ? (uint32_t)json_object_get_int(v) : 0);
	} else if (strcmp(property, "DropInPaths") == 0) {
		v = GET(property);
		r = sd_bus_message_open_container(reply, 'a', "s");
		for (size_t i = 0; r >= 0 && v && i < json_object_array_length(v); i++)
			r = sd_bus_message_append(reply, "s",
				json_object_get_string(json_object_array_get_idx(v, i)));
		if (r >= 0)
			r = sd_bus_message_close_container(reply);
	} else if (strcmp(property, "AllowedCPUs") == 0) {
		uint8_t b[128];
		size_t n = 0;

		v = GET(property);
		for (size_t i = 0; v && i < json_object_array_length(v) && n < sizeof(b); i++)
			b[n++] = json_object_get_int(json_object_array_get_idx(v, i));
		r = sd_bus_message_append_array(reply, 'y', b, n);
	} else if (strcmp(property, "ExecStart") == 0) {
		v = GET(property);
		r = sd_bus_message_open_container(reply, 'a', "(sasbttttuii)");
		for (size_t i = 0; r >= 0 && v && i < json_object_array_length(v); i++) {
			json_object *e = json_object_array_get_idx(v, i);
			size_t n = json_object_array_length(e);

			r = sd_bus_message_open_container(reply, 'r', "sasbttttuii");
			if (r >= 0)
				r = sd_bus_message_append(reply, "s",
					json_object_get_string(json_object_array_get_idx(e, 0)));
			if (r >= 0)
				r = sd_bus_message_open_container(reply, 'a', "s");
			for (size_t k = 1; r >= 0 && k < n; k++)
				r = sd_bus_message_append(reply, "s",
					json_object_get_string(json_object_array_get_idx(e, k)));
			if (r >= 0)
				r = sd_bus_message_close_container(reply);
			if (r >= 0)
				r = sd_bus_message_append(reply, "bttttuii", 0, 0ULL, 0ULL,
							  0ULL, 0ULL, 0U, 0, 0);
			if (r >= 0)
				r = sd_bus_message_close_container(reply);
		}
		if (r >= 0)
			r = sd_bus_message_close_container(reply);
	}
#undef GET
	json_object_put(units);
	return r;
}

static int method_emit(sd_bus_message *m, void *ud, sd_bus_error *error)
{
	const char *name;
	char *path = NULL;
	int r;

	(void)ud; (void)error;
	r = sd_bus_message_read(m, "s", &name);
	if (r < 0)
		return r;
	r = sd_bus_path_encode(UNIT_PREFIX, name, &path);
	if (r < 0)
		return r;
	snprintf(current, sizeof(current), "%s", name);
	r = sd_bus_emit_properties_changed(sd_bus_message_get_bus(m), path,
					   "org.freedesktop.systemd1.Service",
					   "MainPID", NULL);
	free(path);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(m, NULL);
}

static const sd_bus_vtable manager_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_METHOD("GetUnit", "s", "o", method_get_unit, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("LoadUnit", "s", "o", method_load_unit, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("SetUnitProperties", "sba(sv)", "", method_set_props,
		      SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("StopUnit", "ss", "o", method_stop, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("Subscribe", "", "", method_subscribe, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_VTABLE_END
};

#define EC SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE
static const sd_bus_vtable unit_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_PROPERTY("Id", "s", prop, 0, 0),
	SD_BUS_PROPERTY("FragmentPath", "s", prop, 0, 0),
	SD_BUS_PROPERTY("DropInPaths", "as", prop, 0, 0),
	SD_BUS_PROPERTY("ActiveState", "s", prop, 0, EC),
	SD_BUS_VTABLE_END
};

static const sd_bus_vtable service_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_PROPERTY("ControlGroup", "s", prop, 0, 0),
	SD_BUS_PROPERTY("MainPID", "u", prop, 0, EC),
	SD_BUS_PROPERTY("ExecStart", "a(sasbttttuii)", prop, 0, 0),
	SD_BUS_PROPERTY("AllowedCPUs", "ay", prop, 0, 0),
	SD_BUS_VTABLE_END
};

static const sd_bus_vtable test_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_METHOD("EmitChanged", "s", "", method_emit, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_VTABLE_END
};

int main(int argc, char **argv)
{
	sd_bus *bus = NULL;
	int r;

	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: %s UNITS.json CALLS.jsonl [ROOT]\n", argv[0]);
		return 2;
	}
	units_file = argv[1];
	calls_file = argv[2];
	root_dir = argc == 4 ? argv[3] : NULL;
	r = sd_bus_open_system(&bus);
	if (r >= 0)
		r = sd_bus_add_object_vtable(bus, NULL, SD_PATH,
					     "org.freedesktop.systemd1.Manager",
					     manager_vtable, NULL);
	if (r >= 0)
		r = sd_bus_add_fallback_vtable(bus, NULL, UNIT_PREFIX,
					       "org.freedesktop.systemd1.Unit",
					       unit_vtable, find_unit, NULL);
	if (r >= 0)
		r = sd_bus_add_fallback_vtable(bus, NULL, UNIT_PREFIX,
					       "org.freedesktop.systemd1.Service",
					       service_vtable, find_unit, NULL);
	if (r >= 0)
		r = sd_bus_add_object_vtable(bus, NULL, "/org/ramcrypt/Test",
					     "org.ramcrypt.Test", test_vtable, NULL);
	if (r >= 0)
		r = sd_bus_request_name(bus, SD, 0);
	if (r < 0) {
		fprintf(stderr, "fake systemd: %s\n", strerror(-r));
		return 1;
	}
	printf("READY\n");
	fflush(stdout);
	for (;;) {
		r = sd_bus_process(bus, NULL);
		if (r < 0)
			break;
		if (r > 0)
			continue;
		r = sd_bus_wait(bus, UINT64_MAX);
		if (r < 0)
			break;
	}
	fprintf(stderr, "fake systemd: %s\n", strerror(-r));
	sd_bus_unref(bus);
	return 1;
}
