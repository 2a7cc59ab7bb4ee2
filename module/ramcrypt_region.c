// SPDX-License-Identifier: GPL-2.0
/*
 * Regions: one per open(), their address space, size
 * and mappings.
 *
 * A region has its own struct address_space (file->f_mapping), so
 * unmap_mapping_range() on it zaps exactly this region's PTEs in every
 * process (fork children, mremap copies) and, through the MMU notifiers,
 * in KVM. Only MAP_SHARED mappings are allowed: a private COW copy would be
 * an anonymous page outside the window. Mappings are VM_MIXEDMAP with
 * struct pages inserted by vm_insert_page(), so GUP (O_DIRECT, KVM) works.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/version.h>

#include "ramcrypt_internal.h"
#include "tresor_api.h"

static atomic64_t ramcrypt_next_id = ATOMIC64_INIT(0);

static const struct address_space_operations ramcrypt_aops;

struct ramcrypt_region *ramcrypt_region_create(struct inode *inode)
{
	struct ramcrypt_region *region;

	region = kzalloc(sizeof(*region), GFP_KERNEL);
	if (!region)
		return ERR_PTR(-ENOMEM);

	mutex_init(&region->lock);
	region->id = atomic64_inc_return(&ramcrypt_next_id);
	address_space_init_once(&region->mapping);
	/* host: the device inode, for inode_to_bdi() (noop bdi, no writeback) */
	region->mapping.host = inode;
	region->mapping.a_ops = &ramcrypt_aops;
	region->window = clamp_t(u32, READ_ONCE(ramcrypt_window_pages), 1,
				 RAMCRYPT_MAX_WINDOW);
	xa_init(&region->resident);
	xa_init(&region->ciphertext);
	INIT_LIST_HEAD(&region->clock);
	INIT_LIST_HEAD(&region->free);
	INIT_LIST_HEAD(&region->vmas);
	INIT_DELAYED_WORK(&region->scan, ramcrypt_window_scan);

	/* The host key may not be cleared (or replaced) while we hold
	 * pages encrypted with it.
	 */
	tresor_key_user_get();
	mutex_lock(&ramcrypt_regions_lock);
	list_add_tail(&region->node, &ramcrypt_regions);
	mutex_unlock(&ramcrypt_regions_lock);
	atomic_long_inc(&ramcrypt_global.regions);
	return region;
}

/* Called at the last close: no mapping is left, nor any other user. */
void ramcrypt_region_destroy(struct ramcrypt_region *region)
{
	mutex_lock(&ramcrypt_regions_lock);
	list_del(&region->node);
	mutex_unlock(&ramcrypt_regions_lock);

	cancel_delayed_work_sync(&region->scan);
	ramcrypt_window_release(region);
	WARN_ON_ONCE(!list_empty(&region->vmas));
	xa_destroy(&region->resident);
	xa_destroy(&region->ciphertext);
	mutex_destroy(&region->lock);
	atomic_long_dec(&ramcrypt_global.regions);
	kfree(region);
	tresor_key_user_put();
}

int ramcrypt_region_set_size(struct ramcrypt_region *region, u64 bytes)
{
	u64 pages;
	int ret = 0;

	if (!bytes || !PAGE_ALIGNED(bytes))
		return -EINVAL;
	pages = bytes >> PAGE_SHIFT;
	if (pages > RAMCRYPT_MAX_PAGES)
		return -EINVAL;

	mutex_lock(&region->lock);
	if (!region->nr_pages)
		region->nr_pages = pages;
	else if (region->nr_pages != pages)
		ret = -EBUSY;
	mutex_unlock(&region->lock);
	return ret;
}

static void ramcrypt_track_vma(struct ramcrypt_region *region,
			       struct ramcrypt_vma *rv,
			       struct vm_area_struct *vma)
{
	lockdep_assert_held(&region->lock);
	rv->vma = vma;
	list_add_tail(&rv->node, &region->vmas);
}

static void ramcrypt_vm_open(struct vm_area_struct *vma)
{
	struct ramcrypt_region *region = vma->vm_private_data;
	struct ramcrypt_vma *rv;

	/*
	 * A copy (fork, split, mremap). Without the tracking entry the copy
	 * still works; only its accessed bits go unseen by the clock.
	 */
	rv = kmalloc(sizeof(*rv), GFP_KERNEL);
	if (!rv)
		return;
	mutex_lock(&region->lock);
	ramcrypt_track_vma(region, rv, vma);
	mutex_unlock(&region->lock);
}

static void ramcrypt_vm_close(struct vm_area_struct *vma)
{
	struct ramcrypt_region *region = vma->vm_private_data;
	struct ramcrypt_vma *rv, *tmp;

	mutex_lock(&region->lock);
	list_for_each_entry_safe(rv, tmp, &region->vmas, node) {
		if (rv->vma == vma) {
			list_del(&rv->node);
			kfree(rv);
			break;
		}
	}
	mutex_unlock(&region->lock);
}

static vm_fault_t ramcrypt_vm_fault(struct vm_fault *vmf)
{
	return ramcrypt_window_fault(vmf->vma->vm_private_data, vmf);
}

static const struct vm_operations_struct ramcrypt_vm_ops = {
	.open = ramcrypt_vm_open,
	.close = ramcrypt_vm_close,
	.fault = ramcrypt_vm_fault,
};

int ramcrypt_region_mmap(struct ramcrypt_region *region,
			 struct vm_area_struct *vma)
{
	u64 end = (u64)vma->vm_pgoff + vma_pages(vma);
	struct ramcrypt_vma *rv;
	int ret = 0;

	/* VM_MAYSHARE: also set for read-only MAP_SHARED of an O_RDONLY fd */
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	if (end > RAMCRYPT_MAX_PAGES || end < vma->vm_pgoff)
		return -EINVAL;

	rv = kmalloc(sizeof(*rv), GFP_KERNEL);
	if (!rv)
		return -ENOMEM;

	mutex_lock(&region->lock);
	if (!region->nr_pages) {
		region->nr_pages = end;
	} else if (end > region->nr_pages) {
		ret = -EINVAL;
		goto err_unlock;
	}
	/*
	 * MIXEDMAP: vm_insert_page() from the fault handler (pages stay
	 * normal, refcounted and GUP-able). DONTEXPAND: mremap cannot grow
	 * past the region. DONTDUMP: no plaintext in core dumps.
	 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_set(vma, VM_MIXEDMAP | VM_DONTEXPAND | VM_DONTDUMP);
#else
	vma->vm_flags |= VM_MIXEDMAP | VM_DONTEXPAND | VM_DONTDUMP;
#endif
	vma->vm_ops = &ramcrypt_vm_ops;
	vma->vm_private_data = region;
	ramcrypt_track_vma(region, rv, vma);
	mutex_unlock(&region->lock);
	return 0;

err_unlock:
	mutex_unlock(&region->lock);
	kfree(rv);
	return ret;
}
