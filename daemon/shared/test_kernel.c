// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit test of rc-kernel on fixture trees (tests/unit/fixtures/sysroot-*)
 * and scratch roots: status, regions, policies, writes, cgroup ids. */
#include "test-util.h"
#include <sys/stat.h>
#include "rc-kernel.h"

static void test_paths(void)
{
	char *p;

	CHECK(rc_path("", "sys/kernel/tresor", &p) == 0, "path");
	CHECK_STR(p, "/sys/kernel/tresor");
	free(p);
	CHECK(rc_path("/", "/proc/cmdline", &p) == 0, "path");
	CHECK_STR(p, "/proc/cmdline");
	free(p);
	CHECK(rc_path("/tmp/root/", "proc/1/maps", &p) == 0, "path");
	CHECK_STR(p, "/tmp/root/proc/1/maps");
	free(p);
	CHECK(rc_path(NULL, "x", &p) == 0, "path");
	CHECK_STR(p, "/x");
	free(p);
	CHECK(rc_root_is_host(NULL) && rc_root_is_host("") &&
	      rc_root_is_host("/") && rc_root_is_host("//") &&
	      !rc_root_is_host("/tmp/x"), "root_is_host");
}

static void test_status(void)
{
	const char *root = fixture("sysroot-2socket");
	struct rc_tresor_status st;
	struct rc_ramcrypt_totals t;
	char *s = NULL;

	CHECK(rc_tresor_read_status(root, &st) == 0, "tresor status");
	CHECK(st.module_loaded && st.key_loaded, "loaded, key");
	CHECK(rc_cpuset_count(&st.holders) == 4 &&
	      rc_cpuset_isset(&st.holders, 9) &&
	      rc_cpuset_equal(&st.holders, &st.valid_holders), "holders");
	CHECK(st.check_failures == 3 && st.forwarded_requests == 1234 &&
	      st.peer_copies == 16 && st.requests == 98765, "counters");

	CHECK(rc_ramcrypt_read_totals(root, &t) == 0, "totals");
	CHECK(t.module_loaded && t.regions == 2 && t.window_pages == 64 &&
	      t.plaintext_pages == 9064 && t.encrypted_pages == 1301656 &&
	      t.faults == 50300, "totals values %lu %lu %lu",
	      (unsigned long)t.regions, (unsigned long)t.plaintext_pages,
	      (unsigned long)t.faults);

	/* tcg: tresor loaded without a key, ramcrypt loaded, no regions */
	root = fixture("sysroot-tcg");
	CHECK(rc_tresor_read_status(root, &st) == 0, "tcg status");
	CHECK(st.module_loaded && !st.key_loaded &&
	      rc_cpuset_empty(&st.holders), "tcg: no key, no holders");
	CHECK(rc_ramcrypt_read_totals(root, &t) == 0 && t.regions == 0,
	      "tcg totals");

	/* vm: no ramcrypt.ko: 0 with module_loaded=false; actions -ENOENT */
	root = fixture("sysroot-vm");
	t.module_loaded = true;
	CHECK(rc_ramcrypt_read_totals(root, &t) == 0 && !t.module_loaded &&
	      t.regions == 0, "no ramcrypt: not loaded");
	CHECK(rc_ramcrypt_flush_all(root) == -ENOENT, "flush without module");
	{
		struct rc_region *r;
		size_t n;

		CHECK(rc_regions_list(root, &r, &n) == -ENOENT,
		      "regions without module");
	}
	root = fixture("sysroot-partial");
	CHECK(rc_tresor_read_status(root, &st) == 0 && !st.module_loaded,
	      "no tresor: not loaded");
	{
		struct rc_cpuset h;

		rc_cpuset_parse("0", &h);
		CHECK(rc_tresor_set_holders(root, &h) == -ENOENT,
		      "set holders without module");
		CHECK(rc_tresor_set_poll_cpus(root, &h) == -ENOENT,
		      "set poll cpus without module");
	}

	root = fixture("sysroot-2socket");
	CHECK(rc_read_string(root, "proc/cmdline", &s) == 0, "read_string");
	CHECK(s && s[strlen(s) - 1] != '\n', "newline stripped");
	free(s);
	{
		uint64_t v;
		int i;

		CHECK(rc_read_u64(root, "sys/kernel/tresor/implementation", &v) ==
		      -EINVAL, "u64 of a word");
		CHECK(rc_read_u64(root, "sys/kernel/nope", &v) == -ENOENT,
		      "missing file");
		CHECK(rc_read_int(root, "sys/kernel/ramcrypt/regions/3/crypto_cpu",
				  &i) == 0 && i == -1, "int -1");
		CHECK(rc_read_string(root, "proc/4242/cmdline", &s) == -EBADMSG,
		      "string with NULs");
	}
	{
		size_t n;

		CHECK(rc_read_full(root, "proc/4242/cmdline", &s, &n) == 0 &&
		      n > 30 && memchr(s, '\0', n), "read_full keeps NULs");
		free(s);
	}
}

