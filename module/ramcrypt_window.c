// SPDX-License-Identifier: GPL-2.0
/*
 * The plaintext window of a region
 *
 * A region page is in one of three states:
 *   - never written: no storage, reads as zeros;
 *   - encrypted: a ciphertext page in region->ciphertext, its version (how
 *     many times it was encrypted) in page_private();
 *   - resident: plaintext in a window frame (a page the module owns), on
 *     region->clock (unless loading, see below) and in region->resident,
 *     mapped by the core from the page the fault handler returns. Its
 *     ciphertext, if any, stays stored.
 * A fault decrypts into a frame (or zero-fills one) and returns it. When the
 * window is full, a victim chosen by CLOCK is unmapped everywhere; if it was
 * dirty (see below) it is encrypted over its ciphertext with the next
 * version, if clean its stored ciphertext is still its content and nothing
 * is encrypted. A victim still referenced after the unmap (GUP in flight)
 * is skipped. The age scan evicts frames idle for max_plaintext_age_ms.
 *
 * The decrypt runs with region->lock dropped, so the faults of several
 * vCPUs (threads) decrypt at once: the frame is "loading", in
 * region->resident and counted in the window but off the clock, so no
 * eviction takes it, and a fault on the same page waits for it. Its
 * ciphertext page stays put meanwhile: only an eviction of that page
 * replaces it.
 *
 * A dirty victim is encrypted in place, and its page becomes the page's
 * ciphertext page; the frame takes the old ciphertext page (or a new page)
 * instead: a spare frame "unzeroed", not secret. Nothing is copied, and
 * no dirty eviction leaves plaintext behind.
 *
 * Spare frames: a clean frame evicted for room in the window is not wiped
 * at once but put first on region->free as "stale" (or, on the fault path,
 * taken over directly), because the next load overwrites it anyway; wiping
 * is a page-sized store the fault would pay for nothing. Stale frames
 * count in plaintext_pages; resident plus spare frames never exceed the
 * window, so the size bound holds for them too, and every age scan (each
 * max_plaintext_age_ms / 2), FLUSH, and region close wipe them, so does an
 * eviction by age or FLUSH itself: the time bound holds as well.
 *
 * Dirty tracking: the mapping is write-notify (vm_ops->page_mkwrite), so
 * the core installs read-only PTEs for read faults and a writable PTE only
 * after a write fault or page_mkwrite, both of which mark the frame dirty.
 * GUP with FOLL_WRITE (O_DIRECT into the region, KVM mapping guest RAM
 * writable in hva_to_pfn, process_vm_writev) faults for write the same way,
 * and KVM only maps a page writable in its own page tables if the host PTE
 * is writable. A frame is marked clean only when it is loaded.
 *
 * CLOCK: a frame is referenced when a fault maps it. The hand gives a
 * referenced frame a second chance by unmapping it (unmap_mapping_range():
 * PTEs of every process under their page table locks, with the TLB flush,
 * and KVM's mappings through the MMU notifiers) and clearing the flag; any
 * later access, by a CPU or by KVM on behalf of a guest, faults the frame
 * back in (no crypto: it is still resident) and marks it referenced again.
 * A frame not referenced when the hand comes back round is evicted.
 *
 * Evict-ahead (evict_ahead_pages > 0) keeps a reserve of spare frames,
 * reserve = min(evict_ahead_pages, window / 4), so a fault usually finds a
 * spare frame and pays only its decrypt. When fewer than half the
 * reserve is free or on its way, the fault path picks up to
 * RAMCRYPT_PICK_BATCH victims by the same CLOCK and unmaps them (one unmap
 * per run of consecutive pages, on the faulting CPU: no TLB-flush IPI to
 * it), evicts the clean ones, and queues the dirty ones on
 * region->writeback for a work item on crypto_cpu. A queued frame
 * accessed before the worker takes it goes back to the clock unencrypted.
 * The worker marks the frames it takes "encrypting" and encrypts them in
 * place with region->lock dropped, so faults on other pages proceed; a
 * fault on such a page waits until a batch is done (region->frames_done;
 * the frame is unmapped and unpinned, so nothing else reaches it). Back
 * under the lock their pages are swapped as above. In place also because
 * the faulting CPU then never writes a page the crypto CPU has just read:
 * measured under TCG, decrypting into a frame the worker had just
 * encrypted from cost ~6 us more per fault (its cache lines still held by
 * the other core). Resident plus spare frames never exceed the window.
 * FLUSH, a window change and the fault path, if every frame on the clock
 * is pinned, wait for the busy frames (queued, encrypting, loading).
 *
 * Tweak (XTS IV, 16 bytes little endian): low 64 bits
 * (version[31:0] << 32) | page_index, high 64 bits
 * (1 << 63) | (version[54:32] << 40) | region_id, both halves then XORed
 * with this load's random salt (ramcrypt_tweak_salt, bit 127 clear): never
 * a plain64 disk sector (bit 127 stays set, a disk tweak's upper half is
 * zero), different per region (ids below 2^40), page (below 2^32) and
 * re-encryption (a clean eviction encrypts nothing, so it needs no
 * version); XOR with one constant keeps tweaks distinct within a load.
 * Region ids restart at 1 on every load: the salt (127 random bits) makes
 * the tweaks of two loads or boots under the same key meet only by chance. A 55-bit version does not wrap: 2^55 encryptions of
 * one page would take a thousand years at a million a second; the page
 * would then stay plaintext rather than reuse a tweak.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/bitops.h>
#include <linux/jiffies.h>
#include <linux/memcontrol.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pagemap.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/version.h>
#include <linux/workqueue.h>

#include "ramcrypt_internal.h"
#include "tresor_api.h"

static void ramcrypt_iv(const struct ramcrypt_region *region, pgoff_t index,
			u64 version, __le64 iv[2])
{
	/* version[54:32] fits between the region id and bit 63 */
	BUILD_BUG_ON(RAMCRYPT_REGION_ID_BITS + 55 - 32 > 63);
	BUILD_BUG_ON(RAMCRYPT_MAX_VERSION >> 55);
	iv[0] = cpu_to_le64(((version << 32) | (index & 0xffffffffULL)) ^
			    ramcrypt_tweak_salt[0]);
	iv[1] = cpu_to_le64((BIT_ULL(63) |
			     (version >> 32) << RAMCRYPT_REGION_ID_BITS |
			     region->id) ^ ramcrypt_tweak_salt[1]);
}

/* The version a dirty frame's page is encrypted with next, 0 if none left */
static u64 ramcrypt_next_version(const struct ramcrypt_frame *frame)
{
	return frame->version < RAMCRYPT_MAX_VERSION ? frame->version + 1 : 0;
}

static void ramcrypt_count(struct ramcrypt_region *region, u64 *counter,
			   atomic_long_t *global)
{
	lockdep_assert_held(&region->lock);
	(*counter)++;
	atomic_long_inc(global);
}

/* Charge one page against max_memory_mb; false (and a warning) if over. */
static bool ramcrypt_charge(struct ramcrypt_region *region)
{
	unsigned long cap = ramcrypt_mem_cap_pages();

	lockdep_assert_held(&region->lock);
	if (atomic_long_inc_return(&ramcrypt_global.mem_pages) > cap) {
		atomic_long_dec(&ramcrypt_global.mem_pages);
		atomic_long_inc(&ramcrypt_global.cap_failures);
		pr_warn_ratelimited("region %llu: memory cap reached (%lu pages, max_memory_mb), faulting process gets SIGBUS\n",
				    region->id, cap);
		return false;
	}
	region->mem_pages++;
	return true;
}

static void ramcrypt_uncharge(struct ramcrypt_region *region)
{
	lockdep_assert_held(&region->lock);
	region->mem_pages--;
	atomic_long_dec(&ramcrypt_global.mem_pages);
}

/*
 * A zeroed page for the region (frame or ciphertext) within the memory cap,
 * charged to the memory cgroup of the process that first mapped the region
 * whoever allocates it (a vCPU thread, evict-ahead's worker): guest RAM
 * counts against its VM's cgroup as anonymous memory would. -ENOSPC over
 * the cap, -ENOMEM out of memory (the cgroup's too). Evict-ahead's worker
 * passes __GFP_NORETRY: it must not reclaim or OOM-kill with region->lock
 * held while the vCPUs wait for it; it just keeps the page resident.
 */
