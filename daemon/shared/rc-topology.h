/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rc-topology.h - CPU topology from sysfs and the split into host roles.
 *
 * Roles (DESIGN §4): housekeeping CPUs (key holders; system.slice,
 * user.slice, init.scope, IRQs, unbound workqueues), crypto CPUs (key holders
 * that do page crypto for the VMs of their cache domain) and VM CPUs (no
 * key; each given to one enrolled unit at a time).
 */
#ifndef RC_TOPOLOGY_H
#define RC_TOPOLOGY_H

#include "rc-cpuset.h"

#define RC_MAX_CACHE_DOMAINS 256

struct rc_topology {
	struct rc_cpuset online;		/* sys/devices/system/cpu/online */
	/* Last-level cache domains (the highest cache/indexN with
	 * shared_cpu_list; one domain of all online CPUs when sysfs has no
	 * cache information, as under QEMU TCG). */
	unsigned int n_domains;
	struct rc_cpuset domains[RC_MAX_CACHE_DOMAINS];
	/* SMT siblings: topology/thread_siblings_list per CPU. */
	struct rc_cpuset siblings[RC_MAX_CPUS];
};

int rc_topology_read(const char *root, struct rc_topology *ret);

struct rc_roles {
	struct rc_cpuset housekeeping;
	struct rc_cpuset crypto;
	struct rc_cpuset vm;
};

/*
 * The default split: per cache domain, its first CPU (and that CPU's SMT
 * siblings) is housekeeping; the next CPU (with siblings) is the domain's
 * crypto CPU; the rest are VM CPUs. The first domain keeps housekeeping
 * even if nothing else fits. Another domain of only 2 cores gets crypto +
 * VM (no housekeeping), one of a single core is housekeeping (a VM there
 * would have no crypto CPU in its domain). No VM CPU at all (fewer than 3
 * cores) is -ENOSPC with the reason in *reason; *ret is filled anyway.
 * Reasons point to a thread-local buffer valid until the next call.
 */
int rc_roles_default(const struct rc_topology *t, struct rc_roles *ret,
		     const char **reason);
/* Checks given roles: disjoint, online, non-empty housekeeping and crypto,
 * every VM CPU with a crypto CPU in its cache domain where the topology
 * has one. -EINVAL with a sentence in *reason. */
int rc_roles_validate(const struct rc_topology *t, const struct rc_roles *r,
		      const char **reason);
/* The crypto CPU for a set of VM CPUs: one in the same cache domain as the
 * first of them, else the first crypto CPU. -1 if there is none. */
int rc_roles_crypto_cpu_for(const struct rc_topology *t,
			    const struct rc_roles *r,
			    const struct rc_cpuset *vm_cpus);

#endif /* RC_TOPOLOGY_H */
