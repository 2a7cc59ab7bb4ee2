// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rc-resctrl.c - resctrl L3 allocation, CPU L3 caches, WBINVD sources.
 * Formats: see rc-resctrl.h (Documentation/x86/resctrl.rst, Linux 6.1).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rc-kernel.h"
#include "rc-macro.h"
#include "rc-resctrl.h"

unsigned int rc_popcount64(uint64_t v)
{
	return (unsigned int)__builtin_popcountll(v);
}

bool rc_cpu_has_flag(const char *root, const char *flag)
{
	_cleanup_free_ char *ci = NULL;
	size_t fl = strlen(flag);

	if (rc_read_string(root, "proc/cpuinfo", &ci) < 0)
		return false;
	for (char *l = ci; l && *l; ) {
		char *nl = strchr(l, '\n');

		if (nl)
			*nl = 0;
		if (strncmp(l, "flags", 5) == 0) {
			char *p = strchr(l, ':');

			for (p = p ? p + 1 : l + 5; p && *p; ) {
				while (*p == ' ' || *p == '\t')
					p++;
				if (strncmp(p, flag, fl) == 0 &&
				    (p[fl] == 0 || p[fl] == ' ' || p[fl] == '\t'))
					return true;
				p = strpbrk(p, " \t");
			}
			return false;	/* the first CPU's flags decide */
		}
		l = nl ? nl + 1 : NULL;
	}
	return false;
}

static int read_hex(const char *root, const char *rel, uint64_t *ret)
{
	_cleanup_free_ char *s = NULL;
	char *end;
	int r;

	r = rc_read_string(root, rel, &s);
	if (r < 0)
		return r;
	errno = 0;
	*ret = strtoull(s, &end, 16);
	if (!*s || *end || errno)
		return -EBADMSG;
	return 0;
}

int rc_l3_info_read(const char *root, struct rc_l3_info *ret, bool *cdp)
{
	_cleanup_free_ char *p = NULL;
	uint64_t v;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (cdp) {
		*cdp = false;
		if (rc_path(root, RC_RESCTRL_DIR "/info/L3CODE", &p) >= 0 &&
		    access(p, F_OK) == 0)
			*cdp = true;
	}
	r = read_hex(root, RC_RESCTRL_DIR "/info/L3/cbm_mask", &ret->cbm_mask);
	if (r < 0)
		return r;
	if (!ret->cbm_mask || (ret->cbm_mask & (ret->cbm_mask + 1)))
		return -EBADMSG;	/* 2^n - 1 */
	ret->cbm_len = rc_popcount64(ret->cbm_mask);
	r = rc_read_u64(root, RC_RESCTRL_DIR "/info/L3/min_cbm_bits", &v);
	if (r < 0)
		return r == -ENOENT ? -EBADMSG : r;
	if (v < 1 || v > ret->cbm_len)
		return -EBADMSG;
	ret->min_cbm_bits = (unsigned int)v;
	r = read_hex(root, RC_RESCTRL_DIR "/info/L3/shareable_bits",
		     &ret->shareable_bits);
	if (r < 0)
		return r == -ENOENT ? -EBADMSG : r;
	r = rc_read_u64(root, RC_RESCTRL_DIR "/info/L3/num_closids", &v);
	if (r < 0)
		return r == -ENOENT ? -EBADMSG : r;
	if (v < 1 || v > 4096)
		return -EBADMSG;
	ret->num_closids = (unsigned int)v;
	return 0;
}

int rc_schemata_parse(const char *text, const char *res,
		      struct rc_schemata *ret)
{
	size_t rl = strlen(res);

	memset(ret, 0, sizeof(*ret));
	for (const char *l = text; l && *l; ) {
		const char *nl = strchr(l, '\n'), *p = l;

		while (*p == ' ' || *p == '\t')
			p++;
		if (strncmp(p, res, rl) == 0 && p[rl] == ':') {
			p += rl + 1;
			while (*p && *p != '\n') {
				char *end;
				unsigned long id;
				unsigned long long mask;

				while (*p == ' ')
					p++;
				if (!isdigit((unsigned char)*p))
					return -EBADMSG;
				id = strtoul(p, &end, 10);
				if (*end != '=' || id > 65535)
					return -EBADMSG;
				p = end + 1;
				if (!isxdigit((unsigned char)*p))
					return -EBADMSG;
				mask = strtoull(p, &end, 16);
				p = end;
				if (ret->n >= RC_RESCTRL_MAX_DOMAINS)
					return -E2BIG;
				ret->id[ret->n] = (unsigned int)id;
				ret->mask[ret->n++] = mask;
				while (*p == ' ')
					p++;
				if (*p == ';')
					p++;
				else if (*p && *p != '\n')
					return -EBADMSG;
			}
			return ret->n ? 0 : -EBADMSG;
		}
		l = nl ? nl + 1 : NULL;
	}
	return -ENOENT;
}