static struct page *ramcrypt_alloc_page(struct ramcrypt_region *region,
					gfp_t extra)
{
	struct mem_cgroup *old;
	struct page *page;

	if (!ramcrypt_charge(region))
		return ERR_PTR(-ENOSPC);
	old = set_active_memcg(region->memcg);
	page = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO | extra);
	set_active_memcg(old);
	if (!page) {
		ramcrypt_uncharge(region);
		return ERR_PTR(-ENOMEM);
	}
	return page;
}

/* A fault's error for -ENOSPC (the module's cap) or another error */
static vm_fault_t ramcrypt_fault_error(int err)
{
	return err == -ENOMEM ? VM_FAULT_OOM : VM_FAULT_SIGBUS;
}

/* Wipe and free a page the region owns (frame or ciphertext). */
static void ramcrypt_free_page(struct ramcrypt_region *region,
			       struct page *page)
{
	clear_page(page_address(page));
	set_page_private(page, 0);
	__free_page(page);
	ramcrypt_uncharge(region);
}

/* A stale frame is about to be wiped or overwritten: uncount it. */
static void ramcrypt_unstale(struct ramcrypt_region *region,
			     struct ramcrypt_frame *frame)
{
	lockdep_assert_held(&region->lock);
	if (frame->stale) {
		frame->stale = false;
		region->nr_stale--;
		atomic_long_dec(&ramcrypt_global.plaintext_pages);
	}
}

/*
 * A spare frame's old content (stale plaintext or old ciphertext) is being
 * overwritten: no longer stale, nor unzeroed.
 */
static void ramcrypt_overwrite_frame(struct ramcrypt_region *region,
				     struct ramcrypt_frame *frame)
{
	ramcrypt_unstale(region, frame);
	frame->unzeroed = false;
}

/* Zero a spare frame (stale plaintext or old ciphertext in it). */
static void ramcrypt_wipe_frame(struct ramcrypt_region *region,
				struct ramcrypt_frame *frame)
{
	clear_page(page_address(frame->page));
	ramcrypt_overwrite_frame(region, frame);
}

/* Wipe the stale spare frames (the age scan, FLUSH). */
static void ramcrypt_wipe_stale(struct ramcrypt_region *region)
{
	struct ramcrypt_frame *frame;

	lockdep_assert_held(&region->lock);
	list_for_each_entry(frame, &region->free, node) {
		if (!region->nr_stale)
			break;
		if (frame->stale)
			ramcrypt_wipe_frame(region, frame);
	}
}

static int ramcrypt_mapcount(struct page *page)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)
	return folio_mapcount(page_folio(page));
#else
	return page_mapcount(page);
#endif
}

/*
 * Every PTE that maps a frame holds a reference to it (and drops it only
 * after the TLB flush), and KVM maps a page only while a host PTE maps it:
 * a frame with our reference only is mapped nowhere. Locked counts as
 * mapped: the core hands a fault's reference to the PTE before it unlocks
 * the page (do_shared_fault), so an unmap in between leaves a locked page
 * we must neither swap nor free; nobody else can lock it without a
 * reference.
 */
static bool ramcrypt_frame_mapped(struct ramcrypt_frame *frame)
{
	return page_count(frame->page) != 1 || PageLocked(frame->page);
}

static void ramcrypt_unmap_pages(struct ramcrypt_region *region,
				 pgoff_t index, pgoff_t nr)
{
	unmap_mapping_range(&region->mapping, (loff_t)index << PAGE_SHIFT,
			    (loff_t)nr << PAGE_SHIFT, 1);
}

static void ramcrypt_unmap(struct ramcrypt_region *region,
			   struct ramcrypt_frame *frame)
{
	lockdep_assert_held(&region->lock);
	if (ramcrypt_frame_mapped(frame))
		ramcrypt_unmap_pages(region, frame->index, 1);
}

/*
 * Second chances given in a row to frames of consecutive pages (what a
 * sequential access pattern leaves on the clock) are one unmap of the run:
 * one walk, one TLB flush, one MMU notifier call. Flushed before any
 * eviction and before region->lock is dropped.
 */
struct ramcrypt_unmap_batch {
	pgoff_t start, end;
};

static void ramcrypt_unmap_flush(struct ramcrypt_region *region,
				 struct ramcrypt_unmap_batch *b)
{
	lockdep_assert_held(&region->lock);
	if (b->end > b->start)
		ramcrypt_unmap_pages(region, b->start, b->end - b->start);
	b->start = 0;
	b->end = 0;
}

/* Add a frame to the batch: a mapped one outside the run flushes it. */
static void ramcrypt_unmap_add(struct ramcrypt_region *region,
			       struct ramcrypt_frame *frame,
			       struct ramcrypt_unmap_batch *b)
{
	lockdep_assert_held(&region->lock);
	if (b->end > b->start && frame->index == b->end) {
		b->end++;
		return;
	}
	if (!ramcrypt_frame_mapped(frame))
		return;
	ramcrypt_unmap_flush(region, b);
	b->start = frame->index;
	b->end = frame->index + 1;
}

/* CLOCK's second chance: unmapped, the next access marks it again. */
static void ramcrypt_second_chance(struct ramcrypt_region *region,
				   struct ramcrypt_frame *frame,
				   struct ramcrypt_unmap_batch *b)
{
	frame->referenced = false;
	ramcrypt_unmap_add(region, frame, b);
}

/*
 * The page a dirty frame's page is swapped for once it is encrypted in
 * place: @index's ciphertext page, or else a new charged page (*new set)
 * with its ciphertext slot reserved, so that the swap cannot fail; an
 * ERR_PTR as ramcrypt_alloc_page() says.
 */
static struct page *ramcrypt_spare_get(struct ramcrypt_region *region,
				       pgoff_t index, bool *new, gfp_t extra)
{
	struct page *page = xa_load(&region->ciphertext, index);
	struct mem_cgroup *old;
	int ret;

	lockdep_assert_held(&region->lock);
	*new = !page;
	if (page)
		return page;
	/* Zeroed: it becomes a spare frame, never any kernel's old data */
	page = ramcrypt_alloc_page(region, extra);
	if (IS_ERR(page))
		return page;
	old = set_active_memcg(region->memcg);
	ret = xa_reserve(&region->ciphertext, index, GFP_KERNEL | extra);
	set_active_memcg(old);
	if (ret) {
		ramcrypt_free_page(region, page);
		return ERR_PTR(ret);
	}
	return page;
}

/* The encryption failed: give a new spare page back. */
static void ramcrypt_spare_put(struct ramcrypt_region *region, pgoff_t index,
			       struct page *spare, bool new)
{
	lockdep_assert_held(&region->lock);
	if (new) {
		xa_release(&region->ciphertext, index);
		ramcrypt_free_page(region, spare);
	}
}

/*
 * A dirty frame's page now holds its page's ciphertext of @version
 * (encrypted in place): store it as the ciphertext page, and give the frame
 * @spare, which holds old ciphertext or zeros, no plaintext ("unzeroed").
 */
static void ramcrypt_swap_ciphertext(struct ramcrypt_region *region,
				     struct ramcrypt_frame *frame,
				     struct page *spare, bool new, u64 version)
{
	struct page *ct = frame->page;

	lockdep_assert_held(&region->lock);
	ClearPageDirty(ct);
	set_page_private(ct, version);
	/*
	 * Replaces the old page or fills the reserved slot: nothing to
	 * allocate, so this cannot fail (the ciphertext would be lost).
	 */
	WARN_ON_ONCE(xa_is_err(xa_store(&region->ciphertext, frame->index, ct,
					GFP_NOWAIT)));
	if (new) {
		region->nr_ciphertext++;
		atomic_long_inc(&ramcrypt_global.ciphertext_pages);
	}
	frame->page = spare;
	set_page_private(spare, (unsigned long)frame);
	frame->version = version;
	/* The caller evicts the frame (ramcrypt_evict_finish: not dirty) */
	frame->unzeroed = true;
}

/* A page cipher refused: the region's crypto CPU is no valid key holder */
static void ramcrypt_count_cpu_error(struct ramcrypt_region *region, int ret)
{
	if (ret != -EXDEV)
		return;
	ramcrypt_count(region, &region->crypto_cpu_errors,
		       &ramcrypt_global.crypto_cpu_errors);
	pr_warn_ratelimited("region %llu: crypto CPU %d is no valid TRESOR key holder, its page crypto runs nowhere else\n",
			    region->id, region->crypto_cpu);
}

