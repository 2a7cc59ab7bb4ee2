/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rc-kernel.h - ramcryptd's view of the kernel: files only, under a root.
 *
 * Every path below is relative to a root prefix: "" on a real host, a fixture
 * tree in the unit tests (ramcryptd --root DIR, or $RAMCRYPTD_ROOT). Nothing
 * here uses an ioctl, so a fixture directory behaves like the kernel:
 *
 *   sys/kernel/tresor/            tresor.ko status (read); holders, poll_cpus
 *                                 (write: cpulist)
 *   sys/kernel/ramcrypt/          totals (read); flush (write "1": every region)
 *   sys/kernel/ramcrypt/regions/<id>/  one directory per live region (read):
 *       cgroup_id cgroup pid size window_pages max_plaintext_age_ms crypto_cpu
 *       evict_ahead_pages plaintext_pages encrypted_pages faults evictions
 *       oldest_plaintext_age_ms, and crypto_errors crypto_cpu_errors (page
 *       ciphers refused: the crypto CPU was no valid key holder). "regions"
 *       is this directory, no count file: count its entries.
 *       A region with a crypto CPU runs every page cipher there (or fails
 *       it), also when the caller's CPU is a valid key holder.
 *   sys/kernel/config/ramcrypt/policies/<name>/  configfs, one item per policy
 *       (mkdir, write attributes, rmdir): window_pages max_plaintext_age_ms
 *       crypto_cpu evict_ahead_pages, and cgroup_id written LAST: a policy
 *       matches no cgroup until cgroup_id is non-zero, and once it is, the
 *       other attributes are frozen (EBUSY), so a race can only leave a region
 *       on the strict module defaults. A region takes the policy of its
 *       opener's cgroup or the nearest ancestor with one, at open().
 *   sys/fs/cgroup/                cgroup v2 (cgroup_id = st_ino of the directory)
 *   sys/devices/system/cpu/       topology, cache/index* /shared_cpu_list, online,
 *                                 cpuN/power/pm_qos_resume_latency_us (write)
 *   sys/devices/virtual/workqueue/cpumask (write: hex mask)
 *   proc/irq/N/smp_affinity_list  (write)
 *   proc/PID/{cmdline,maps,fdinfo/N,fd/N}, proc/cmdline, proc/cpuinfo
 *
 * Functions return 0 or a negative errno, as libsystemd does. The status
 * readers (rc_tresor_read_status, rc_ramcrypt_read_totals) return 0 with
 * module_loaded = false when the module's directory is absent; everything
 * that acts or lists (set_holders, flush, regions, policies) returns -ENOENT
 * then. A file of an older module that lacks a feature gives -ENOENT too
 * (-EACCES if it exists read-only).
 */
#ifndef RC_KERNEL_H
#define RC_KERNEL_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#include "rc-cpuset.h"

/* root NULL, "" or "/": the real host (no file is ever created there). */
bool rc_root_is_host(const char *root);
/* "<root>/<rel>" in *ret (malloc'd). */
int rc_path(const char *root, const char *rel, char **ret);
/* Read a whole file (NULs kept, e.g. proc/PID/cmdline; NUL-terminated
 * too), its length in *len (if len). -EFBIG beyond 64 MiB. */
int rc_read_full(const char *root, const char *rel, char **ret, size_t *len);
/* Read a whole small file, trailing newlines stripped (-EBADMSG on a NUL). */
int rc_read_string(const char *root, const char *rel, char **ret);
/* Decimal, nothing else (-EINVAL), -ERANGE if too big. */
int rc_read_u64(const char *root, const char *rel, uint64_t *ret);
int rc_read_int(const char *root, const char *rel, int *ret);
/* A cpulist file ("0-3,8"; "" is empty). */
int rc_read_cpuset(const char *root, const char *rel, struct rc_cpuset *ret);
/* Write s (a newline is added) in one write() with O_WRONLY|O_TRUNC (no
 * O_CREAT on a real host; under a fixture root the file is created). The
 * kernel's refusal comes back as its errno (-EINVAL, -EBUSY, -EPERM). */
int rc_write_string(const char *root, const char *rel, const char *s);

struct rc_tresor_status {
	bool module_loaded;		/* sys/kernel/tresor exists */
	bool key_loaded;
	struct rc_cpuset holders;
	struct rc_cpuset valid_holders;
	uint64_t check_failures;
	uint64_t forwarded_requests;
	uint64_t peer_copies;
	uint64_t requests;
};

int rc_tresor_read_status(const char *root, struct rc_tresor_status *ret);
int rc_tresor_set_holders(const char *root, const struct rc_cpuset *holders);
/* The polling crypto CPUs (tresor's poll_cpus); an empty set: none */
int rc_tresor_set_poll_cpus(const char *root, const struct rc_cpuset *cpus);

struct rc_ramcrypt_totals {
	bool module_loaded;		/* sys/kernel/ramcrypt exists */
	uint64_t regions;
	uint64_t plaintext_pages;
	uint64_t encrypted_pages;
	uint64_t faults;
	uint64_t window_pages;		/* module default */
};

int rc_ramcrypt_read_totals(const char *root, struct rc_ramcrypt_totals *ret);
int rc_ramcrypt_flush_all(const char *root);

struct rc_region {
	uint64_t id;
	uint64_t cgroup_id;
	char *cgroup;			/* e.g. "/system.slice/vm.service" */
	pid_t pid;			/* tgid of the opener */
	uint64_t size;
	uint32_t window_pages;
	uint32_t max_plaintext_age_ms;
	int crypto_cpu;			/* -1: module default */
	uint32_t evict_ahead_pages;
	uint64_t plaintext_pages;
	uint64_t encrypted_pages;
	uint64_t faults;
	uint64_t evictions;
	uint64_t oldest_plaintext_age_ms;
};

/* Sorted by id. A region closed while listed is left out; one whose
 * directory stays but lacks a file is -EBADMSG (another module version). */
int rc_regions_list(const char *root, struct rc_region **ret, size_t *n);
void rc_regions_free(struct rc_region *r, size_t n);

struct rc_policy {
	char *name;			/* configfs item name, e.g. the unit name
					 * with '/' and '\\' escaped */
	uint64_t cgroup_id;
	uint32_t window_pages;
	uint32_t max_plaintext_age_ms;
	int crypto_cpu;
	uint32_t evict_ahead_pages;
};

/* A configfs item name: 1..200 bytes, no '/', no control characters,
 * not "." or "..". 0 or -EINVAL. */
int rc_policy_name_valid(const char *name);
/*
 * mkdir the item, write every attribute, cgroup_id last (cgroup_id 0 is
 * -EINVAL: it would never match). If the item exists (daemon restart):
 * identical values → 0, nothing written; not yet frozen (cgroup_id 0) →
 * rewritten; frozen with other values → rmdir and created anew (a region
 * opened in between gets the strict module defaults, never looser ones).
 */
int rc_policy_set(const char *root, const struct rc_policy *p);
/* rmdir the item (-ENOENT if absent). */
int rc_policy_remove(const char *root, const char *name);
int rc_policy_list(const char *root, struct rc_policy **ret, size_t *n);
void rc_policies_free(struct rc_policy *p, size_t n);

/* st_ino of sys/fs/cgroup/<path> (path as systemd's ControlGroup). */
int rc_cgroup_id(const char *root, const char *cgroup_path, uint64_t *ret);

#endif /* RC_KERNEL_H */
