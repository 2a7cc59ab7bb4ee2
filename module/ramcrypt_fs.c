// SPDX-License-Identifier: GPL-2.0
/*
 * ramcryptfs: ramcrypt regions as regular files
 *
 *   mount -t ramcryptfs -o mode=1770,gid=kvm none /run/ramcrypt
 *
 * A small pseudo file system (as hugetlbfs and secretmem are) for VMMs
 * that want a file, not a device: libvirt's memory_backing_dir, QEMU's
 * memory-backend-file with a directory as mem-path, and QEMU's discard
 * (fallocate(PUNCH_HOLE), which a character device cannot offer).
 *
 * How a file's region relates to /dev/ramcrypt's: they are the same
 * object. Every regular file is one struct ramcrypt_region, made by
 * ramcrypt_region_create() when the file is created and torn down by
 * ramcrypt_region_destroy() when its inode is evicted, i.e. once it is
 * unlinked (or the file system unmounted) and its last open file and last
 * mapping are gone; an open() of /dev/ramcrypt makes one that lives until
 * its last close. So a file's region has the same window, age bound,
 * tweaks (its own region id: regions/<id>/ in sysfs, the same counters),
 * evict-ahead, crypto CPU, memory cap and memcg charging (the first
 * mapper's cgroup), and takes its policy (ramcrypt_policy.c) the same way,
 * from the cgroup of the process that creates the file: the creator plays
 * the device's opener. Later openers share the region, as the device's
 * fork children do. The device stays for existing users; nothing of it
 * changed. What differs is the file's side:
 *   - the size is the file's i_size: ftruncate() sets it (a multiple of
 *     the page size, else -EINVAL and a log line), growing or shrinking;
 *     shrinking drops the pages past the end as a hole punch does. mmap()
 *     never sets it, and faults past the end get SIGBUS, as with other
 *     files. RAMCRYPT_IOC_SET_SIZE is refused (-ENOTTY);
 *   - fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) of whole pages
 *     drops them (ramcrypt_window_punch: unmapped everywhere, the
 *     plaintext frame and the ciphertext wiped and freed); they read as
 *     zeros again. Other modes: -EOPNOTSUPP; a range not page-aligned:
 *     -EINVAL;
 *   - only MAP_SHARED mappings (MAP_PRIVATE: -EINVAL, as the device);
 *     no read()/write() (-EINVAL), as the device;
 *   - RAMCRYPT_IOC_STATS, _FLUSH and _SET_WINDOW (root) work on the file
 *     as on the device.
 * Each file pins the host key (tresor_key_user_get) as a device region
 * does, so the key cannot be cleared while a file exists, even unmapped.
 *
 * Directories (mkdir, rmdir, rename) are as ramfs's; no other file types.
 * A directory can carry a region policy (RAMCRYPT_IOC_SET_DIR_POLICY, the
 * values of a configfs policy): root sets it once, while the directory is
 * empty, and it stays until the directory goes. A file created in it takes
 * that policy instead of its creator's cgroup's, a directory created in
 * it a copy. This is for VMMs whose process and cgroup do not exist yet
 * when their memory is decided: libvirt makes a domain's memory directory
 * before it forks QEMU, and QEMU creates its RAM files there; a hook sets
 * the domain's policy on the directory in between, so the window is in
 * force from QEMU's first fault.
 * Mount options: mode (octal, the root directory's, default 0755), uid and
 * gid (its owner, numeric, default 0); a bad one fails the mount with a
 * line naming it. Mounting needs CAP_SYS_ADMIN in the initial user
 * namespace (no FS_USERNS_MOUNT).
 *
 * Locking: the inode lock serialises size changes and hole punches of a
 * file; below it the region's (see ramcrypt_internal.h): inode lock ->
 * region->lock.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/cpumask.h>
#include <linux/cred.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/fs_parser.h>
#include <linux/module.h>
#include <linux/pagemap.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/uidgid.h>
#include <linux/version.h>

#include "ramcrypt_fs.h"
#include "ramcrypt_internal.h"

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
#define RAMCRYPTFS_IDMAP	struct mnt_idmap
#define RAMCRYPTFS_IDMAP_NONE	(&nop_mnt_idmap)
#else
#define RAMCRYPTFS_IDMAP	struct user_namespace
#define RAMCRYPTFS_IDMAP_NONE	(&init_user_ns)
#endif

#define RAMCRYPTFS_DEFAULT_MODE	0755

/* The mount's options, sb->s_fs_info (and a remount's, fc->s_fs_info) */
struct ramcryptfs_info {
	kuid_t uid;
	kgid_t gid;
	umode_t mode;
	unsigned int given;		/* BIT(Opt_*) of the options given */
};

