/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Internal declarations of ramcrypt.ko
 *
 * Locking: every region has one mutex (region->lock) that serialises its
 * faults, evictions, ioctls and the age scan; page crypto runs under it
 * (a mutex, so kernel_fpu_begin() is allowed), except a fault's decrypt
 * and evict-ahead's encryption of a batch of victims, which run unlocked
 * on frames off the clock ("loading", "encrypting", see
 * ramcrypt_window.c). Lock order:
 *   mmap_lock or VMA lock (fault) -> region->lock -> i_mmap_rwsem -> ptl
 *   a ramcryptfs inode's lock (ftruncate, hole punch) -> region->lock
 *   ramcrypt_regions_lock -> region->lock
 *   ramcrypt_policy_lock (open: policy lookup) is taken alone
 *   region->lock -> ramcrypt_orphans_lock (region close)
 *   a region's sysfs show (kernfs active reference) -> region->lock; the
 *   region's kobject is deleted (which waits for every show) before its
 *   region is torn down, and freed by its release
 * The page lock of a frame is only taken by the core fault code, by a
 * fault and page_mkwrite before they return the frame, and by a hole
 * punch (the truncate protocol, see ramcrypt_lock_frame()), never under
 * region->lock.
 */
#ifndef RAMCRYPT_INTERNAL_H
#define RAMCRYPT_INTERNAL_H

#include <linux/fs.h>
#include <linux/kobject.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include <uapi/ramcrypt.h>

/* Largest region: page indices must fit the 32 low bits of the tweak. */
#define RAMCRYPT_MAX_PAGES	(1ULL << 32)
#define RAMCRYPT_MAX_WINDOW	(1U << 20)
/* Tweak bits (see ramcrypt_window.c): region ids below 2^40, 55-bit versions */
#define RAMCRYPT_REGION_ID_BITS	40
#define RAMCRYPT_MAX_VERSION	((1ULL << 55) - 1)

enum ramcrypt_evict_cause {
	RAMCRYPT_EVICT_WINDOW,
	RAMCRYPT_EVICT_AGE,
	RAMCRYPT_EVICT_FLUSH,
	RAMCRYPT_EVICT_CLOSE,
};

/* One plaintext frame of the window: a page the module owns. */
struct ramcrypt_frame {
	/* region->clock, ->free or ->writeback; none while loading/encrypting */
	struct list_head node;
	struct page *page;
	pgoff_t index;			/* region page held, unless spare */
	u64 version;			/* encryptions of this page so far */
	/*
	 * May differ from the stored ciphertext: set when a writable PTE
	 * can exist (write fault, page_mkwrite), cleared only on load.
	 */
	bool dirty;
	/* Faulted in (by a CPU or through GUP/KVM) since the hand unmapped it */
	bool referenced;
	/* A spare frame still holding an evicted page (see ramcrypt_window.c) */
	bool stale;
	/* A spare frame holding old ciphertext: not secret, but not zeroed */
	bool unzeroed;
	/* Being encrypted in place by evict-ahead: a fault on it waits */
	bool encrypting;
	/* Being decrypted into by a fault, region->lock dropped: off the clock */
	bool loading;
	unsigned long last_access;	/* jiffies of its last fault */
};

/* What a region takes at open() from its opener's cgroup's policy */
struct ramcrypt_policy_values {
	u32 window_pages;
	u32 max_age_ms;
	u32 evict_ahead_pages;
	int crypto_cpu;			/* -1: any key holder */
};

/* Where a region's policy values came from (regions/<id>/policy_source) */
enum ramcrypt_policy_source {
	RAMCRYPT_POLICY_DEFAULT,	/* the module's parameters, read live */
	RAMCRYPT_POLICY_CGROUP,		/* its creator's cgroup (configfs) */
	RAMCRYPT_POLICY_DIRECTORY,	/* its ramcryptfs directory */
};

struct ramcrypt_region {
	struct mutex lock;
	struct list_head node;		/* ramcrypt_regions */
	u64 id;
	/* regions/<id>/ in sysfs; its release frees the region */
	struct kobject kobj;

	/*
	 * Fixed at open(): the opener's cgroup and tgid; the policy found
	 * for it (has_policy), else the module's parameters, read live.
	 */
	u64 cgroup_id;
	char *cgroup;			/* path in the cgroup v2 hierarchy */
	pid_t pid;
	bool has_policy;		/* policy_source is not DEFAULT */
	enum ramcrypt_policy_source policy_source;
	u32 max_age_ms;			/* if has_policy */
	u32 evict_ahead_pages;		/* if has_policy */
	/* Runs its page crypto and evict-ahead, -1: any key holder */
	int crypto_cpu;
	struct address_space mapping;	/* file->f_mapping of this region */
	u64 nr_pages;			/* 0 until fixed */
	/* Highest version of a page dropped by a hole punch (see punch) */
	u64 version_floor;
	/* A ramcryptfs file's: nr_pages is its i_size, mmap never sets it */
	bool sized_by_file;
	u32 window;			/* plaintext frame limit */

	struct xarray resident;		/* index -> struct ramcrypt_frame */
	struct xarray ciphertext;	/* index -> ciphertext page */
	struct list_head clock;		/* resident frames, clock order */
	struct list_head free;		/* spare frames, zeroed or stale */
	u64 nr_resident;
	u64 nr_free;			/* of which nr_stale not wiped yet */
	u64 nr_stale;
	u64 nr_ciphertext;
	u64 mem_pages;			/* frames + ciphertext pages */
	/* charged for them: the first mapper's, NULL before (or no memcg) */
	struct mem_cgroup *memcg;

