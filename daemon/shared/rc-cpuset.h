/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rc-cpuset.h - CPU sets as the kernel writes them ("0-3,8,10-11").
 */
#ifndef RC_CPUSET_H
#define RC_CPUSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RC_MAX_CPUS 1024	/* = TRESOR_MAX_CPUS */

struct rc_cpuset {
	uint64_t bits[RC_MAX_CPUS / 64];
};

void rc_cpuset_zero(struct rc_cpuset *s);
void rc_cpuset_set(struct rc_cpuset *s, unsigned int cpu);
void rc_cpuset_clear(struct rc_cpuset *s, unsigned int cpu);
bool rc_cpuset_isset(const struct rc_cpuset *s, unsigned int cpu);
unsigned int rc_cpuset_count(const struct rc_cpuset *s);
bool rc_cpuset_empty(const struct rc_cpuset *s);
bool rc_cpuset_equal(const struct rc_cpuset *a, const struct rc_cpuset *b);
bool rc_cpuset_intersects(const struct rc_cpuset *a, const struct rc_cpuset *b);
void rc_cpuset_or(struct rc_cpuset *dst, const struct rc_cpuset *src);
void rc_cpuset_andnot(struct rc_cpuset *dst, const struct rc_cpuset *src);
void rc_cpuset_and(struct rc_cpuset *dst, const struct rc_cpuset *src);
/* Every CPU of a is in b. */
bool rc_cpuset_subset(const struct rc_cpuset *a, const struct rc_cpuset *b);
/* Lowest CPU in the set, or -1. */
int rc_cpuset_first(const struct rc_cpuset *s);
/* Next CPU after prev (prev = -1 starts), or -1. */
int rc_cpuset_next(const struct rc_cpuset *s, int prev);

/* "0-3,8" (trailing whitespace/newline ignored): -EINVAL on anything else,
 * -ERANGE for a CPU >= RC_MAX_CPUS. "" is the empty set. *ret is untouched
 * on error. */
int rc_cpuset_parse(const char *s, struct rc_cpuset *ret);
/* The same; on error *bad (if bad) points into s at the bad part. */
int rc_cpuset_parse_full(const char *s, struct rc_cpuset *ret, const char **bad);
/* malloc'd cpulist, "" for the empty set. */
int rc_cpuset_format(const struct rc_cpuset *s, char **ret);
/* systemd's AllowedCPUs= wire format: little-endian byte array ("ay"). */
int rc_cpuset_to_bytes(const struct rc_cpuset *s, uint8_t **ret, size_t *n);
/* The reverse (systemd's EffectiveCPUs / AllowedCPUs properties). */
int rc_cpuset_from_bytes(const uint8_t *b, size_t n, struct rc_cpuset *ret);

#define rc_cpuset_foreach(cpu, s) \
	for ((cpu) = rc_cpuset_first(s); (cpu) >= 0; (cpu) = rc_cpuset_next((s), (cpu)))

#endif /* RC_CPUSET_H */
