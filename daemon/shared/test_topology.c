// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit test of rc-topology: cache domains and SMT siblings from fixture
 * sysfs trees, the default role split, validation, crypto CPU choice. */
#include "test-util.h"
#include "rc-topology.h"

static struct rc_topology *t;

static struct rc_cpuset S(const char *list)
{
	struct rc_cpuset s;

	if (rc_cpuset_parse(list, &s) < 0) {
		printf("bad test cpulist %s\n", list);
		exit(2);
	}
	return s;
}

static void check_set(const struct rc_cpuset *got, const char *want,
		      const char *what)
{
	char *f = NULL;

	rc_cpuset_format(got, &f);
	CHECK(f && strcmp(f, want) == 0, "%s: '%s', want '%s'", what,
	      f ? f : "?", want);
	free(f);
}

static void test_2socket(void)
{
	struct rc_roles r;
	const char *reason = "x";
	struct rc_cpuset vm;

	CHECK(rc_topology_read(fixture("sysroot-2socket"), t) == 0, "read");
	check_set(&t->online, "0-15", "online");
	CHECK(t->n_domains == 2, "2 L3 domains, got %u", t->n_domains);
	check_set(&t->domains[0], "0-3,8-11", "domain 0");
	check_set(&t->domains[1], "4-7,12-15", "domain 1");
	check_set(&t->siblings[3], "3,11", "siblings of 3");
	check_set(&t->siblings[12], "4,12", "siblings of 12");

	CHECK(rc_roles_default(t, &r, &reason) == 0 && !reason, "default");
	check_set(&r.housekeeping, "0,4,8,12", "housekeeping");
	check_set(&r.crypto, "1,5,9,13", "crypto");
	check_set(&r.vm, "2-3,6-7,10-11,14-15", "vm");
	CHECK(rc_roles_validate(t, &r, &reason) == 0, "default validates: %s",
	      reason ? reason : "");

	vm = S("6,14");
	CHECK(rc_roles_crypto_cpu_for(t, &r, &vm) == 5, "crypto for 6,14");
	vm = S("2");
	CHECK(rc_roles_crypto_cpu_for(t, &r, &vm) == 1, "crypto for 2");
	vm = S("");
	CHECK(rc_roles_crypto_cpu_for(t, &r, &vm) == 1, "crypto for none");

	/* validation failures, each naming what is wrong */
	r.vm = S("2-3,6-7,10-11,14-16");
	CHECK(rc_roles_validate(t, &r, &reason) == -EINVAL, "offline VM CPU");
	CHECK_CONTAINS(reason, "VM CPUs 16 are not online");
	r.vm = S("1-3");
	CHECK(rc_roles_validate(t, &r, &reason) == -EINVAL, "overlap");
	CHECK_CONTAINS(reason, "CPUs 1 are both crypto and VM CPUs");
	r.vm = S("2-3,6-7");
	r.crypto = S("1,9");
	CHECK(rc_roles_validate(t, &r, &reason) == -EINVAL, "no crypto in domain");
	CHECK_CONTAINS(reason, "VM CPU 6 has no crypto CPU in its cache domain (CPUs 4-7,12-15)");
	vm = S("6");
	CHECK(rc_roles_crypto_cpu_for(t, &r, &vm) == 1,
	      "no crypto in the domain: the first one");
	r.crypto = S("");
	CHECK(rc_roles_validate(t, &r, &reason) == -EINVAL, "no crypto");
	CHECK_CONTAINS(reason, "no crypto CPU");
	CHECK(rc_roles_crypto_cpu_for(t, &r, &vm) == -1, "no crypto: -1");
	r.crypto = S("1");
	r.housekeeping = S("");
	r.vm = S("2");
	CHECK(rc_roles_validate(t, &r, &reason) == -EINVAL, "no housekeeping");
	CHECK_CONTAINS(reason, "no housekeeping CPU");
	r.housekeeping = S("0");
	r.vm = S("");
	CHECK(rc_roles_validate(t, &r, &reason) == 0, "no VM CPUs is valid");
}

static void test_tcg(void)
{
	struct rc_roles r;
	const char *reason;

	CHECK(rc_topology_read(fixture("sysroot-tcg"), t) == 0, "read tcg");
	CHECK(t->n_domains == 1, "tcg: one domain, got %u", t->n_domains);
	check_set(&t->domains[0], "0-3", "tcg domain");
	check_set(&t->siblings[2], "2", "tcg siblings");
	CHECK(rc_roles_default(t, &r, &reason) == 0, "tcg default");
	check_set(&r.housekeeping, "0", "tcg hk");
	check_set(&r.crypto, "1", "tcg crypto");
	check_set(&r.vm, "2-3", "tcg vm");
	CHECK(rc_roles_validate(t, &r, &reason) == 0, "tcg valid");
}

static void test_vm(void)
{
	struct rc_roles r;
	const char *reason = NULL;

	CHECK(rc_topology_read(fixture("sysroot-vm"), t) == 0, "read vm");
	CHECK(t->n_domains == 1, "vm: one L3");
	check_set(&t->domains[0], "0-1", "vm domain");
	CHECK(rc_roles_default(t, &r, &reason) == -ENOSPC, "2 CPUs: ENOSPC");
	CHECK_CONTAINS(reason, "2 online CPUs (2 cores in 1 cache domains) leave none for VMs");
	check_set(&r.housekeeping, "0", "2cpu hk");
	check_set(&r.crypto, "1", "2cpu crypto");
	CHECK(rc_cpuset_empty(&r.vm), "2cpu: no vm");
}