	struct delayed_work scan;
	/* evict-ahead's worker on crypto_cpu: encrypts region->writeback */
	struct work_struct evict_ahead;
	/* dirty victims queued for evict-ahead's worker */
	struct list_head writeback;
	unsigned int nr_writeback;	/* queued or being encrypted */
	unsigned int nr_loading;	/* frames faults are decrypting into */
	unsigned int quiescing;		/* ioctls waiting for no busy frame */
	/* Bumped when frames stop being busy (encrypting, loading, queued) */
	unsigned long frames_done;
	wait_queue_head_t frame_wait;

	/* counters (under lock) */
	u64 faults;
	u64 evictions[RAMCRYPT_EVICT_CLOSE];
	u64 evictions_clean;		/* of those, no encryption needed */
	u64 refaults;			/* faults on resident frames */
	u64 evictions_ahead;		/* of the window's, by evict-ahead */
	u64 evict_ahead_raced;		/* page accessed while queued or encrypted */
	u64 skipped_referenced;
	u64 window_overflows;
	u64 crypto_errors;
	u64 crypto_cpu_errors;		/* of those: crypto CPU not valid */
};

/* ramcrypt_main.c: module parameters and global counters */
extern unsigned int ramcrypt_window_pages;
extern unsigned int ramcrypt_max_age_ms;
extern unsigned int ramcrypt_evict_ahead_pages;
extern int ramcrypt_crypto_cpu;
unsigned long ramcrypt_mem_cap_pages(void);
/* XORed into every memory tweak: [0] low half, [1] high half, bit 63 clear */
extern u64 ramcrypt_tweak_salt[2];

struct ramcrypt_global {
	atomic_long_t regions;
	atomic_long_t plaintext_pages;
	atomic_long_t ciphertext_pages;
	atomic_long_t mem_pages;
	atomic_long_t faults;
	atomic_long_t evictions[RAMCRYPT_EVICT_CLOSE];
	atomic_long_t evictions_clean;
	atomic_long_t refaults;
	atomic_long_t evictions_ahead;
	atomic_long_t evict_ahead_raced;
	atomic_long_t skipped_referenced;
	atomic_long_t window_overflows;
	atomic_long_t crypto_errors;
	atomic_long_t crypto_cpu_errors;
	atomic_long_t cap_failures;
	/* frames of closed regions still referenced (GUP), see orphans */
	atomic_long_t orphan_pages;
};

extern struct ramcrypt_global ramcrypt_global;
extern struct list_head ramcrypt_regions;
extern struct mutex ramcrypt_regions_lock;
extern struct kobject *ramcrypt_regions_kobj;

static inline u32 ramcrypt_max_age(const struct ramcrypt_region *region)
{
	return region->has_policy ? region->max_age_ms :
	       READ_ONCE(ramcrypt_max_age_ms);
}

static inline u32 ramcrypt_evict_ahead(const struct ramcrypt_region *region)
{
	return region->has_policy ? region->evict_ahead_pages :
	       READ_ONCE(ramcrypt_evict_ahead_pages);
}

/* ramcrypt_policy.c: /sys/kernel/config/ramcrypt/policies/ */
#define RAMCRYPT_MAX_AGE_MS	86400000U	/* a day */
int ramcrypt_policy_init(void);
void ramcrypt_policy_exit(void);
/*
 * @dir's values (a ramcryptfs directory's policy) if not NULL, else the
 * policy of current's cgroup or its nearest ancestor with one
 */
void ramcrypt_policy_take(struct ramcrypt_region *region,
			  const struct ramcrypt_policy_values *dir);

/* ramcrypt_main.c: /dev/ramcrypt's ioctls, file->private_data a region */
long ramcrypt_ioctl(struct file *file, unsigned int cmd, unsigned long arg);

/* ramcrypt_region.c */
struct ramcrypt_region *
ramcrypt_region_create(struct inode *inode,
		       const struct ramcrypt_policy_values *dir_policy);
void ramcrypt_region_destroy(struct ramcrypt_region *region);
int ramcrypt_region_mmap(struct ramcrypt_region *region,
			 struct vm_area_struct *vma);
int ramcrypt_region_set_size(struct ramcrypt_region *region, u64 bytes);

/* ramcrypt_window.c */
vm_fault_t ramcrypt_window_fault(struct ramcrypt_region *region,
				 struct vm_fault *vmf);
vm_fault_t ramcrypt_window_mkwrite(struct ramcrypt_region *region,
				   struct vm_fault *vmf);
int ramcrypt_window_set(struct ramcrypt_region *region, u32 pages);
int ramcrypt_window_flush(struct ramcrypt_region *region);
void ramcrypt_window_scan(struct work_struct *work);
void ramcrypt_window_rescan(struct ramcrypt_region *region);
void ramcrypt_window_evict_ahead(struct work_struct *work);
void ramcrypt_window_release(struct ramcrypt_region *region);
void ramcrypt_window_punch(struct ramcrypt_region *region, pgoff_t start,
			   pgoff_t end);
void ramcrypt_orphans_exit(void);
void ramcrypt_window_stats(struct ramcrypt_region *region,
			   struct ramcrypt_stats *st);
u64 ramcrypt_window_oldest_ms(struct ramcrypt_region *region);

#endif /* RAMCRYPT_INTERNAL_H */