static void ramcrypt_crypto_error(struct ramcrypt_region *region,
				  pgoff_t index, int ret)
{
	ramcrypt_count(region, &region->crypto_errors,
		       &ramcrypt_global.crypto_errors);
	ramcrypt_count_cpu_error(region, ret);
	pr_warn_ratelimited("region %llu: cannot encrypt page %lu (%d), it stays plaintext\n",
			    region->id, index, ret);
}

/*
 * Encrypt a dirty, unmapped frame in place and swap its page for a spare
 * one (see ramcrypt_swap_ciphertext). On error tresor writes nothing: the
 * frame keeps its plaintext, the stored ciphertext its old version.
 */
static int ramcrypt_store(struct ramcrypt_region *region,
			  struct ramcrypt_frame *frame, gfp_t extra)
{
	void *page = page_address(frame->page);
	u64 version = ramcrypt_next_version(frame);
	struct page *spare;
	__le64 iv[2];
	bool new;
	int ret;

	lockdep_assert_held(&region->lock);
	if (!version) {
		ramcrypt_crypto_error(region, frame->index, -EOVERFLOW);
		return -EOVERFLOW;
	}
	spare = ramcrypt_spare_get(region, frame->index, &new, extra);
	if (IS_ERR(spare))
		return PTR_ERR(spare);
	ramcrypt_iv(region, frame->index, version, iv);
	ret = tresor_encrypt_page_on(page, page, (u8 *)iv, region->crypto_cpu);
	memzero_explicit(iv, sizeof(iv));
	if (ret) {
		ramcrypt_crypto_error(region, frame->index, ret);
		ramcrypt_spare_put(region, frame->index, spare, new);
		return ret;
	}
	ramcrypt_swap_ciphertext(region, frame, spare, new, version);
	return 0;
}

/* Referenced beyond its mappings and our reference: GUP in flight. */
static bool ramcrypt_frame_pinned(struct ramcrypt_frame *frame)
{
	return page_count(frame->page) > 1 + ramcrypt_mapcount(frame->page);
}

static void ramcrypt_count_skipped(struct ramcrypt_region *region)
{
	ramcrypt_count(region, &region->skipped_referenced,
		       &ramcrypt_global.skipped_referenced);
}

/*
 * Unmap a frame everywhere unless it is pinned beyond its mappings (GUP in
 * flight); false (counted) if it is pinned or still mapped. True: only our
 * reference is left, nobody (GUP, O_DIRECT, KVM) can write it until a fault
 * maps it again.
 */
static bool ramcrypt_unmap_unpinned(struct ramcrypt_region *region,
				    struct ramcrypt_frame *frame)
{
	lockdep_assert_held(&region->lock);
	if (!ramcrypt_frame_pinned(frame)) {
		ramcrypt_unmap(region, frame);
		if (!ramcrypt_frame_mapped(frame))
			return true;
	}
	ramcrypt_count_skipped(region);
	return false;
}

static void ramcrypt_evict_finish(struct ramcrypt_region *region,
				  struct ramcrypt_frame *frame,
				  enum ramcrypt_evict_cause cause,
				  struct ramcrypt_frame **reuse);

/*
 * Evict one resident frame: unmap it everywhere, encrypt it if dirty, and
 * put the frame on the free list, or, if @reuse points to NULL, hand it
 * over there (stale or unzeroed): the caller overwrites or wipes it before
 * it drops region->lock.
 * Returns 0, -EBUSY if the page is still referenced (left resident,
 * unmapped: the next access faults it back in), or another error.
 */
static int ramcrypt_evict(struct ramcrypt_region *region,
			  struct ramcrypt_frame *frame,
			  enum ramcrypt_evict_cause cause,
			  struct ramcrypt_frame **reuse)
{
	int ret;

	lockdep_assert_held(&region->lock);
	if (!ramcrypt_unmap_unpinned(region, frame))
		return -EBUSY;

	if (frame->dirty) {
		/*
		 * The age scan runs in a kworker with region->lock held: one
		 * round of reclaim at most and no memcg OOM there (the OOM
		 * victim, the VMM, may be waiting for that lock); it tries
		 * again next scan.
		 */
		gfp_t extra = cause == RAMCRYPT_EVICT_AGE ?
			      __GFP_NORETRY | __GFP_NOWARN : 0;

		ret = ramcrypt_store(region, frame, extra);
		if (ret)
			return ret;
	} else {
		/* Its stored ciphertext (or no page, if never written) holds. */
		ramcrypt_count(region, &region->evictions_clean,
			       &ramcrypt_global.evictions_clean);
	}
	ramcrypt_evict_finish(region, frame, cause, reuse);
	return 0;
}

/* The frame of an evicted page (unmapped, stored): off the window. */
static void ramcrypt_evict_finish(struct ramcrypt_region *region,
				  struct ramcrypt_frame *frame,
				  enum ramcrypt_evict_cause cause,
				  struct ramcrypt_frame **reuse)
{
	lockdep_assert_held(&region->lock);
	xa_erase(&region->resident, frame->index);
	ClearPageDirty(frame->page);
	frame->dirty = false;
	frame->referenced = false;
	region->nr_resident--;
	if (frame->unzeroed) {
		/* Its page was swapped for old ciphertext: no plaintext left */
		atomic_long_dec(&ramcrypt_global.plaintext_pages);
	} else if (cause == RAMCRYPT_EVICT_WINDOW) {
		/* Still plaintext: counted in plaintext_pages until wiped */
		frame->stale = true;
		region->nr_stale++;
	} else {
		clear_page(page_address(frame->page));
		atomic_long_dec(&ramcrypt_global.plaintext_pages);
	}
	if (reuse && !*reuse) {
		list_del(&frame->node);
		*reuse = frame;
	} else {
		/* Stale frames first: the next load overwrites one. */
		list_move(&frame->node, &region->free);
		region->nr_free++;
	}
	if (cause < RAMCRYPT_EVICT_CLOSE)
		ramcrypt_count(region, &region->evictions[cause],
			       &ramcrypt_global.evictions[cause]);
}

/*
 * The CLOCK hand (list head) moved to the next frame due for eviction: a
 * frame referenced since the last pass gets a second chance (unmapped in
 * the batch, flag cleared, moved behind the hand) while more than one turn
 * of *budget is left; @keep (the frame a fault is returning) is passed
 * over as it is. The batch is flushed before a victim is returned; NULL
 * when the budget or the clock runs out (the caller flushes then).
 */
static struct ramcrypt_frame *
ramcrypt_clock_hand(struct ramcrypt_region *region, u64 *budget,
		    struct ramcrypt_unmap_batch *batch,
		    const struct ramcrypt_frame *keep)
{
	struct ramcrypt_frame *frame;

	lockdep_assert_held(&region->lock);
	while (*budget && !list_empty(&region->clock)) {
		(*budget)--;
		frame = list_first_entry(&region->clock, struct ramcrypt_frame,
					 node);
		if (frame == keep) {
			list_move_tail(&frame->node, &region->clock);
			continue;
		}
		if (*budget > region->nr_resident && frame->referenced) {
			ramcrypt_second_chance(region, frame, batch);
			list_move_tail(&frame->node, &region->clock);
			continue;
		}
		ramcrypt_unmap_flush(region, batch);
		return frame;
	}
	return NULL;
}

/*
 * CLOCK eviction of one frame. A pinned one is skipped, and so is one that
 * cannot be stored now (memory cap, no memory, cipher error): after that
 * only clean frames are tried (no repeated reclaim or cipher attempts in
 * one fault). Two full turns at most; the store error, or -EBUSY, if no
 * frame could be evicted.
 */
static int ramcrypt_evict_one(struct ramcrypt_region *region,
			      struct ramcrypt_frame **reuse)
{
	u64 budget = 2 * region->nr_resident + 1;
	struct ramcrypt_unmap_batch batch = {};
	struct ramcrypt_frame *frame;
	int ret, err = 0;