static const struct inode_operations ramcryptfs_dir_iops;
static const struct file_operations ramcryptfs_dir_fops;
static const struct inode_operations ramcryptfs_file_iops;
static const struct file_operations ramcryptfs_file_fops;
static const struct super_operations ramcryptfs_sops;

static void ramcryptfs_init_times(struct inode *inode)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
	simple_inode_init_ts(inode);
#else
	inode->i_atime = inode_set_ctime_current(inode);
	inode->i_mtime = inode->i_atime;
#endif
}

/* mtime and ctime now */
static void ramcryptfs_touch(struct inode *inode)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
	inode_set_mtime_to_ts(inode, inode_set_ctime_current(inode));
#else
	inode->i_mtime = inode_set_ctime_current(inode);
#endif
}

/* A directory's policy (i_private of a directory inode), NULL if none */
static struct ramcrypt_policy_values *ramcryptfs_dir_policy(const struct inode *dir)
{
	return dir ? dir->i_private : NULL;
}

/* @dir: the parent, locked (NULL for the root) */
static struct inode *ramcryptfs_get_inode(RAMCRYPTFS_IDMAP *idmap,
					  struct super_block *sb,
					  const struct inode *dir,
					  umode_t mode)
{
	struct ramcrypt_policy_values *policy = ramcryptfs_dir_policy(dir);
	struct ramcrypt_region *region;
	struct inode *inode;

	if (!S_ISREG(mode) && !S_ISDIR(mode))
		return ERR_PTR(-EINVAL);
	inode = new_inode(sb);
	if (!inode)
		return ERR_PTR(-ENOMEM);
	inode->i_ino = get_next_ino();
	inode_init_owner(idmap, inode, dir, mode);
	ramcryptfs_init_times(inode);
	if (S_ISDIR(mode)) {
		inode->i_op = &ramcryptfs_dir_iops;
		inode->i_fop = &ramcryptfs_dir_fops;
		/* "." */
		inc_nlink(inode);
		/* Inherited, frozen as the parent's */
		if (policy) {
			inode->i_private = kmemdup(policy, sizeof(*policy),
						   GFP_KERNEL);
			if (!inode->i_private) {
				iput(inode);
				return ERR_PTR(-ENOMEM);
			}
		}
		return inode;
	}
	/* The directory's policy, else the creator's cgroup's (the opener's) */
	region = ramcrypt_region_create(inode, policy);
	if (IS_ERR(region)) {
		/* No region: evict_inode has nothing to tear down */
		iput(inode);
		return ERR_CAST(region);
	}
	region->sized_by_file = true;
	inode->i_private = region;
	/* Every open file's f_mapping: unmap_mapping_range reaches them all */
	inode->i_mapping = &region->mapping;
	inode->i_op = &ramcryptfs_file_iops;
	inode->i_fop = &ramcryptfs_file_fops;
	return inode;
}

static int ramcryptfs_mknod(RAMCRYPTFS_IDMAP *idmap, struct inode *dir,
			    struct dentry *dentry, umode_t mode)
{
	struct inode *inode = ramcryptfs_get_inode(idmap, dir->i_sb, dir,
						   mode);

	if (IS_ERR(inode))
		return PTR_ERR(inode);
	/* Pinned until unlink (ramfs's scheme; kill_litter_super at umount) */
	d_instantiate(dentry, inode);
	dget(dentry);
	ramcryptfs_touch(dir);
	return 0;
}

static int ramcryptfs_create(RAMCRYPTFS_IDMAP *idmap, struct inode *dir,
			     struct dentry *dentry, umode_t mode, bool excl)
{
	return ramcryptfs_mknod(idmap, dir, dentry, (mode & ~S_IFMT) | S_IFREG);
}

static int ramcryptfs_mkdir(RAMCRYPTFS_IDMAP *idmap, struct inode *dir,
			    struct dentry *dentry, umode_t mode)
{
	int ret = ramcryptfs_mknod(idmap, dir, dentry,
				   (mode & ~S_IFMT) | S_IFDIR);

