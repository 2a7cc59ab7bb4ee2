// SPDX-License-Identifier: GPL-2.0
/*
 * Regions: one per open(), their address space, size
 * and mappings.
 *
 * A region has its own struct address_space (file->f_mapping), so
 * unmap_mapping_range() on it zaps exactly this region's PTEs in every
 * process (fork children, mremap copies) and, through the MMU notifiers,
 * in KVM. Only MAP_SHARED mappings are allowed: a private COW copy would be
 * an anonymous page outside the window. The fault handler returns the
 * frame's struct page for the core to map, so GUP (O_DIRECT, KVM) works.
 *
 * Each live region is /sys/kernel/ramcrypt/regions/<id>/ (read-only): its
 * opener (cgroup_id, cgroup, pid), the policy it took at open() and its
 * counters. The directory goes at the last close, before the region is
 * torn down (kobject_del() waits for every read in progress); the region's
 * memory is freed by its kobject's release.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/memcontrol.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/sysfs.h>
#include <linux/version.h>

#include "ramcrypt_internal.h"
#include "tresor_api.h"

static atomic64_t ramcrypt_next_id = ATOMIC64_INIT(0);

static const struct address_space_operations ramcrypt_aops;

static struct ramcrypt_region *kobj_region(struct kobject *kobj)
{
	return container_of(kobj, struct ramcrypt_region, kobj);
}

/* A counter or value of RAMCRYPT_IOC_STATS, read under the region's lock */
#define RAMCRYPT_REGION_STAT(_name, _expr)				static ssize_t region_##_name##_show(struct kobject *kobj,						     struct kobj_attribute *attr,					     char *buf)				{										struct ramcrypt_stats st;															memset(&st, 0, sizeof(st));						ramcrypt_window_stats(kobj_region(kobj), &st);				return sysfs_emit(buf, "%llu\n", (unsigned long long)(_expr));	}									static struct kobj_attribute region_##_name##_attr =				__ATTR(_name, 0444, region_##_name##_show, NULL)

RAMCRYPT_REGION_STAT(size, st.size);
RAMCRYPT_REGION_STAT(window_pages, st.window_pages);
RAMCRYPT_REGION_STAT(plaintext_pages, st.plaintext_pages);
RAMCRYPT_REGION_STAT(encrypted_pages, st.encrypted_pages);
RAMCRYPT_REGION_STAT(faults, st.faults);
RAMCRYPT_REGION_STAT(evictions, st.evictions_window + st.evictions_age +
		     st.evictions_flush);
RAMCRYPT_REGION_STAT(oldest_plaintext_age_ms, st.oldest_plaintext_age_ms);
RAMCRYPT_REGION_STAT(crypto_errors, st.crypto_errors);
RAMCRYPT_REGION_STAT(crypto_cpu_errors, st.crypto_cpu_errors);

static const char * const ramcrypt_policy_source_names[] = {
	[RAMCRYPT_POLICY_DEFAULT] = "default",
	[RAMCRYPT_POLICY_CGROUP] = "cgroup",
	[RAMCRYPT_POLICY_DIRECTORY] = "directory",
};

/* Fixed at open() (the module's live parameters if no policy) */
#define RAMCRYPT_REGION_VAL(_name, _fmt, _expr)				static ssize_t region_##_name##_show(struct kobject *kobj,						     struct kobj_attribute *attr,					     char *buf)				{										struct ramcrypt_region *region = kobj_region(kobj);												return sysfs_emit(buf, _fmt "\n", _expr);			}									static struct kobj_attribute region_##_name##_attr =				__ATTR(_name, 0444, region_##_name##_show, NULL)

RAMCRYPT_REGION_VAL(cgroup_id, "%llu", region->cgroup_id);
RAMCRYPT_REGION_VAL(cgroup, "%s", region->cgroup ?: "");
RAMCRYPT_REGION_VAL(pid, "%d", region->pid);
RAMCRYPT_REGION_VAL(policy_source, "%s",
		    ramcrypt_policy_source_names[region->policy_source]);
