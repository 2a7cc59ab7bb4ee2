/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tresortab.h - parser of /etc/tresortab (crypttab syntax)
 *
 *   name  device  keyfile  options
 *
 * name: the /dev/mapper name; device: a path, UUID=<luks uuid> or
 * PARTUUID=<partition uuid>; keyfile: an absolute path, or "none"/"-" to ask
 * for the passphrase; options: comma-separated (see tresortab_options[]).
 * Fields are separated by blanks, "#" starts a comment line. Only name and
 * device are required.
 */
#ifndef TRESORTAB_H
#define TRESORTAB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TT_NAME_MAX	127

enum tt_dev_kind { TT_DEV_PATH, TT_DEV_UUID, TT_DEV_PARTUUID };

/* tresor_entry.flags */
#define TT_DISCARD		(1U << 0)
#define TT_READONLY		(1U << 1)
#define TT_NOFAIL		(1U << 2)
#define TT_NOAUTO		(1U << 3)
#define TT_NO_READ_WQ		(1U << 4)
#define TT_NO_WRITE_WQ		(1U << 5)
#define TT_HEADLESS		(1U << 6)	/* never ask (passphrase, PIN) */
#define TT_TPM2_DEVICE		(1U << 7)	/* tpm2-device=auto */
#define TT_FIDO2_DEVICE		(1U << 8)	/* fido2-device=auto */

#define TT_DEFAULT_TRIES		3
#define TT_DEFAULT_DEVICE_TIMEOUT_MS	90000U
#define TT_DEFAULT_TOKEN_TIMEOUT_MS	30000U	/* systemd-cryptsetup's */

struct tresor_entry {
	unsigned int line;		/* line number in the file */
	char *name;
	enum tt_dev_kind dev_kind;
	char *device;			/* path, or the UUID/PARTUUID value */
	char *keyfile;			/* NULL: ask for a passphrase */
	unsigned int flags;		/* TT_* */
	int tries;			/* passphrase attempts, 0 = unlimited */
	unsigned int keyfile_timeout_ms; /* wait for the key file; 0 = don't */
	unsigned int device_timeout_ms;	/* wait for the device */
	unsigned int timeout_ms;	/* passphrase prompt timeout, 0 = none */
	unsigned int token_timeout_ms;	/* wait for a token's device; 0 = don't */
	uint64_t keyfile_offset;
	size_t keyfile_size;		/* 0 = whole file */
};

struct tresortab {
	struct tresor_entry *entries;
	size_t n;
};

/*
 * Parse one line. Returns 1 and fills *e (free with tresor_entry_free) for
 * an entry, 0 for a blank or comment line, -1 on error with a message
 * (naming the line and what is wrong) in err.
 */
int tresortab_parse_line(const char *line, unsigned int lineno,
			 const char *fname, struct tresor_entry *e,
			 char *err, size_t errlen);

/* Parse a whole file; on error returns -1 with the first error in err. */
int tresortab_parse_file(FILE *f, const char *fname, struct tresortab *tab,
			 char *err, size_t errlen);
int tresortab_load(const char *path, struct tresortab *tab,
		   char *err, size_t errlen);

const struct tresor_entry *tresortab_find(const struct tresortab *tab,
					  const char *name);
void tresor_entry_free(struct tresor_entry *e);

/* The LUKS2 token type the entry restricts tokens to ("systemd-tpm2" for
 * tpm2-device=auto alone, "systemd-fido2" for fido2-device=auto alone),
 * or NULL: any token. */
const char *tt_token_type(const struct tresor_entry *e);
void tresortab_free(struct tresortab *tab);

/* "10s", "500ms", "2min", "1h", "5" (seconds) -> ms; -1 if invalid. */
int tt_parse_timespan(const char *s, unsigned int *ms);

#endif
