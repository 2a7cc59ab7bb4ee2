// SPDX-License-Identifier: GPL-2.0
/*
 * The plaintext window of a region
 *
 * A region page is in one of three states:
 *   - never written: no storage, reads as zeros;
 *   - encrypted: a ciphertext page in region->ciphertext, its version (how
 *     many times it was encrypted) in page_private();
 *   - resident: plaintext in a window frame (a page the module owns), on
 *     region->clock and in region->resident, mapped by vm_insert_page().
 * A fault decrypts into a free frame (then frees the ciphertext page) or
 * maps the zeroed frame; when the window is full, a victim chosen by CLOCK
 * over the PTE accessed bits of every mapping is unmapped everywhere,
 * encrypted into a new ciphertext page with the next version, and its frame
 * zeroed. A victim still referenced after the unmap (GUP in flight) is
 * skipped. The age scan evicts frames idle for max_plaintext_age_ms.
 *
 * Tweak (XTS IV, 16 bytes little endian): low 64 bits
 * (version << 32) | page_index, high 64 bits (1 << 63) | region_id: never a
 * plain64 disk sector (upper half zero), different per region, page and
 * re-encryption.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/bitops.h>
#include <linux/jiffies.h>
#include <linux/mm.h>
#include <linux/pgtable.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/version.h>
#include <linux/workqueue.h>

#include "ramcrypt_internal.h"
#include "tresor_api.h"

static void ramcrypt_iv(const struct ramcrypt_region *region, pgoff_t index,
			u32 version, __le64 iv[2])
{
	iv[0] = cpu_to_le64(((u64)version << 32) | (index & 0xffffffffULL));
	iv[1] = cpu_to_le64(BIT_ULL(63) | region->id);
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

/* Wipe and free a page the region owns (frame or ciphertext). */
static void ramcrypt_free_page(struct ramcrypt_region *region,
			       struct page *page)
{
	clear_page(page_address(page));
	set_page_private(page, 0);
	__free_page(page);
	ramcrypt_uncharge(region);
}

/* Test (and clear) the accessed bit of the PTE mapping @page at @addr. */
static bool ramcrypt_pte_young(struct mm_struct *mm, unsigned long addr,
			       struct page *page)
{
	pgd_t *pgd;
	p4d_t *p4d;
	pud_t *pud;
	pmd_t *pmd, pmdval;
	pte_t *ptep, pte;

	pgd = pgd_offset(mm, addr);
	if (pgd_none(*pgd) || pgd_bad(*pgd))
		return false;
	p4d = p4d_offset(pgd, addr);
	if (p4d_none(*p4d) || p4d_bad(*p4d))
		return false;
	pud = pud_offset(p4d, addr);
	if (pud_none(*pud) || pud_bad(*pud))
		return false;
	pmd = pmd_offset(pud, addr);
	pmdval = READ_ONCE(*pmd);
	if (!pmd_present(pmdval) || pmd_trans_huge(pmdval) || pmd_bad(pmdval))
		return false;
	ptep = pte_offset_kernel(pmd, addr);
	pte = ptep_get(ptep);
	if (!pte_present(pte) || pte_pfn(pte) != page_to_pfn(page) ||
	    !pte_young(pte))
		return false;
	/*
	 * Like ptep_test_and_clear_young() on x86 (not exported): an atomic
	 * bit clear, no TLB flush (a stale TLB entry only makes the page
	 * look idle sooner).
	 */
	return test_and_clear_bit(_PAGE_BIT_ACCESSED,
				  (unsigned long *)&ptep->pte);
}

/*
 * Was the frame accessed since the last check, through any mapping? The
 * page tables of a mapping are only walked under its mm's mmap_lock (read,
 * trylock: we hold region->lock, faults take it under mmap_lock) and once
 * find_vma() confirms the VMA is still attached, so they cannot be freed
 * under us. A mapping whose lock is busy counts as not accessed.
 */
static bool ramcrypt_frame_young(struct ramcrypt_region *region,
				 struct ramcrypt_frame *frame)
{
	struct ramcrypt_vma *rv;
	bool young = false;

	lockdep_assert_held(&region->lock);
	list_for_each_entry(rv, &region->vmas, node) {
		struct vm_area_struct *vma = rv->vma;
		struct mm_struct *mm = vma->vm_mm;
		unsigned long addr;

		if (!mmap_read_trylock(mm))
			continue;
		if (find_vma(mm, vma->vm_start) == vma &&
		    frame->index >= vma->vm_pgoff &&
		    frame->index < vma->vm_pgoff + vma_pages(vma)) {
			addr = vma->vm_start +
			       ((frame->index - vma->vm_pgoff) << PAGE_SHIFT);
			young |= ramcrypt_pte_young(mm, addr, frame->page);
		}
		mmap_read_unlock(mm);
	}
	return young;
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
 * Evict one resident frame: unmap it everywhere, encrypt it into a new
 * ciphertext page, zero the frame and put it on the free list.
 * Returns 0, -EBUSY if the page is still referenced (left resident,
 * unmapped: the next access faults it back in), or another error.
 */
static int ramcrypt_evict(struct ramcrypt_region *region,
			  struct ramcrypt_frame *frame,
			  enum ramcrypt_evict_cause cause)
{
	struct page *ct;
	__le64 iv[2];
	int ret;

