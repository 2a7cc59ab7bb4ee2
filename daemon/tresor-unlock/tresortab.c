// SPDX-License-Identifier: GPL-2.0-or-later
/* tresortab.c - parser of /etc/tresortab (crypttab syntax), see tresortab.h */
#include "tresortab.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static void seterr(char *err, size_t errlen, const char *fname,
		   unsigned int lineno, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!err || !errlen)
		return;
	n = snprintf(err, errlen, "%s:%u: ", fname ? fname : "tresortab",
		     lineno);
	if (n < 0 || (size_t)n >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - n, fmt, ap);
	va_end(ap);
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!*s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

int tt_parse_timespan(const char *s, unsigned int *ms)
{
	static const struct { const char *suffix; uint64_t mult; } units[] = {
		{ "", 1000 }, { "s", 1000 }, { "sec", 1000 }, { "ms", 1 },
		{ "m", 60000 }, { "min", 60000 }, { "h", 3600000 },
	};
	const char *p = s;
	uint64_t v = 0;
	size_t i;

	if (!*p || !isdigit((unsigned char)*p))
		return -1;
	while (isdigit((unsigned char)*p)) {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > UINT32_MAX)
			return -1;
		p++;
	}
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].suffix) == 0) {
			v *= units[i].mult;
			if (v > UINT32_MAX)
				return -1;
			*ms = (unsigned int)v;
			return 0;
		}
	}
	return -1;
}

/* Options; a trailing '=' means the option takes a value. */
enum opt_id {
	O_FLAG, O_TRIES, O_KEYFILE_TIMEOUT, O_KEYFILE_OFFSET, O_KEYFILE_SIZE,
	O_TIMEOUT, O_DEVICE_TIMEOUT, O_BOOL, O_AUTO_DEVICE, O_TOKEN_TIMEOUT,
};

/* O_FLAG options set .flag in the entry (0: accepted, nothing to set);
 * O_BOOL ones set it alone or with =yes/true/1/on, clear it with
 * =no/false/0/off; O_AUTO_DEVICE ones take "auto" only (a device path is
 * not supported: the token plugin finds the device). */
static const struct {
	const char *name;
	enum opt_id id;
	unsigned int flag;
} options[] = {
	{ "headless=", O_BOOL, TT_HEADLESS },
	{ "tpm2-device=", O_AUTO_DEVICE, TT_TPM2_DEVICE },
	{ "fido2-device=", O_AUTO_DEVICE, TT_FIDO2_DEVICE },
	{ "token-timeout=", O_TOKEN_TIMEOUT, 0 },
	{ "discard", O_FLAG, TT_DISCARD },
	{ "readonly", O_FLAG, TT_READONLY },
	{ "read-only", O_FLAG, TT_READONLY },
	{ "tries=", O_TRIES, 0 },
	{ "keyfile-timeout=", O_KEYFILE_TIMEOUT, 0 },
	{ "keyfile-offset=", O_KEYFILE_OFFSET, 0 },
	{ "keyfile-size=", O_KEYFILE_SIZE, 0 },
	{ "timeout=", O_TIMEOUT, 0 },
	{ "x-systemd.device-timeout=", O_DEVICE_TIMEOUT, 0 },
	{ "nofail", O_FLAG, TT_NOFAIL },
	{ "noauto", O_FLAG, TT_NOAUTO },
	{ "luks", O_FLAG, 0 },
	{ "no-read-workqueue", O_FLAG, TT_NO_READ_WQ },
	{ "no-write-workqueue", O_FLAG, TT_NO_WRITE_WQ },
};

