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
	bool ramcrypt_pending;		/* UNPROTECTED only because QEMU has no
					 * /dev/ramcrypt mapping yet and no
					 * anonymous block of RC_QEMU_GUEST_RAM_MIN:
					 * it may not have mapped its backend yet
					 * (the daemon re-checks within a grace) */
};

/*
 * Before the start. Guest RAM is protected when every memory backend
 * (-object memory-backend-*) is memory-backend-file with mem-path=/dev/ramcrypt
 * and share=on (there is no ramcrypt filesystem), and -machine
 * memory-backend=/ -numa memdev= uses only those; a plain -m with no
 * backend is anonymous RAM. Every -drive / -blockdev with a file must have
 * cache=none or cache.direct=on (or be read-only: readonly=on still reads
 * through the page cache, so it is refused too unless cache.direct=on).
 */
int rc_qemu_check_argv(char *const *argv, struct rc_qemu_result *ret);

/* Anonymous blocks reported by the process check: QEMU's own heap arenas
 * and thread stacks (8 MiB) stay below it, the default VGA's 16 MiB of
 * video RAM does not. */
#define RC_QEMU_ANON_THRESHOLD_DEFAULT (UINT64_C(16) << 20)
/* An anonymous (or shmem/memfd) block this large in a guest that has its
 * RAM on ramcrypt is taken for guest RAM outside it (memory hot-plug of
 * memory-backend-ram): UNPROTECTED. Glibc arenas stop at 64 MiB, default
 * video RAM at 16-64 MiB; hot-plugged DIMMs are 128 MiB or more. */
#define RC_QEMU_GUEST_RAM_MIN (UINT64_C(128) << 20)

/*
 * After the start, from root/proc/PID: cmdline (same rules, except that a
 * mem-path on a ramcryptfs mount of the process, from its mountinfo, counts
 * as /dev/ramcrypt does: libvirt puts guest RAM there), maps (every shared
 * mapping of /dev/ramcrypt or of a file whose device is such a ramcryptfs
 * mount is guest RAM on ramcrypt; anonymous private rw mappings of at least
 * threshold bytes are reported as anonymous RAM), fdinfo of every open
 * regular file that is a disk image (not a .so, not under /proc, /sys,
 * /dev): O_DIRECT in flags.
 */
int rc_qemu_check_process(const char *root, pid_t pid, uint64_t threshold,
			  struct rc_qemu_result *ret);
/*
 * Details of both checks (decided here, the daemon relies on them):
 * - argv[0] basename qemu-system-*, kvm, qemu-kvm: QEMU. A shell, an
 *   interpreter, a launcher (env, taskset, numactl, sudo, ...), a *.sh/.py
 *   name or an absolute path to a "#!" file: UNKNOWN. Anything else:
 *   NOT_QEMU (reason: RamCrypt protects guest RAM on ramcrypt regions only).
 * - argv UNPROTECTED, first failure in reason (+ " (and N more)"): a
 *   backend that is not memory-backend-file on /dev/ramcrypt with share=on;
 *   guest RAM without a backend (plain -m, QEMU's default 128 MiB, -numa
 *   mem=, -mem-path); memory-backend=/memdev= naming no backend; a drive
 *   file (-drive file= or any *.filename=, -blockdev filename=) without
 *   cache=none/directsync or the nearest cache.direct=on; -hda/-cdrom/
 *   -pflash/... and bare image arguments (always buffered); -readconfig
 *   and -set (not checked, so refused). -object/-blockdev/-device also
 *   take libvirt's JSON syntax (flattened: {"file":{"filename":..}} is
 *   file.filename=..); JSON it cannot parse is refused. PROTECTED's reason notes a default or explicit
 *   VGA's anonymous video RAM (reported, not refused).
 * - process: cmdline and exe; not QEMU → NOT_QEMU, still a shell/launcher
 *   → UNKNOWN (check the QEMU child). For QEMU: the argv rules; then maps:
 *   no shared /dev/ramcrypt mapping, a private one, or an anonymous
 *   (no file, or memfd/shm/hugetlbfs) writable non-exec block of at least
 *   RC_QEMU_GUEST_RAM_MIN → UNPROTECTED (no /dev/ramcrypt
 *   mapping and no such block: ramcrypt_pending, QEMU may not have mapped
 *   its backend yet); smaller blocks >= threshold are
 *   summed into anonymous_bytes and named in the reason only (rwx blocks,
 *   TCG's code buffer, are not guest RAM and not counted). Then every open
 *   disk image (a file the argv names, or a *.img/.qcow2/.raw/.iso/...
 *   regular file outside /proc /sys /dev /run /usr/lib /usr/share) must
 *   have O_DIRECT in fdinfo flags. threshold 0 = the default.
 *   -ESRCH if the process is gone.
 */
/* "protected", "not-qemu", "unknown", "unprotected" */
const char *rc_qemu_verdict_to_string(enum rc_qemu_verdict v);

#endif /* RC_QEMU_H */