	if (!ret)
		inc_nlink(dir);	/* ".." */
	return ret;
}

/* A policy from userspace, in the ranges of ramcrypt_policy.c's attributes */
static int ramcryptfs_policy_check(struct file *dir,
				   const struct ramcrypt_dir_policy *p)
{
	static const struct {
		const char *field;
		long long min, max;
	} range[] = {
		{ "window_pages", 1, RAMCRYPT_MAX_WINDOW },
		{ "max_plaintext_age_ms", 1, RAMCRYPT_MAX_AGE_MS },
		{ "evict_ahead_pages", 0, RAMCRYPT_MAX_WINDOW },
	};
	const long long val[] = { p->window_pages, p->max_plaintext_age_ms,
				  p->evict_ahead_pages };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(range); i++) {
		if (val[i] >= range[i].min && val[i] <= range[i].max)
			continue;
		pr_warn_ratelimited("directory %pD: policy %s %lld is invalid: must be %lld-%lld\n",
				    dir, range[i].field, val[i], range[i].min,
				    range[i].max);
		return -EINVAL;
	}
	if (p->crypto_cpu < -1 ||
	    (p->crypto_cpu >= 0 && (p->crypto_cpu >= nr_cpu_ids ||
				    !cpu_online(p->crypto_cpu)))) {
		pr_warn_ratelimited("directory %pD: policy crypto_cpu %d is invalid: not an online CPU (or -1: any key holder)\n",
				    dir, p->crypto_cpu);
		return -EINVAL;
	}
	if (p->reserved[0] || p->reserved[1]) {
		pr_warn_ratelimited("directory %pD: policy reserved fields must be zero\n",
				    dir);
		return -EINVAL;
	}
	return 0;
}

/*
 * Set once, by root, while the directory is empty: no file in it predates
 * its policy (so none runs under another), and a region never sees a
 * policy change. Under the directory's lock, which creation holds too.
 */
static long ramcryptfs_set_dir_policy(struct file *file, void __user *arg)
{
	struct inode *dir = file_inode(file);
	struct ramcrypt_policy_values *v;
	struct ramcrypt_dir_policy p;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (copy_from_user(&p, arg, sizeof(p)))
		return -EFAULT;
	ret = ramcryptfs_policy_check(file, &p);
	if (ret)
		return ret;
	v = kzalloc(sizeof(*v), GFP_KERNEL);
	if (!v)
		return -ENOMEM;
	v->window_pages = p.window_pages;
	v->max_age_ms = p.max_plaintext_age_ms;
	v->evict_ahead_pages = p.evict_ahead_pages;
	v->crypto_cpu = p.crypto_cpu;

	inode_lock(dir);
	if (dir->i_private) {
		pr_warn_ratelimited("directory %pD: has a policy already, it stays as it is (remove the directory and make it again)\n",
				    file);
		ret = -EBUSY;
	} else if (!simple_empty(file->f_path.dentry)) {
		pr_warn_ratelimited("directory %pD: not empty, a policy is set before anything is made in it\n",
				    file);
		ret = -ENOTEMPTY;
	} else {
		dir->i_private = v;
		v = NULL;
		inode_set_ctime_current(dir);
	}
	inode_unlock(dir);
	kfree(v);
	return ret;
}

static long ramcryptfs_get_dir_policy(struct file *file, void __user *arg)
{
	struct inode *dir = file_inode(file);
	struct ramcrypt_policy_values *v;
	struct ramcrypt_dir_policy p = {};

	inode_lock_shared(dir);
	v = ramcryptfs_dir_policy(dir);
	if (v) {
		p.window_pages = v->window_pages;
		p.max_plaintext_age_ms = v->max_age_ms;
		p.evict_ahead_pages = v->evict_ahead_pages;
		p.crypto_cpu = v->crypto_cpu;
	}
	inode_unlock_shared(dir);
	if (!v)
		return -ENODATA;
	return copy_to_user(arg, &p, sizeof(p)) ? -EFAULT : 0;
}

static long ramcryptfs_dir_ioctl(struct file *file, unsigned int cmd,
				 unsigned long arg)
{
	switch (cmd) {
	case RAMCRYPT_IOC_SET_DIR_POLICY:
		return ramcryptfs_set_dir_policy(file, (void __user *)arg);
	case RAMCRYPT_IOC_GET_DIR_POLICY:
		return ramcryptfs_get_dir_policy(file, (void __user *)arg);
	}
	return -ENOTTY;
}

