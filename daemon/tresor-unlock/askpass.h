/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TRESOR_ASKPASS_H
#define TRESOR_ASKPASS_H

#include <stddef.h>

#define PASSPHRASE_MAX	512

/* Debian's cryptroot fifo (cryptsetup-initramfs askpass, cryptroot-unlock
 * over dropbear-initramfs) */
#define PASSFIFO_PATH		"/lib/cryptsetup/passfifo"
/* While a passphrase is asked on the console and the fifo: NAME, TRIED,
 * TRIES and PID lines, for cryptroot-unlock (initramfs-tools) */
#define ASKING_PATH		"/run/tresor-unlock/asking"
/* systemd's password agent directory (systemd.io/PASSWORD_AGENTS) */
#define ASK_PASSWORD_DIR	"/run/systemd/ask-password"

struct ask_opts {
	int passphrase_fd;	/* >= 0: read lines from this fd (no prompt) */
	const char *console;	/* terminal to prompt on; NULL: stdin if it is
				 * a tty, else /dev/console */
	unsigned int timeout_ms; /* 0 = wait forever */
	const char *id;		/* the agent request's Id= */
	const char *name;	/* the volume (ASKING_PATH), or NULL */
	int attempt, tries;	/* this attempt (1..), tries= (0: unlimited) */
};

/*
 * Ask for a passphrase:
 *  - the passphrase fd if given;
 *  - --console: that terminal (and, without systemd, the fifo);
 *  - where systemd runs (/run/systemd/system): the terminal on stdin if
 *    there is one, else systemd's password agents (an ask file in
 *    ASK_PASSWORD_DIR answered on its socket by plymouth, the console
 *    agent, systemd-tty-ask-password-agent over SSH, ...);
 *  - else plymouth when it runs;
 *  - else the console with echo off and, at the same time, the fifo
 *    PASSFIFO_PATH (whatever is written to it until the writer closes it,
 *    up to a newline).
 * Passphrases are never cached (no kernel keyring, AcceptCached=0).
 * On success *pass is crypt_safe_alloc'd (free with crypt_safe_free) and 0
 * is returned; -1 with a message printed otherwise.
 */
int ask_passphrase(const char *prompt, const struct ask_opts *o,
		   char **pass, size_t *len);

#endif
