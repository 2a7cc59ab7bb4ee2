/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rc-hostchecks.h - host security checks (fwupd HSI style): name, ok, detail.
 */
#ifndef RC_HOSTCHECKS_H
#define RC_HOSTCHECKS_H

#include <stdbool.h>
#include <stddef.h>

#include "rc-cpuset.h"

struct rc_hostcheck {
	const char *name;	/* static: "key-loaded", "key-on-all-holders",
				 * "livepatch", "bare-metal", "init-on-free",
				 * "zswap-off", "hibernation-off",
				 * "vm-cpus-keyless", "pmu-xmm-sampling" */
	bool ok;
	char detail[256];	/* one sentence, what was found */
};

#define RC_HOSTCHECKS_MAX 16

/* vm_cpus: the VM CPUs of the current roles (empty or NULL if none
 * applied). Fills ret[0..8] in the order of the names above (ret must hold
 * RC_HOSTCHECKS_MAX); a file that cannot be read fails its check, it is no
 * error of the call (0, or -ENOMEM). zswap absent from the kernel, and no
 * VM CPUs at all, count as ok. */
int rc_hostchecks_run(const char *root, const struct rc_cpuset *vm_cpus,
		      struct rc_hostcheck *ret, size_t *n);

#endif /* RC_HOSTCHECKS_H */
