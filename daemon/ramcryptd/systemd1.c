// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * systemd1.c - what ramcryptd asks org.freedesktop.systemd1 (same bus):
 * a unit's files, cgroup, ExecStart= argv and MainPID, and SetUnitProperties
 * (AllowedCPUs=) / StopUnit.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ramcryptd.h"

#define SD1 "org.freedesktop.systemd1"
#define SD1_PATH "/org/freedesktop/systemd1"
#define SD1_MANAGER "org.freedesktop.systemd1.Manager"
#define SD1_UNIT "org.freedesktop.systemd1.Unit"
#define SD1_SERVICE "org.freedesktop.systemd1.Service"

static void strv_free(char **l)
{
	if (!l)
		return;
	for (char **p = l; *p; p++)
		free(*p);
	free(l);
}

void sd_unit_info_free(struct sd_unit_info *i)
{
	free(i->sd_path);
	free(i->fragment);
	strv_free(i->dropins);
	free(i->cgroup);
	for (size_t k = 0; k < i->n_exec; k++)
		strv_free(i->exec_all[k]);
	free(i->exec_all);
	memset(i, 0, sizeof(*i));
}

int sd1_get_unit_path(sd_bus *bus, const char *name, bool load, char **ret,
		      sd_bus_error *error)
{
	sd_bus_message *reply = NULL;
	const char *p;
	int r;

	r = sd_bus_call_method(bus, SD1, SD1_PATH, SD1_MANAGER,
			       load ? "LoadUnit" : "GetUnit", error, &reply,
			       "s", name);
	if (r < 0)
		return r;
	r = sd_bus_message_read(reply, "o", &p);
	if (r >= 0) {
		*ret = strdup(p);
		r = *ret ? 0 : -ENOMEM;
	}
	sd_bus_message_unref(reply);
	return r;
}

static int read_exec_start(sd_bus *bus, const char *path,
			   struct sd_unit_info *info, sd_bus_error *error)
{
	sd_bus_message *reply = NULL;
	int r;

	r = sd_bus_get_property(bus, SD1, path, SD1_SERVICE, "ExecStart",
				error, &reply, "a(sasbttttuii)");
	if (r < 0)
		return r;
	r = sd_bus_message_enter_container(reply, 'a', "(sasbttttuii)");
	if (r < 0)
		goto out;
	while ((r = sd_bus_message_enter_container(reply, 'r',
						   "sasbttttuii")) > 0) {
		const char *exe;
		char **argv = NULL;
		char ***na;

		r = sd_bus_message_read(reply, "s", &exe);
		if (r < 0)
			goto out;
		r = sd_bus_message_read_strv(reply, &argv);
		if (r < 0)
			goto out;
		r = sd_bus_message_skip(reply, "bttttuii");
		if (r < 0) {
			strv_free(argv);
			goto out;
		}
		r = sd_bus_message_exit_container(reply);
		if (r < 0) {
			strv_free(argv);
			goto out;
		}
		if (!argv || !argv[0]) {
			/* argv empty: use the path as argv[0] */
			strv_free(argv);
			argv = calloc(2, sizeof(char *));
			if (!argv || !(argv[0] = strdup(exe))) {
				free(argv);
				r = -ENOMEM;
				goto out;
			}
		}
		na = realloc(info->exec_all, (info->n_exec + 1) * sizeof(char **));
		if (!na) {
			strv_free(argv);
			r = -ENOMEM;
			goto out;
		}
		info->exec_all = na;
		info->exec_all[info->n_exec++] = argv;
	}
	if (r < 0)
		goto out;
	r = sd_bus_message_exit_container(reply);
	if (info->n_exec)
		info->exec_argv = info->exec_all[0];
out:
	sd_bus_message_unref(reply);
	return r < 0 ? r : 0;
}

static int read_allowed_cpus(sd_bus *bus, const char *path,
			     struct sd_unit_info *info)
{
	sd_bus_message *reply = NULL;
	const void *p;
	size_t n;
	int r;

	rc_cpuset_zero(&info->allowed_cpus);
	r = sd_bus_get_property(bus, SD1, path, SD1_SERVICE, "AllowedCPUs",
				NULL, &reply, "ay");
	if (r < 0)
		return r;
	r = sd_bus_message_read_array(reply, 'y', &p, &n);
	if (r >= 0) {
		for (size_t i = 0; i < n && i < RC_MAX_CPUS / 8; i++)
			for (int b = 0; b < 8; b++)
				if (((const uint8_t *)p)[i] & (1u << b))
					rc_cpuset_set(&info->allowed_cpus, i * 8 + b);
		info->allowed_cpus_set = n > 0;
		r = 0;
	}
	sd_bus_message_unref(reply);
	return r;
}

