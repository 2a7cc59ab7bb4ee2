// SPDX-License-Identifier: GPL-2.0
/*
 * Region policies, keyed by cgroup: /sys/kernel/config/ramcrypt/policies/
 *
 * Root makes one item per policy (mkdir NAME), writes its attributes
 * (window_pages, max_plaintext_age_ms, crypto_cpu, evict_ahead_pages; a new
 * item starts with the module's parameters and crypto_cpu -1) and then
 * cgroup_id, the cgroup v2 id (st_ino of the cgroup's directory). Until
 * then the policy matches nothing; from then on it is frozen: every
 * attribute, cgroup_id too, refuses writes with -EBUSY, so a region never
 * sees a policy half written. rmdir removes it; regions keep what they
 * took.
 *
 * At open() a region takes the policy of its opener's cgroup or of the
 * nearest ancestor that has one, else the module's parameters (the strict
 * defaults). Writes need CAP_SYS_ADMIN whatever the file modes say; bad
 * values get -EINVAL and a kernel log line naming attribute and value.
 *
 * Locking: ramcrypt_policy_lock guards the list of matching policies and
 * every item's values; a region copies the values under it. A ramcryptfs
 * file is created under its directory's i_rwsem, so the order is i_rwsem,
 * then ramcrypt_policy_lock; nothing here takes an inode lock.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/cgroup.h>
#include <linux/configfs.h>
#include <linux/cpumask.h>
#include <linux/err.h>
#include <linux/kernel.h>
#include <linux/kernfs.h>
#include <linux/limits.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "ramcrypt_internal.h"

struct ramcrypt_policy {
	struct config_item item;
	struct list_head node;		/* ramcrypt_policies, once cgroup_id */
	u64 cgroup_id;			/* 0: matches nothing yet */
	struct ramcrypt_policy_values v;
};

static DEFINE_MUTEX(ramcrypt_policy_lock);
static LIST_HEAD(ramcrypt_policies);

static struct ramcrypt_policy *to_policy(struct config_item *item)
{
	return container_of(item, struct ramcrypt_policy, item);
}

/* Writes: root only, and never to a policy already in force. */
static int ramcrypt_policy_writable(struct ramcrypt_policy *p,
				    const char *attr)
{
	lockdep_assert_held(&ramcrypt_policy_lock);
	if (!p->cgroup_id)
		return 0;
	pr_warn_ratelimited("policy %s: %s is frozen once cgroup_id is set (remove the policy and make it again)\n",
			    config_item_name(&p->item), attr);
	return -EBUSY;
}

static int ramcrypt_policy_bad(struct ramcrypt_policy *p, const char *attr,
			       const char *buf, const char *why)
{
	pr_warn_ratelimited("policy %s: %s '%.*s' is invalid: %s\n",
			    config_item_name(&p->item), attr,
			    (int)min_t(size_t, strcspn(buf, "\n"), 32), buf,
			    why);
	return -EINVAL;
}

/* Parse an unsigned value in [min, max] for @attr */
static int ramcrypt_policy_u32(struct ramcrypt_policy *p, const char *attr,
			       const char *buf, u32 min, u32 max, u32 *out)
{
	u32 val;

	if (kstrtou32(buf, 0, &val))
		return ramcrypt_policy_bad(p, attr, buf, "not a number");
	if (val < min || val > max) {
		char why[48];

		snprintf(why, sizeof(why), "must be %u-%u", min, max);
		return ramcrypt_policy_bad(p, attr, buf, why);
	}
	*out = val;
	return 0;
}