RAMCRYPT_REGION_VAL(max_plaintext_age_ms, "%u", ramcrypt_max_age(region));
RAMCRYPT_REGION_VAL(crypto_cpu, "%d", region->crypto_cpu);
RAMCRYPT_REGION_VAL(evict_ahead_pages, "%u", ramcrypt_evict_ahead(region));

static struct attribute *ramcrypt_region_attrs[] = {
	&region_cgroup_id_attr.attr,
	&region_cgroup_attr.attr,
	&region_pid_attr.attr,
	&region_policy_source_attr.attr,
	&region_size_attr.attr,
	&region_window_pages_attr.attr,
	&region_max_plaintext_age_ms_attr.attr,
	&region_crypto_cpu_attr.attr,
	&region_evict_ahead_pages_attr.attr,
	&region_plaintext_pages_attr.attr,
	&region_encrypted_pages_attr.attr,
	&region_faults_attr.attr,
	&region_evictions_attr.attr,
	&region_oldest_plaintext_age_ms_attr.attr,
	&region_crypto_errors_attr.attr,
	&region_crypto_cpu_errors_attr.attr,
	NULL,
};
ATTRIBUTE_GROUPS(ramcrypt_region);

/* The last reference: sysfs is gone and the region torn down */
static void ramcrypt_region_free(struct kobject *kobj)
{
	struct ramcrypt_region *region = kobj_region(kobj);

	kfree(region->cgroup);
	kfree(region);
}

static const struct kobj_type ramcrypt_region_ktype = {
	.release = ramcrypt_region_free,
	.sysfs_ops = &kobj_sysfs_ops,
	.default_groups = ramcrypt_region_groups,
};