	lockdep_assert_held(&region->lock);
	while ((frame = ramcrypt_clock_hand(region, &budget, &batch, NULL))) {
		/* Write-notify: a frame not dirty now has no writable PTE */
		if (err && frame->dirty) {
			list_move_tail(&frame->node, &region->clock);
			continue;
		}
		ret = ramcrypt_evict(region, frame, RAMCRYPT_EVICT_WINDOW,
				     reuse);
		if (!ret)
			return 0;
		if (ret != -EBUSY && !err)
			err = ret;
		list_move_tail(&frame->node, &region->clock);
	}
	ramcrypt_unmap_flush(region, &batch);
	return err ?: -EBUSY;
}

/*
 * A frame for a fault: a spare one (zeroed, stale or unzeroed) or new; an
 * ERR_PTR as ramcrypt_alloc_page() says.
 */
static struct ramcrypt_frame *ramcrypt_get_frame(struct ramcrypt_region *region)
{
	struct ramcrypt_frame *frame;
	struct mem_cgroup *old;
	struct page *page;

	lockdep_assert_held(&region->lock);
	if (!list_empty(&region->free)) {
		frame = list_first_entry(&region->free, struct ramcrypt_frame,
					 node);
		list_del(&frame->node);
		region->nr_free--;
		return frame;
	}
	old = set_active_memcg(region->memcg);
	frame = kzalloc(sizeof(*frame), GFP_KERNEL_ACCOUNT);
	set_active_memcg(old);
	if (!frame)
		return ERR_PTR(-ENOMEM);
	page = ramcrypt_alloc_page(region, 0);
	if (IS_ERR(page)) {
		kfree(frame);
		return ERR_CAST(page);
	}
	frame->page = page;
	/* For page_mkwrite; ramcrypt_free_page() clears it */
	set_page_private(frame->page, (unsigned long)frame);
	return frame;
}

static void ramcrypt_put_free_frame(struct ramcrypt_region *region,
				    struct ramcrypt_frame *frame)
{
	lockdep_assert_held(&region->lock);
	list_add(&frame->node, &region->free);
	region->nr_free++;
}

/* Half the age bound, rounded down: two scan periods fit in the bound */
static unsigned long ramcrypt_half_age(unsigned long max_age)
{
	return max(max_age / 2, 1UL);
}

static unsigned long ramcrypt_scan_period(struct ramcrypt_region *region)
{
	return ramcrypt_half_age(msecs_to_jiffies(ramcrypt_max_age(region)));
}

/*
 * The age scan encrypts (and unmaps) the region's plaintext: on its crypto
 * CPU if it has one (and that is online), like every other page cipher.
 */
static int ramcrypt_scan_cpu(struct ramcrypt_region *region)
{
	int cpu = region->crypto_cpu;

	return cpu >= 0 && cpu_online(cpu) ? cpu : WORK_CPU_UNBOUND;
}

static void ramcrypt_schedule_scan(struct ramcrypt_region *region,
				   unsigned long delay)
{
	queue_delayed_work_on(ramcrypt_scan_cpu(region), system_wq,
			      &region->scan, delay);
}

/* Scan now (the age bound was lowered) */
void ramcrypt_window_rescan(struct ramcrypt_region *region)
{
	mod_delayed_work_on(ramcrypt_scan_cpu(region), system_wq,
			    &region->scan, 0);
}

/*
 * Drop region->lock until some busy frame is done (a load, an evict-ahead
 * batch or pass); the caller looks again. -ERESTARTSYS if @killable and a
 * fatal signal came first.
 */
static int ramcrypt_wait_frames(struct ramcrypt_region *region, bool killable)
{
	unsigned long done = region->frames_done;
	int ret = 0;

	lockdep_assert_held(&region->lock);
	mutex_unlock(&region->lock);
	if (killable)
		ret = wait_event_killable(region->frame_wait,
					  READ_ONCE(region->frames_done) != done);
	else
		wait_event(region->frame_wait,
			   READ_ONCE(region->frames_done) != done);
	mutex_lock(&region->lock);
	return ret;
}

/*
 * A fault waits for a busy frame (ramcrypt_wait_frames) and looks again
 * (0), or returns instead: VM_FAULT_RETRY if it may not wait (KVM's async
 * page faults; the core keeps mmap_lock), VM_FAULT_NOPAGE on a fatal
 * signal (the access is retried once the task is gone; GUP says -EINTR).
 */
static vm_fault_t ramcrypt_fault_wait(struct ramcrypt_region *region,
				      struct vm_fault *vmf)
{
	if (vmf->flags & FAULT_FLAG_RETRY_NOWAIT)
		return VM_FAULT_RETRY;
	return ramcrypt_wait_frames(region, true) ? VM_FAULT_NOPAGE : 0;
}

/* Frames queued for, or under, evict-ahead's encryption or a decrypt */
static bool ramcrypt_busy_frames(const struct ramcrypt_region *region)
{
	return region->nr_writeback || region->nr_loading;
}

static void ramcrypt_frames_done(struct ramcrypt_region *region)
{
	lockdep_assert_held(&region->lock);
	WRITE_ONCE(region->frames_done, region->frames_done + 1);
	/* Waiters sleep without region->lock: see the full barrier */
	if (wq_has_sleeper(&region->frame_wait))
		wake_up_all(&region->frame_wait);
}

/*
 * Drop region->lock until no frame is busy (queued, encrypting, loading),
 * for FLUSH and a window change. Faults start no new busy frames
 * meanwhile (they wait too), so that a busy region cannot starve us.
 */
static void ramcrypt_wait_idle(struct ramcrypt_region *region)
{
	lockdep_assert_held(&region->lock);
	region->quiescing++;
	while (ramcrypt_busy_frames(region))
		ramcrypt_wait_frames(region, false);
	region->quiescing--;
	/* Faults that waited for us look again */
	ramcrypt_frames_done(region);
}

/*
 * Set a frame up for page @index: zeros if never written (a stale or
 * unzeroed spare frame is wiped first), NULL returned; else the ciphertext
 * page the caller decrypts into it (ramcrypt_decrypt). The ciphertext stays
 * stored: it is the page's content until it is written.
 */
static struct page *ramcrypt_load_begin(struct ramcrypt_region *region,
					struct ramcrypt_frame *frame,
					pgoff_t index)
{
	struct page *ct;

	lockdep_assert_held(&region->lock);
	frame->index = index;
	/* Above every version the page may have had before a hole punch */
	frame->version = region->version_floor;
	frame->dirty = false;
	ct = xa_load(&region->ciphertext, index);
	if (!ct) {
		if (frame->stale || frame->unzeroed)
			ramcrypt_wipe_frame(region, frame);
		return NULL;
	}
	/* Overwritten by the decrypt, or wiped if it fails */
	ramcrypt_overwrite_frame(region, frame);
	frame->version = page_private(ct);
	return ct;
}

/*
 * Decrypt @ct into a loading frame. Needs no region->lock: nothing else
 * reaches the frame (off the clock, unmapped; faults on its page wait), and
 * @ct stays the page's ciphertext until the frame is evicted.
 */
static int ramcrypt_decrypt(struct ramcrypt_region *region,
			    struct ramcrypt_frame *frame, struct page *ct)
{
	__le64 iv[2];
	int ret;

	ramcrypt_iv(region, frame->index, frame->version, iv);
	ret = tresor_decrypt_page_on(page_address(frame->page),
				     page_address(ct), (u8 *)iv,
				     region->crypto_cpu);
	memzero_explicit(iv, sizeof(iv));
	return ret;
}

/* A loading frame's decrypt is over: faults waiting for it look again. */
static void ramcrypt_load_done(struct ramcrypt_region *region,
			       struct ramcrypt_frame *frame)
{
	frame->loading = false;
	region->nr_loading--;
	ramcrypt_frames_done(region);
}

/* A resident frame holds its page now: onto the clock. */
static void ramcrypt_load_end(struct ramcrypt_region *region,
			      struct ramcrypt_frame *frame)
{
	lockdep_assert_held(&region->lock);
	if (frame->loading)
		ramcrypt_load_done(region, frame);
	list_add_tail(&frame->node, &region->clock);
	ramcrypt_schedule_scan(region, ramcrypt_scan_period(region));
}