static void test_regions(void)
{
	const char *root = fixture("sysroot-2socket");
	struct rc_region *r = NULL;
	size_t n = 0;

	CHECK(rc_regions_list(root, &r, &n) == 0, "regions");
	CHECK(n == 2, "2 regions, got %zu", n);
	if (n != 2)
		return;
	/* sorted by id */
	CHECK(r[0].id == 3 && r[1].id == 7, "ids %lu %lu",
	      (unsigned long)r[0].id, (unsigned long)r[1].id);
	CHECK_STR(r[1].cgroup, "/system.slice/vm-test.service");
	CHECK(r[1].pid == 4242 && r[1].size == (UINT64_C(4) << 30) &&
	      r[1].window_pages == 16384 && r[1].crypto_cpu == 1 &&
	      r[1].max_plaintext_age_ms == 100 && r[1].evict_ahead_pages == 16 &&
	      r[1].plaintext_pages == 9000 && r[1].encrypted_pages == 1039576 &&
	      r[1].faults == 50000 && r[1].evictions == 41000 &&
	      r[1].oldest_plaintext_age_ms == 37 && r[1].cgroup_id == 1007,
	      "region 7 values");
	CHECK(r[0].crypto_cpu == -1 && r[0].window_pages == 64, "region 3");
	rc_regions_free(r, n);
}

static void test_writes(void)
{
	char *root = scratch_root();
	struct rc_cpuset h;
	struct rc_tresor_status st;
	char *real;

	/* a fixture root creates files; the real host never does */
	CHECK(rc_write_string(root, "nodir/newfile", "x") == -ENOENT,
	      "no parent: -ENOENT");
	mkdirs(root, "sys/kernel/tresor");
	CHECK(rc_write_string(root, "sys/kernel/tresor/x", "abc") == 0, "write");
	CHECK_STR(slurp(root, "sys/kernel/tresor/x"), "abc\n");
	CHECK(rc_write_string(root, "sys/kernel/tresor/x", "d") == 0, "trunc");
	CHECK_STR(slurp(root, "sys/kernel/tresor/x"), "d\n");
	if (asprintf(&real, "%s/definitely-not-there", root) < 0)
		exit(2);
	/* with root "" an absolute path under the scratch dir is "the host":
	 * O_CREAT must not be used */
	CHECK(rc_write_string("", real, "x") == -ENOENT,
	      "real host: no O_CREAT");
	CHECK(rc_write_string("/", real, "x") == -ENOENT,
	      "real host '/': no O_CREAT");
	CHECK(access(real, F_OK) < 0, "nothing created on the host");
	free(real);

	put(root, "sys/kernel/tresor/key_loaded", "1\n");
	put(root, "sys/kernel/tresor/holders", "0-3\n");
	put(root, "sys/kernel/tresor/valid_holders", "0-3\n");
	put(root, "sys/kernel/tresor/check_failures", "0\n");
	put(root, "sys/kernel/tresor/forwarded_requests", "0\n");
	put(root, "sys/kernel/tresor/peer_copies", "0\n");
	put(root, "sys/kernel/tresor/requests", "0\n");
	rc_cpuset_parse("0-1,8", &h);
	CHECK(rc_tresor_set_holders(root, &h) == 0, "set holders");
	CHECK_STR(slurp(root, "sys/kernel/tresor/holders"), "0-1,8\n");
	CHECK(rc_tresor_read_status(root, &st) == 0 &&
	      rc_cpuset_equal(&st.holders, &h), "holders read back");
	rc_cpuset_zero(&h);
	CHECK(rc_tresor_set_holders(root, &h) == -EINVAL, "empty holders");
	rc_cpuset_parse("1,3", &h);
	CHECK(rc_tresor_set_poll_cpus(root, &h) == 0, "set poll cpus");
	CHECK_STR(slurp(root, "sys/kernel/tresor/poll_cpus"), "1,3\n");
	rc_cpuset_zero(&h);
	/* none: a newline, since sysfs ignores an empty write */
	CHECK(rc_tresor_set_poll_cpus(root, &h) == 0, "clear poll cpus");
	CHECK_STR(slurp(root, "sys/kernel/tresor/poll_cpus"), "\n");
	put(root, "sys/kernel/tresor/holders", "0-3,zz\n");
	CHECK(rc_tresor_read_status(root, &st) == -EINVAL, "garbage holders");

	mkdirs(root, "sys/kernel/ramcrypt/regions");
	put(root, "sys/kernel/ramcrypt/regions/12/cgroup_id", "5\n");
	CHECK(rc_ramcrypt_flush_all(root) == 0, "flush");
	CHECK_STR(slurp(root, "sys/kernel/ramcrypt/flush"), "1\n");
	{
		struct rc_region *r;
		size_t n;

		/* a region whose directory stays but lacks files is an
		 * error (another kernel ABI), never silently no region */
		CHECK(rc_regions_list(root, &r, &n) == -EBADMSG,
		      "incomplete region: -EBADMSG");
		/* a region that goes away while listed is skipped: a
		 * directory name that is not there */
		put(root, "sys/kernel/ramcrypt/regions/12/cgroup_id", "");
		{
			char p[4200];

			snprintf(p, sizeof(p), "%s/sys/kernel/ramcrypt/regions/12/cgroup_id", root);
			unlink(p);
			snprintf(p, sizeof(p), "%s/sys/kernel/ramcrypt/regions/12", root);
			rmdir(p);
		}
		CHECK(rc_regions_list(root, &r, &n) == 0 && n == 0,
		      "no regions");
		rc_regions_free(r, n);
	}

	rm_tree(root);
}

