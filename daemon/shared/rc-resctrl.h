/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rc-resctrl.h - L3 cache allocation (resctrl), the CPUs' L3 caches and the
 * WBINVD sources, read under a root prefix like everything in rc-kernel.h.
 *
 * File formats (Documentation/x86/resctrl.rst in Linux 6.1, moved to
 * Documentation/arch/x86/resctrl.rst later; printers in
 * arch/x86/kernel/cpu/resctrl/):
 *   info/L3/cbm_mask        hex, the full mask ("fffff")
 *   info/L3/min_cbm_bits    decimal, the fewest consecutive bits of a mask
 *   info/L3/shareable_bits  hex, ways other agents (I/O) may use
 *   info/L3/num_closids     decimal, groups including the default one
 *   info/L3/bit_usage       "0=SSSSSSEE;1=SSSSSSEE": per cache id, one
 *                           letter per way, the highest bit first
 *                           (rdt_bit_usage_show: 0 H X S E P)
 *   <group>/schemata        one line per resource, the name right-aligned
 *                           ("    L3:0=fffff;1=fffff", "MB:0=100"; with
 *                           CDP L3CODE/L3DATA), masks as "%0*x"
 *   <group>/mode            shareable, exclusive, pseudo-locksetup,
 *                           pseudo-locked
 *   <group>/cpus_list       a cpulist
 *   info/last_cmd_status    why the last write was refused
 * The default group is the mount point itself.
 */
#ifndef RC_RESCTRL_H
#define RC_RESCTRL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rc-cpuset.h"

#define RC_RESCTRL_DIR "sys/fs/resctrl"
#define RC_RESCTRL_MAX_DOMAINS 64

struct rc_l3_info {
	uint64_t cbm_mask;
	unsigned int cbm_len;		/* bits in cbm_mask */
	unsigned int min_cbm_bits;
	uint64_t shareable_bits;
	unsigned int num_closids;
};

/* /proc/cpuinfo's first "flags" line has the flag (e.g. "cat_l3"). */
bool rc_cpu_has_flag(const char *root, const char *flag);
/* info/L3/{cbm_mask,min_cbm_bits,shareable_bits,num_closids}: -ENOENT when
 * resctrl is not mounted or has no L3 (then *cdp tells whether it has
 * L3CODE, i.e. is mounted with -o cdp), -EBADMSG naming nothing (the
 * caller names the directory) for a malformed file. */
int rc_l3_info_read(const char *root, struct rc_l3_info *ret, bool *cdp);

struct rc_schemata {
	unsigned int n;
	unsigned int id[RC_RESCTRL_MAX_DOMAINS];
	uint64_t mask[RC_RESCTRL_MAX_DOMAINS];
};

/* The line of resource res ("L3") in a schemata file's text: -ENOENT if
 * it has none, -EBADMSG if it is malformed. */
int rc_schemata_parse(const char *text, const char *res,
		      struct rc_schemata *ret);
/* mask of cache id in s, or -ENOENT. */
int rc_schemata_get(const struct rc_schemata *s, unsigned int id,
		    uint64_t *mask);
/* "L3:0=f00;1=001", no newline; masks zero-padded to the digits of
 * cbm_len bits as the kernel prints them. */
void rc_schemata_format(const struct rc_schemata *s, const char *res,
			unsigned int cbm_len, char *buf, size_t len);

/* info/L3/bit_usage: per cache id, the ways by letter. */
struct rc_bit_usage {
	unsigned int n;
	unsigned int id[RC_RESCTRL_MAX_DOMAINS];
	uint64_t exclusive[RC_RESCTRL_MAX_DOMAINS];	/* E and P */
	uint64_t hardware[RC_RESCTRL_MAX_DOMAINS];	/* H and X */
	uint64_t used[RC_RESCTRL_MAX_DOMAINS];		/* anything but 0 */
};
int rc_bit_usage_parse(const char *text, unsigned int cbm_len,
		       struct rc_bit_usage *ret);

struct rc_resctrl_group {
	char name[256];		/* "" for the default group */
	char mode[32];
	bool has_l3;
	struct rc_schemata l3;
	struct rc_cpuset cpus;
};

/* The default group and every control group (sorted by name; "info",
 * "mon_groups", "mon_data" are no groups). *ret is malloc'd. */
int rc_resctrl_groups(const char *root, struct rc_resctrl_group **ret,
		      size_t *n);

/*
 * The highest run of want consecutive ways inside avail such that what
 * stays of dflt (the default group's mask) without it is still one run of
 * at least min_bits ways (Intel needs contiguous masks, resctrl.rst "Cache
 * Bit Masks"). 0 if there is none.
 */
uint64_t rc_cbm_pick(uint64_t avail, uint64_t dflt, unsigned int want,
		     unsigned int min_bits, unsigned int cbm_len);
/* The longest run rc_cbm_pick could return (0 if none). */
unsigned int rc_cbm_max_run(uint64_t avail, uint64_t dflt,
			    unsigned int min_bits, unsigned int cbm_len);
unsigned int rc_popcount64(uint64_t v);

/* The L3 (cache/indexN with level 3) of a CPU: its id and size in bytes.
 * -ENOENT if sysfs has none. */
int rc_cpu_l3(const char *root, unsigned int cpu, unsigned int *id,
	      uint64_t *size);

/*
 * WBINVD sources that can write the cache back to DRAM while a VM runs:
 * devices bound to vfio-pci (a guest with a non-coherent-DMA device makes
 * KVM execute WBINVD for it: kvm_arch_has_noncoherent_dma() and
 * kvm_emulate_wbinvd_noskip() in arch/x86/kvm/x86.c). Returns how many were
 * found, a sentence in detail either way.
 */
int rc_wbinvd_sources(const char *root, char *detail, size_t len);

#endif /* RC_RESCTRL_H */