	lockdep_assert_held(&region->lock);
	/* Pinned beyond its mappings (GUP in flight): skip without unmapping. */
	if (page_count(frame->page) > 1 + ramcrypt_mapcount(frame->page))
		goto skip;
	unmap_mapping_range(&region->mapping,
			    (loff_t)frame->index << PAGE_SHIFT, PAGE_SIZE, 1);
	/* Our reference only: nobody (GUP, O_DIRECT, KVM) can write it now. */
	if (page_count(frame->page) != 1 || page_mapped(frame->page))
		goto skip;

	if (!ramcrypt_charge(region))
		return -ENOMEM;
	ct = alloc_page(GFP_KERNEL);
	if (!ct) {
		ret = -ENOMEM;
		goto err_uncharge;
	}
	ramcrypt_iv(region, frame->index, frame->version + 1, iv);
	ret = tresor_encrypt_page(page_address(ct), page_address(frame->page),
				  (u8 *)iv);
	memzero_explicit(iv, sizeof(iv));
	if (ret) {
		ramcrypt_count(region, &region->crypto_errors,
			       &ramcrypt_global.crypto_errors);
		pr_warn_ratelimited("region %llu: cannot encrypt page %lu (%d), it stays plaintext\n",
				    region->id, frame->index, ret);
		goto err_free;
	}
	set_page_private(ct, frame->version + 1);
	ret = xa_err(xa_store(&region->ciphertext, frame->index, ct,
			      GFP_KERNEL));
	if (ret)
		goto err_free;
	region->nr_ciphertext++;
	atomic_long_inc(&ramcrypt_global.ciphertext_pages);

	xa_erase(&region->resident, frame->index);
	clear_page(page_address(frame->page));
	ClearPageDirty(frame->page);
	list_move(&frame->node, &region->free);
	region->nr_resident--;
	region->nr_free++;
	atomic_long_dec(&ramcrypt_global.plaintext_pages);
	if (cause < RAMCRYPT_EVICT_CLOSE)
		ramcrypt_count(region, &region->evictions[cause],
			       &ramcrypt_global.evictions[cause]);
	return 0;

skip:
	ramcrypt_count(region, &region->skipped_referenced,
		       &ramcrypt_global.skipped_referenced);
	return -EBUSY;
err_free:
	ramcrypt_free_page(region, ct);
	return ret;
err_uncharge:
	ramcrypt_uncharge(region);
	return ret;
}

/*
 * CLOCK: scan from the hand (list head); a frame accessed since the last
 * pass gets a second chance (moves behind the hand), a referenced one is
 * skipped. Two full turns at most.
 */
static int ramcrypt_evict_one(struct ramcrypt_region *region)
{
	u64 budget = 2 * region->nr_resident + 1;
	struct ramcrypt_frame *frame;
	int ret = -EBUSY;

	lockdep_assert_held(&region->lock);
	while (budget-- && !list_empty(&region->clock)) {
		frame = list_first_entry(&region->clock, struct ramcrypt_frame,
					 node);
		if (budget > region->nr_resident &&
		    ramcrypt_frame_young(region, frame)) {
			frame->last_access = jiffies;
			list_move_tail(&frame->node, &region->clock);
			continue;
		}
		ret = ramcrypt_evict(region, frame, RAMCRYPT_EVICT_WINDOW);
		if (ret != -EBUSY)
			return ret;
		list_move_tail(&frame->node, &region->clock);
	}
	return ret;
}

/* A zeroed frame for a fault: from the free list or newly allocated. */
static struct ramcrypt_frame *ramcrypt_get_frame(struct ramcrypt_region *region)
{
	struct ramcrypt_frame *frame;