/* The decrypt into a loading frame failed: the page stays encrypted. */
static void ramcrypt_load_failed(struct ramcrypt_region *region,
				 struct ramcrypt_frame *frame, int ret)
{
	lockdep_assert_held(&region->lock);
	ramcrypt_count(region, &region->crypto_errors,
		       &ramcrypt_global.crypto_errors);
	ramcrypt_count_cpu_error(region, ret);
	pr_warn_ratelimited("region %llu: cannot decrypt page %lu (%d), faulting process gets SIGBUS\n",
			    region->id, frame->index, ret);
	xa_erase(&region->resident, frame->index);
	region->nr_resident--;
	atomic_long_dec(&ramcrypt_global.plaintext_pages);
	ramcrypt_load_done(region, frame);
	/* A failed decrypt may have written part of it */
	ramcrypt_wipe_frame(region, frame);
	ramcrypt_put_free_frame(region, frame);
}

/* Free frames evict-ahead keeps in @region's window, 0 if off. */
static u32 ramcrypt_reserve(const struct ramcrypt_region *region)
{
	return min(ramcrypt_evict_ahead(region), region->window / 4);
}

/*
 * Frames free or on their way (queued for writeback): the window minus the
 * resident frames that stay.
 */
static u64 ramcrypt_room(const struct ramcrypt_region *region)
{
	u64 staying = region->nr_resident - region->nr_writeback;

	return region->window > staying ? region->window - staying : 0;
}

/*
 * Wake the worker on the region's crypto CPU, else on the module's
 * crypto_cpu, or if that is not set (or offline) on the next online CPU
 * after this one. Always on one workqueue, whatever crypto_cpu says
 * meanwhile: only within one workqueue is a work item kept from running
 * twice at once and waited for by cancel_work_sync().
 */
static void ramcrypt_kick_evict_ahead(struct ramcrypt_region *region)
{
	int cpu = region->crypto_cpu >= 0 ? region->crypto_cpu :
		  READ_ONCE(ramcrypt_crypto_cpu);

	lockdep_assert_held(&region->lock);
	if (cpu < 0 || cpu >= nr_cpu_ids || !cpu_online(cpu)) {
		cpu = cpumask_next(raw_smp_processor_id(), cpu_online_mask);
		if (cpu >= nr_cpu_ids)
			cpu = cpumask_first(cpu_online_mask);
	}
	queue_work_on(cpu, system_highpri_wq, &region->evict_ahead);
}

/*
 * Victims a fault picks at once: fewer, larger batches wake the worker
 * less often (each wake-up of an idle crypto CPU is an IPI). The worker
 * encrypts them RAMCRYPT_AHEAD_BATCH per unlocked section.
 */
#define RAMCRYPT_PICK_BATCH	32
#define RAMCRYPT_AHEAD_BATCH	16

/*
 * Up to @want victims by CLOCK onto @picked, unmapped (one unmap per run of
 * consecutive pages). Pinned frames stay on the clock (counted); @keep is
 * passed over.
 */
static unsigned int ramcrypt_ahead_pick(struct ramcrypt_region *region,
					u64 want, struct list_head *picked,
					const struct ramcrypt_frame *keep)
{
	struct ramcrypt_unmap_batch chances = {}, victims = {};
	u64 budget = 2 * region->nr_resident + 1;
	struct ramcrypt_frame *frame;
	unsigned int n = 0;

	lockdep_assert_held(&region->lock);
	while (n < want &&
	       (frame = ramcrypt_clock_hand(region, &budget, &chances, keep))) {
		if (ramcrypt_frame_pinned(frame)) {
			ramcrypt_count_skipped(region);
			list_move_tail(&frame->node, &region->clock);
			continue;
		}
		list_move_tail(&frame->node, picked);
		ramcrypt_unmap_add(region, frame, &victims);
		n++;
	}
	ramcrypt_unmap_flush(region, &chances);
	ramcrypt_unmap_flush(region, &victims);
	return n;
}

/*
 * Evict-ahead, on the fault path once fewer than half the reserve is left:
 * refill it (up to a batch) by CLOCK. Clean victims are evicted here; dirty
 * ones are queued on region->writeback for the worker on crypto_cpu.
 */
static void ramcrypt_evict_ahead_pick(struct ramcrypt_region *region,
				      const struct ramcrypt_frame *keep)
{
	u32 reserve = ramcrypt_reserve(region);
	struct ramcrypt_frame *frame, *tmp;
	bool queued = false;
	LIST_HEAD(picked);
	u64 room;

	lockdep_assert_held(&region->lock);
	room = ramcrypt_room(region);
	if (!reserve || room >= DIV_ROUND_UP(reserve, 2))
		return;
	ramcrypt_ahead_pick(region, min_t(u64, reserve - room,
					  RAMCRYPT_PICK_BATCH), &picked, keep);
	list_for_each_entry_safe(frame, tmp, &picked, node) {
		/* Pinned through GUP-fast since it was picked: skip it. */
		if (ramcrypt_frame_mapped(frame)) {
			ramcrypt_count_skipped(region);
			list_move_tail(&frame->node, &region->clock);
			continue;
		}
		if (frame->dirty) {
			frame->referenced = false;
			list_move_tail(&frame->node, &region->writeback);
			region->nr_writeback++;
			queued = true;
			continue;
		}
		ramcrypt_count(region, &region->evictions_clean,
			       &ramcrypt_global.evictions_clean);
		ramcrypt_count(region, &region->evictions_ahead,
			       &ramcrypt_global.evictions_ahead);
		ramcrypt_evict_finish(region, frame, RAMCRYPT_EVICT_WINDOW,
				      NULL);
	}
	if (queued)
		ramcrypt_kick_evict_ahead(region);
}

/*
 * Make page @index resident: evict as needed, take a frame and set it up.
 * A page never written is zero-filled at once. Otherwise the frame is in
 * region->resident, "loading", off the clock, and *ct is the ciphertext the
 * caller decrypts into it with region->lock dropped (ramcrypt_load_end()
 * then). NULL with *vmret == 0: every frame on the clock is pinned, busy
 * frames will be done; the caller waits for one and retries.
 */
static struct ramcrypt_frame *ramcrypt_make_resident(struct ramcrypt_region *region,
						     pgoff_t index,
						     struct page **ct,
						     vm_fault_t *vmret)
{
	struct ramcrypt_frame *frame = NULL;
	struct mem_cgroup *old;
	int ret;

	lockdep_assert_held(&region->lock);
	if (!tresor_key_available()) {
		pr_warn_ratelimited("region %llu: no TRESOR key loaded, faulting process gets SIGBUS\n",
				    region->id);
		*vmret = VM_FAULT_SIGBUS;
		return NULL;
	}

	/* The first victim's frame is taken over unwiped, see load_begin */
	while (region->nr_resident >= region->window) {
		ret = ramcrypt_evict_one(region, &frame);
		if (ret == -EBUSY && ramcrypt_busy_frames(region))
			goto err_frame;
		if (ret == -EBUSY) {
			/* Every frame is pinned: exceed the window for now. */
			ramcrypt_count(region, &region->window_overflows,
				       &ramcrypt_global.window_overflows);
			break;
		}
		if (ret) {
			*vmret = ramcrypt_fault_error(ret);
			goto err_frame;
		}
	}

	if (!frame) {
		frame = ramcrypt_get_frame(region);
		if (IS_ERR(frame)) {
			*vmret = ramcrypt_fault_error(PTR_ERR(frame));
			return NULL;
		}
	}
	*ct = ramcrypt_load_begin(region, frame, index);
	old = set_active_memcg(region->memcg);
	ret = xa_err(xa_store(&region->resident, index, frame, GFP_KERNEL));
	set_active_memcg(old);
	if (ret) {
		*vmret = VM_FAULT_OOM;	/* the ciphertext is still stored */
		goto err_frame;
	}
	region->nr_resident++;
	atomic_long_inc(&ramcrypt_global.plaintext_pages);
	if (*ct) {
		frame->loading = true;
		region->nr_loading++;
		return frame;
	}
	ramcrypt_load_end(region, frame);
	return frame;

err_frame:
	if (frame) {
		/* Stale, or set up for a load that will not happen */
		ramcrypt_wipe_frame(region, frame);
		ramcrypt_put_free_frame(region, frame);
	}
	return NULL;
}