/* simple_dir_operations and the policy ioctls */
static const struct file_operations ramcryptfs_dir_fops = {
	.open = dcache_dir_open,
	.release = dcache_dir_close,
	.llseek = dcache_dir_lseek,
	.read = generic_read_dir,
	.iterate_shared = dcache_readdir,
	.fsync = noop_fsync,
	.unlocked_ioctl = ramcryptfs_dir_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
};

/*
 * A file keeps the policy it was made with, so it must not pass as one of
 * a directory with another policy: moving a file (or a directory of them)
 * between directories whose policies differ is -EXDEV (mv then copies,
 * and a copy is a new region made under the target's policy). Both
 * parents' i_rwsem are held (lock_rename), as SET_DIR_POLICY holds it.
 */
static int ramcryptfs_rename(RAMCRYPTFS_IDMAP *idmap, struct inode *old_dir,
			     struct dentry *old_dentry, struct inode *new_dir,
			     struct dentry *new_dentry, unsigned int flags)
{
	const struct ramcrypt_policy_values *a = ramcryptfs_dir_policy(old_dir);
	const struct ramcrypt_policy_values *b = ramcryptfs_dir_policy(new_dir);

	if (old_dir != new_dir &&
	    (!a != !b || (a && memcmp(a, b, sizeof(*a)))))
		return -EXDEV;
	return simple_rename(idmap, old_dir, old_dentry, new_dir, new_dentry,
			     flags);
}

static const struct inode_operations ramcryptfs_dir_iops = {
	.create = ramcryptfs_create,
	.lookup = simple_lookup,
	.unlink = simple_unlink,
	.mkdir = ramcryptfs_mkdir,
	.rmdir = simple_rmdir,
	.rename = ramcryptfs_rename,
};

static struct ramcrypt_region *ramcryptfs_region(struct inode *inode)
{
	return inode->i_private;
}

/* ftruncate(), open(O_TRUNC): under the inode lock */
static int ramcryptfs_resize(struct dentry *dentry, loff_t size)
{
	struct inode *inode = d_inode(dentry);
	struct ramcrypt_region *region = ramcryptfs_region(inode);
	u64 pages = (u64)size >> PAGE_SHIFT, old;

	if (!PAGE_ALIGNED(size)) {
		pr_warn_ratelimited("region %llu (%pd): size %lld is no multiple of the page size (%lu), refused\n",
				    region->id, dentry, size, PAGE_SIZE);
		return -EINVAL;
	}
	/* setattr_prepare() held size to s_maxbytes */
	mutex_lock(&region->lock);
	old = region->nr_pages;
	/* From here on, faults past the new end get SIGBUS */
	region->nr_pages = pages;
	mutex_unlock(&region->lock);
	if (pages < old)
		ramcrypt_window_punch(region, pages, old);
	i_size_write(inode, size);
	return 0;
}

static int ramcryptfs_setattr(RAMCRYPTFS_IDMAP *idmap, struct dentry *dentry,
			      struct iattr *attr)
{
	struct inode *inode = d_inode(dentry);
	int ret;

	ret = setattr_prepare(idmap, dentry, attr);
	if (ret)
		return ret;
	if (attr->ia_valid & ATTR_SIZE) {
		ret = ramcryptfs_resize(dentry, attr->ia_size);
		if (ret)
			return ret;
	}
	setattr_copy(idmap, inode, attr);
	return 0;
}

static const struct inode_operations ramcryptfs_file_iops = {
	.setattr = ramcryptfs_setattr,
};

static int ramcryptfs_open(struct inode *inode, struct file *file)
{
	/* For ramcrypt_ioctl(), as the device's files */
	file->private_data = ramcryptfs_region(inode);
	return 0;
}

static int ramcryptfs_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct ramcrypt_region *region = file->private_data;

	if (!(vma->vm_flags & VM_MAYSHARE)) {
		pr_warn_ratelimited("region %llu (%pD): MAP_PRIVATE refused, only MAP_SHARED mappings are encrypted\n",
				    region->id, file);
		return -EINVAL;
	}
	file_accessed(file);
	return ramcrypt_region_mmap(region, vma);
}

