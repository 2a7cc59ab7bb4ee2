/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rc-cpuset.c - CPU sets as the kernel writes them ("0-3,8,10-11").
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc-cpuset.h"

void rc_cpuset_zero(struct rc_cpuset *s)
{
	memset(s, 0, sizeof(*s));
}

void rc_cpuset_set(struct rc_cpuset *s, unsigned int cpu)
{
	if (cpu < RC_MAX_CPUS)
		s->bits[cpu / 64] |= UINT64_C(1) << (cpu % 64);
}

void rc_cpuset_clear(struct rc_cpuset *s, unsigned int cpu)
{
	if (cpu < RC_MAX_CPUS)
		s->bits[cpu / 64] &= ~(UINT64_C(1) << (cpu % 64));
}

bool rc_cpuset_isset(const struct rc_cpuset *s, unsigned int cpu)
{
	if (cpu >= RC_MAX_CPUS)
		return false;
	return s->bits[cpu / 64] & (UINT64_C(1) << (cpu % 64));
}

unsigned int rc_cpuset_count(const struct rc_cpuset *s)
{
	unsigned int n = 0;

	for (size_t i = 0; i < RC_MAX_CPUS / 64; i++)
		n += __builtin_popcountll(s->bits[i]);
	return n;
}

bool rc_cpuset_empty(const struct rc_cpuset *s)
{
	for (size_t i = 0; i < RC_MAX_CPUS / 64; i++)
		if (s->bits[i])
			return false;
	return true;
}

bool rc_cpuset_equal(const struct rc_cpuset *a, const struct rc_cpuset *b)
{
	return memcmp(a->bits, b->bits, sizeof(a->bits)) == 0;
}

bool rc_cpuset_intersects(const struct rc_cpuset *a, const struct rc_cpuset *b)
{
	for (size_t i = 0; i < RC_MAX_CPUS / 64; i++)
		if (a->bits[i] & b->bits[i])
			return true;
	return false;
}

void rc_cpuset_or(struct rc_cpuset *dst, const struct rc_cpuset *src)
{
	for (size_t i = 0; i < RC_MAX_CPUS / 64; i++)
		dst->bits[i] |= src->bits[i];
}

void rc_cpuset_and(struct rc_cpuset *dst, const struct rc_cpuset *src)
{
	for (size_t i = 0; i < RC_MAX_CPUS / 64; i++)
		dst->bits[i] &= src->bits[i];
}

void rc_cpuset_andnot(struct rc_cpuset *dst, const struct rc_cpuset *src)
{
	for (size_t i = 0; i < RC_MAX_CPUS / 64; i++)
		dst->bits[i] &= ~src->bits[i];
}

bool rc_cpuset_subset(const struct rc_cpuset *a, const struct rc_cpuset *b)
{
	for (size_t i = 0; i < RC_MAX_CPUS / 64; i++)
		if (a->bits[i] & ~b->bits[i])
			return false;
	return true;
}

int rc_cpuset_next(const struct rc_cpuset *s, int prev)
{
	unsigned int cpu = prev < 0 ? 0 : (unsigned int)prev + 1;

	while (cpu < RC_MAX_CPUS) {
		uint64_t w = s->bits[cpu / 64] >> (cpu % 64);

		if (w)
			return (int)(cpu + __builtin_ctzll(w));
		cpu = (cpu / 64 + 1) * 64;
	}
	return -1;
}

int rc_cpuset_first(const struct rc_cpuset *s)
{
	return rc_cpuset_next(s, -1);
}

static int parse_cpu(const char *p, const char **end, unsigned long *ret)
{
	char *e;
	unsigned long v;

	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	errno = 0;
	v = strtoul(p, &e, 10);
	if (errno == ERANGE || v >= RC_MAX_CPUS)
		return -ERANGE;
	*end = e;
	*ret = v;
	return 0;
}

int rc_cpuset_parse_full(const char *s, struct rc_cpuset *ret, const char **bad)
{
	struct rc_cpuset set;
	const char *p = s, *stop;

	if (bad)
		*bad = NULL;
	rc_cpuset_zero(&set);

	/* What the kernel prints: a trailing newline, nothing else around. */
	stop = s + strlen(s);
	while (stop > s && isspace((unsigned char)stop[-1]))
		stop--;

	while (p < stop) {
		const char *part = p, *e;
		unsigned long lo, hi;
		int r;

		r = parse_cpu(p, &e, &lo);
		if (r < 0)
			goto fail;
		hi = lo;
		p = e;
		if (*p == '-' && p < stop) {
			r = parse_cpu(p + 1, &e, &hi);
			if (r < 0)
				goto fail;
			p = e;
			if (hi < lo) {
				r = -EINVAL;
				goto fail;
			}
		}
		if (p < stop && *p != ',') {
			r = -EINVAL;
			goto fail;
		}
		for (unsigned long c = lo; c <= hi; c++)
			rc_cpuset_set(&set, (unsigned int)c);
		if (p < stop) {
			p++;	/* ',' */
			if (p == stop) {
				part = p - 1;
				r = -EINVAL;
				goto fail;
			}
		}
		continue;
fail:
		if (bad)
			*bad = part;
		return r;
	}
	*ret = set;
	return 0;
}

int rc_cpuset_parse(const char *s, struct rc_cpuset *ret)
{
	return rc_cpuset_parse_full(s, ret, NULL);
}

int rc_cpuset_format(const struct rc_cpuset *s, char **ret)
{
	/* worst case "0,2,4,...": at most 5 bytes per CPU */
	size_t cap = 5 * RC_MAX_CPUS + 1, len = 0;
	char *buf = malloc(cap);
	int cpu;

	if (!buf)
		return -ENOMEM;
	buf[0] = '\0';
	cpu = rc_cpuset_first(s);
	while (cpu >= 0) {
		int last = cpu;

		while (last + 1 < RC_MAX_CPUS &&
		       rc_cpuset_isset(s, (unsigned int)last + 1))
			last++;
		len += (size_t)snprintf(buf + len, cap - len, "%s%d",
					len ? "," : "", cpu);
		if (last > cpu)
			len += (size_t)snprintf(buf + len, cap - len, "-%d",
						last);
		cpu = rc_cpuset_next(s, last);
	}
	*ret = buf;
	return 0;
}

int rc_cpuset_to_bytes(const struct rc_cpuset *s, uint8_t **ret, size_t *n)
{
	int cpu, last = -1;
	size_t len;
	uint8_t *b;

	rc_cpuset_foreach(cpu, s)
		last = cpu;
	len = last < 0 ? 0 : (size_t)last / 8 + 1;
	b = calloc(len ? len : 1, 1);
	if (!b)
		return -ENOMEM;
	rc_cpuset_foreach(cpu, s)
		b[cpu / 8] |= (uint8_t)(1u << (cpu % 8));
	*ret = b;
	*n = len;
	return 0;
}

int rc_cpuset_from_bytes(const uint8_t *b, size_t n, struct rc_cpuset *ret)
{
	rc_cpuset_zero(ret);
	for (size_t i = 0; i < n; i++)
		for (unsigned int j = 0; j < 8; j++)
			if (b[i] & (1u << j)) {
				if (i * 8 + j >= RC_MAX_CPUS)
					return -ERANGE;
				rc_cpuset_set(ret, (unsigned int)(i * 8 + j));
			}
	return 0;
}