/*
 * A hole punch or shrink (ramcrypt_window_punch) follows the page cache's
 * truncate protocol: with region->lock held it drops the frames, orphaning
 * those still referenced (a fault that returned one and has not mapped it
 * yet), then locks and unlocks each orphan and unmaps the range again. So
 * a fault hands its frame to the core locked, until its PTE is in place
 * (finish_fault), and maps no frame orphaned since region->lock was
 * dropped: with the page lock held, page_private() tells (drop_frame
 * clears it before the punch locks the page). VM_FAULT_NOPAGE: the access
 * faults again and sees the hole (or SIGBUS past a shrunk end).
 */
static vm_fault_t ramcrypt_lock_frame(struct page *page)
{
	lock_page(page);
	if (page_private(page))
		return VM_FAULT_LOCKED;
	unlock_page(page);
	put_page(page);
	return VM_FAULT_NOPAGE;
}

/*
 * Returns the frame (with a reference, locked) for the core to map:
 * read-only, or writable and dirty for a write fault (FAULT_FLAG_WRITE, after
 * page_mkwrite). The reference keeps the frame resident until it is mapped.
 * The decrypt runs with region->lock dropped, so faults on other pages and
 * evict-ahead's worker go on meanwhile.
 */
vm_fault_t ramcrypt_window_fault(struct ramcrypt_region *region,
				 struct vm_fault *vmf)
{
	struct ramcrypt_frame *frame;
	pgoff_t index = vmf->pgoff;
	vm_fault_t vmret = 0;
	bool raced = false;
	struct page *ct, *page;
	int ret;

	/* On a fatal signal, as ramcrypt_fault_wait() */
	if (mutex_lock_killable(&region->lock))
		return VM_FAULT_NOPAGE;
	ramcrypt_count(region, &region->faults, &ramcrypt_global.faults);
retry:
	/* Also after a wait: a ramcryptfs file may have shrunk meanwhile */
	if (index >= region->nr_pages) {
		vmret = VM_FAULT_SIGBUS;
		goto out_unlock;
	}
	/* FLUSH or a window change waits for the busy frames */
	if (region->quiescing)
		goto wait;
	frame = xa_load(&region->resident, index);
	if (frame && (frame->encrypting || frame->loading)) {
		if (frame->encrypting && !raced) {
			raced = true;
			ramcrypt_count(region, &region->evict_ahead_raced,
				       &ramcrypt_global.evict_ahead_raced);
		}
		goto wait;
	}
	if (frame) {
		/* unmapped by the hand (or in another mm, or was pinned) */
		ramcrypt_count(region, &region->refaults,
			       &ramcrypt_global.refaults);
	} else {
		ct = NULL;
		frame = ramcrypt_make_resident(region, index, &ct, &vmret);
		if (!frame && !vmret)
			goto wait;
		if (!frame)
			goto out_unlock;
		if (ct) {
			mutex_unlock(&region->lock);
			ret = ramcrypt_decrypt(region, frame, ct);
			mutex_lock(&region->lock);
			if (ret) {
				ramcrypt_load_failed(region, frame, ret);
				vmret = VM_FAULT_SIGBUS;
				goto out_unlock;
			}
			ramcrypt_load_end(region, frame);
		}
	}
	frame->referenced = true;
	frame->last_access = jiffies;
	if (vmf->flags & FAULT_FLAG_WRITE)
		frame->dirty = true;
	page = frame->page;
	get_page(page);
	vmf->page = page;
	/* Not the frame we return: mapped next, in use, referenced */
	ramcrypt_evict_ahead_pick(region, frame);
	mutex_unlock(&region->lock);
	return ramcrypt_lock_frame(page);

out_unlock:
	mutex_unlock(&region->lock);
	return vmret;

wait:
	/* For a busy frame; on a fatal signal or no-wait fault: return */
	vmret = ramcrypt_fault_wait(region, vmf);
	if (!vmret)
		goto retry;
	goto out_unlock;
}

/* First write through a read-only PTE (or a write fault): mark dirty. */
vm_fault_t ramcrypt_window_mkwrite(struct ramcrypt_region *region,
				   struct vm_fault *vmf)
{
	struct ramcrypt_frame *frame = (void *)page_private(vmf->page);

	/*
	 * The core holds a reference to the page (taken by our fault handler
	 * or while a PTE mapped it), so no eviction takes the frame meanwhile:
	 * if the write fault that just returned it marked it dirty, there is
	 * nothing to do, and the write fault takes region->lock only once.
	 */
	if (frame && READ_ONCE(frame->page) == vmf->page &&
	    READ_ONCE(frame->index) == vmf->pgoff && READ_ONCE(frame->dirty))
		goto out_locked;

	if (mutex_lock_killable(&region->lock))
		return VM_FAULT_NOPAGE;
	frame = xa_load(&region->resident, vmf->pgoff);
	/* As above it cannot have been evicted; if it were, fault again. */
	if (!frame || frame->page != vmf->page) {
		mutex_unlock(&region->lock);
		return VM_FAULT_NOPAGE;
	}
	frame->dirty = true;
	frame->referenced = true;
	frame->last_access = jiffies;
	mutex_unlock(&region->lock);
out_locked:
	/*
	 * Locked, as the fault returns it (see ramcrypt_lock_frame): the
	 * frame has no page->mapping for the core to check, and a punch may
	 * have orphaned it since the fault unlocked it for us.
	 */
	lock_page(vmf->page);
	if (page_private(vmf->page))
		return VM_FAULT_LOCKED;
	unlock_page(vmf->page);
	return VM_FAULT_NOPAGE;
}

/* Evict every resident frame; frames still referenced stay. */
static int ramcrypt_evict_all(struct ramcrypt_region *region,
			      enum ramcrypt_evict_cause cause)
{
	struct ramcrypt_frame *frame, *tmp;
	int ret, err = 0;

	lockdep_assert_held(&region->lock);
	list_for_each_entry_safe(frame, tmp, &region->clock, node) {
		ret = ramcrypt_evict(region, frame, cause, NULL);
		/* A real error wins over a pinned page's -EBUSY */
		if (ret && (!err || err == -EBUSY))
			err = ret;
	}
	return err;
}

/* Keep at most @keep spare frames in the pool; the others are wiped. */
static void ramcrypt_trim_free(struct ramcrypt_region *region, u64 keep)
{
	struct ramcrypt_frame *frame;

	lockdep_assert_held(&region->lock);
	while (region->nr_free > keep) {
		frame = list_first_entry(&region->free, struct ramcrypt_frame,
					 node);
		list_del(&frame->node);
		region->nr_free--;
		/* ramcrypt_free_page() wipes it */
		ramcrypt_unstale(region, frame);
		ramcrypt_free_page(region, frame->page);
		kfree(frame);
	}
}

/* Resident plus spare frames within the window: wipe the spare ones over */
static void ramcrypt_trim_to_window(struct ramcrypt_region *region)
{
	ramcrypt_trim_free(region, region->window -
			   min_t(u64, region->window, region->nr_resident));
}

int ramcrypt_window_set(struct ramcrypt_region *region, u32 pages)
{
	if (!pages || pages > RAMCRYPT_MAX_WINDOW)
		return -EINVAL;

	mutex_lock(&region->lock);
	ramcrypt_wait_idle(region);
	region->window = pages;
	while (region->nr_resident > region->window) {
		if (ramcrypt_evict_one(region, NULL))
			break;
	}
	ramcrypt_trim_to_window(region);
	mutex_unlock(&region->lock);
	return 0;
}

int ramcrypt_window_flush(struct ramcrypt_region *region)
{
	int ret;

	mutex_lock(&region->lock);
	ramcrypt_wait_idle(region);
	ret = ramcrypt_evict_all(region, RAMCRYPT_EVICT_FLUSH);
	ramcrypt_wipe_stale(region);
	mutex_unlock(&region->lock);
	/* -EBUSY: pinned pages stay resident, the flush itself succeeded */
	return ret == -EBUSY ? 0 : ret;
}