/* QEMU's discard, virtio-balloon, free page reporting, MADV_REMOVE */
static long ramcryptfs_fallocate(struct file *file, int mode, loff_t offset,
				 loff_t len)
{
	struct ramcrypt_region *region = file->private_data;
	struct inode *inode = file_inode(file);
	loff_t end;

	if (mode != (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE))
		return -EOPNOTSUPP;
	if (!PAGE_ALIGNED(offset) || !PAGE_ALIGNED(len)) {
		pr_warn_ratelimited("region %llu (%pD): hole punch at %lld, length %lld, is not page-aligned, refused\n",
				    region->id, file, offset, len);
		return -EINVAL;
	}
	/* vfs_fallocate(): offset >= 0, len > 0, no overflow, a writer */
	inode_lock(inode);
	end = min_t(loff_t, offset + len, i_size_read(inode));
	if (offset < end) {
		ramcrypt_window_punch(region, offset >> PAGE_SHIFT,
				      end >> PAGE_SHIFT);
		ramcryptfs_touch(inode);
	}
	inode_unlock(inode);
	return 0;
}

static long ramcryptfs_ioctl(struct file *file, unsigned int cmd,
			     unsigned long arg)
{
	/* The size is the file's: ftruncate() */
	if (cmd == RAMCRYPT_IOC_SET_SIZE)
		return -ENOTTY;
	/* Policies are set on directories; a region keeps what it took */
	if (cmd == RAMCRYPT_IOC_SET_DIR_POLICY ||
	    cmd == RAMCRYPT_IOC_GET_DIR_POLICY)
		return -ENOTDIR;
	return ramcrypt_ioctl(file, cmd, arg);
}

static const struct file_operations ramcryptfs_file_fops = {
	.owner = THIS_MODULE,
	.open = ramcryptfs_open,
	.mmap = ramcryptfs_mmap,
	.fallocate = ramcryptfs_fallocate,
	.unlocked_ioctl = ramcryptfs_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.fsync = noop_fsync,
	.llseek = generic_file_llseek,
};

/* The last reference of an unlinked file (or umount): no mapping left */
static void ramcryptfs_evict_inode(struct inode *inode)
{
	struct ramcrypt_region *region = ramcryptfs_region(inode);

	clear_inode(inode);
	if (S_ISDIR(inode->i_mode)) {
		/* Its policy; files made in it keep their copies */
		kfree(inode->i_private);
		inode->i_private = NULL;
		return;
	}
	if (!region)
		return;
	inode->i_mapping = &inode->i_data;
	inode->i_private = NULL;
	ramcrypt_region_destroy(region);
}

static int ramcryptfs_show_options(struct seq_file *m, struct dentry *root)
{
	struct ramcryptfs_info *info = root->d_sb->s_fs_info;

	if (info->mode != RAMCRYPTFS_DEFAULT_MODE)
		seq_printf(m, ",mode=%o", info->mode);
	if (!uid_eq(info->uid, GLOBAL_ROOT_UID))
		seq_printf(m, ",uid=%u",
			   from_kuid_munged(&init_user_ns, info->uid));
	if (!gid_eq(info->gid, GLOBAL_ROOT_GID))
		seq_printf(m, ",gid=%u",
			   from_kgid_munged(&init_user_ns, info->gid));
	return 0;
}

static const struct super_operations ramcryptfs_sops = {
	.statfs = simple_statfs,
	.drop_inode = generic_delete_inode,
	.evict_inode = ramcryptfs_evict_inode,
	.show_options = ramcryptfs_show_options,
};

enum { Opt_mode, Opt_uid, Opt_gid };

static const struct fs_parameter_spec ramcryptfs_params[] = {
	fsparam_u32oct("mode", Opt_mode),
	fsparam_u32("uid", Opt_uid),
	fsparam_u32("gid", Opt_gid),
	{}
};

static int ramcryptfs_parse_param(struct fs_context *fc,
				  struct fs_parameter *param)
{
	struct ramcryptfs_info *info = fc->s_fs_info;
	struct fs_parse_result result;
	kuid_t uid;
	kgid_t gid;
	int opt;

