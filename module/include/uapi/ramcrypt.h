/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * ramcrypt.h - userspace ABI of /dev/ramcrypt (ramcrypt.ko)
 *
 * Every open() of /dev/ramcrypt is one encrypted memory region. Its pages are
 * AES-XTS ciphertext in RAM (key in the CPU debug registers, see tresor.h)
 * except for a window of at most window_pages plaintext frames, which are
 * re-encrypted once idle for max_plaintext_age_ms.
 *
 * A region takes its window, age bound, evict-ahead reserve and crypto CPU
 * at open() from the policy of its opener's cgroup or of the nearest
 * ancestor with one, else the module's parameters. Policies live in
 * configfs (root only; mount -t configfs none /sys/kernel/config):
 *
 *   /sys/kernel/config/ramcrypt/policies/<name>/   mkdir / rmdir
 *     window_pages          1..2^20
 *     max_plaintext_age_ms  1..86400000
 *     crypto_cpu            -1 (any key holder) or an online CPU: the
 *                           region's page crypto runs on this CPU only (or
 *                           the faulting CPU if it is this one); if it is
 *                           no valid TRESOR key holder the fault gets
 *                           SIGBUS (counted in crypto_cpu_errors), no other
 *                           CPU ever handles the region's plaintext
 *     evict_ahead_pages     0..2^20 (at most a quarter of the window)
 *     cgroup_id             cgroup v2 id (st_ino of its directory), written
 *                           last and once: the policy is in force from then
 *                           on, every attribute frozen (EBUSY); one policy
 *                           per cgroup (EEXIST)
 *   Bad values: EINVAL and a kernel log line. Removing a policy leaves the
 *   regions that took it as they are.
 *
 * sysfs (/sys/kernel/ramcrypt/): totals over all regions; flush (root
 * writes "1": RAMCRYPT_IOC_FLUSH of every region); regions/<id>/ for each
 * live region, gone at its last close (all read-only): cgroup_id, cgroup
 * (path), pid (tgid of the opener), size, window_pages,
 * max_plaintext_age_ms, crypto_cpu, evict_ahead_pages, plaintext_pages,
 * encrypted_pages, faults, evictions (all kinds), oldest_plaintext_age_ms,
 * crypto_errors, crypto_cpu_errors.
 *
 * ramcryptfs (mount -t ramcryptfs none DIR; options mode, uid, gid): every
 * regular file is a region too, sized by ftruncate(); fallocate(
 * FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) drops whole pages. A
 * directory may carry a policy (RAMCRYPT_IOC_SET_DIR_POLICY on it: root,
 * once, while it is empty, else EPERM, EBUSY, ENOTEMPTY; bad values EINVAL
 * and a kernel log line): a file created in it takes that policy instead
 * of its creator's cgroup's, a directory created in it inherits it.
 * regions/<id>/policy_source says where a region's came from: "directory",
 * "cgroup" or "default" (the module's parameters).
 *
 * ioctl magic 0xD5, numbers 0x10-0x1f (tresor.h uses 0x00-0x0f).
 */
#ifndef _UAPI_LINUX_RAMCRYPT_H
#define _UAPI_LINUX_RAMCRYPT_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define RAMCRYPT_DEVICE_PATH	"/dev/ramcrypt"
/* 2: evictions_clean/_ahead, refaults; 3: policies, regions/ in sysfs,
 * crypto_cpu_errors
 */
#define RAMCRYPT_ABI_VERSION	3

struct ramcrypt_stats {
	__u32 abi_version;	/* RAMCRYPT_ABI_VERSION */
	__u32 window_pages;	/* plaintext frame limit of this region */
	__u64 size;		/* region size in bytes, 0 while unset */
	__u64 plaintext_pages;	/* frames holding plaintext now */
	__u64 encrypted_pages;	/* pages held as ciphertext now */
	__u64 faults;
	__u64 evictions_window;	/* evicted to make room in the window */
	__u64 evictions_age;	/* evicted by the age scan */
	__u64 evictions_flush;	/* evicted by RAMCRYPT_IOC_FLUSH */
	__u64 skipped_referenced; /* victims skipped: extra page references */
	__u64 oldest_plaintext_age_ms; /* since the idlest frame's last access */
	__u64 window_overflows;	/* faults that found every frame pinned */
	__u64 crypto_errors;	/* failed page encryptions/decryptions */
	__u64 memory_pages;	/* frames + ciphertext pages allocated */
	__u64 region_id;	/* in the upper tweak half, see ramcrypt_window.c */
	/* ABI version 2 (zero before): */
	__u64 evictions_clean;	/* of all evictions: pages only read, not encrypted */
	__u64 evictions_ahead;	/* of evictions_window: by evict-ahead */
	__u64 refaults;		/* faults on pages still resident */
	/* ABI version 3 (zero before): */
	__u64 crypto_cpu_errors; /* of crypto_errors: crypto CPU not valid */
};

#define RAMCRYPT_IOC_MAGIC	0xD5
#define RAMCRYPT_IOC_SET_SIZE	_IOW(RAMCRYPT_IOC_MAGIC, 0x10, __u64)
#define RAMCRYPT_IOC_SET_WINDOW	_IOW(RAMCRYPT_IOC_MAGIC, 0x11, __u32)
#define RAMCRYPT_IOC_FLUSH	_IO(RAMCRYPT_IOC_MAGIC, 0x12)
#define RAMCRYPT_IOC_STATS	_IOR(RAMCRYPT_IOC_MAGIC, 0x13, struct ramcrypt_stats)

#define RAMCRYPTFS_MAGIC	0x72636673	/* statfs f_type, "rcfs" */

/* A ramcryptfs directory's region policy, ranges as the configfs ones */
struct ramcrypt_dir_policy {
	__u32 window_pages;
	__u32 max_plaintext_age_ms;
	__u32 evict_ahead_pages;
	__s32 crypto_cpu;		/* -1: any key holder */
	__u64 reserved[2];		/* zero */
};

#define RAMCRYPT_IOC_SET_DIR_POLICY \
	_IOW(RAMCRYPT_IOC_MAGIC, 0x14, struct ramcrypt_dir_policy)
/* ENODATA: the directory has none */
#define RAMCRYPT_IOC_GET_DIR_POLICY \
	_IOR(RAMCRYPT_IOC_MAGIC, 0x15, struct ramcrypt_dir_policy)

#endif /* _UAPI_LINUX_RAMCRYPT_H */
