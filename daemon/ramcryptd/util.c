// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ramcryptd.h"

bool rc_debug;

char *cpuset_str(const struct rc_cpuset *s)
{
	char *p = NULL;

	if (rc_cpuset_format(s, &p) < 0 || !p)
		abort();
	return p;
}

int append_cpuset(sd_bus_message *reply, const struct rc_cpuset *s)
{
	int cpu, r;

	r = sd_bus_message_open_container(reply, 'a', "u");
	if (r < 0)
		return r;
	rc_cpuset_foreach(cpu, s) {
		r = sd_bus_message_append(reply, "u", (uint32_t)cpu);
		if (r < 0)
			return r;
	}
	return sd_bus_message_close_container(reply);
}

int mkdir_p(const char *path, mode_t mode)
{
	char buf[4096];
	size_t l = strlen(path);

	if (l == 0 || l >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, path, l + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}