static int parse_option(char *opt, struct tresor_entry *e, const char *fname,
			unsigned int lineno, char *err, size_t errlen)
{
	char *eq = strchr(opt, '=');
	size_t keylen = eq ? (size_t)(eq - opt) : strlen(opt);
	const char *val = eq ? eq + 1 : NULL;
	uint64_t v;
	size_t i;

	for (i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
		const char *n = options[i].name;
		size_t nl = strlen(n);
		int wants_val = n[nl - 1] == '=';

		if (wants_val)
			nl--;
		if (nl != keylen || strncmp(n, opt, nl) != 0)
			continue;
		if (options[i].id == O_BOOL && !val) {
			e->flags |= options[i].flag;
			return 0;
		}
		if (wants_val && !val) {
			seterr(err, errlen, fname, lineno,
			       "option '%.*s' needs a value (%s...)",
			       (int)keylen, opt, n);
			return -1;
		}
		if (!wants_val && val) {
			seterr(err, errlen, fname, lineno,
			       "option '%.*s' takes no value", (int)keylen, opt);
			return -1;
		}
		switch (options[i].id) {
		case O_FLAG:
			e->flags |= options[i].flag;
			return 0;
		case O_TRIES:
			if (parse_u64(val, 1000, &v))
				break;
			e->tries = (int)v;
			return 0;
		case O_KEYFILE_TIMEOUT:
			if (tt_parse_timespan(val, &e->keyfile_timeout_ms))
				break;
			return 0;
		case O_TIMEOUT:
			if (tt_parse_timespan(val, &e->timeout_ms))
				break;
			return 0;
		case O_DEVICE_TIMEOUT:
			if (tt_parse_timespan(val, &e->device_timeout_ms))
				break;
			return 0;
		case O_TOKEN_TIMEOUT:
			if (tt_parse_timespan(val, &e->token_timeout_ms))
				break;
			return 0;
		case O_BOOL:
			if (!strcmp(val, "yes") || !strcmp(val, "true") ||
			    !strcmp(val, "1") || !strcmp(val, "on")) {
				e->flags |= options[i].flag;
				return 0;
			}
			if (!strcmp(val, "no") || !strcmp(val, "false") ||
			    !strcmp(val, "0") || !strcmp(val, "off")) {
				e->flags &= ~options[i].flag;
				return 0;
			}
			break;
		case O_AUTO_DEVICE:
			if (strcmp(val, "auto")) {
				seterr(err, errlen, fname, lineno,
				       "option '%.*s' supports only the value "
				       "'auto' (the token plugin finds the "
				       "device), not '%s'", (int)keylen, opt,
				       val);
				return -1;
			}
			e->flags |= options[i].flag;
			return 0;
		case O_KEYFILE_OFFSET:
			if (parse_u64(val, UINT64_MAX >> 1, &v))
				break;
			e->keyfile_offset = v;
			return 0;
		case O_KEYFILE_SIZE:
			if (parse_u64(val, 8U << 20, &v) || v == 0)
				break;
			e->keyfile_size = (size_t)v;
			return 0;
		}
		seterr(err, errlen, fname, lineno,
		       "invalid value '%s' for option '%.*s'", val,
		       (int)keylen, opt);
		return -1;
	}
	seterr(err, errlen, fname, lineno, "unknown option '%s'", opt);
	return -1;
}

/* Split off the next blank-separated field; NULL at the end of the line. */
static char *next_field(char **p)
{
	char *s = *p, *start;

	while (*s == ' ' || *s == '\t')
		s++;
	if (!*s)
		return NULL;
	start = s;
	while (*s && *s != ' ' && *s != '\t')
		s++;
	if (*s)
		*s++ = '\0';
	*p = s;
	return start;
}

static int valid_name(const char *n)
{
	const char *p;

	if (!*n || strlen(n) > TT_NAME_MAX || !strcmp(n, ".") ||
	    !strcmp(n, ".."))
		return 0;
	for (p = n; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("-_.+#", *p))
			return 0;
	return 1;
}

static int valid_uuid(const char *u)
{
	const char *p;

	if (!*u || strlen(u) > 64)
		return 0;
	for (p = u; *p; p++)
		if (!isxdigit((unsigned char)*p) && *p != '-')
			return 0;
	return 1;
}

void tresor_entry_free(struct tresor_entry *e)
{
	free(e->name);
	free(e->device);
	free(e->keyfile);
	memset(e, 0, sizeof(*e));
}

