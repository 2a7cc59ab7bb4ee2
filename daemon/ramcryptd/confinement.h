/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * confinement.h - cache confinement of a unit's plaintext window: an
 * exclusive resctrl L3 group for its VM CPUs and crypto CPU, their SMT
 * siblings offline, no deep C-states on them (PM QoS), and the WBINVD
 * sources that would still write the cache back to DRAM.
 */
#ifndef RAMCRYPTD_CONFINEMENT_H
#define RAMCRYPTD_CONFINEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ramcryptd.h"

#define RC_RESCTRL_GROUP_PREFIX "ramcrypt-"

/*
 * Confine a unit about to be enrolled. mode off: nothing. auto: try; on
 * failure log it and go on (0). required: on failure -EPERM with the reason
 * in err. *window_pages is capped to the exclusive partition's size when
 * mode is required and the window is larger than the free ways.
 */
int confine_unit(struct manager *m, const char *name, enum rc_confinement mode,
		 const struct rc_cpuset *vm, int crypto, uint32_t *window_pages,
		 char *err, size_t errlen);
/* Undo confine_unit (release, or a later enrollment step failed). */
void confine_release(struct manager *m, const char *name);
/* After a daemon restart: take over the group of a rediscovered unit. */
void confine_adopt(struct manager *m, const char *name);
/* Can this host confine at all: 0, or -EOPNOTSUPP with the reason. */
int confine_host_capable(struct manager *m, char *reason, size_t len);
/* The unit's state: "active" or "none", with the reason. */
const char *confine_unit_state(const char *name, const char **reason);

#endif /* RAMCRYPTD_CONFINEMENT_H */