void ramcrypt_window_scan(struct work_struct *work)
{
	struct ramcrypt_region *region =
		container_of(to_delayed_work(work), struct ramcrypt_region,
			     scan);
	unsigned long max_age = msecs_to_jiffies(ramcrypt_max_age(region));
	unsigned long period = ramcrypt_half_age(max_age);
	struct ramcrypt_unmap_batch batch = {};
	struct ramcrypt_frame *frame, *tmp;
	unsigned long now;

	/*
	 * A frame not referenced now was unmapped (by the last scan or by the
	 * CLOCK hand) and not faulted in since: its last access lies between
	 * its last fault (last_access) and that unmap. Evicted once the fault
	 * is max_age - period old: the next scan, a period later, would be
	 * too late. So no page is plaintext longer than max_age after its last
	 * access, plus the scan's own delay.
	 */
	max_age = max_age > period ? max_age - period : 0;
	mutex_lock(&region->lock);
	now = jiffies;
	list_for_each_entry_safe(frame, tmp, &region->clock, node) {
		if (frame->referenced) {
			/* Mapped since the last scan: the next access shows. */
			ramcrypt_second_chance(region, frame, &batch);
			continue;
		}
		if (time_after_eq(now, frame->last_access + max_age)) {
			ramcrypt_unmap_flush(region, &batch);
			ramcrypt_evict(region, frame, RAMCRYPT_EVICT_AGE, NULL);
		}
	}
	ramcrypt_unmap_flush(region, &batch);
	ramcrypt_wipe_stale(region);
	/* Spare frames a window overflow left beyond the window */
	ramcrypt_trim_to_window(region);
	if (region->nr_resident)
		ramcrypt_schedule_scan(region, period);
	mutex_unlock(&region->lock);
}

/* A dirty victim being encrypted in place by evict-ahead's worker */
struct ramcrypt_writeback {
	struct ramcrypt_frame *frame;
	struct page *spare;	/* see ramcrypt_spare_get() */
	bool new;
	u64 version;
	int ret;
};

/*
 * Take a frame off region->writeback for encryption (true, *wb set up), or
 * put it back on the clock: accessed while queued (counted as raced), or no
 * spare page (memory cap). It stays resident either way.
 */
static bool ramcrypt_writeback_start(struct ramcrypt_region *region,
				     struct ramcrypt_frame *frame,
				     struct ramcrypt_writeback *wb)
{
	lockdep_assert_held(&region->lock);
	if (frame->referenced || ramcrypt_frame_mapped(frame)) {
		ramcrypt_count(region, &region->evict_ahead_raced,
			       &ramcrypt_global.evict_ahead_raced);
		goto keep;
	}
	/* No version left (never in practice): the fault path reports it */
	wb->version = ramcrypt_next_version(frame);
	if (!wb->version)
		goto keep;
	wb->spare = ramcrypt_spare_get(region, frame->index, &wb->new,
				       __GFP_NORETRY | __GFP_NOWARN);
	if (IS_ERR(wb->spare))
		goto keep;
	wb->frame = frame;
	/* Unmapped and unpinned: only a fault reaches it, and it waits. */
	frame->encrypting = true;
	list_del_init(&frame->node);
	return true;

keep:
	list_move_tail(&frame->node, &region->clock);
	region->nr_writeback--;
	return false;
}

/*
 * After the worker encrypted a frame in place: swap its page for the spare
 * and evict it, or, if tresor failed (it wrote nothing), put it back on the
 * clock.
 */
static void ramcrypt_writeback_finish(struct ramcrypt_region *region,
				      struct ramcrypt_writeback *wb)
{
	struct ramcrypt_frame *frame = wb->frame;

	lockdep_assert_held(&region->lock);
	region->nr_writeback--;
	frame->encrypting = false;
	/* Faults on it waited, nothing else reaches an unmapped frame */
	WARN_ON_ONCE(frame->referenced);
	if (wb->ret) {
		ramcrypt_crypto_error(region, frame->index, wb->ret);
		ramcrypt_spare_put(region, frame->index, wb->spare, wb->new);
		list_add_tail(&frame->node, &region->clock);
		return;
	}
	ramcrypt_swap_ciphertext(region, frame, wb->spare, wb->new,
				 wb->version);
	ramcrypt_count(region, &region->evictions_ahead,
		       &ramcrypt_global.evictions_ahead);
	ramcrypt_evict_finish(region, frame, RAMCRYPT_EVICT_WINDOW, NULL);
}

/*
 * Evict-ahead's worker, on crypto_cpu: encrypt the dirty victims the fault
 * path queued in place, a batch per unlocked section (see the top of this
 * file).
 */
void ramcrypt_window_evict_ahead(struct work_struct *work)
{
	struct ramcrypt_region *region =
		container_of(work, struct ramcrypt_region, evict_ahead);
	struct ramcrypt_writeback wb[RAMCRYPT_AHEAD_BATCH];
	struct ramcrypt_frame *frame, *tmp;
	unsigned int i, n;
	__le64 iv[2];

	mutex_lock(&region->lock);
	while (!list_empty(&region->writeback)) {
		n = 0;
		list_for_each_entry_safe(frame, tmp, &region->writeback, node) {
			if (n == RAMCRYPT_AHEAD_BATCH)
				break;
			n += ramcrypt_writeback_start(region, frame, &wb[n]);
		}
		if (!n)
			continue;
		mutex_unlock(&region->lock);
		/*
		 * Nobody maps or reads these frames now (faults on them wait
		 * for this batch), nor their ciphertext pages (the pages are
		 * resident). On error tresor writes nothing.
		 */
		for (i = 0; i < n; i++) {
			void *page = page_address(wb[i].frame->page);

			ramcrypt_iv(region, wb[i].frame->index, wb[i].version,
				    iv);
			wb[i].ret = tresor_encrypt_page_on(page, page, (u8 *)iv,
							   region->crypto_cpu);
		}
		memzero_explicit(iv, sizeof(iv));
		mutex_lock(&region->lock);
		for (i = 0; i < n; i++)
			ramcrypt_writeback_finish(region, &wb[i]);
		ramcrypt_frames_done(region);
	}
	/* Frames kept (not encrypted) left the queue too */
	ramcrypt_frames_done(region);
	mutex_unlock(&region->lock);
}

/*
 * Orphans: frames of a closed region that someone still references through
 * get_user_pages() (an O_DIRECT read or write in flight, any GUP user that
 * does not hold the mapping). Region close wipes them, but the holder may
 * write into them afterwards (a read's DMA completing late), and the page
 * goes back to the allocator when its last reference drops, unwiped unless
 * init_on_free=1. So close keeps its own reference to such a frame on
 * ramcrypt_orphans, and a scan every RAMCRYPT_ORPHAN_SCAN_MS wipes and
 * frees each orphan whose other references are gone: what the holder wrote
 * stays in RAM at most that long after the holder lets go (as long as the
 * holder keeps it, it is the holder's memory). Nothing can take a new
 * reference meanwhile: the frame is mapped nowhere and has no mapping.
 * Orphans are counted in orphan_pages (sysfs), no longer in the region's
 * memory, and each holds a module reference, so the module stays loaded
 * (rmmod: busy) until the last one is wiped.
 */
#define RAMCRYPT_ORPHAN_SCAN_MS	20

static LIST_HEAD(ramcrypt_orphans);
static DEFINE_MUTEX(ramcrypt_orphans_lock);
static void ramcrypt_orphan_scan(struct work_struct *work);
static DECLARE_DELAYED_WORK(ramcrypt_orphan_work, ramcrypt_orphan_scan);

static void ramcrypt_orphan_schedule(void)
{
	schedule_delayed_work(&ramcrypt_orphan_work,
			      msecs_to_jiffies(RAMCRYPT_ORPHAN_SCAN_MS) ?: 1);
}

/* A wiped frame of a closed region with other references: keep it. */
static void ramcrypt_orphan_add(struct ramcrypt_frame *frame)
{
	__module_get(THIS_MODULE);
	atomic_long_inc(&ramcrypt_global.orphan_pages);
	mutex_lock(&ramcrypt_orphans_lock);
	list_add_tail(&frame->node, &ramcrypt_orphans);
	ramcrypt_orphan_schedule();
	mutex_unlock(&ramcrypt_orphans_lock);
}