static void test_policies(void)
{
	char *root = scratch_root();
	struct rc_policy p = {
		.name = "vm-test.service", .cgroup_id = 4711,
		.window_pages = 16384, .max_plaintext_age_ms = 100,
		.crypto_cpu = 1, .evict_ahead_pages = 32,
	}, *list;
	size_t n;
	char path[4096];
	struct stat st1, st2;

	CHECK(rc_policy_set(root, &p) == -ENOENT, "no configfs: -ENOENT");
	CHECK(rc_policy_list(root, &list, &n) == -ENOENT, "list: -ENOENT");
	mkdirs(root, "sys/kernel/config/ramcrypt/policies");
	CHECK(rc_policy_set(root, &p) == 0, "policy set");
	CHECK_STR(slurp(root, "sys/kernel/config/ramcrypt/policies/vm-test.service/window_pages"),
		  "16384\n");
	CHECK_STR(slurp(root, "sys/kernel/config/ramcrypt/policies/vm-test.service/crypto_cpu"),
		  "1\n");
	CHECK_STR(slurp(root, "sys/kernel/config/ramcrypt/policies/vm-test.service/cgroup_id"),
		  "4711\n");
	CHECK_STR(slurp(root, "sys/kernel/config/ramcrypt/policies/vm-test.service/max_plaintext_age_ms"),
		  "100\n");
	CHECK_STR(slurp(root, "sys/kernel/config/ramcrypt/policies/vm-test.service/evict_ahead_pages"),
		  "32\n");

	/* cgroup_id is written last: its mtime is the newest */
	snprintf(path, sizeof(path),
		 "%s/sys/kernel/config/ramcrypt/policies/vm-test.service", root);
	{
		char a[4200], b[4200];
		struct stat sa, sb;

		snprintf(a, sizeof(a), "%s/cgroup_id", path);
		snprintf(b, sizeof(b), "%s/window_pages", path);
		CHECK(stat(a, &sa) == 0 && stat(b, &sb) == 0 &&
		      (sa.st_mtim.tv_sec > sb.st_mtim.tv_sec ||
		       (sa.st_mtim.tv_sec == sb.st_mtim.tv_sec &&
			sa.st_mtim.tv_nsec >= sb.st_mtim.tv_nsec)),
		      "cgroup_id written last");
	}

	/* same values again (daemon restart): nothing rewritten */
	CHECK(stat(path, &st1) == 0, "stat");
	CHECK(rc_policy_set(root, &p) == 0, "set again");
	CHECK(stat(path, &st2) == 0 && st1.st_ino == st2.st_ino,
	      "same policy: same item");

	/* different values on a frozen policy: a new item */
	p.window_pages = 64;
	CHECK(rc_policy_set(root, &p) == 0, "set changed");
	CHECK_STR(slurp(root, "sys/kernel/config/ramcrypt/policies/vm-test.service/window_pages"),
		  "64\n");

	/* not yet frozen (cgroup_id 0, a crash between mkdir and cgroup_id):
	 * rewritten in place */
	put(root, "sys/kernel/config/ramcrypt/policies/vm-test.service/cgroup_id",
	    "0\n");
	CHECK(stat(path, &st1) == 0, "stat");
	p.window_pages = 128;
	CHECK(rc_policy_set(root, &p) == 0, "set unfrozen");
	CHECK(stat(path, &st2) == 0 && st1.st_ino == st2.st_ino,
	      "unfrozen: same item");
	CHECK_STR(slurp(root, "sys/kernel/config/ramcrypt/policies/vm-test.service/window_pages"),
		  "128\n");

	p.name = "other.service";
	p.cgroup_id = 99;
	p.crypto_cpu = -1;
	CHECK(rc_policy_set(root, &p) == 0, "second policy");
	CHECK(rc_policy_list(root, &list, &n) == 0 && n == 2, "list 2");
	if (n == 2) {
		CHECK_STR(list[0].name, "other.service");
		CHECK(list[0].cgroup_id == 99 && list[0].crypto_cpu == -1,
		      "other values");
		CHECK_STR(list[1].name, "vm-test.service");
		CHECK(list[1].cgroup_id == 4711 && list[1].window_pages == 128 &&
		      list[1].max_plaintext_age_ms == 100 &&
		      list[1].crypto_cpu == 1 && list[1].evict_ahead_pages == 32,
		      "vm-test values");
	}
	rc_policies_free(list, n);

	CHECK(rc_policy_remove(root, "vm-test.service") == 0, "remove");
	CHECK(access(path, F_OK) < 0, "removed");
	CHECK(rc_policy_remove(root, "vm-test.service") == -ENOENT,
	      "remove twice");
	CHECK(rc_policy_list(root, &list, &n) == 0 && n == 1, "list 1");
	rc_policies_free(list, n);

	/* bad input */
	p.name = "a/b";
	CHECK(rc_policy_set(root, &p) == -EINVAL, "name with /");
	p.name = "..";
	CHECK(rc_policy_set(root, &p) == -EINVAL, "name ..");
	p.name = "";
	CHECK(rc_policy_set(root, &p) == -EINVAL, "empty name");
	p.name = "x\n";
	CHECK(rc_policy_set(root, &p) == -EINVAL, "name with newline");
	p.name = "x.service";
	p.cgroup_id = 0;
	CHECK(rc_policy_set(root, &p) == -EINVAL, "cgroup_id 0");
	p.cgroup_id = 1;
	p.crypto_cpu = -2;
	CHECK(rc_policy_set(root, &p) == -EINVAL, "crypto_cpu -2");
	CHECK(rc_policy_remove(root, "../x") == -EINVAL, "remove ../x");
	rm_tree(root);
}

