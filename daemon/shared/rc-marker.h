/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rc-marker.h - the [X-RamCrypt] section of unit files and drop-ins.
 *
 *   [X-RamCrypt]
 *   RamCrypt=yes
 *   Window=64M            bytes with K/M/G (multiple of 4K), or a bare page count
 *   MaxPlaintextAge=100ms systemd time span (us, ms, s, min)
 *   CPUs=2                number of dedicated VM CPUs, 1..
 *   CacheConfinement=auto auto|required|off
 *
 * Later files override earlier ones key by key (fragment, then drop-ins in
 * systemd's order); an empty assignment resets the key to unset.
 */
#ifndef RC_MARKER_H
#define RC_MARKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum rc_confinement { RC_CONFINE_AUTO, RC_CONFINE_REQUIRED, RC_CONFINE_OFF };

struct rc_marker {
	bool present;			/* an [X-RamCrypt] section was seen */
	bool ramcrypt;			/* RamCrypt=yes */
	uint32_t window_pages;		/* 0: unset */
	uint32_t max_plaintext_age_ms;	/* 0: unset */
	uint32_t cpus;			/* 0: unset (1) */
	enum rc_confinement confinement;
	bool service_hint;		/* a RamCrypt= line stood in [Service] */
	char hint_file[4096];
	unsigned int hint_line;
	/* Not the marker: the unit's own [Service] device access, merged the
	 * same way. The generator adds DeviceAllow=/dev/ramcrypt only where
	 * one of these is in force: on a unit with the default
	 * DevicePolicy=auto, a first DeviceAllow= switches the policy to
	 * closed (systemd.resource-control(5)) and QEMU would lose /dev/kvm. */
	bool device_allow;		/* a DeviceAllow= entry (not reset) */
	bool device_policy_closed;	/* DevicePolicy=closed or strict */
	bool private_devices;		/* PrivateDevices=yes */
	/* Set (never cleared) by an empty ExecStartPre= in [Service]: a drop-in
	 * sorting after the generator's that resets the list drops the
	 * enrollment, so the generator adds it back after that one. */
	bool exec_start_pre_reset;
};

struct rc_marker_error {
	char file[4096];
	unsigned int line;
	char key[64];
	char value[256];
	char message[256];		/* e.g. "unknown key", "not a size" */
};

void rc_marker_init(struct rc_marker *m);
/* Parse one file into m (keys override). -EINVAL with err filled on a bad
 * key or value; -errno if the file cannot be read. */
int rc_marker_parse_file(const char *path, struct rc_marker *m,
			 struct rc_marker_error *err);
/* Parse the fragment then the drop-ins (NULL-terminated, in order). */
int rc_marker_parse_unit(const char *fragment, char *const *dropins,
			 struct rc_marker *m, struct rc_marker_error *err);
/* One [X-RamCrypt] key (RamCrypt, Window, MaxPlaintextAge, CPUs,
 * CacheConfinement) from another source, e.g. a libvirt domain's metadata,
 * validated as in a unit file. -EINVAL with err filled (file = source,
 * line 0). */
int rc_marker_assign(struct rc_marker *m, const char *source,
		     const char *key, const char *value,
		     struct rc_marker_error *err);
/* The error as one line, the same in the generator's log and ramcryptd's
 * refusal: "FILE:LINE: KEY=VALUE: MESSAGE" ("FILE:LINE: VALUE: MESSAGE"
 * for a bad line, "FILE: MESSAGE" for a file that cannot be read). */
const char *rc_marker_error_string(const struct rc_marker_error *err,
				   char *buf, size_t size);

#endif /* RC_MARKER_H */