int rc_schemata_get(const struct rc_schemata *s, unsigned int id,
		    uint64_t *mask)
{
	for (unsigned int i = 0; i < s->n; i++)
		if (s->id[i] == id) {
			*mask = s->mask[i];
			return 0;
		}
	return -ENOENT;
}

void rc_schemata_format(const struct rc_schemata *s, const char *res,
			unsigned int cbm_len, char *buf, size_t len)
{
	int w = (int)(cbm_len + 3) / 4;
	size_t off;

	off = (size_t)snprintf(buf, len, "%s:", res);
	for (unsigned int i = 0; i < s->n && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%u=%0*llx",
					i ? ";" : "", s->id[i], w,
					(unsigned long long)s->mask[i]);
}

int rc_bit_usage_parse(const char *text, unsigned int cbm_len,
		       struct rc_bit_usage *ret)
{
	const char *p = text;

	memset(ret, 0, sizeof(*ret));
	while (*p && *p != '\n') {
		char *end;
		unsigned long id;
		unsigned int i = ret->n;

		if (!isdigit((unsigned char)*p))
			return -EBADMSG;
		id = strtoul(p, &end, 10);
		if (*end != '=' || id > 65535)
			return -EBADMSG;
		if (i >= RC_RESCTRL_MAX_DOMAINS)
			return -E2BIG;
		p = end + 1;
		ret->id[i] = (unsigned int)id;
		/* rdt_bit_usage_show(): from bit cbm_len - 1 down to 0 */
		for (int b = (int)cbm_len - 1; b >= 0; b--, p++) {
			uint64_t bit = 1ULL << b;

			switch (*p) {
			case '0': break;
			case 'S': ret->used[i] |= bit; break;
			case 'E': case 'P':
				ret->exclusive[i] |= bit;
				ret->used[i] |= bit;
				break;
			case 'H': case 'X':
				ret->hardware[i] |= bit;
				ret->used[i] |= bit;
				break;
			default:
				return -EBADMSG;
			}
		}
		ret->n++;
		if (*p == ';')
			p++;
		else if (*p && *p != '\n')
			return -EBADMSG;
	}
	return ret->n ? 0 : -EBADMSG;
}

static int read_group(const char *root, const char *name,
		      struct rc_resctrl_group *g)
{
	char rel[512];
	_cleanup_free_ char *s = NULL, *mode = NULL;
	int r;

	memset(g, 0, sizeof(*g));
	snprintf(g->name, sizeof(g->name), "%s", name);
	snprintf(rel, sizeof(rel), RC_RESCTRL_DIR "%s%s/schemata",
		 *name ? "/" : "", name);
	r = rc_read_string(root, rel, &s);
	if (r < 0)
		return r;
	r = rc_schemata_parse(s, "L3", &g->l3);
	if (r < 0 && r != -ENOENT)
		return r;
	g->has_l3 = r == 0;
	if (*name) {
		snprintf(rel, sizeof(rel), RC_RESCTRL_DIR "/%s/mode", name);
		r = rc_read_string(root, rel, &mode);
		if (r < 0)
			return r;
		snprintf(g->mode, sizeof(g->mode), "%s", mode);
	} else {
		snprintf(g->mode, sizeof(g->mode), "shareable");
	}
	snprintf(rel, sizeof(rel), RC_RESCTRL_DIR "%s%s/cpus_list",
		 *name ? "/" : "", name);
	r = rc_read_cpuset(root, rel, &g->cpus);
	if (r == -ENOENT)
		rc_cpuset_zero(&g->cpus);
	else if (r < 0)
		return r;
	return 0;
}

static int cmp_group(const void *a, const void *b)
{
	return strcmp(((const struct rc_resctrl_group *)a)->name,
		      ((const struct rc_resctrl_group *)b)->name);
}

int rc_resctrl_groups(const char *root, struct rc_resctrl_group **ret,
		      size_t *n)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_closedir_ DIR *d = NULL;
	struct rc_resctrl_group *g = NULL, *t;
	size_t cnt = 0, cap = 8;
	struct dirent *de;
	int r;

	r = rc_path(root, RC_RESCTRL_DIR, &path);
	if (r < 0)
		return r;
	d = opendir(path);
	if (!d)
		return -errno;
	g = calloc(cap, sizeof(*g));
	if (!g)
		return -ENOMEM;
	r = read_group(root, "", &g[cnt]);
	if (r < 0)
		goto fail;
	cnt++;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !strcmp(de->d_name, "info") ||
		    !strcmp(de->d_name, "mon_groups") ||
		    !strcmp(de->d_name, "mon_data"))
			continue;
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		if (de->d_type == DT_UNKNOWN) {
			char rel[512];
			_cleanup_free_ char *p2 = NULL;
			DIR *sub;

			snprintf(rel, sizeof(rel), RC_RESCTRL_DIR "/%s", de->d_name);
			if (rc_path(root, rel, &p2) < 0)
				continue;
			sub = opendir(p2);
			if (!sub)
				continue;
			closedir(sub);
		}
		if (cnt == cap) {
			cap *= 2;
			t = realloc(g, cap * sizeof(*g));
			if (!t) {
				r = -ENOMEM;
				goto fail;
			}
			g = t;
		}
		r = read_group(root, de->d_name, &g[cnt]);
		if (r == -ENOENT)
			continue;	/* removed while we read it */
		if (r < 0)
			goto fail;
		cnt++;
	}
	qsort(g + 1, cnt - 1, sizeof(*g), cmp_group);
	*ret = g;
	*n = cnt;
	return 0;