static void test_cgroup(void)
{
	const char *root = fixture("sysroot-2socket");
	char path[4096];
	struct stat st;
	uint64_t id;

	snprintf(path, sizeof(path), "%s/sys/fs/cgroup/system.slice/vm-test.service",
		 root);
	CHECK(stat(path, &st) == 0, "stat cgroup");
	CHECK(rc_cgroup_id(root, "/system.slice/vm-test.service", &id) == 0 &&
	      id == (uint64_t)st.st_ino, "cgroup id = st_ino");
	CHECK(rc_cgroup_id(root, "/system.slice/none.service", &id) == -ENOENT,
	      "missing cgroup");
	CHECK(rc_cgroup_id(root, "/system.slice/../../etc", &id) == -EINVAL,
	      "..");
	CHECK(rc_cgroup_id(root, "system.slice", &id) == -EINVAL, "relative");
	CHECK(rc_cgroup_id(root, "/system.slice/vm-test.service/cgroup.procs",
			   &id) == -ENOTDIR, "a file");
	CHECK(rc_cgroup_id(root, "/", &id) == 0, "root cgroup");
}

int main(void)
{
	test_paths();
	test_status();
	test_regions();
	test_writes();
	test_policies();
	test_cgroup();
	return test_done("test_kernel");
}