int sd1_read_unit(sd_bus *bus, const char *name, bool load,
		  struct sd_unit_info *info, sd_bus_error *error)
{
	int r;

	memset(info, 0, sizeof(*info));
	r = sd1_get_unit_path(bus, name, false, &info->sd_path, error);
	if (r < 0 && load) {
		sd_bus_error_free(error);
		r = sd1_get_unit_path(bus, name, true, &info->sd_path, error);
	}
	if (r < 0)
		goto fail;
	r = sd_bus_get_property_string(bus, SD1, info->sd_path, SD1_UNIT,
				       "FragmentPath", error, &info->fragment);
	if (r < 0)
		goto fail;
	r = sd_bus_get_property_strv(bus, SD1, info->sd_path, SD1_UNIT,
				     "DropInPaths", error, &info->dropins);
	if (r < 0)
		goto fail;
	r = sd_bus_get_property_string(bus, SD1, info->sd_path, SD1_SERVICE,
				       "ControlGroup", error, &info->cgroup);
	if (r < 0)
		goto fail;
	r = sd_bus_get_property_trivial(bus, SD1, info->sd_path, SD1_SERVICE,
					"MainPID", error, 'u', &info->main_pid);
	if (r < 0)
		goto fail;
	r = read_exec_start(bus, info->sd_path, info, error);
	if (r < 0)
		goto fail;
	(void)read_allowed_cpus(bus, info->sd_path, info);
	return 0;
fail:
	sd_unit_info_free(info);
	return r;
}

int sd1_main_pid(sd_bus *bus, const char *sd_path, uint32_t *ret)
{
	return sd_bus_get_property_trivial(bus, SD1, sd_path, SD1_SERVICE,
					   "MainPID", NULL, 'u', ret);
}

int sd1_active_state(sd_bus *bus, const char *sd_path, char **ret)
{
	return sd_bus_get_property_string(bus, SD1, sd_path, SD1_UNIT,
					  "ActiveState", NULL, ret);
}

int sd1_set_allowed_cpus(sd_bus *bus, const char *name,
			 const struct rc_cpuset *cpus, sd_bus_error *error)
{
	sd_bus_message *msg = NULL, *reply = NULL;
	uint8_t *bytes = NULL;
	size_t n = 0;
	int r;

	if (!rc_cpuset_empty(cpus)) {
		r = rc_cpuset_to_bytes(cpus, &bytes, &n);
		if (r < 0)
			return r;
	}
	r = sd_bus_message_new_method_call(bus, &msg, SD1, SD1_PATH,
					   SD1_MANAGER, "SetUnitProperties");
	if (r < 0)
		goto out;
	r = sd_bus_message_append(msg, "sb", name, 1);
	if (r < 0)
		goto out;
	r = sd_bus_message_open_container(msg, 'a', "(sv)");
	if (r < 0)
		goto out;
	r = sd_bus_message_open_container(msg, 'r', "sv");
	if (r < 0)
		goto out;
	r = sd_bus_message_append(msg, "s", "AllowedCPUs");
	if (r < 0)
		goto out;
	r = sd_bus_message_open_container(msg, 'v', "ay");
	if (r < 0)
		goto out;
	r = sd_bus_message_append_array(msg, 'y', bytes ? (void *)bytes : "", n);
	if (r < 0)
		goto out;
	r = sd_bus_message_close_container(msg);
	if (r < 0)
		goto out;
	r = sd_bus_message_close_container(msg);
	if (r < 0)
		goto out;
	r = sd_bus_message_close_container(msg);
	if (r < 0)
		goto out;
	r = sd_bus_call(bus, msg, 0, error, &reply);
out:
	free(bytes);
	sd_bus_message_unref(msg);
	sd_bus_message_unref(reply);
	return r < 0 ? r : 0;
}

int sd1_stop_unit(sd_bus *bus, const char *name, sd_bus_error *error)
{
	sd_bus_message *reply = NULL;
	int r;

	r = sd_bus_call_method(bus, SD1, SD1_PATH, SD1_MANAGER, "StopUnit",
			       error, &reply, "ss", name, "replace");
	sd_bus_message_unref(reply);
	return r < 0 ? r : 0;
}
