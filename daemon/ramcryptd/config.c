// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * config.c - /etc/ramcrypt/ramcryptd.json (json-c). Every key is optional;
 * an unknown key or a bad value is an error naming the key.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "rc-qemu.h"
#include "ramcryptd.h"

void config_defaults(struct rc_config *c)
{
	memset(c, 0, sizeof(*c));
	c->roles_auto = true;
	c->window_pages = 16384;		/* 64M */
	c->max_plaintext_age_ms = 100;
	c->evict_ahead_pages = 32;
	c->unprotected_warn = false;
	c->anonymous_ram_threshold = RC_QEMU_ANON_THRESHOLD_DEFAULT;
	c->verify_interval_ms = 1000;
	c->verify_grace_ms = 30000;
	c->cache_confinement = RC_CONFINE_AUTO;
}

/* bytes: a number with an optional K/M/G/T suffix (powers of 1024). */
int parse_size_bytes(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	if (*end) {
		switch (*end) {
		case 'K': case 'k': mul = 1ULL << 10; break;
		case 'M': case 'm': mul = 1ULL << 20; break;
		case 'G': case 'g': mul = 1ULL << 30; break;
		case 'T': case 't': mul = 1ULL << 40; break;
		default: return -EINVAL;
		}
		end++;
		if (*end == 'i' && end[1] == 'B')
			end += 2;
		else if (*end == 'B')
			end++;
		if (*end)
			return -EINVAL;
	}
	if (v > UINT64_MAX / mul)
		return -ERANGE;
	*ret = v * mul;
	return 0;
}

/* A bare number is pages; with a suffix, bytes (a multiple of 4K). */
int parse_size_pages(const char *s, uint32_t *ret)
{
	uint64_t b;
	size_t l = s ? strlen(s) : 0;
	int r;

	if (l == 0)
		return -EINVAL;
	if (s[l - 1] >= '0' && s[l - 1] <= '9') {
		r = parse_size_bytes(s, &b);
		if (r < 0)
			return r;
		if (b == 0 || b > UINT32_MAX)
			return -ERANGE;
		*ret = b;
		return 0;
	}
	r = parse_size_bytes(s, &b);
	if (r < 0)
		return r;
	if (b % 4096)
		return -EINVAL;
	if (b == 0 || b / 4096 > UINT32_MAX)
		return -ERANGE;
	*ret = b / 4096;
	return 0;
}