int tresortab_parse_line(const char *line, unsigned int lineno,
			 const char *fname, struct tresor_entry *e,
			 char *err, size_t errlen)
{
	char *buf, *p, *name, *dev, *kf, *opts, *extra, *o, *save;
	size_t len;

	memset(e, 0, sizeof(*e));
	buf = strdup(line);
	if (!buf) {
		seterr(err, errlen, fname, lineno, "out of memory");
		return -1;
	}
	len = strlen(buf);
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	p = buf;
	name = next_field(&p);
	if (!name || name[0] == '#') {
		free(buf);
		return 0;
	}
	dev = next_field(&p);
	kf = next_field(&p);
	opts = next_field(&p);
	extra = next_field(&p);
	e->line = lineno;
	e->tries = TT_DEFAULT_TRIES;
	e->device_timeout_ms = TT_DEFAULT_DEVICE_TIMEOUT_MS;
	e->token_timeout_ms = TT_DEFAULT_TOKEN_TIMEOUT_MS;

	if (!valid_name(name)) {
		seterr(err, errlen, fname, lineno,
		       "invalid volume name '%s' (letters, digits and -_.+# "
		       "only)", name);
		goto fail;
	}
	if (!dev) {
		seterr(err, errlen, fname, lineno,
		       "missing device field after name '%s' (expected: name "
		       "device [keyfile [options]])", name);
		goto fail;
	}
	if (extra && extra[0] != '#') {
		seterr(err, errlen, fname, lineno,
		       "too many fields: '%s' (expected: name device [keyfile "
		       "[options]]; options are comma-separated, no blanks)",
		       extra);
		goto fail;
	}
	e->name = strdup(name);
	if (!strncmp(dev, "UUID=", 5)) {
		e->dev_kind = TT_DEV_UUID;
		e->device = strdup(dev + 5);
	} else if (!strncmp(dev, "PARTUUID=", 9)) {
		e->dev_kind = TT_DEV_PARTUUID;
		e->device = strdup(dev + 9);
	} else if (dev[0] == '/') {
		e->dev_kind = TT_DEV_PATH;
		e->device = strdup(dev);
	} else {
		seterr(err, errlen, fname, lineno,
		       "unsupported device '%s' (use a /dev path, UUID=<uuid> "
		       "or PARTUUID=<uuid>)", dev);
		goto fail;
	}
	if (!e->name || !e->device) {
		seterr(err, errlen, fname, lineno, "out of memory");
		goto fail;
	}
	if (e->dev_kind != TT_DEV_PATH && !valid_uuid(e->device)) {
		seterr(err, errlen, fname, lineno, "invalid UUID in '%s'", dev);
		goto fail;
	}
	if (kf && strcmp(kf, "none") && strcmp(kf, "-")) {
		if (kf[0] != '/') {
			seterr(err, errlen, fname, lineno,
			       "key file '%s' is not an absolute path (or "
			       "'none' to ask for a passphrase)", kf);
			goto fail;
		}
		e->keyfile = strdup(kf);
		if (!e->keyfile) {
			seterr(err, errlen, fname, lineno, "out of memory");
			goto fail;
		}
	}
	if (opts && strcmp(opts, "-") && strcmp(opts, "defaults")) {
		for (o = strtok_r(opts, ",", &save); o;
		     o = strtok_r(NULL, ",", &save)) {
			if (parse_option(o, e, fname, lineno, err, errlen))
				goto fail;
		}
	}
	if ((e->keyfile_offset || e->keyfile_size) && !e->keyfile) {
		seterr(err, errlen, fname, lineno,
		       "keyfile-offset/keyfile-size given but no key file");
		goto fail;
	}
	free(buf);
	return 1;
fail:
	free(buf);
	tresor_entry_free(e);
	return -1;
}

int tresortab_parse_file(FILE *f, const char *fname, struct tresortab *tab,
			 char *err, size_t errlen)
{
	char *line = NULL;
	size_t cap = 0;
	unsigned int lineno = 0;
	struct tresor_entry e;
	int r = 0;

	tab->entries = NULL;
	tab->n = 0;
	while (getline(&line, &cap, f) >= 0) {
		lineno++;
		r = tresortab_parse_line(line, lineno, fname, &e, err, errlen);
		if (r < 0)
			break;
		if (r == 0)
			continue;
		if (tresortab_find(tab, e.name)) {
			seterr(err, errlen, fname, lineno,
			       "volume name '%s' appears twice", e.name);
			tresor_entry_free(&e);
			r = -1;
			break;
		}
		{
			struct tresor_entry *n = realloc(tab->entries,
				(tab->n + 1) * sizeof(*n));
			if (!n) {
				seterr(err, errlen, fname, lineno,
				       "out of memory");
				tresor_entry_free(&e);
				r = -1;
				break;
			}
			tab->entries = n;
			tab->entries[tab->n++] = e;
		}
		r = 0;
	}
	free(line);
	if (r < 0) {
		tresortab_free(tab);
		return -1;
	}
	return 0;
}

int tresortab_load(const char *path, struct tresortab *tab, char *err,
		   size_t errlen)
{
	FILE *f = fopen(path, "re");
	int r;

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		tab->entries = NULL;
		tab->n = 0;
		return -1;
	}
	r = tresortab_parse_file(f, path, tab, err, errlen);
	fclose(f);
	return r;
}

const struct tresor_entry *tresortab_find(const struct tresortab *tab,
					  const char *name)
{
	size_t i;

	for (i = 0; i < tab->n; i++)
		if (!strcmp(tab->entries[i].name, name))
			return &tab->entries[i];
	return NULL;
}

void tresortab_free(struct tresortab *tab)
{
	size_t i;

	for (i = 0; i < tab->n; i++)
		tresor_entry_free(&tab->entries[i]);
	free(tab->entries);
	tab->entries = NULL;
	tab->n = 0;
}

const char *tt_token_type(const struct tresor_entry *e)
{
	unsigned int f = e->flags & (TT_TPM2_DEVICE | TT_FIDO2_DEVICE);

	if (f == TT_TPM2_DEVICE)
		return "systemd-tpm2";
	if (f == TT_FIDO2_DEVICE)
		return "systemd-fido2";
	return NULL;
}
