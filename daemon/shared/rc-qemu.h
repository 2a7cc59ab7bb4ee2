/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rc-qemu.h - is a QEMU guest's RAM (and disk I/O) kept off plaintext RAM?
 *
 * Two checks: before the start, on the unit's ExecStart= argv (from systemd's
 * D-Bus ExecStart property); after it, on the running process (/proc/PID).
 * Both fill a verdict; the daemon refuses or marks the unit unprotected.
 */
#ifndef RC_QEMU_H
#define RC_QEMU_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum rc_qemu_verdict {
	RC_QEMU_PROTECTED,	/* all guest RAM on ramcrypt, drives bypass the page cache */
	RC_QEMU_NOT_QEMU,	/* argv[0]/exe is not a qemu-system-* (or kvm) binary */
	RC_QEMU_UNKNOWN,	/* argv is a wrapper (shell script, ...): decide after start */
	RC_QEMU_UNPROTECTED,	/* reason says what: anonymous RAM, buffered drive, ... */
};

struct rc_qemu_result {
	enum rc_qemu_verdict verdict;
	char reason[512];		/* one sentence naming the option/drive/mapping */
	uint64_t ramcrypt_bytes;	/* guest RAM on ramcrypt regions */
	uint64_t anonymous_bytes;	/* largest anonymous RAM blocks, summed
					 * over those above the threshold */
};

/*
 * Before the start. Guest RAM is protected when every memory backend
 * (-object memory-backend-*) is memory-backend-file with mem-path=/dev/ramcrypt
 * (or a file under a ramcrypt mount) and share=on, and -machine
 * memory-backend=/ -numa memdev= uses only those; a plain -m with no
 * backend is anonymous RAM. Every -drive / -blockdev with a file must have
 * cache=none or cache.direct=on (or be read-only: readonly=on still reads
 * through the page cache, so it is refused too unless cache.direct=on).
 */
int rc_qemu_check_argv(char *const *argv, struct rc_qemu_result *ret);

/*
 * After the start, from root/proc/PID: cmdline (same rules), maps (every
 * shared mapping of /dev/ramcrypt or a ramcryptfs file is guest RAM on
 * ramcrypt; anonymous private rw mappings of at least threshold bytes are
 * reported as anonymous RAM), fdinfo of every open regular file that is a
 * disk image (not a .so, not under /proc, /sys, /dev): O_DIRECT in flags.
 */
int rc_qemu_check_process(const char *root, pid_t pid, uint64_t threshold,
			  struct rc_qemu_result *ret);

#endif /* RC_QEMU_H */