fail:
	free(g);
	return r;
}

static bool one_run(uint64_t m)
{
	if (!m)
		return false;
	m >>= __builtin_ctzll(m);
	return (m & (m + 1)) == 0;
}

uint64_t rc_cbm_pick(uint64_t avail, uint64_t dflt, unsigned int want,
		     unsigned int min_bits, unsigned int cbm_len)
{
	uint64_t run;

	if (!want || want > cbm_len || want < min_bits)
		return 0;
	run = want >= 64 ? ~0ULL : (1ULL << want) - 1;
	for (int lo = (int)(cbm_len - want); lo >= 0; lo--) {
		uint64_t m = run << lo, rest = dflt & ~m;

		if ((m & avail) != m)
			continue;
		if (!one_run(rest) || rc_popcount64(rest) < min_bits)
			continue;
		return m;
	}
	return 0;
}

unsigned int rc_cbm_max_run(uint64_t avail, uint64_t dflt,
			    unsigned int min_bits, unsigned int cbm_len)
{
	for (unsigned int w = cbm_len; w >= min_bits && w > 0; w--)
		if (rc_cbm_pick(avail, dflt, w, min_bits, cbm_len))
			return w;
	return 0;
}

/* "32768K" -> bytes (cache/indexN/size, drivers/base/cacheinfo.c). */
static int parse_cache_size(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (end == s || errno)
		return -EBADMSG;
	if (*end == 'K')
		v <<= 10, end++;
	else if (*end == 'M')
		v <<= 20, end++;
	if (*end)
		return -EBADMSG;
	*ret = v;
	return 0;
}

int rc_cpu_l3(const char *root, unsigned int cpu, unsigned int *id,
	      uint64_t *size)
{
	for (int i = 0; i < 8; i++) {
		char rel[256];
		_cleanup_free_ char *sz = NULL;
		int level, cid, r;

		snprintf(rel, sizeof(rel),
			 "sys/devices/system/cpu/cpu%u/cache/index%d/level", cpu, i);
		if (rc_read_int(root, rel, &level) < 0 || level != 3)
			continue;
		snprintf(rel, sizeof(rel),
			 "sys/devices/system/cpu/cpu%u/cache/index%d/id", cpu, i);
		r = rc_read_int(root, rel, &cid);
		if (r < 0)
			return r == -ENOENT ? -EBADMSG : r;
		snprintf(rel, sizeof(rel),
			 "sys/devices/system/cpu/cpu%u/cache/index%d/size", cpu, i);
		r = rc_read_string(root, rel, &sz);
		if (r < 0)
			return r == -ENOENT ? -EBADMSG : r;
		r = parse_cache_size(sz, size);
		if (r < 0)
			return r;
		*id = (unsigned int)cid;
		return 0;
	}
	return -ENOENT;
}

int rc_wbinvd_sources(const char *root, char *detail, size_t len)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	char names[96] = "";
	size_t off = 0;
	int n = 0;

	if (rc_path(root, "sys/bus/pci/drivers/vfio-pci", &path) >= 0)
		d = opendir(path);
	while (d && (de = readdir(d))) {
		unsigned int a, b, c, f;
		char x;

		/* bound devices are links named DDDD:BB:DD.F */
		if (sscanf(de->d_name, "%x:%x:%x.%x%c", &a, &b, &c, &f, &x) != 4)
			continue;
		n++;
		if (off < sizeof(names))
			off += (size_t)snprintf(names + off, sizeof(names) - off,
						"%s%s", off ? ", " : "", de->d_name);
	}
	if (n)
		snprintf(detail, len,
			 "%d device%s bound to vfio-pci (%s): a guest with non-coherent DMA makes KVM execute WBINVD (kvm_emulate_wbinvd_noskip), writing cached plaintext to DRAM",
			 n, n == 1 ? "" : "s", names);
	else
		snprintf(detail, len,
			 "no device bound to vfio-pci: no non-coherent DMA that makes KVM execute WBINVD");
	return n;
}
