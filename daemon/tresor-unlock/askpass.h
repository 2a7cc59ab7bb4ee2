/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TRESOR_ASKPASS_H
#define TRESOR_ASKPASS_H

#include <stddef.h>

#define PASSPHRASE_MAX	512

struct ask_opts {
	int passphrase_fd;	/* >= 0: read lines from this fd (no prompt) */
	const char *console;	/* terminal to prompt on; NULL: stdin if it is
				 * a tty, else /dev/console */
	unsigned int timeout_ms; /* 0 = wait forever */
	const char *id;		/* systemd-ask-password --id */
};

/*
 * Ask for a passphrase: the passphrase fd if given, else plymouth when it
 * runs, else systemd-ask-password when systemd runs, else the console with
 * echo off. On success *pass is crypt_safe_alloc'd (free with
 * crypt_safe_free) and 0 is returned; -1 with a message printed otherwise.
 */
int ask_passphrase(const char *prompt, const struct ask_opts *o,
		   char **pass, size_t *len);

#endif