	lockdep_assert_held(&region->lock);
	if (!list_empty(&region->free)) {
		frame = list_first_entry(&region->free, struct ramcrypt_frame,
					 node);
		list_del(&frame->node);
		region->nr_free--;
		return frame;
	}
	frame = kzalloc(sizeof(*frame), GFP_KERNEL);
	if (!frame)
		return NULL;
	if (!ramcrypt_charge(region))
		goto err_frame;
	frame->page = alloc_page(GFP_KERNEL | __GFP_ZERO);
	if (!frame->page)
		goto err_uncharge;
	return frame;

err_uncharge:
	ramcrypt_uncharge(region);
err_frame:
	kfree(frame);
	return NULL;
}

static void ramcrypt_put_free_frame(struct ramcrypt_region *region,
				    struct ramcrypt_frame *frame)
{
	lockdep_assert_held(&region->lock);
	list_add(&frame->node, &region->free);
	region->nr_free++;
}

/*
 * Fill a free frame with page @index: decrypt, or zeros if never written.
 * The ciphertext stays stored (*@ct) until the caller has committed the
 * frame, so a failure in between can never lose the page.
 */
static int ramcrypt_load(struct ramcrypt_region *region,
			 struct ramcrypt_frame *frame, pgoff_t index,
			 struct page **ct_out)
{
	struct page *ct;
	__le64 iv[2];
	int ret;

	lockdep_assert_held(&region->lock);
	frame->index = index;
	frame->version = 0;
	*ct_out = NULL;
	ct = xa_load(&region->ciphertext, index);
	if (!ct)
		return 0;

	frame->version = page_private(ct);
	ramcrypt_iv(region, index, frame->version, iv);
	ret = tresor_decrypt_page(page_address(frame->page), page_address(ct),
				  (u8 *)iv);
	memzero_explicit(iv, sizeof(iv));
	if (ret) {
		ramcrypt_count(region, &region->crypto_errors,
			       &ramcrypt_global.crypto_errors);
		return ret;
	}
	*ct_out = ct;
	return 0;
}

/* The frame for @index is committed: its old ciphertext can go. */
static void ramcrypt_drop_ciphertext(struct ramcrypt_region *region,
				     pgoff_t index, struct page *ct)
{
	lockdep_assert_held(&region->lock);
	xa_erase(&region->ciphertext, index);
	region->nr_ciphertext--;
	atomic_long_dec(&ramcrypt_global.ciphertext_pages);
	ramcrypt_free_page(region, ct);
}

static unsigned long ramcrypt_scan_period(void)
{
	unsigned int ms = READ_ONCE(ramcrypt_max_age_ms);

	return max(msecs_to_jiffies(ms / 2), 1UL);
}

vm_fault_t ramcrypt_window_fault(struct ramcrypt_region *region,
				 struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct ramcrypt_frame *frame;
	pgoff_t index = vmf->pgoff;
	vm_fault_t vmret = VM_FAULT_NOPAGE;
	struct page *ct;
	int ret;

	mutex_lock(&region->lock);
	if (index >= region->nr_pages) {
		vmret = VM_FAULT_SIGBUS;
		goto out_unlock;
	}
	ramcrypt_count(region, &region->faults, &ramcrypt_global.faults);

	frame = xa_load(&region->resident, index);
	if (frame)	/* resident but unmapped (another mm, or was pinned) */
		goto map;

	if (!tresor_key_available()) {
		pr_warn_ratelimited("region %llu: no TRESOR key loaded, faulting process gets SIGBUS\n",
				    region->id);
		vmret = VM_FAULT_SIGBUS;
		goto out_unlock;
	}

	while (region->nr_resident >= region->window) {
		ret = ramcrypt_evict_one(region);
		if (ret == -EBUSY) {
			/* Every frame is pinned: exceed the window for now. */
			ramcrypt_count(region, &region->window_overflows,
				       &ramcrypt_global.window_overflows);
			break;
		}
		if (ret) {
			vmret = VM_FAULT_SIGBUS;
			goto out_unlock;
		}
	}

	frame = ramcrypt_get_frame(region);
	if (!frame) {
		vmret = VM_FAULT_SIGBUS;
		goto out_unlock;
	}
	ret = ramcrypt_load(region, frame, index, &ct);
	if (ret) {
		pr_warn_ratelimited("region %llu: cannot decrypt page %lu (%d), faulting process gets SIGBUS\n",
				    region->id, index, ret);
		vmret = VM_FAULT_SIGBUS;
		goto err_frame;
	}
	ret = xa_err(xa_store(&region->resident, index, frame, GFP_KERNEL));
	if (ret) {
		vmret = VM_FAULT_OOM;	/* the ciphertext is still stored */
		goto err_frame;
	}
	if (ct)
		ramcrypt_drop_ciphertext(region, index, ct);
	list_add_tail(&frame->node, &region->clock);
	region->nr_resident++;
	atomic_long_inc(&ramcrypt_global.plaintext_pages);
	schedule_delayed_work(&region->scan, ramcrypt_scan_period());

map:
	frame->last_access = jiffies;
	ret = vm_insert_page(vma, vmf->address & PAGE_MASK, frame->page);
	if (ret && ret != -EBUSY)	/* -EBUSY: another thread mapped it */
		vmret = vmf_error(ret);
	mutex_unlock(&region->lock);
	return vmret;

err_frame:
	/* A failed decrypt may have written part of the frame. */
	clear_page(page_address(frame->page));
	ramcrypt_put_free_frame(region, frame);
out_unlock:
	mutex_unlock(&region->lock);
	return vmret;
}

/* Evict every resident frame; frames still referenced stay. */
static int ramcrypt_evict_all(struct ramcrypt_region *region,
			      enum ramcrypt_evict_cause cause)
{
	struct ramcrypt_frame *frame, *tmp;
	int ret, err = 0;