struct ramcrypt_region *
ramcrypt_region_create(struct inode *inode,
		       const struct ramcrypt_policy_values *dir_policy)
{
	struct ramcrypt_region *region;
	int ret;

	region = kzalloc(sizeof(*region), GFP_KERNEL);
	if (!region)
		return ERR_PTR(-ENOMEM);

	region->id = atomic64_inc_return(&ramcrypt_next_id);
	if (region->id >= BIT_ULL(RAMCRYPT_REGION_ID_BITS)) {
		/* Each region needs tweaks of its own; 2^40 opens per boot */
		pr_warn_ratelimited("region ids used up, no new region until reboot\n");
		kfree(region);
		return ERR_PTR(-ENOSPC);
	}
	/* From here on kobject_put() frees the region */
	kobject_init(&region->kobj, &ramcrypt_region_ktype);
	mutex_init(&region->lock);
	address_space_init_once(&region->mapping);
	/* host: the device inode, for inode_to_bdi() (noop bdi, no writeback) */
	region->mapping.host = inode;
	region->mapping.a_ops = &ramcrypt_aops;
	/* window, age bound, evict-ahead, crypto CPU: policy or defaults */
	ramcrypt_policy_take(region, dir_policy);
	/* Their nodes are charged to the region's memcg too */
	xa_init_flags(&region->resident, XA_FLAGS_ACCOUNT);
	xa_init_flags(&region->ciphertext, XA_FLAGS_ACCOUNT);
	INIT_LIST_HEAD(&region->clock);
	INIT_LIST_HEAD(&region->free);
	INIT_LIST_HEAD(&region->writeback);
	INIT_DELAYED_WORK(&region->scan, ramcrypt_window_scan);
	INIT_WORK(&region->evict_ahead, ramcrypt_window_evict_ahead);
	init_waitqueue_head(&region->frame_wait);

	/* The host key may not be cleared (or replaced) while we hold
	 * pages encrypted with it.
	 */
	tresor_key_user_get();
	ret = kobject_add(&region->kobj, ramcrypt_regions_kobj, "%llu",
			  region->id);
	if (ret) {
		pr_warn_ratelimited("region %llu: cannot add it to sysfs (%d)\n",
				    region->id, ret);
		tresor_key_user_put();
		mutex_destroy(&region->lock);
		kobject_put(&region->kobj);
		return ERR_PTR(ret);
	}
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
	/* Waits for sysfs reads in progress; none starts after it */
	kobject_del(&region->kobj);

	/* Only faults queue evict-ahead, and no mapping is left. */
	cancel_work_sync(&region->evict_ahead);
	cancel_delayed_work_sync(&region->scan);
	ramcrypt_window_release(region);
	xa_destroy(&region->resident);
	xa_destroy(&region->ciphertext);
	mem_cgroup_put(region->memcg);
	mutex_destroy(&region->lock);
	atomic_long_dec(&ramcrypt_global.regions);
	tresor_key_user_put();
	kobject_put(&region->kobj);
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

static vm_fault_t ramcrypt_vm_fault(struct vm_fault *vmf)
{
	return ramcrypt_window_fault(vmf->vma->vm_private_data, vmf);
}

static vm_fault_t ramcrypt_vm_page_mkwrite(struct vm_fault *vmf)
{
	return ramcrypt_window_mkwrite(vmf->vma->vm_private_data, vmf);
}

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
/*
 * Maps nothing: ->fault maps a frame, under region->lock, a mutex, and
 * ->map_pages runs under RCU. It is here for what its presence tells the
 * core since 6.7 (vmf_can_call_fault()): that ->fault and ->page_mkwrite
 * may run under the VMA's own lock alone. Ours take no mmap_lock and use
 * only vmf->vma's private data, so a fault need not be retried under
 * mmap_lock: on 6.12 under TCG, ~1.1 us less a fault (a zero-fill fault
 * 10.8-11.5 us instead of 12.1-12.5). Older kernels would only pay the
 * call for each read fault.
 */
static vm_fault_t ramcrypt_vm_map_pages(struct vm_fault *vmf,
					pgoff_t start_pgoff, pgoff_t end_pgoff)
{
	return 0;
}
#endif

/*
 * With .page_mkwrite the core maps the region write-protected
 * (vma_wants_writenotify()): the first write through any mapping, and every
 * GUP with FOLL_WRITE (KVM's hva_to_pfn, O_DIRECT reads), goes through
 * ramcrypt_window_fault() with FAULT_FLAG_WRITE or through page_mkwrite, so
 * a frame never made writable since it was loaded is known to be clean.
 */
static const struct vm_operations_struct ramcrypt_vm_ops = {
	.fault = ramcrypt_vm_fault,
	.page_mkwrite = ramcrypt_vm_page_mkwrite,
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
	.map_pages = ramcrypt_vm_map_pages,
#endif
};

int ramcrypt_region_mmap(struct ramcrypt_region *region,
			 struct vm_area_struct *vma)
{
	u64 end = (u64)vma->vm_pgoff + vma_pages(vma);
	int ret = 0;

	/* VM_MAYSHARE: also set for read-only MAP_SHARED of an O_RDONLY fd */
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	if (end > RAMCRYPT_MAX_PAGES || end < vma->vm_pgoff)
		return -EINVAL;

	mutex_lock(&region->lock);
	/*
	 * A ramcryptfs file's size is its i_size (ramcrypt_fs.c): it may be
	 * mapped past its end, where faults get SIGBUS, as other files.
	 */
	if (!region->sized_by_file && !region->nr_pages) {
		region->nr_pages = end;
	} else if (!region->sized_by_file && end > region->nr_pages) {
		ret = -EINVAL;
		goto out_unlock;
	}
	/*
	 * The region's memory is charged to the first mapper's cgroup (QEMU's,
	 * not a vhost-user backend's that maps it later).
	 */
	if (!region->memcg)
		region->memcg = get_mem_cgroup_from_mm(vma->vm_mm);
	/*
	 * The fault handler hands the core a frame (a normal, refcounted,
	 * GUP-able page) to map. MIXEDMAP and DONTEXPAND (VM_SPECIAL): no
	 * mlock, no merging, mremap cannot grow past the region. DONTDUMP:
	 * no plaintext in core dumps.
	 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_set(vma, VM_MIXEDMAP | VM_DONTEXPAND | VM_DONTDUMP);
#else
	vma->vm_flags |= VM_MIXEDMAP | VM_DONTEXPAND | VM_DONTDUMP;
#endif
	vma->vm_ops = &ramcrypt_vm_ops;
	vma->vm_private_data = region;
out_unlock:
	mutex_unlock(&region->lock);
	return ret;
}
