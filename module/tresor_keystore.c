// SPDX-License-Identifier: GPL-2.0
/*
 * Key store: the key in DR0-DR3 of every key-holding CPU.
 *
 * The key passes through RAM once, in the SET_KEY buffer, which is wiped as
 * soon as every holder has it. What stays in RAM are check values
 * (AES_K1(0), AES_K2(0)): ciphertexts that let each request prove that the
 * local registers still hold the right key, without revealing it.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <crypto/algapi.h>
#include <linux/cpu.h>
#include <linux/kobject.h>
#include <linux/mutex.h>
#include <linux/percpu.h>
#include <linux/reboot.h>
#include <linux/suspend.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <linux/string.h>
#include <linux/sysfs.h>
#include <asm/fpu/api.h>

#include "tresor_cipher.h"
#include "tresor_keystore.h"

/* Serialises key loading, clearing and holder changes. */
static DEFINE_MUTEX(tresor_key_lock);

/* Published with release semantics once every holder has a verified key. */
static bool tresor_loaded;
static u8 tresor_check[32];
static struct cpumask tresor_holders;
static struct cpumask tresor_valid;

static atomic_t tresor_nr_tfms = ATOMIC_INIT(0);
static atomic64_t tresor_check_failures = ATOMIC64_INIT(0);
static atomic64_t tresor_forwarded = ATOMIC64_INIT(0);
static atomic64_t tresor_peer_copies = ATOMIC64_INIT(0);
static DEFINE_PER_CPU(u64, tresor_requests);

bool tresor_key_loaded(void)
{
	return smp_load_acquire(&tresor_loaded);
}

void tresor_tfm_get(void)
{
	atomic_inc(&tresor_nr_tfms);
}

void tresor_tfm_put(void)
{
	atomic_dec(&tresor_nr_tfms);
}

void tresor_count_request(void)
{
	this_cpu_inc(tresor_requests);
}

bool tresor_local_key_ok(const struct tresor_impl *impl)
{
	int cpu = smp_processor_id();
	u8 cv[32];
	bool ok;

	if (!cpumask_test_cpu(cpu, &tresor_valid))
		return false;
	impl->check_values(cv);
	ok = !crypto_memneq(cv, tresor_check, sizeof(cv));
	memzero_explicit(cv, sizeof(cv));
	if (!ok && cpumask_test_and_clear_cpu(cpu, &tresor_valid)) {
		atomic64_inc(&tresor_check_failures);
		pr_warn_ratelimited("CPU %d lost its key (check value mismatch); it no longer serves requests\n",
				    cpu);
	}
	return ok;
}

struct tresor_load_ctx {
	const u8 *key;
	const struct tresor_impl *impl;
	u8 check[32];
	bool have_check;
};

/* Runs on the target CPU in process context (smp_call_on_cpu). */
static int tresor_load_on_cpu(void *arg)
{
	struct tresor_load_ctx *ctx = arg;
	u8 cv[32];
	int ret = 0;

	tresor_write_key_regs(ctx->key);
	kernel_fpu_begin();
	ctx->impl->check_values(cv);
	kernel_fpu_end();
	if (!ctx->have_check) {
		memcpy(ctx->check, cv, sizeof(cv));
		ctx->have_check = true;
	} else if (crypto_memneq(cv, ctx->check, sizeof(cv))) {
		ret = -EIO;
	}
	memzero_explicit(cv, sizeof(cv));
	return ret;
}

static int tresor_wipe_on_cpu(void *unused)
{
	tresor_wipe_key_regs();
	return 0;
}

static void tresor_wipe_cpus(const struct cpumask *mask)
{
	unsigned int cpu;

	for_each_cpu(cpu, mask)
		smp_call_on_cpu(cpu, tresor_wipe_on_cpu, NULL, false);
}

int tresor_key_set(const u8 key[TRESOR_KEY_SIZE])
{
	const struct tresor_impl *impl = tresor_best_impl();
	struct tresor_load_ctx ctx = { .key = key, .impl = impl };
	unsigned int cpu;
	int ret = 0;

	if (!memchr_inv(key, 0, TRESOR_KEY_SIZE)) {
		pr_err("refusing an all-zero key\n");
		return -EINVAL;
	}

	mutex_lock(&tresor_key_lock);
	if (tresor_key_loaded()) {
		ret = -EEXIST;
		goto out_unlock;
	}

	cpus_read_lock();
	cpumask_copy(&tresor_holders, cpu_online_mask);
	cpumask_clear(&tresor_valid);
	for_each_cpu(cpu, &tresor_holders) {
		ret = smp_call_on_cpu(cpu, tresor_load_on_cpu, &ctx, false);
		if (ret) {
			pr_err("CPU %u does not hold the key after loading it\n",
			       cpu);
			break;
		}
		cpumask_set_cpu(cpu, &tresor_valid);
	}
	if (ret) {
		tresor_wipe_cpus(&tresor_holders);
		cpumask_clear(&tresor_holders);
		cpumask_clear(&tresor_valid);
	} else {
		memcpy(tresor_check, ctx.check, sizeof(tresor_check));
		smp_store_release(&tresor_loaded, true);
		pr_info("key loaded on CPUs %*pbl (%s)\n",
			cpumask_pr_args(&tresor_valid), impl->name);
	}
	cpus_read_unlock();
	memzero_explicit(&ctx, sizeof(ctx));

out_unlock:
	mutex_unlock(&tresor_key_lock);
	return ret;
}