	lockdep_assert_held(&region->lock);
	list_for_each_entry_safe(frame, tmp, &region->clock, node) {
		ret = ramcrypt_evict(region, frame, cause);
		if (ret && !err)
			err = ret;
	}
	return err;
}

/* Keep at most @keep spare frames (zeroed) in the pool. */
static void ramcrypt_trim_free(struct ramcrypt_region *region, u64 keep)
{
	struct ramcrypt_frame *frame;

	lockdep_assert_held(&region->lock);
	while (region->nr_free > keep) {
		frame = list_first_entry(&region->free, struct ramcrypt_frame,
					 node);
		list_del(&frame->node);
		region->nr_free--;
		ramcrypt_free_page(region, frame->page);
		kfree(frame);
	}
}

int ramcrypt_window_set(struct ramcrypt_region *region, u32 pages)
{
	if (!pages || pages > RAMCRYPT_MAX_WINDOW)
		return -EINVAL;

	mutex_lock(&region->lock);
	region->window = pages;
	while (region->nr_resident > region->window) {
		if (ramcrypt_evict_one(region))
			break;
	}
	ramcrypt_trim_free(region, region->window -
			   min_t(u64, region->window, region->nr_resident));
	mutex_unlock(&region->lock);
	return 0;
}

int ramcrypt_window_flush(struct ramcrypt_region *region)
{
	int ret;

	mutex_lock(&region->lock);
	ret = ramcrypt_evict_all(region, RAMCRYPT_EVICT_FLUSH);
	mutex_unlock(&region->lock);
	/* -EBUSY: pinned pages stay resident, the flush itself succeeded */
	return ret == -EBUSY ? 0 : ret;
}

void ramcrypt_window_scan(struct work_struct *work)
{
	struct ramcrypt_region *region =
		container_of(to_delayed_work(work), struct ramcrypt_region,
			     scan);
	unsigned long max_age = msecs_to_jiffies(READ_ONCE(ramcrypt_max_age_ms));
	struct ramcrypt_frame *frame, *tmp;
	unsigned long now = jiffies;

	mutex_lock(&region->lock);
	list_for_each_entry_safe(frame, tmp, &region->clock, node) {
		if (ramcrypt_frame_young(region, frame)) {
			frame->last_access = now;
			continue;
		}
		if (time_after_eq(now, frame->last_access + max_age))
			ramcrypt_evict(region, frame, RAMCRYPT_EVICT_AGE);
	}
	if (region->nr_resident)
		schedule_delayed_work(&region->scan, ramcrypt_scan_period());
	mutex_unlock(&region->lock);
}

/* Last close: wipe and free every frame and ciphertext page. */
void ramcrypt_window_release(struct ramcrypt_region *region)
{
	struct ramcrypt_frame *frame, *tmp;
	unsigned long index;
	struct page *ct;

	mutex_lock(&region->lock);
	list_for_each_entry_safe(frame, tmp, &region->clock, node) {
		/* No mapping is left; a GUP user may still hold the page. */
		xa_erase(&region->resident, frame->index);
		list_del(&frame->node);
		region->nr_resident--;
		atomic_long_dec(&ramcrypt_global.plaintext_pages);
		clear_page(page_address(frame->page));
		ClearPageDirty(frame->page);
		set_page_private(frame->page, 0);
		put_page(frame->page);
		ramcrypt_uncharge(region);
		kfree(frame);
	}
	ramcrypt_trim_free(region, 0);
	xa_for_each(&region->ciphertext, index, ct) {
		xa_erase(&region->ciphertext, index);
		region->nr_ciphertext--;
		atomic_long_dec(&ramcrypt_global.ciphertext_pages);
		ramcrypt_free_page(region, ct);
	}
	WARN_ON_ONCE(region->mem_pages);
	mutex_unlock(&region->lock);
}

u64 ramcrypt_window_oldest_ms(struct ramcrypt_region *region)
{
	struct ramcrypt_frame *frame;
	unsigned long now = jiffies, oldest = 0;

	mutex_lock(&region->lock);
	list_for_each_entry(frame, &region->clock, node)
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
	st->plaintext_pages = region->nr_resident;
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
	mutex_unlock(&region->lock);
}
