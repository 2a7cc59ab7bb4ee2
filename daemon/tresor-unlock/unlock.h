/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TRESOR_UNLOCK_H
#define TRESOR_UNLOCK_H

#include "askpass.h"
#include "tresortab.h"

struct unlock_opts {
	struct ask_opts ask;
	const char *tresor_dev;		/* default /dev/tresor */
	int keep_key;			/* keep the host key for the run */
};

struct format_opts {
	const char *device;
	const char *volume_key_from;	/* tresortab name or device path */
	const char *key_file;		/* new keyslot from this file */
	int sector_size;		/* 0 = libcryptsetup's choice */
	const char *pbkdf;		/* NULL = default */
	unsigned int pbkdf_iterations;	/* != 0: pbkdf2 without benchmark */
	int force;			/* overwrite an existing LUKS header */
};

struct check_opts {
	const char *root;	/* the root volume's tresortab name, or NULL */
	const char *crypttab;	/* check for volumes listed there too */
	int initramfs;		/* key files are not in the initramfs */
	int print_uuids;	/* print "uuid NAME LUKS-UUID" per entry */
};

/* Build-time check of one entry; returns the number of errors printed. */
int check_entry(const struct tresor_entry *e, const struct check_opts *c);

/* Runtime environment: udev or not (call once, before anything else). */
void unlock_init(void);

/* 1 if the entry's device is there now (no waiting), else 0. */
int entry_device_present(const struct tresor_entry *e);

/* Wait up to ms (never longer than the entry's device timeout) for the
 * entry's device; 1 when it is there, 0 if not. */
int wait_entry_device(const struct tresor_entry *e, long long ms);

/* Wipe the host key kept for the run (keep_key). */
void unlock_done(void);

/* Detach (remove) the mapping of entry NAME if it is a TRESOR mapping;
 * 0, or -1 with a message naming a foreign mapping. */
int detach_mapping(const char *name);

/* `status`: the key (0 loaded, 1 not) and one entry's mapping (0 active
 * on xts(tresor), 4 inactive, 1 a foreign mapping), a line each. */
int status_key(const char *tresor_dev);
int status_entry(const struct tresor_entry *e);
/* 1 if the device-mapper answers (root, dm_mod loaded). */
int dm_usable(void);

/* --debug: libcryptsetup's debug messages on. */
void unlock_debug(void);

/* Unlock one tresortab entry; 0 on success, -1 with a message printed. */
int unlock_entry(const struct tresor_entry *e, const struct unlock_opts *o);

/* Create a TRESOR-ready LUKS2 volume (aes-xts-plain64, 256-bit key). */
int format_volume(const struct format_opts *f, const struct tresortab *tab,
		  const struct unlock_opts *o);

#endif