int tresor_key_clear(void)
{
	int ret = 0;

	mutex_lock(&tresor_key_lock);
	if (atomic_read(&tresor_nr_tfms)) {
		ret = -EBUSY;
		goto out_unlock;
	}
	smp_store_release(&tresor_loaded, false);
	cpus_read_lock();
	/* Every online CPU, not only holders: leave no stale copy anywhere. */
	tresor_wipe_cpus(cpu_online_mask);
	cpumask_clear(&tresor_holders);
	cpumask_clear(&tresor_valid);
	cpus_read_unlock();
	memzero_explicit(tresor_check, sizeof(tresor_check));
	pr_info("key cleared\n");
out_unlock:
	mutex_unlock(&tresor_key_lock);
	return ret;
}

void tresor_get_status(struct tresor_status *st)
{
	unsigned int cpu;

	memset(st, 0, sizeof(*st));
	st->abi_version = TRESOR_ABI_VERSION;
	if (tresor_key_loaded())
		st->flags |= TRESOR_STATUS_KEY_LOADED;
	st->nr_holders = cpumask_weight(&tresor_holders);
	st->nr_valid_holders = cpumask_weight(&tresor_valid);
	st->check_failures = atomic64_read(&tresor_check_failures);
	st->forwarded_requests = atomic64_read(&tresor_forwarded);
	st->peer_copies = atomic64_read(&tresor_peer_copies);
	for_each_possible_cpu(cpu)
		st->requests += per_cpu(tresor_requests, cpu);
}

/* /sys/kernel/tresor/ */
#define TRESOR_STATUS_ATTR(field, fmt)					\
static ssize_t field##_show(struct kobject *kobj,			\
			    struct kobj_attribute *attr, char *buf)	\
{									\
	struct tresor_status st;					\
									\
	tresor_get_status(&st);						\
	return sysfs_emit(buf, fmt "\n", st.field);			\
}									\
static struct kobj_attribute field##_attr = __ATTR_RO(field)

TRESOR_STATUS_ATTR(nr_holders, "%u");
TRESOR_STATUS_ATTR(nr_valid_holders, "%u");
TRESOR_STATUS_ATTR(check_failures, "%llu");
TRESOR_STATUS_ATTR(forwarded_requests, "%llu");
TRESOR_STATUS_ATTR(peer_copies, "%llu");
TRESOR_STATUS_ATTR(requests, "%llu");

static ssize_t key_loaded_show(struct kobject *kobj,
			       struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", tresor_key_loaded());
}

static ssize_t holders_show(struct kobject *kobj, struct kobj_attribute *attr,
			    char *buf)
{
	return sysfs_emit(buf, "%*pbl\n", cpumask_pr_args(&tresor_holders));
}

static ssize_t valid_holders_show(struct kobject *kobj,
				  struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%*pbl\n", cpumask_pr_args(&tresor_valid));
}

static ssize_t implementation_show(struct kobject *kobj,
				   struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%s\n", tresor_best_impl()->name);
}

static struct kobj_attribute key_loaded_attr = __ATTR_RO(key_loaded);
static struct kobj_attribute holders_attr = __ATTR_RO(holders);
static struct kobj_attribute valid_holders_attr = __ATTR_RO(valid_holders);
static struct kobj_attribute implementation_attr = __ATTR_RO(implementation);

static struct attribute *tresor_status_attrs[] = {
	&key_loaded_attr.attr,
	&holders_attr.attr,
	&valid_holders_attr.attr,
	&nr_holders_attr.attr,
	&nr_valid_holders_attr.attr,
	&check_failures_attr.attr,
	&forwarded_requests_attr.attr,
	&peer_copies_attr.attr,
	&requests_attr.attr,
	&implementation_attr.attr,
	NULL,
};

const struct attribute_group tresor_status_group = {
	.attrs = tresor_status_attrs,
};

/*
 * Suspend and hibernation lose the debug registers (and hibernation would
 * write everything else to disk): refuse them while a key is loaded.
 */
static int tresor_pm_notify(struct notifier_block *nb, unsigned long action,
			    void *data)
{
	switch (action) {
	case PM_SUSPEND_PREPARE:
	case PM_HIBERNATION_PREPARE:
	case PM_RESTORE_PREPARE:
		if (tresor_key_loaded()) {
			pr_warn("refusing suspend/hibernation while the key is loaded; clear it first (TRESOR_IOC_CLEAR_KEY)\n");
			return notifier_from_errno(-EBUSY);
		}
	}
	return NOTIFY_DONE;
}

static struct notifier_block tresor_pm_nb = {
	.notifier_call = tresor_pm_notify,
};

static void tresor_wipe_ipi(void *unused)
{
	tresor_wipe_key_regs();
}

/* Reboot, halt, power-off and kexec: no key survives into the next kernel. */
static int tresor_reboot_notify(struct notifier_block *nb,
				unsigned long action, void *data)
{
	smp_store_release(&tresor_loaded, false);
	on_each_cpu(tresor_wipe_ipi, NULL, 1);
	return NOTIFY_DONE;
}

static struct notifier_block tresor_reboot_nb = {
	.notifier_call = tresor_reboot_notify,
};

int tresor_keystore_init(void)
{
	int ret;

	ret = register_pm_notifier(&tresor_pm_nb);
	if (ret)
		return ret;
	ret = register_reboot_notifier(&tresor_reboot_nb);
	if (ret)
		unregister_pm_notifier(&tresor_pm_nb);
	return ret;
}

/* Module unload: no tfm can exist any more; wipe every CPU regardless. */
void tresor_keystore_exit(void)
{
	unregister_reboot_notifier(&tresor_reboot_nb);
	unregister_pm_notifier(&tresor_pm_nb);
	smp_store_release(&tresor_loaded, false);
	cpus_read_lock();
	tresor_wipe_cpus(cpu_online_mask);
	cpus_read_unlock();
	memzero_explicit(tresor_check, sizeof(tresor_check));
}