	opt = fs_parse(fc, ramcryptfs_params, param, &result);
	if (opt < 0)
		return opt;
	info->given |= BIT(opt);
	switch (opt) {
	case Opt_mode:
		if (result.uint_32 & ~07777)
			return invalfc(fc, "mode %o is no permission mode (at most 07777)",
				       result.uint_32);
		info->mode = result.uint_32;
		break;
	case Opt_uid:
		uid = make_kuid(current_user_ns(), result.uint_32);
		if (!uid_valid(uid))
			return invalfc(fc, "uid %u is no valid user id",
				       result.uint_32);
		info->uid = uid;
		break;
	case Opt_gid:
		gid = make_kgid(current_user_ns(), result.uint_32);
		if (!gid_valid(gid))
			return invalfc(fc, "gid %u is no valid group id",
				       result.uint_32);
		info->gid = gid;
		break;
	}
	return 0;
}

static int ramcryptfs_fill_super(struct super_block *sb,
				 struct fs_context *fc)
{
	struct ramcryptfs_info *info = sb->s_fs_info;
	struct inode *root;

	sb->s_maxbytes = RAMCRYPT_MAX_PAGES << PAGE_SHIFT;
	sb->s_blocksize = PAGE_SIZE;
	sb->s_blocksize_bits = PAGE_SHIFT;
	sb->s_magic = RAMCRYPTFS_MAGIC;
	sb->s_op = &ramcryptfs_sops;
	sb->s_time_gran = 1;

	root = ramcryptfs_get_inode(RAMCRYPTFS_IDMAP_NONE, sb, NULL,
				    S_IFDIR | info->mode);
	if (IS_ERR(root))
		return PTR_ERR(root);
	root->i_uid = info->uid;
	root->i_gid = info->gid;
	sb->s_root = d_make_root(root);
	return sb->s_root ? 0 : -ENOMEM;
}

static int ramcryptfs_get_tree(struct fs_context *fc)
{
	return get_tree_nodev(fc, ramcryptfs_fill_super);
}

static void ramcryptfs_free_fc(struct fs_context *fc)
{
	kfree(fc->s_fs_info);
}

/*
 * mount -o remount,mode=...,uid=...,gid=...: the options given apply to
 * the root directory as at mount time (and show in /proc/mounts); those
 * not given stay as they are.
 */
static int ramcryptfs_reconfigure(struct fs_context *fc)
{
	struct ramcryptfs_info *new = fc->s_fs_info;
	struct super_block *sb = fc->root->d_sb;
	struct ramcryptfs_info *info = sb->s_fs_info;
	struct inode *root = d_inode(sb->s_root);

	inode_lock(root);
	if (new->given & BIT(Opt_mode)) {
		info->mode = new->mode;
		root->i_mode = (root->i_mode & S_IFMT) | new->mode;
	}
	if (new->given & BIT(Opt_uid)) {
		info->uid = new->uid;
		root->i_uid = new->uid;
	}
	if (new->given & BIT(Opt_gid)) {
		info->gid = new->gid;
		root->i_gid = new->gid;
	}
	if (new->given)
		inode_set_ctime_current(root);
	inode_unlock(root);
	return 0;
}

static const struct fs_context_operations ramcryptfs_context_ops = {
	.free = ramcryptfs_free_fc,
	.parse_param = ramcryptfs_parse_param,
	.get_tree = ramcryptfs_get_tree,
	.reconfigure = ramcryptfs_reconfigure,
};

static int ramcryptfs_init_fs_context(struct fs_context *fc)
{
	struct ramcryptfs_info *info;

	info = kzalloc(sizeof(*info), GFP_KERNEL);
	if (!info)
		return -ENOMEM;
	info->mode = RAMCRYPTFS_DEFAULT_MODE;
	info->uid = GLOBAL_ROOT_UID;
	info->gid = GLOBAL_ROOT_GID;
	fc->s_fs_info = info;
	fc->ops = &ramcryptfs_context_ops;
	return 0;
}

static void ramcryptfs_kill_sb(struct super_block *sb)
{
	struct ramcryptfs_info *info = sb->s_fs_info;

	/* Evicts every inode: each file's region goes with it */
	kill_litter_super(sb);
	kfree(info);
}

static struct file_system_type ramcryptfs_type = {
	.owner = THIS_MODULE,
	.name = "ramcryptfs",
	.init_fs_context = ramcryptfs_init_fs_context,
	.parameters = ramcryptfs_params,
	.kill_sb = ramcryptfs_kill_sb,
};
MODULE_ALIAS_FS("ramcryptfs");

int ramcrypt_fs_init(void)
{
	return register_filesystem(&ramcryptfs_type);
}

void ramcrypt_fs_exit(void)
{
	unregister_filesystem(&ramcryptfs_type);
}