static int fail(char *err, size_t len, const char *path, const char *key,
		const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(err, len, "%s: key '%s': ", path, key);
	if (n < 0 || (size_t)n >= len)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(err + n, len - n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int get_u32(json_object *v, const char *path, const char *key,
		   uint32_t min, uint32_t max, uint32_t *ret, char *err,
		   size_t len)
{
	int64_t x;

	if (!json_object_is_type(v, json_type_int))
		return fail(err, len, path, key, "not an integer: %s",
			    json_object_to_json_string(v));
	errno = 0;
	x = json_object_get_int64(v);
	if (errno || x < (int64_t)min || x > (int64_t)max)
		return fail(err, len, path, key,
			    "%s is out of range (%" PRIu32 "..%" PRIu32 ")",
			    json_object_to_json_string(v), min, max);
	*ret = x;
	return 0;
}

static int get_cpus(json_object *v, const char *path, const char *key,
		    struct rc_cpuset *ret, bool *is_auto, char *err, size_t len)
{
	const char *s;
	int r;

	if (!json_object_is_type(v, json_type_string))
		return fail(err, len, path, key,
			    "not a string (a CPU list like \"2-5,8\" or \"auto\"): %s",
			    json_object_to_json_string(v));
	s = json_object_get_string(v);
	if (strcmp(s, "auto") == 0) {
		*is_auto = true;
		rc_cpuset_zero(ret);
		return 0;
	}
	*is_auto = false;
	r = rc_cpuset_parse(s, ret);
	if (r < 0)
		return fail(err, len, path, key, "not a CPU list: \"%s\"", s);
	if (rc_cpuset_empty(ret))
		return fail(err, len, path, key,
			    "empty CPU list (use \"auto\" for the default split)");
	return 0;
}

int config_load(const char *path, bool must_exist, struct rc_config *c,
		char *err, size_t errlen)
{
	struct rc_config n;
	json_object *root;
	json_tokener *tok;
	enum json_tokener_error jerr;
	char *buf = NULL;
	size_t sz = 0;
	FILE *f;
	int r = 0, n_auto = 0, n_roles = 0;
	bool a;

	config_defaults(&n);
	f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT && !must_exist) {
			*c = n;
			return 0;
		}
		r = -errno;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(-r));
		return r;
	}
	{
		char chunk[4096];
		size_t k;

		while ((k = fread(chunk, 1, sizeof(chunk), f)) > 0) {
			char *nb = realloc(buf, sz + k + 1);

			if (!nb) {
				free(buf);
				fclose(f);
				return -ENOMEM;
			}
			buf = nb;
			memcpy(buf + sz, chunk, k);
			sz += k;
			if (sz > (1 << 20)) {
				free(buf);
				fclose(f);
				snprintf(err, errlen, "%s: larger than 1 MiB", path);
				return -EFBIG;
			}
		}
	}
	fclose(f);
	if (!buf) {
		snprintf(err, errlen, "%s: empty file (write {} for the defaults)",
			 path);
		return -EINVAL;
	}
	buf[sz] = 0;

	tok = json_tokener_new();
	if (!tok) {
		free(buf);
		return -ENOMEM;
	}
	root = json_tokener_parse_ex(tok, buf, sz);
	jerr = json_tokener_get_error(tok);
	if (jerr != json_tokener_success || tok->char_offset < (int)sz) {
		/* trailing garbage after the object is an error too */
		size_t off = tok->char_offset;

		while (jerr == json_tokener_success && off < sz &&
		       strchr(" \t\r\n", buf[off]))
			off++;
		if (jerr != json_tokener_success || off < sz) {
			snprintf(err, errlen, "%s: not valid JSON at byte %zu: %s",
				 path, (size_t)tok->char_offset,
				 jerr != json_tokener_success ?
				 json_tokener_error_desc(jerr) :
				 "trailing characters");
			json_object_put(root);
			json_tokener_free(tok);
			free(buf);
			return -EINVAL;
		}
	}
	json_tokener_free(tok);
	free(buf);
	if (!json_object_is_type(root, json_type_object)) {
		snprintf(err, errlen, "%s: the top level is not a JSON object",
			 path);
		json_object_put(root);
		return -EINVAL;
	}

	json_object_object_foreach(root, key, val) {
		if (strcmp(key, "housekeeping_cpus") == 0) {
			r = get_cpus(val, path, key, &n.housekeeping, &a, err, errlen);
			n_auto += a;
			n_roles++;
		} else if (strcmp(key, "crypto_cpus") == 0) {
			r = get_cpus(val, path, key, &n.crypto, &a, err, errlen);
			n_auto += a;
			n_roles++;
		} else if (strcmp(key, "vm_cpus") == 0) {
			r = get_cpus(val, path, key, &n.vm, &a, err, errlen);
			n_auto += a;
			n_roles++;
		} else if (strcmp(key, "window") == 0) {
			if (json_object_is_type(val, json_type_int)) {
				r = get_u32(val, path, key, 1, UINT32_MAX,
					    &n.window_pages, err, errlen);
			} else if (json_object_is_type(val, json_type_string)) {
				r = parse_size_pages(json_object_get_string(val),
						     &n.window_pages);
				if (r < 0)
					r = fail(err, errlen, path, key,
						 "not a window size (bytes with K/M/G, a multiple of 4K, or a page count): \"%s\"",
						 json_object_get_string(val));
			} else {
				r = fail(err, errlen, path, key,
					 "not a size string or page count: %s",
					 json_object_to_json_string(val));
			}
		} else if (strcmp(key, "libvirt_session_max_window") == 0) {
			if (json_object_is_type(val, json_type_int))
				r = get_u32(val, path, key, 1, UINT32_MAX,
					    &n.session_max_window_pages, err, errlen);
			else if (!json_object_is_type(val, json_type_string) ||
				 parse_size_pages(json_object_get_string(val),
						  &n.session_max_window_pages) < 0)
				r = fail(err, errlen, path, key,
					 "not a window size (bytes with K/M/G, a multiple of 4K, or a page count): %s",
					 json_object_to_json_string(val));
		} else if (strcmp(key, "libvirt_session_max_plaintext_age_ms") == 0) {
			r = get_u32(val, path, key, 1, 3600000,
				    &n.session_max_plaintext_age_ms, err, errlen);
		} else if (strcmp(key, "max_plaintext_age_ms") == 0) {
			r = get_u32(val, path, key, 1, 3600000,
				    &n.max_plaintext_age_ms, err, errlen);
		} else if (strcmp(key, "evict_ahead_pages") == 0) {
			r = get_u32(val, path, key, 0, 1024,
				    &n.evict_ahead_pages, err, errlen);
		} else if (strcmp(key, "verify_interval_ms") == 0) {
			r = get_u32(val, path, key, 100, 3600000,
				    &n.verify_interval_ms, err, errlen);
		} else if (strcmp(key, "verify_grace_ms") == 0) {
			r = get_u32(val, path, key, 100, 600000,
				    &n.verify_grace_ms, err, errlen);
		} else if (strcmp(key, "unprotected_action") == 0) {
			const char *s = json_object_get_string(val);

			if (!json_object_is_type(val, json_type_string) ||
			    (strcmp(s, "stop") && strcmp(s, "warn")))
				r = fail(err, errlen, path, key,
					 "must be \"stop\" or \"warn\", not %s",
					 json_object_to_json_string(val));
			else
				n.unprotected_warn = strcmp(s, "warn") == 0;
		} else if (strcmp(key, "cache_confinement") == 0) {
			const char *s = json_object_get_string(val);

			if (!json_object_is_type(val, json_type_string))
				s = "";
			if (strcmp(s, "auto") == 0)
				n.cache_confinement = RC_CONFINE_AUTO;
			else if (strcmp(s, "required") == 0)
				n.cache_confinement = RC_CONFINE_REQUIRED;
			else if (strcmp(s, "off") == 0)
				n.cache_confinement = RC_CONFINE_OFF;
			else
				r = fail(err, errlen, path, key,
					 "must be \"auto\", \"required\" or \"off\", not %s",
					 json_object_to_json_string(val));
		} else if (strcmp(key, "anonymous_ram_threshold") == 0) {
			if (json_object_is_type(val, json_type_string)) {
				if (parse_size_bytes(json_object_get_string(val),
						     &n.anonymous_ram_threshold) < 0)
					r = fail(err, errlen, path, key,
						 "not a size (bytes with K/M/G): \"%s\"",
						 json_object_get_string(val));
			} else if (json_object_is_type(val, json_type_int) &&
				   json_object_get_int64(val) >= 0) {
				n.anonymous_ram_threshold = json_object_get_int64(val);
			} else {
				r = fail(err, errlen, path, key,
					 "not a size (bytes with K/M/G): %s",
					 json_object_to_json_string(val));
			}
		} else {
			r = fail(err, errlen, path, key, "unknown key");
		}
		if (r < 0)
			break;
	}
	json_object_put(root);
	if (r < 0)
		return r;
	if (n_roles > 0 && !(n_auto == n_roles && n_roles == 3) &&
	    !(n_auto == 0 && n_roles == 3)) {
		const char *k = "housekeeping_cpus";

		if (n_auto == n_roles && n_roles < 3)
			; /* some "auto", others missing: missing means auto */
		else
			return fail(err, errlen, path, k,
				    "housekeeping_cpus, crypto_cpus and vm_cpus are given together (three CPU lists) or all \"auto\"");
	}
	n.roles_auto = n_auto > 0 || n_roles == 0;
	*c = n;
	return 0;
}