#define RAMCRYPT_POLICY_U32(_name, _field, _min, _max)			\
static ssize_t ramcrypt_policy_##_name##_show(struct config_item *item,	\
					      char *page)		\
{									\
	struct ramcrypt_policy *p = to_policy(item);			\
	u32 val;							\
									\
	mutex_lock(&ramcrypt_policy_lock);				\
	val = p->v._field;						\
	mutex_unlock(&ramcrypt_policy_lock);				\
	return sprintf(page, "%u\n", val);				\
}									\
static ssize_t ramcrypt_policy_##_name##_store(struct config_item *item,\
					       const char *page,	\
					       size_t count)		\
{									\
	struct ramcrypt_policy *p = to_policy(item);			\
	u32 val;							\
	int ret;							\
									\
	if (!capable(CAP_SYS_ADMIN))					\
		return -EPERM;						\
	ret = ramcrypt_policy_u32(p, #_name, page, _min, _max, &val);	\
	if (ret)							\
		return ret;						\
	mutex_lock(&ramcrypt_policy_lock);				\
	ret = ramcrypt_policy_writable(p, #_name);			\
	if (!ret)							\
		p->v._field = val;					\
	mutex_unlock(&ramcrypt_policy_lock);				\
	return ret ? ret : count;					\
}									\
CONFIGFS_ATTR(ramcrypt_policy_, _name)

RAMCRYPT_POLICY_U32(window_pages, window_pages, 1, RAMCRYPT_MAX_WINDOW);
RAMCRYPT_POLICY_U32(max_plaintext_age_ms, max_age_ms, 1, RAMCRYPT_MAX_AGE_MS);
RAMCRYPT_POLICY_U32(evict_ahead_pages, evict_ahead_pages, 0,
		    RAMCRYPT_MAX_WINDOW);

static ssize_t ramcrypt_policy_crypto_cpu_show(struct config_item *item,
					       char *page)
{
	struct ramcrypt_policy *p = to_policy(item);
	int val;

	mutex_lock(&ramcrypt_policy_lock);
	val = p->v.crypto_cpu;
	mutex_unlock(&ramcrypt_policy_lock);
	return sprintf(page, "%d\n", val);
}

static ssize_t ramcrypt_policy_crypto_cpu_store(struct config_item *item,
						const char *page, size_t count)
{
	struct ramcrypt_policy *p = to_policy(item);
	int val, ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (kstrtoint(page, 0, &val))
		return ramcrypt_policy_bad(p, "crypto_cpu", page,
					   "not a number");
	if (val < -1 || (val >= 0 && (val >= nr_cpu_ids || !cpu_online(val))))
		return ramcrypt_policy_bad(p, "crypto_cpu", page,
					   "not an online CPU (or -1: the module's default)");
	mutex_lock(&ramcrypt_policy_lock);
	ret = ramcrypt_policy_writable(p, "crypto_cpu");
	if (!ret)
		p->v.crypto_cpu = val;
	mutex_unlock(&ramcrypt_policy_lock);
	return ret ? ret : count;
}

CONFIGFS_ATTR(ramcrypt_policy_, crypto_cpu);

static ssize_t ramcrypt_policy_cgroup_id_show(struct config_item *item,
					      char *page)
{
	struct ramcrypt_policy *p = to_policy(item);
	u64 val;

	mutex_lock(&ramcrypt_policy_lock);
	val = p->cgroup_id;
	mutex_unlock(&ramcrypt_policy_lock);
	return sprintf(page, "%llu\n", val);
}

static ssize_t ramcrypt_policy_cgroup_id_store(struct config_item *item,
					       const char *page, size_t count)
{
	struct ramcrypt_policy *p = to_policy(item), *other;
	struct cgroup *cgrp;
	u64 id;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (kstrtou64(page, 0, &id))
		return ramcrypt_policy_bad(p, "cgroup_id", page,
					   "not a number");
	if (!id)
		return ramcrypt_policy_bad(p, "cgroup_id", page,
					   "0 matches no cgroup");
	/* A cgroup of the v2 hierarchy (visible from here) */
	cgrp = cgroup_get_from_id(id);
	if (IS_ERR_OR_NULL(cgrp))
		return ramcrypt_policy_bad(p, "cgroup_id", page,
					   "no such cgroup v2 (st_ino of its directory)");
	cgroup_put(cgrp);

	mutex_lock(&ramcrypt_policy_lock);
	ret = ramcrypt_policy_writable(p, "cgroup_id");
	if (ret)
		goto out_unlock;
	list_for_each_entry(other, &ramcrypt_policies, node) {
		if (other->cgroup_id == id) {
			pr_warn_ratelimited("policy %s: cgroup_id %llu already has policy %s\n",
					    config_item_name(&p->item), id,
					    config_item_name(&other->item));
			ret = -EEXIST;
			goto out_unlock;
		}
	}
	p->cgroup_id = id;
	list_add_tail(&p->node, &ramcrypt_policies);
out_unlock:
	mutex_unlock(&ramcrypt_policy_lock);
	return ret ? ret : count;
}

CONFIGFS_ATTR(ramcrypt_policy_, cgroup_id);

static struct configfs_attribute *ramcrypt_policy_attrs[] = {
	&ramcrypt_policy_attr_window_pages,
	&ramcrypt_policy_attr_max_plaintext_age_ms,
	&ramcrypt_policy_attr_crypto_cpu,
	&ramcrypt_policy_attr_evict_ahead_pages,
	&ramcrypt_policy_attr_cgroup_id,
	NULL,
};

static void ramcrypt_policy_release(struct config_item *item)
{
	kfree(to_policy(item));
}

static struct configfs_item_operations ramcrypt_policy_item_ops = {
	.release = ramcrypt_policy_release,
};

static const struct config_item_type ramcrypt_policy_type = {
	.ct_item_ops = &ramcrypt_policy_item_ops,
	.ct_attrs = ramcrypt_policy_attrs,
	.ct_owner = THIS_MODULE,
};

static struct config_item *ramcrypt_policy_make(struct config_group *group,
						const char *name)
{
	struct ramcrypt_policy *p;

	/* configfs checks only the directory's modes */
	if (!capable(CAP_SYS_ADMIN))
		return ERR_PTR(-EPERM);
	p = kzalloc(sizeof(*p), GFP_KERNEL);
	if (!p)
		return ERR_PTR(-ENOMEM);
	INIT_LIST_HEAD(&p->node);
	p->v.window_pages = clamp_t(u32, READ_ONCE(ramcrypt_window_pages), 1,
				    RAMCRYPT_MAX_WINDOW);
	p->v.max_age_ms = clamp_t(u32, READ_ONCE(ramcrypt_max_age_ms), 1,
				  RAMCRYPT_MAX_AGE_MS);
	p->v.evict_ahead_pages = min_t(u32,
				       READ_ONCE(ramcrypt_evict_ahead_pages),
				       RAMCRYPT_MAX_WINDOW);
	p->v.crypto_cpu = -1;
	config_item_init_type_name(&p->item, name, &ramcrypt_policy_type);
	return &p->item;
}

static void ramcrypt_policy_drop(struct config_group *group,
				 struct config_item *item)
{
	struct ramcrypt_policy *p = to_policy(item);

	mutex_lock(&ramcrypt_policy_lock);
	list_del_init(&p->node);
	mutex_unlock(&ramcrypt_policy_lock);
	config_item_put(item);
}

static struct configfs_group_operations ramcrypt_policies_ops = {
	.make_item = ramcrypt_policy_make,
	.drop_item = ramcrypt_policy_drop,
};

static const struct config_item_type ramcrypt_policies_type = {
	.ct_group_ops = &ramcrypt_policies_ops,
	.ct_owner = THIS_MODULE,
};

static const struct config_item_type ramcrypt_subsys_type = {
	.ct_owner = THIS_MODULE,
};

static struct config_group ramcrypt_policies_group;

static struct configfs_subsystem ramcrypt_subsys = {
	.su_group = {
		.cg_item = {
			.ci_namebuf = "ramcrypt",
			.ci_type = &ramcrypt_subsys_type,
		},
	},
};

int ramcrypt_policy_init(void)
{
	int ret;

	config_group_init(&ramcrypt_subsys.su_group);
	mutex_init(&ramcrypt_subsys.su_mutex);
	config_group_init_type_name(&ramcrypt_policies_group, "policies",
				    &ramcrypt_policies_type);
	configfs_add_default_group(&ramcrypt_policies_group,
				   &ramcrypt_subsys.su_group);
	ret = configfs_register_subsystem(&ramcrypt_subsys);
	if (ret)
		pr_err("cannot register configfs subsystem ramcrypt: %d\n",
		       ret);
	return ret;
}

void ramcrypt_policy_exit(void)
{
	configfs_unregister_subsystem(&ramcrypt_subsys);
}

/*
 * At open(): the opener's cgroup, tgid and policy. A reference on the
 * cgroup pins its ancestors, so the walk needs no RCU.
 */
void ramcrypt_policy_take(struct ramcrypt_region *region,
			  const struct ramcrypt_policy_values *dir)
{
	struct ramcrypt_policy *p, *found = NULL;
	struct cgroup *cgrp, *pos;
	char *path;

	region->pid = task_tgid_nr(current);
	region->crypto_cpu = -1;
	region->window = clamp_t(u32, READ_ONCE(ramcrypt_window_pages), 1,
				 RAMCRYPT_MAX_WINDOW);

	rcu_read_lock();
	cgrp = task_dfl_cgroup(current);
	cgroup_get(cgrp);
	rcu_read_unlock();

	region->cgroup_id = cgroup_id(cgrp);
	/* From the hierarchy's root, whatever cgroup namespace we are in */
	path = kmalloc(PATH_MAX, GFP_KERNEL);
	if (path) {
		int len = kernfs_path(cgrp->kn, path, PATH_MAX);

		if (len >= 0 && len < PATH_MAX)
			region->cgroup = kstrdup(path, GFP_KERNEL);
	}
	kfree(path);

	if (dir) {
		/* A ramcryptfs directory's, frozen since it was set */
		region->has_policy = true;
		region->policy_source = RAMCRYPT_POLICY_DIRECTORY;
		region->window = dir->window_pages;
		region->max_age_ms = dir->max_age_ms;
		region->evict_ahead_pages = dir->evict_ahead_pages;
		region->crypto_cpu = dir->crypto_cpu;
		cgroup_put(cgrp);
		return;
	}

	mutex_lock(&ramcrypt_policy_lock);
	for (pos = cgrp; pos && !found; pos = cgroup_parent(pos)) {
		list_for_each_entry(p, &ramcrypt_policies, node) {
			if (p->cgroup_id == cgroup_id(pos)) {
				found = p;
				break;
			}
		}
	}
	if (found) {
		region->has_policy = true;
		region->policy_source = RAMCRYPT_POLICY_CGROUP;
		region->window = found->v.window_pages;
		region->max_age_ms = found->v.max_age_ms;
		region->evict_ahead_pages = found->v.evict_ahead_pages;
		region->crypto_cpu = found->v.crypto_cpu;
	}
	mutex_unlock(&ramcrypt_policy_lock);
	cgroup_put(cgrp);
}
