/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * tresor.h - userspace ABI of /dev/tresor (tresor.ko)
 *
 * The host disk key lives only in the debug registers DR0-DR3 of key-holding
 * CPUs. This header is the only interface to it: the key goes in once
 * (TRESOR_IOC_SET_KEY) and never comes back out.
 *
 * Key layout (AES-128-XTS, as LUKS2 stores aes-xts-plain64 with a 256-bit
 * key): bytes 0-15 are the data key K1 (DR0:DR1), bytes 16-31 the tweak key
 * K2 (DR2:DR3), each register holding a little-endian u64.
 *
 * ioctl magic 0xD5, numbers 0x00-0x0f (ramcrypt.h uses 0x10-0x1f).
 */
#ifndef _UAPI_LINUX_TRESOR_H
#define _UAPI_LINUX_TRESOR_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define TRESOR_DEVICE_PATH	"/dev/tresor"
#define TRESOR_KEY_SIZE		32
#define TRESOR_ABI_VERSION	1

/* Largest CPU number + 1 that TRESOR_IOC_SET_HOLDERS can name. */
#define TRESOR_MAX_CPUS		1024

struct tresor_key {
	__u32 size;		/* must be TRESOR_KEY_SIZE */
	__u32 flags;		/* must be 0 */
	__u8 key[TRESOR_KEY_SIZE];
};

/* tresor_status.flags */
#define TRESOR_STATUS_KEY_LOADED	(1U << 0)
/*
 * the key was loaded with tresor.allow_pebs_xmm=1 on a CPU whose PMU can
 * write XMM registers (the round keys during a request) to RAM
 */
#define TRESOR_STATUS_PMU_XMM_EXPOSED	(1U << 1)

struct tresor_status {
	__u32 abi_version;	/* TRESOR_ABI_VERSION */
	__u32 flags;		/* TRESOR_STATUS_* */
	__u32 nr_holders;	/* CPUs in the key-holder mask */
	__u32 nr_valid_holders;	/* holders whose key passed its last check */
	__u64 check_failures;	/* key checks that failed (CPU marked invalid) */
	__u64 forwarded_requests; /* requests run on another CPU */
	__u64 peer_copies;	/* keys copied to a CPU coming online */
	__u64 requests;		/* cipher requests served */
	__u64 reserved[8];	/* zero */
};

struct tresor_holders {
	__u32 nr_cpus;		/* bits used in mask, <= TRESOR_MAX_CPUS */
	__u32 flags;		/* must be 0 */
	__u64 mask[TRESOR_MAX_CPUS / 64];
};

/*
 * TRESOR_IOC_SET_KEY errors (every refusal also logs a line saying why):
 *   EINVAL	size is not TRESOR_KEY_SIZE, flags is not 0, or an all-zero key
 *   EEXIST	a key is already loaded
 *   EBUSY	a hardware breakpoint slot of a holder CPU is in use
 *   EIO	a holder CPU does not hold the key after loading it
 *   EOPNOTSUPP	CPUID reports a hypervisor (X86_FEATURE_HYPERVISOR): it saves
 *		DR0-DR3 to its own RAM on VM exits. tresor.allow_hypervisor=1
 *		accepts that (test benches).
 *   ENOPKG	the tresor_showregs livepatch is not loaded, or its transition
 *		is not done: an oops or WARN would print DR0-DR3 to the log.
 *		Load it and wait for
 *		/sys/kernel/livepatch/tresor_showregs/transition to read 0;
 *		tresor.allow_no_showregs=1 accepts the risk.
 *   EKEYREJECTED the CPU's PMU can write XMM registers, where the round keys
 *		are during a request, to RAM (Intel adaptive PEBS, an event
 *		with PERF_SAMPLE_REGS_INTR) and kernel lockdown does not
 *		forbid that: boot with lockdown=confidentiality, or accept it
 *		with tresor.allow_pebs_xmm=1 (TRESOR_STATUS_PMU_XMM_EXPOSED).
 *   EPERM	the caller lacks CAP_SYS_ADMIN (every ioctl)
 */
#define TRESOR_IOC_MAGIC	0xD5
#define TRESOR_IOC_SET_KEY	_IOW(TRESOR_IOC_MAGIC, 0x00, struct tresor_key)
#define TRESOR_IOC_CLEAR_KEY	_IO(TRESOR_IOC_MAGIC, 0x01)
#define TRESOR_IOC_GET_STATUS	_IOR(TRESOR_IOC_MAGIC, 0x02, struct tresor_status)
#define TRESOR_IOC_SET_HOLDERS	_IOW(TRESOR_IOC_MAGIC, 0x03, struct tresor_holders)

#endif /* _UAPI_LINUX_TRESOR_H */
