/* SPDX-License-Identifier: GPL-2.0 */
#ifndef TRESOR_KEYSTORE_H
#define TRESOR_KEYSTORE_H

#include <linux/cpumask.h>
#include <linux/percpu.h>
#include <linux/types.h>

#include <uapi/tresor.h>

#include "tresor_api.h"

struct tresor_impl;

int tresor_keystore_init(void);
void tresor_keystore_exit(void);

int tresor_key_set(const u8 key[TRESOR_KEY_SIZE]);
int tresor_key_clear(void);
int tresor_set_holders(const struct cpumask *holders);
bool tresor_key_loaded(void);
void tresor_get_status(struct tresor_status *st);


/*
 * The check values every XTS call verifies its round keys against
 * (tresor_asm.h), and the local CPU's standing: a valid key holder, or
 * not. Call the latter two between kernel_fpu_begin() and
 * kernel_fpu_end(). tresor_local_check_failed(): an XTS call here
 * returned TRESOR_KEY_MISMATCH; marks the CPU invalid and counts it.
 */
const u8 *tresor_key_check(void);
bool tresor_local_holder(void);
void tresor_local_check_failed(void);
/* @cpu is online and its key passed its last check */
bool tresor_holder_valid(int cpu);
/* A valid key holder to forward work to (not @avoid if possible), or -1. */
int tresor_pick_holder(int avoid);
/* The valid holders (changes under the reader), and where a walk starts */
const struct cpumask *tresor_valid_holders(void);
unsigned int tresor_holder_start(void);
void tresor_count_request(void);
void tresor_count_forwarded(void);
void tresor_count_ipi_forwarded(void);

/* tresor_bpslots.c */
int tresor_bpslots_reserve(unsigned int cpu);
bool tresor_bpslots_owned(unsigned int cpu);
void tresor_bpslots_release_all(void);

/* A cpulist written to sysfs file @attr; -EINVAL and a log line if bad */
int tresor_parse_cpulist(const char *attr, const char *buf,
			 struct cpumask *mask);

extern const struct attribute_group tresor_status_group;

/* TRESOR_TRANSIT_BEGIN/END (tresor_asm.h) and tresor_nmi_scrub() */
DECLARE_PER_CPU(u32, tresor_transit);

#endif /* TRESOR_KEYSTORE_H */
