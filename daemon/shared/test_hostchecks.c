// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit test of rc-hostchecks: every check passes on the 2-socket bare-metal
 * fixture, fails on the TCG guest fixture, and the edge cases in between. */
#include "test-util.h"
#include "rc-hostchecks.h"

static struct rc_hostcheck hc[RC_HOSTCHECKS_MAX];
static size_t n;

static const struct rc_hostcheck *get(const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (hc[i].name && strcmp(hc[i].name, name) == 0)
			return &hc[i];
	printf("FAIL: no check %s\n", name);
	failures++;
	return NULL;
}

static void expect(int line, const char *name, bool ok, const char *needle)
{
	const struct rc_hostcheck *c = get(name);

	checks++;
	if (!c)
		return;
	if (c->ok != ok || (needle && !strstr(c->detail, needle))) {
		failures++;
		printf("FAIL test_hostchecks.c:%d: %s ok=%d (want %d) '%s'%s%s\n",
		       line, name, c->ok, ok, c->detail,
		       needle ? ", want " : "", needle ? needle : "");
	}
}

#define E(name, ok, needle) expect(__LINE__, name, ok, needle)

static void run(const char *root, const char *vm)
{
	struct rc_cpuset s;

	rc_cpuset_parse(vm, &s);
	n = 0;
	CHECK(rc_hostchecks_run(root, &s, hc, &n) == 0 && n == 9, "run %zu", n);
	for (size_t i = 0; i < n; i++)
		CHECK(hc[i].name && hc[i].detail[0] && !strchr(hc[i].detail, '\n'),
		      "check %zu has a name and a one-line detail", i);
}

int main(void)
{
	char *root;

	run(fixture("sysroot-2socket"), "2-3,6-7,10-11,14-15");
	E("key-loaded", true, "a key is loaded in the debug registers (cipher implementation vaes)");
	E("key-on-all-holders", true, "every holder CPU (0-1,8-9) passed its last key check");
	E("livepatch", true, "enabled and every task is patched");
	E("bare-metal", true, "no CPUID hypervisor bit");
	E("init-on-free", true, "init_on_free=1");
	E("zswap-off", true, "zswap is disabled (enabled=N)");
	E("hibernation-off", true, "hibernation is not offered (sys/power/state: 'freeze mem')");
	E("vm-cpus-keyless", true, "no VM CPU (2-3,6-7,10-11,14-15) is a key holder");
	E("pmu-xmm-sampling", true, "the PMU cannot write XMM registers to RAM");
	/* the order of the header */
	CHECK(!strcmp(hc[0].name, "key-loaded") && !strcmp(hc[7].name, "vm-cpus-keyless"),
	      "order");

	run(fixture("sysroot-2socket"), "1-3");
	E("vm-cpus-keyless", false, "VM CPUs 1 are key holders");
	run(fixture("sysroot-2socket"), "");
	E("vm-cpus-keyless", true, "no VM CPUs are assigned");
	CHECK(rc_hostchecks_run(fixture("sysroot-2socket"), NULL, hc, &n) == 0 &&
	      hc[7].ok, "NULL vm_cpus");

	run(fixture("sysroot-tcg"), "2-3");
	E("key-loaded", false, "tresor.ko is loaded but holds no key");
	E("key-on-all-holders", false, "no key is loaded");
	E("livepatch", false, "the tresor_showregs livepatch is not loaded: an oops or SysRq register dump prints DR0-DR3");
	E("bare-metal", false, "inside a hypervisor (CPUID hypervisor bit): it saves DR0-DR3 to its RAM on every exit, so TRESOR protects nothing");
	E("init-on-free", false, "init_on_free=1 is not on the kernel command line");
	E("zswap-off", false, "zswap is enabled (enabled=Y)");
	E("hibernation-off", false, "hibernation is possible (sys/power/state offers 'disk', sys/power/disk '[platform] shutdown reboot suspend test_resume')");
	E("vm-cpus-keyless", true, "no key is loaded");
	E("pmu-xmm-sampling", true, "no key is loaded");

	run(fixture("sysroot-vm"), "1");
	E("key-on-all-holders", false, "holder CPUs 1 lost the key or failed its check (holders 0-1, valid 0, 3 check failures)");
	E("livepatch", false, "still in transition");
	E("bare-metal", false, "inside a hypervisor");
	E("hibernation-off", true, "nohibernate");
	E("zswap-off", true, "zswap is not in this kernel");
	E("vm-cpus-keyless", false, "VM CPUs 1 are key holders");
	E("pmu-xmm-sampling", false, "the key was loaded with tresor.allow_pebs_xmm=1");

	run(fixture("sysroot-partial"), "");
	E("key-loaded", false, "tresor.ko is not loaded");
	E("bare-metal", false, "proc/cpuinfo is unreadable");
	E("init-on-free", false, "proc/cmdline is unreadable");
	E("hibernation-off", true, "no power management states");

	/* edge cases on a scratch root */
	root = scratch_root();
	put(root, "proc/cmdline", "init_on_free=1 quiet init_on_free=0\n");
	put(root, "proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu hypervisorx sse\n");
	put(root, "sys/power/state", "freeze mem disk\n");
	put(root, "sys/power/disk", "[disabled]\n");
	put(root, "sys/kernel/livepatch/tresor_showregs/enabled", "0\n");
	put(root, "sys/module/zswap/parameters/enabled", "Y\n");
	run(root, "");
	E("init-on-free", false, "sets init_on_free=0");	/* the last one wins */
	E("bare-metal", true, NULL);	/* "hypervisorx" is another word */
	E("hibernation-off", true, "sys/power/disk is [disabled]");
	E("livepatch", false, "loaded but disabled");
	put(root, "proc/cmdline", "init_on_free=on hibernate=no\n");
	put(root, "sys/power/disk", "[platform] shutdown\n");
	put(root, "proc/cpuinfo", "processor\t: 0\nvendor_id\t: x\n");
	run(root, "");
	E("init-on-free", true, "init_on_free=on");
	E("hibernation-off", true, "hibernate=no");
	E("bare-metal", false, "has no CPU flags");
	put(root, "proc/cmdline", "quiet\n");
	put(root, "sys/kernel/security/lockdown", "none integrity [confidentiality]\n");
	run(root, "");
	E("hibernation-off", true, "kernel lockdown (none integrity [confidentiality])");
	put(root, "sys/kernel/security/lockdown", "[none] integrity confidentiality\n");
	run(root, "");
	E("hibernation-off", false, "hibernation is possible");
	rm_tree(root);

	return test_done("test_hostchecks");
}