static void ramcrypt_orphan_scan(struct work_struct *work)
{
	struct ramcrypt_frame *frame, *tmp;
	unsigned long freed = 0;

	mutex_lock(&ramcrypt_orphans_lock);
	list_for_each_entry_safe(frame, tmp, &ramcrypt_orphans, node) {
		if (ramcrypt_frame_mapped(frame))
			continue;
		list_del(&frame->node);
		/* Whatever the last holder wrote into it */
		clear_page(page_address(frame->page));
		put_page(frame->page);
		kfree(frame);
		freed++;
	}
	if (!list_empty(&ramcrypt_orphans))
		ramcrypt_orphan_schedule();
	mutex_unlock(&ramcrypt_orphans_lock);
	atomic_long_sub(freed, &ramcrypt_global.orphan_pages);
	/*
	 * Module exit cancels this work synchronously, and it cannot start
	 * before these references are gone: this function is not unloaded
	 * under us.
	 */
	while (freed--)
		module_put(THIS_MODULE);
}

/* Module exit: every orphan was wiped (each held a module reference). */
void ramcrypt_orphans_exit(void)
{
	cancel_delayed_work_sync(&ramcrypt_orphan_work);
	WARN_ON_ONCE(!list_empty(&ramcrypt_orphans));
}

/*
 * A resident frame leaves the region (last close, hole punch): off the
 * window, wiped, and freed, or, if still referenced, kept as an orphan
 * (true). Then, if @hold, a reference to its page is taken for the caller
 * (*hold) before the orphan scan can see it: the other holder may let go
 * at once, and the scan would free the page under the caller.
 */
static bool ramcrypt_drop_frame(struct ramcrypt_region *region,
				struct ramcrypt_frame *frame,
				struct page **hold)
{
	lockdep_assert_held(&region->lock);
	xa_erase(&region->resident, frame->index);
	list_del(&frame->node);
	region->nr_resident--;
	atomic_long_dec(&ramcrypt_global.plaintext_pages);
	clear_page(page_address(frame->page));
	ClearPageDirty(frame->page);
	set_page_private(frame->page, 0);
	ramcrypt_uncharge(region);
	if (ramcrypt_frame_mapped(frame)) {
		/* Still referenced: wiped again when it is let go */
		if (hold) {
			get_page(frame->page);
			*hold = frame->page;
		}
		ramcrypt_orphan_add(frame);
		return true;
	}
	put_page(frame->page);
	kfree(frame);
	return false;
}

static void ramcrypt_drop_ciphertext(struct ramcrypt_region *region,
				     unsigned long index, struct page *ct)
{
	lockdep_assert_held(&region->lock);
	xa_erase(&region->ciphertext, index);
	region->nr_ciphertext--;
	atomic_long_dec(&ramcrypt_global.ciphertext_pages);
	ramcrypt_free_page(region, ct);
}

/* Last close: wipe and free every frame and ciphertext page. */
void ramcrypt_window_release(struct ramcrypt_region *region)
{
	struct ramcrypt_frame *frame, *tmp;
	unsigned long index;
	struct page *ct;

	mutex_lock(&region->lock);
	/* Faults hold the file: none is loading */
	WARN_ON_ONCE(region->nr_loading);
	/* Evict-ahead was cancelled: frames it had queued are freed here too */
	list_splice_init(&region->writeback, &region->clock);
	region->nr_writeback = 0;
	/* No mapping is left; a GUP user may still hold a page. */
	list_for_each_entry_safe(frame, tmp, &region->clock, node)
		ramcrypt_drop_frame(region, frame, NULL);
	ramcrypt_trim_free(region, 0);
	xa_for_each(&region->ciphertext, index, ct)
		ramcrypt_drop_ciphertext(region, index, ct);
	WARN_ON_ONCE(region->mem_pages);
	mutex_unlock(&region->lock);
}

/* Orphans a punch locks and unlocks per pass (see ramcrypt_lock_frame) */
#define RAMCRYPT_PUNCH_BATCH	16

/*
 * Drop pages [@start, @end) (a ramcryptfs hole punch or truncate): they
 * read as zeros again, as never written. Unmapped everywhere (KVM too,
 * through the MMU notifiers); resident frames wiped and freed, stale spare
 * frames of these pages wiped, ciphertext pages wiped and freed. Busy
 * frames (loading, queued for or under evict-ahead) are waited for first,
 * so every frame of the range is resident or spare here. A frame still
 * referenced after the unmap (GUP in flight, or a fault that returned it
 * and has not mapped it yet) is wiped now and left to the orphan scan as
 * at close: whatever is written into it afterwards is no region content
 * and is wiped when the last reference goes. Such a frame is then locked
 * and unlocked, so a fault that returned it has installed its PTE (or
 * seen the orphan and retried), and the range is unmapped again: no PTE
 * keeps an orphan.
 *
 * The page's versions die with its ciphertext, but the tweaks they were
 * used with must not come back: old ciphertext of the page can survive in
 * a spare frame (unzeroed), and an attacker who saw it earlier still has
 * it. region->version_floor rises to the highest version dropped; a page
 * without ciphertext is encrypted above it (ramcrypt_load_begin).
 */
void ramcrypt_window_punch(struct ramcrypt_region *region, pgoff_t start,
			   pgoff_t end)
{
	struct page *held[RAMCRYPT_PUNCH_BATCH];
	struct ramcrypt_frame *frame;
	struct page *ct, *page;
	unsigned int i, n;
	unsigned long index;
	bool more;

	if (start >= end)
		return;
	do {
		n = 0;
		more = false;
		mutex_lock(&region->lock);
		ramcrypt_wait_idle(region);
		ramcrypt_unmap_pages(region, start, end - start);
		xa_for_each_range(&region->resident, index, frame, start,
				  end - 1) {
			if (n == ARRAY_SIZE(held)) {
				more = true;
				break;
			}
			if (ramcrypt_drop_frame(region, frame, &page))
				held[n++] = page;
		}
		if (!more) {
			list_for_each_entry(frame, &region->free, node) {
				if (frame->stale && frame->index >= start &&
				    frame->index < end)
					ramcrypt_wipe_frame(region, frame);
			}
			xa_for_each_range(&region->ciphertext, index, ct,
					  start, end - 1) {
				region->version_floor =
					max_t(u64, region->version_floor,
					      page_private(ct));
				ramcrypt_drop_ciphertext(region, index, ct);
			}
			/* Spare frames beyond the window, if it overflowed */
			ramcrypt_trim_to_window(region);
		}
		mutex_unlock(&region->lock);
		for (i = 0; i < n; i++) {
			lock_page(held[i]);
			unlock_page(held[i]);
			put_page(held[i]);
		}
	} while (more);
	ramcrypt_unmap_pages(region, start, end - start);
}

u64 ramcrypt_window_oldest_ms(struct ramcrypt_region *region)
{
	struct ramcrypt_frame *frame;
	unsigned long now, oldest = 0;

	mutex_lock(&region->lock);
	/*
	 * Read under the lock: a frame faulted in after an earlier read
	 * would be "younger than now", and the difference wrap around.
	 */
	now = jiffies;
	list_for_each_entry(frame, &region->clock, node)
		if (time_after(now, frame->last_access))
			oldest = max(oldest, now - frame->last_access);
	mutex_unlock(&region->lock);
	return jiffies_to_msecs(oldest);
}

void ramcrypt_window_stats(struct ramcrypt_region *region,
			   struct ramcrypt_stats *st)
{
	u64 oldest = ramcrypt_window_oldest_ms(region);

	mutex_lock(&region->lock);
	st->abi_version = RAMCRYPT_ABI_VERSION;
	st->window_pages = region->window;
	st->size = region->nr_pages << PAGE_SHIFT;
	st->plaintext_pages = region->nr_resident + region->nr_stale;
	st->encrypted_pages = region->nr_ciphertext;
	st->faults = region->faults;
	st->evictions_window = region->evictions[RAMCRYPT_EVICT_WINDOW];
	st->evictions_age = region->evictions[RAMCRYPT_EVICT_AGE];
	st->evictions_flush = region->evictions[RAMCRYPT_EVICT_FLUSH];
	st->skipped_referenced = region->skipped_referenced;
	st->oldest_plaintext_age_ms = oldest;
	st->window_overflows = region->window_overflows;
	st->crypto_errors = region->crypto_errors;
	st->memory_pages = region->mem_pages;
	st->region_id = region->id;
	st->evictions_clean = region->evictions_clean;
	st->evictions_ahead = region->evictions_ahead;
	st->refaults = region->refaults;
	st->crypto_cpu_errors = region->crypto_cpu_errors;
	mutex_unlock(&region->lock);
}