static void test_partial(void)
{
	CHECK(rc_topology_read(fixture("sysroot-partial"), t) == 0, "partial");
	CHECK(t->n_domains == 1, "partial cache info: one domain, got %u",
	      t->n_domains);
	check_set(&t->domains[0], "0-7", "partial domain");
}

/* ad-hoc trees: overlapping domains, a domain of 2 cores, 1 core, errors */
static void cpu(const char *root, int c, const char *llc, const char *sib)
{
	char rel[256];

	snprintf(rel, sizeof(rel), "sys/devices/system/cpu/cpu%d/topology/thread_siblings_list", c);
	put(root, rel, sib);
	if (!llc)
		return;
	snprintf(rel, sizeof(rel), "sys/devices/system/cpu/cpu%d/cache/index0/level", c);
	put(root, rel, "1\n");
	snprintf(rel, sizeof(rel), "sys/devices/system/cpu/cpu%d/cache/index0/type", c);
	put(root, rel, "Data\n");
	snprintf(rel, sizeof(rel), "sys/devices/system/cpu/cpu%d/cache/index0/shared_cpu_list", c);
	put(root, rel, sib);
	snprintf(rel, sizeof(rel), "sys/devices/system/cpu/cpu%d/cache/index2/level", c);
	put(root, rel, "3\n");
	snprintf(rel, sizeof(rel), "sys/devices/system/cpu/cpu%d/cache/index2/type", c);
	put(root, rel, "Unified\n");
	snprintf(rel, sizeof(rel), "sys/devices/system/cpu/cpu%d/cache/index2/shared_cpu_list", c);
	put(root, rel, llc);
	/* an L4-numbered instruction cache must not count */
	snprintf(rel, sizeof(rel), "sys/devices/system/cpu/cpu%d/cache/index3/level", c);
	put(root, rel, "4\n");
	snprintf(rel, sizeof(rel), "sys/devices/system/cpu/cpu%d/cache/index3/type", c);
	put(root, rel, "Instruction\n");
	snprintf(rel, sizeof(rel), "sys/devices/system/cpu/cpu%d/cache/index3/shared_cpu_list", c);
	put(root, rel, "0-15\n");
}

static void test_adhoc(void)
{
	char *root = scratch_root();
	struct rc_roles r;
	const char *reason;

	/* 3 domains: {0-3} {4,5} {6}; no SMT */
	put(root, "sys/devices/system/cpu/online", "0-6\n");
	for (int c = 0; c < 7; c++) {
		char s[8];

		snprintf(s, sizeof(s), "%d\n", c);
		cpu(root, c, c < 4 ? "0-3\n" : c < 6 ? "4-5\n" : "6\n", s);
	}
	CHECK(rc_topology_read(root, t) == 0, "adhoc read");
	CHECK(t->n_domains == 3, "3 domains, got %u", t->n_domains);
	CHECK(rc_roles_default(t, &r, &reason) == 0, "adhoc default");
	check_set(&r.housekeeping, "0,6", "adhoc hk (single-core domain)");
	check_set(&r.crypto, "1,4", "adhoc crypto (2-core domain)");
	check_set(&r.vm, "2-3,5", "adhoc vm");
	CHECK(rc_roles_validate(t, &r, &reason) == 0, "adhoc valid");

	/* overlapping "domains" (bogus sysfs): one domain */
	cpu(root, 5, "3-5\n", "5\n");
	CHECK(rc_topology_read(root, t) == 0 && t->n_domains == 1,
	      "overlap: one domain");
	/* a CPU outside its own list: one domain */
	cpu(root, 5, "4-5\n", "5\n");
	cpu(root, 6, "4-5\n", "6\n");
	CHECK(rc_topology_read(root, t) == 0 && t->n_domains == 1,
	      "cpu outside own domain: one domain");
	/* a missing siblings file: the CPU alone */
	{
		char p[4200];

		snprintf(p, sizeof(p), "%s/sys/devices/system/cpu/cpu6/topology/thread_siblings_list", root);
		unlink(p);
		CHECK(rc_topology_read(root, t) == 0, "no siblings file");
		check_set(&t->siblings[6], "6", "missing siblings");
	}
	/* errors */
	put(root, "sys/devices/system/cpu/online", "0-x\n");
	CHECK(rc_topology_read(root, t) == -EINVAL, "bad online");
	put(root, "sys/devices/system/cpu/online", "\n");
	CHECK(rc_topology_read(root, t) == -ENODATA, "empty online");
	rm_tree(root);
	CHECK(rc_topology_read("/nonexistent-root", t) == -ENOENT, "no sysfs");

	/* one CPU: housekeeping only */
	root = scratch_root();
	put(root, "sys/devices/system/cpu/online", "0\n");
	CHECK(rc_topology_read(root, t) == 0, "1 cpu");
	CHECK(rc_roles_default(t, &r, &reason) == -ENOSPC, "1 cpu ENOSPC");
	check_set(&r.housekeeping, "0", "1cpu hk");
	CHECK(rc_cpuset_empty(&r.crypto) && rc_cpuset_empty(&r.vm), "1cpu");
	rm_tree(root);
}

int main(void)
{
	t = malloc(sizeof(*t));
	if (!t)
		return 2;
	test_2socket();
	test_tcg();
	test_vm();
	test_partial();
	test_adhoc();
	free(t);
	return test_done("test_topology");
}
