// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit test of rc-qemu: the ExecStart= argv check (many QEMU command lines,
 * the failure cases among them) and the /proc check on the
 * fixture processes of tests/unit/fixtures/sysroot-2socket/proc. */
#include "test-util.h"
#include "rc-qemu.h"

#define Q "/usr/bin/qemu-system-x86_64"
#define RAM "-object", "memory-backend-file,id=ram0,size=4G,mem-path=/dev/ramcrypt,share=on"
#define MACH "-machine", "q35,memory-backend=ram0"
#define DISK "-drive", "file=/var/lib/vm/disk.img,if=virtio,cache=none"
#define HEADLESS "-vga", "none"

static void expect(int line, enum rc_qemu_verdict want, const char *needle,
		   char *const *argv)
{
	struct rc_qemu_result res;
	int r = rc_qemu_check_argv(argv, &res);

	checks++;
	if (r != 0 || res.verdict != want ||
	    (needle && !strstr(res.reason, needle))) {
		failures++;
		printf("FAIL test_qemu.c:%d: r=%d verdict %s (want %s), reason '%s'%s%s%s\n",
		       line, r, rc_qemu_verdict_to_string(res.verdict),
		       rc_qemu_verdict_to_string(want), res.reason,
		       needle ? ", want '" : "", needle ? needle : "",
		       needle ? "'" : "");
	}
}

#define V(want, needle, ...) \
	expect(__LINE__, want, needle, (char *const[]){ __VA_ARGS__, NULL })

static void test_argv(void)
{
	struct rc_qemu_result res;

	/* protected */
	V(RC_QEMU_PROTECTED, "guest RAM (4.0 GiB) on /dev/ramcrypt, 1 drive file bypassing the page cache",
	  Q, "-accel", "kvm", MACH, "-m", "4G", RAM, DISK, HEADLESS);
	V(RC_QEMU_PROTECTED, NULL, "qemu-system-aarch64", "--machine", "virt,memory-backend=ram0",
	  "--object", "memory-backend-file,id=ram0,size=1G,mem-path=/dev/ramcrypt,share=on",
	  "-nographic");
	V(RC_QEMU_PROTECTED, NULL, "/usr/bin/kvm", "-M", "pc,memory-backend=ram0", RAM,
	  "-nodefaults");
	V(RC_QEMU_PROTECTED, NULL, "/usr/libexec/qemu-kvm", MACH, RAM, "-vga", "none");
	/* -opt=value */
	V(RC_QEMU_PROTECTED, NULL, Q, "-machine=q35,memory-backend=ram0",
	  "-object=memory-backend-file,id=ram0,size=2G,mem-path=/dev/ramcrypt,share=on",
	  "-vga=none");
	/* NUMA: every node on a ramcrypt backend */
	V(RC_QEMU_PROTECTED, NULL, Q, "-m", "4G",
	  "-object", "memory-backend-file,id=m0,size=2G,mem-path=/dev/ramcrypt,share=on",
	  "-object", "memory-backend-file,id=m1,size=2G,mem-path=/dev/ramcrypt,share=yes",
	  "-numa", "node,nodeid=0,memdev=m0", "-numa", "node,nodeid=1,memdev=m1",
	  "-numa", "cpu,node-id=0,socket-id=0", HEADLESS);
	/* drives: cache.direct, directsync, blockdev, empty cdrom, devices */
	V(RC_QEMU_PROTECTED, "3 drive files", Q, MACH, RAM, HEADLESS,
	  "-drive", "file=/vm/a.qcow2,if=none,id=d0,cache.direct=on",
	  "-drive", "file=/vm/b.raw,format=raw,cache=directsync",
	  "-blockdev", "driver=file,node-name=f0,filename=/vm/c.img,cache.direct=on",
	  "-blockdev", "driver=raw,node-name=r0,file=f0",
	  "-drive", "if=ide,media=cdrom",
	  "-device", "virtio-blk-pci,drive=d0", "-device", "virtio-net-pci,netdev=n0",
	  "-netdev", "user,id=n0");
	/* inline child inherits the parent's cache.direct */
	V(RC_QEMU_PROTECTED, "1 drive file", Q, MACH, RAM, HEADLESS,
	  "-blockdev", "driver=qcow2,node-name=q0,cache.direct=on,file.driver=file,file.filename=/vm/d.qcow2");
	/* readonly with cache=none is fine */
	V(RC_QEMU_PROTECTED, NULL, Q, MACH, RAM, HEADLESS,
	  "-drive", "if=pflash,format=raw,readonly=on,cache=none,file=/usr/share/OVMF/OVMF_CODE.fd");
	/* a comma in a path: ",," */
	V(RC_QEMU_PROTECTED, NULL, Q, MACH, RAM, HEADLESS,
	  "-drive", "file=/vm/a,,b.img,cache=none");
	/* flags without a value do not eat the next option */
	V(RC_QEMU_PROTECTED, NULL, Q, "-enable-kvm", "-S", "-no-reboot", MACH,
	  "-snapshot", RAM, "-nographic", "-daemonize", DISK);

	/* VGA: reported, not refused */
	V(RC_QEMU_PROTECTED, "the default VGA keeps 16 MiB of video RAM in anonymous memory (add -vga none or -nographic",
	  Q, MACH, RAM, DISK);
	V(RC_QEMU_PROTECTED, "display device 'virtio-vga' keeps its video RAM in anonymous memory",
	  Q, MACH, RAM, "-device", "virtio-vga", "-vga", "none");
	V(RC_QEMU_PROTECTED, "display device 'qxl'", Q, MACH, RAM, "-vga", "qxl");

	/* anonymous guest RAM */
	V(RC_QEMU_UNPROTECTED, "guest RAM (-m 2.0 GiB) has no memory backend, so it is anonymous RAM",
	  Q, "-m", "2G", DISK, HEADLESS);
	V(RC_QEMU_UNPROTECTED, "guest RAM (-m 512.0 MiB) has no memory backend", Q, "-m", "512");
	V(RC_QEMU_UNPROTECTED, "guest RAM (-m 1.0 GiB)", Q, "-m", "size=1G,slots=4,maxmem=8G");
	V(RC_QEMU_UNPROTECTED, "guest RAM (QEMU's default 128.0 MiB) has no memory backend",
	  Q, "-nographic");
	/* a backend defined but not used for guest RAM */
	V(RC_QEMU_UNPROTECTED, "has no memory backend", Q, "-m", "4G", RAM, HEADLESS);
	V(RC_QEMU_UNPROTECTED, "memory backend 'ram0' is memory-backend-ram: anonymous guest RAM",
	  Q, "-machine", "q35,memory-backend=ram0",
	  "-object", "memory-backend-ram,id=ram0,size=4G", HEADLESS);
	V(RC_QEMU_UNPROTECTED, "memory backend 'mem' is memory-backend-memfd",
	  Q, "-machine", "q35,memory-backend=mem",
	  "-object", "memory-backend-memfd,id=mem,size=4G,share=on", HEADLESS);
	V(RC_QEMU_UNPROTECTED, "memory backend 'ram0' maps '/dev/shm/vm', not /dev/ramcrypt",
	  Q, MACH, "-object", "memory-backend-file,id=ram0,size=4G,mem-path=/dev/shm/vm,share=on", HEADLESS);
	V(RC_QEMU_UNPROTECTED, "memory backend 'ram0' maps /dev/ramcrypt without share=on",
	  Q, MACH, "-object", "memory-backend-file,id=ram0,size=4G,mem-path=/dev/ramcrypt", HEADLESS);
	V(RC_QEMU_UNPROTECTED, "without share=on",
	  Q, MACH, "-object", "memory-backend-file,id=ram0,size=4G,mem-path=/dev/ramcrypt,share=off", HEADLESS);
	V(RC_QEMU_UNPROTECTED, "-machine memory-backend=ram1 names no -object memory-backend-* of that id",
	  Q, "-machine", "q35,memory-backend=ram1", RAM, HEADLESS);
	V(RC_QEMU_UNPROTECTED, "-mem-path /dev/ramcrypt maps guest RAM private",
	  Q, "-m", "4G", "-mem-path", "/dev/ramcrypt", HEADLESS);
	V(RC_QEMU_UNPROTECTED, "-numa 'node,mem=2G' gives the node anonymous RAM",
	  Q, "-m", "4G", "-numa", "node,mem=2G", "-numa", "node,mem=2G", HEADLESS);
	V(RC_QEMU_UNPROTECTED, "has no memory backend",	/* one node without memdev */
	  Q, "-m", "4G", RAM, "-numa", "node,memdev=ram0", "-numa", "node", HEADLESS);
	/* a hot-plug DIMM on an anonymous backend */
	V(RC_QEMU_UNPROTECTED, "memory backend 'hp0' is memory-backend-ram",
	  Q, MACH, RAM, "-object", "memory-backend-ram,id=hp0,size=1G",
	  "-device", "pc-dimm,id=dimm0,memdev=hp0", HEADLESS);
	V(RC_QEMU_UNPROTECTED, "-device memdev=nothere names no -object",
	  Q, MACH, RAM, "-device", "pc-dimm,memdev=nothere", HEADLESS);

	/* buffered drives (the case: no cache=none) */
	V(RC_QEMU_UNPROTECTED, "drive 'file=/var/lib/vm/disk.img' reads through the host page cache (add cache=none or cache.direct=on)",
	  Q, MACH, RAM, "-drive", "file=/var/lib/vm/disk.img,if=virtio", HEADLESS);
	V(RC_QEMU_UNPROTECTED, "drive 'file=/vm/a.img' reads through the host page cache",
	  Q, MACH, RAM, "-drive", "file=/vm/a.img,cache=writeback", HEADLESS);
	V(RC_QEMU_UNPROTECTED, "drive 'file=/vm/a.img'",
	  Q, MACH, RAM, "-drive", "file=/vm/a.img,cache=writethrough", HEADLESS);
	V(RC_QEMU_UNPROTECTED, "drive 'file=/vm/a.img'",
	  Q, MACH, RAM, "-drive", "file=/vm/a.img,cache=unsafe", HEADLESS);
	V(RC_QEMU_UNPROTECTED, "drive 'file=/vm/a.img'",	/* explicit override */
	  Q, MACH, RAM, "-drive", "file=/vm/a.img,cache=none,cache.direct=off", HEADLESS);
	V(RC_QEMU_UNPROTECTED, "drive 'file=/vm/ro.iso'",	/* readonly still reads */
	  Q, MACH, RAM, "-drive", "file=/vm/ro.iso,media=cdrom,readonly=on", HEADLESS);
	V(RC_QEMU_UNPROTECTED, "drive 'file=/vm/x.qcow2'",
	  Q, MACH, RAM, "-drive", "if=none,id=d0,file=/vm/x.qcow2", HEADLESS);
	V(RC_QEMU_UNPROTECTED, "cache=bogus is not a cache mode",
	  Q, MACH, RAM, "-drive", "file=/vm/a.img,cache=bogus", HEADLESS);
	V(RC_QEMU_UNPROTECTED, "blockdev 'filename=/vm/c.img' reads through the host page cache",
	  Q, MACH, RAM, "-blockdev", "driver=file,node-name=f0,filename=/vm/c.img", HEADLESS);
	V(RC_QEMU_UNPROTECTED, "blockdev 'file.filename=/vm/d.qcow2'",	/* child overrides */
	  Q, MACH, RAM, "-blockdev",
	  "driver=qcow2,node-name=q0,cache.direct=on,file.driver=file,file.filename=/vm/d.qcow2,file.cache.direct=off",
	  HEADLESS);
	V(RC_QEMU_UNPROTECTED, "cache.direct=maybe is not on or off",
	  Q, MACH, RAM, "-blockdev", "driver=file,filename=/vm/c.img,cache.direct=maybe", HEADLESS);
	V(RC_QEMU_UNPROTECTED, "-hda '/vm/disk.img' reads through the host page cache (use -drive file=/vm/disk.img,cache=none)",
	  Q, MACH, RAM, "-hda", "/vm/disk.img", HEADLESS);
	V(RC_QEMU_UNPROTECTED, "-cdrom '/vm/debian.iso'", Q, MACH, RAM, "-cdrom", "/vm/debian.iso", HEADLESS);
	V(RC_QEMU_UNPROTECTED, "disk image '/vm/disk.img' given as a bare argument",
	  Q, MACH, RAM, HEADLESS, "/vm/disk.img");
	/* two problems: the first named, the count of the rest */
	V(RC_QEMU_UNPROTECTED, "(and 1 more)", Q, "-m", "1G", "-drive", "file=/vm/a.img", HEADLESS);

	/* not checkable: refused */
	/* libvirt's JSON syntax */
	V(RC_QEMU_PROTECTED, "guest RAM (4.0 GiB) on /dev/ramcrypt, 2 drive files",
	  Q, MACH, HEADLESS, "-object",
	  "{\"qom-type\":\"memory-backend-file\",\"id\":\"ram0\",\"mem-path\":\"/dev/ramcrypt\",\"share\":true,\"size\":4294967296,\"host-nodes\":[0,1],\"policy\":\"bind\"}",
	  "-blockdev",
	  "{\"driver\":\"file\",\"filename\":\"/var/lib/libvirt/images/vm.qcow2\",\"node-name\":\"libvirt-1-storage\",\"cache\":{\"direct\":true,\"no-flush\":false},\"auto-read-only\":true,\"discard\":\"unmap\"}",
	  "-blockdev",
	  "{\"node-name\":\"libvirt-1-format\",\"read-only\":false,\"cache\":{\"direct\":true},\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"/vm/b\\u002eqcow2\"}}",
	  "-device", "{\"driver\":\"virtio-blk-pci\",\"drive\":\"libvirt-1-format\",\"id\":\"virtio-disk0\",\"bootindex\":1}");
	V(RC_QEMU_UNPROTECTED, "memory backend 'ram0' maps /dev/ramcrypt without share=on",
	  Q, MACH, HEADLESS, "-object",
	  "{\"qom-type\":\"memory-backend-file\",\"id\":\"ram0\",\"mem-path\":\"/dev/ramcrypt\",\"share\":false,\"size\":1073741824}");
	V(RC_QEMU_UNPROTECTED, "blockdev 'filename=/vm/a.img' reads through the host page cache",
	  Q, MACH, RAM, HEADLESS, "-blockdev",
	  "{\"driver\":\"file\",\"filename\":\"/vm/a.img\",\"cache\":{\"direct\":false}}");
	V(RC_QEMU_UNPROTECTED, "blockdev 'file.filename=/vm/c.img'",
	  Q, MACH, RAM, HEADLESS, "-blockdev",
	  "{\"driver\":\"raw\",\"file\":{\"driver\":\"file\",\"filename\":\"/vm/c.img\"}}");
	V(RC_QEMU_PROTECTED, "display device 'VGA' keeps its video RAM in anonymous memory",
	  Q, MACH, RAM, DISK, "-vga", "none",
	  "-device", "{\"driver\":\"VGA\",\"id\":\"video0\"}");
	/* JSON it cannot parse: refused, named */
	V(RC_QEMU_UNPROTECTED, "is not JSON this check understands",
	  Q, MACH, "-object", "{\"qom-type\":\"memory-backend-file\",\"id\":\"ram0\"", HEADLESS);
	V(RC_QEMU_UNPROTECTED, "-blockdev '{\"driver\"",
	  Q, MACH, RAM, "-blockdev", "{\"driver\":\"file\",\"filename\":\"/vm/a.img\"} x", HEADLESS);
	V(RC_QEMU_UNPROTECTED, "is not JSON",
	  Q, MACH, RAM, "-blockdev", "{\"driver\":\"file\",\"file.name\":\"/vm/a.img\"}", HEADLESS);
	V(RC_QEMU_UNPROTECTED, "is not JSON",
	  Q, MACH, RAM, "-blockdev", "{\"driver\":\"file\",\"filename\":\"\\u00e9\"}", HEADLESS);
	V(RC_QEMU_UNPROTECTED, "is not JSON",
	  Q, MACH, RAM, "-device", "{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":1}}}}}}}}}}}}}}}}}", HEADLESS);
	V(RC_QEMU_UNPROTECTED, "-readconfig /etc/vm.cfg: options in a config file are not checked",
	  Q, MACH, RAM, "-readconfig", "/etc/vm.cfg", HEADLESS);
	V(RC_QEMU_UNPROTECTED, "-set drive.d0.cache=writeback: changes to options are not checked",
	  Q, MACH, RAM, DISK, "-set", "drive.d0.cache=writeback", HEADLESS);
	V(RC_QEMU_UNPROTECTED, "option -m needs a value", Q, MACH, RAM, HEADLESS, "-m");

	/* not QEMU / wrappers */
	V(RC_QEMU_NOT_QEMU, "'/usr/sbin/nginx' is not QEMU: RamCrypt protects guest RAM on ramcrypt regions only",
	  "/usr/sbin/nginx", "-g", "daemon off;");
	V(RC_QEMU_NOT_QEMU, "not the memory of an ordinary service", "/usr/bin/qemu-img", "info", "x");
	V(RC_QEMU_NOT_QEMU, NULL, "qemu-system", "-m", "1G");
	V(RC_QEMU_UNKNOWN, "'/bin/sh' is a wrapper", "/bin/sh", "-c", "exec qemu-system-x86_64 ...");
	V(RC_QEMU_UNKNOWN, "checked from /proc after the start", "/usr/bin/env", "qemu-system-x86_64", "-m", "1G");
	V(RC_QEMU_UNKNOWN, NULL, "bash", "/usr/local/bin/start-vm");
	V(RC_QEMU_UNKNOWN, NULL, "/usr/local/bin/start-vm.sh");
	V(RC_QEMU_UNKNOWN, NULL, "/usr/bin/python3.11", "/opt/vm.py");
	V(RC_QEMU_UNKNOWN, NULL, "/usr/bin/taskset", "-c", "2", Q);
	{
		/* a script without an extension: "#!" */
		char *root = scratch_root();
		char path[4200];

		put(root, "start-vm", "#!/bin/sh\nexec qemu-system-x86_64 \"$@\"\n");
		put(root, "elf-ish", "\x7f" "ELF....");
		snprintf(path, sizeof(path), "%s/start-vm", root);
		V(RC_QEMU_UNKNOWN, NULL, path);
		snprintf(path, sizeof(path), "%s/elf-ish", root);
		V(RC_QEMU_NOT_QEMU, NULL, path);
		rm_tree(root);
	}

	/* ramcrypt bytes summed over the protected backends */
	{
		char *argv[] = { Q, "-m", "6G", "-object",
			"memory-backend-file,id=a,size=2G,mem-path=/dev/ramcrypt,share=on",
			"-object",
			"memory-backend-file,id=b,size=4096M,mem-path=/dev/ramcrypt,share=on",
			"-numa", "node,memdev=a", "-numa", "node,memdev=b", "-nographic",
			NULL };

		CHECK(rc_qemu_check_argv(argv, &res) == 0 &&
		      res.verdict == RC_QEMU_PROTECTED &&
		      res.ramcrypt_bytes == (UINT64_C(6) << 30),
		      "ramcrypt_bytes %llu", (unsigned long long)res.ramcrypt_bytes);
	}
	CHECK(rc_qemu_check_argv((char *const[]){ NULL }, &res) == -EINVAL, "empty argv");
	CHECK(rc_qemu_check_argv(NULL, &res) == -EINVAL, "NULL argv");
	CHECK(rc_qemu_check_argv((char *const[]){ "", NULL }, &res) == -EINVAL, "argv[0] empty");
}

static void test_process(void)
{
	const char *root = fixture("sysroot-2socket");
	struct rc_qemu_result res;

	/* protected: 4 GiB shared /dev/ramcrypt, the disk open O_DIRECT, an
	 * 8 MiB thread stack and small arenas below the threshold */
	CHECK(rc_qemu_check_process(root, 4242, 0, &res) == 0, "4242");
	CHECK(res.verdict == RC_QEMU_PROTECTED, "4242 protected: %s", res.reason);
	CHECK(res.ramcrypt_bytes == (UINT64_C(4) << 30), "4242 ramcrypt bytes");
	CHECK(res.anonymous_bytes == 0, "4242 anon %llu",
	      (unsigned long long)res.anonymous_bytes);
	CHECK_CONTAINS(res.reason, "guest RAM (4.0 GiB) on ramcrypt, 1 disk image open with O_DIRECT");
	/* a smaller threshold reports the 8 MiB block, still protected */
	CHECK(rc_qemu_check_process(root, 4242, 4 << 20, &res) == 0 &&
	      res.verdict == RC_QEMU_PROTECTED &&
	      res.anonymous_bytes == (UINT64_C(8) << 20) * 2,
	      "4242 at 4 MiB: %llu (%s)", (unsigned long long)res.anonymous_bytes, res.reason);
	CHECK_CONTAINS(res.reason, "16.0 MiB in 2 anonymous blocks of at least 4 MiB (largest 8.0 MiB");

	/* anonymous RAM and a buffered drive: the command line names it */
	CHECK(rc_qemu_check_process(root, 4343, 0, &res) == 0, "4343");
	CHECK(res.verdict == RC_QEMU_UNPROTECTED, "4343 unprotected");
	CHECK_CONTAINS(res.reason, "guest RAM (-m 2.0 GiB) has no memory backend");
	CHECK_CONTAINS(res.reason, "(and 1 more)");	/* the drive */
	CHECK(res.ramcrypt_bytes == 0 && res.anonymous_bytes == (UINT64_C(2) << 30) + (UINT64_C(16) << 20),
	      "4343 anon %llu", (unsigned long long)res.anonymous_bytes);

	/* a shell that is still the main process: unknown */
	CHECK(rc_qemu_check_process(root, 4444, 0, &res) == 0 &&
	      res.verdict == RC_QEMU_UNKNOWN, "4444 unknown");
	CHECK_CONTAINS(res.reason, "process 4444 is 'dash' running '/usr/local/bin/start-vm', not QEMU itself");

	/* nginx: not QEMU */
	CHECK(rc_qemu_check_process(root, 4545, 0, &res) == 0 &&
	      res.verdict == RC_QEMU_NOT_QEMU, "4545 not qemu");
	CHECK_CONTAINS(res.reason, "process 4545 ('nginx') is not QEMU: RamCrypt protects guest RAM on ramcrypt regions only");

	CHECK(rc_qemu_check_process(root, 99999, 0, &res) == -ESRCH, "gone");
	CHECK(rc_qemu_check_process(root, 0, 0, &res) == -EINVAL, "pid 0");
}

/* /proc cases built on the fly: the command line looks fine but the
 * process is not (hot-plug, wrapper-started QEMU, O_DIRECT missing). */
static void proc(const char *root, int pid, const char *cmdline, size_t cmdlen,
		 const char *maps)
{
	char rel[256], p[4200];
	FILE *f;

	snprintf(rel, sizeof(rel), "proc/%d/maps", pid);
	put(root, rel, maps);
	snprintf(p, sizeof(p), "%s/proc/%d/cmdline", root, pid);
	f = fopen(p, "w");
	fwrite(cmdline, 1, cmdlen, f);
	fclose(f);
	snprintf(p, sizeof(p), "%s/proc/%d/fd", root, pid);
	mkdir(p, 0755);
}

static void fd(const char *root, int pid, int n, const char *target,
	       const char *flags)
{
	char p[4200], rel[256], info[256];

	snprintf(p, sizeof(p), "%s/proc/%d/fd/%d", root, pid, n);
	unlink(p);
	if (symlink(target, p) < 0)
		perror("symlink");
	snprintf(rel, sizeof(rel), "proc/%d/fdinfo/%d", pid, n);
	snprintf(info, sizeof(info), "pos:\t0\nflags:\t%s\nmnt_id:\t29\n", flags);
	put(root, rel, info);
}

/* proc() with the process's mountinfo (where its ramcryptfs mounts are) */
static void proc_mounts(const char *root, int pid, const char *cmdline,
			size_t cmdlen, const char *maps, const char *mountinfo)
{
	char rel[64];

	proc(root, pid, cmdline, cmdlen, maps);
	snprintf(rel, sizeof(rel), "proc/%d/mountinfo", pid);
	put(root, rel, mountinfo);
}

#define CMD(s) s, sizeof(s) - 1
#define GOOD_CMD CMD(Q "\0-machine\0q35,memory-backend=ram0\0-object\0memory-backend-file,id=ram0,size=1G,mem-path=/dev/ramcrypt,share=on\0-drive\0file=/vm/d.img,cache=none\0-vga\0none\0")
#define RC_MAP "7f0000000000-7f0040000000 rw-s 00000000 00:05 412    /dev/ramcrypt\n"

static void test_process_adhoc(void)
{
	char *root = scratch_root();
	struct rc_qemu_result res;

	/* hot-plugged anonymous RAM: 512 MiB block */
	proc(root, 100, GOOD_CMD, RC_MAP
	     "7f1000000000-7f1020000000 rw-p 00000000 00:00 0 \n");
	fd(root, 100, 5, "/vm/d.img", "02140002");
	CHECK(rc_qemu_check_process(root, 100, 0, &res) == 0 &&
	      res.verdict == RC_QEMU_UNPROTECTED, "hot-plug: %s", res.reason);
	CHECK_CONTAINS(res.reason, "anonymous block of 512.0 MiB at 0x7f1000000000: guest RAM outside ramcrypt");
	CHECK(res.anonymous_bytes == (UINT64_C(512) << 20), "hot-plug bytes");

	/* a memfd block counts as anonymous too */
	proc(root, 101, GOOD_CMD, RC_MAP
	     "7f1000000000-7f1040000000 rw-s 00000000 00:01 77   /memfd:hotplug (deleted)\n");
	CHECK(rc_qemu_check_process(root, 101, 0, &res) == 0 &&
	      res.verdict == RC_QEMU_UNPROTECTED, "memfd: %s", res.reason);
	CHECK_CONTAINS(res.reason, "(/memfd:hotplug (deleted))");

	/* video RAM (16 MiB) and TCG's rwx code buffer (1 GiB): protected,
	 * the 16 MiB reported */
	proc(root, 102, GOOD_CMD, RC_MAP
	     "7f2000000000-7f2001000000 rw-p 00000000 00:00 0 \n"
	     "7f3000000000-7f3040000000 rwxp 00000000 00:00 0 \n");
	CHECK(rc_qemu_check_process(root, 102, 0, &res) == 0 &&
	      res.verdict == RC_QEMU_PROTECTED, "vram: %s", res.reason);
	CHECK(res.anonymous_bytes == (UINT64_C(16) << 20), "vram bytes %llu",
	      (unsigned long long)res.anonymous_bytes);
	CHECK_CONTAINS(res.reason, "16.0 MiB in 1 anonymous block of at least 16 MiB");

	/* a private mapping of /dev/ramcrypt */
	proc(root, 103, GOOD_CMD,
	     "7f0000000000-7f0040000000 rw-p 00000000 00:05 412    /dev/ramcrypt\n");
	CHECK(rc_qemu_check_process(root, 103, 0, &res) == 0 &&
	      res.verdict == RC_QEMU_UNPROTECTED, "private ramcrypt");
	CHECK_CONTAINS(res.reason, "maps its ramcrypt RAM private");

	/* no mapping at all (the backend was not on ramcrypt after all) */
	proc(root, 104, GOOD_CMD, "7f2000000000-7f2000100000 rw-p 00000000 00:00 0 \n");
	CHECK(rc_qemu_check_process(root, 104, 0, &res) == 0 &&
	      res.verdict == RC_QEMU_UNPROTECTED, "no ramcrypt mapping");
	CHECK_CONTAINS(res.reason, "process 104 has no mapping of /dev/ramcrypt");

	/* libvirt's QEMU: RAM in a file on ramcryptfs (the process's
	 * mountinfo names the mount; maps shows the file by its device) */
	{
#define RCFS_CMD CMD(Q "\0-machine\0pc,memory-backend=pc.ram\0-object\0{\"qom-type\":\"memory-backend-file\",\"id\":\"pc.ram\",\"mem-path\":\"/run/ramcryptfs/libvirt/qemu/1-rcvm\",\"share\":true,\"x-use-canonical-path-for-ramblock-id\":false,\"size\":33554432}\0-vga\0none\0")
#define RCFS_MOUNTINFO "22 1 0:21 / /run rw,nosuid shared:5 - tmpfs tmpfs rw\n" \
		"40 22 0:45 / /run/ramcryptfs rw,nosuid,nodev shared:20 - ramcryptfs ramcryptfs rw\n"
#define RCFS_MAP "7f0000000000-7f0002000000 rw-s 00000000 00:2d 17   /run/ramcryptfs/libvirt/qemu/1-rcvm/qemu_back_mem.pc.ram.XYZ (deleted)\n"
		proc_mounts(root, 120, RCFS_CMD, RCFS_MAP, RCFS_MOUNTINFO);
		CHECK(rc_qemu_check_process(root, 120, 0, &res) == 0 &&
		      res.verdict == RC_QEMU_PROTECTED, "ramcryptfs: %s",
		      res.reason);
		CHECK(res.ramcrypt_bytes == (UINT64_C(32) << 20),
		      "ramcryptfs bytes %llu",
		      (unsigned long long)res.ramcrypt_bytes);
		CHECK_CONTAINS(res.reason, "guest RAM (32.0 MiB) on ramcrypt");

		/* same mem-path, but the mapping is on another device (the
		 * file system there is not ramcryptfs after all) */
		proc_mounts(root, 121, RCFS_CMD,
			    "7f0000000000-7f0002000000 rw-s 00000000 00:2e 17   /run/ramcryptfs/libvirt/qemu/1-rcvm/x (deleted)\n",
			    RCFS_MOUNTINFO);
		CHECK(rc_qemu_check_process(root, 121, 0, &res) == 0 &&
		      res.verdict == RC_QEMU_UNPROTECTED, "rcfs other dev");
		CHECK_CONTAINS(res.reason, "has no mapping of /dev/ramcrypt or a ramcryptfs file");

		/* mountinfo without ramcryptfs: the mem-path is refused */
		proc_mounts(root, 122, RCFS_CMD, RCFS_MAP,
			    "22 1 0:21 / /run rw,nosuid shared:5 - tmpfs tmpfs rw\n");
		CHECK(rc_qemu_check_process(root, 122, 0, &res) == 0 &&
		      res.verdict == RC_QEMU_UNPROTECTED, "no rcfs mount");
		CHECK_CONTAINS(res.reason, "memory backend 'pc.ram' maps '/run/ramcryptfs/libvirt/qemu/1-rcvm', not /dev/ramcrypt or a file on ramcryptfs");

		/* a path that only starts like the mount point */
		proc_mounts(root, 123, CMD(Q "\0-machine\0pc,memory-backend=m\0-object\0memory-backend-file,id=m,size=32M,mem-path=/run/ramcryptfsX/m,share=on\0-vga\0none\0"), RCFS_MAP,
			    RCFS_MOUNTINFO);
		CHECK(rc_qemu_check_process(root, 123, 0, &res) == 0 &&
		      res.verdict == RC_QEMU_UNPROTECTED, "prefix only");
		CHECK_CONTAINS(res.reason, "maps '/run/ramcryptfsX/m'");

		/* hot-plugged anonymous RAM beside it, as for /dev/ramcrypt */
		proc_mounts(root, 124, RCFS_CMD, RCFS_MAP
			    "7f1000000000-7f1020000000 rw-p 00000000 00:00 0 \n",
			    RCFS_MOUNTINFO);
		CHECK(rc_qemu_check_process(root, 124, 0, &res) == 0 &&
		      res.verdict == RC_QEMU_UNPROTECTED, "rcfs hot-plug");
		CHECK_CONTAINS(res.reason, "guest RAM outside ramcrypt (a memory backend added at runtime?)");

		/* argv alone (before a start): only /dev/ramcrypt counts */
		{
			char *argv[] = { "qemu-system-x86_64", "-machine",
				"pc,memory-backend=m", "-object",
				"memory-backend-file,id=m,size=32M,mem-path=/run/ramcryptfs/m,share=on",
				"-vga", "none", NULL };

			CHECK(rc_qemu_check_argv(argv, &res) == 0 &&
			      res.verdict == RC_QEMU_UNPROTECTED, "argv rcfs");
			CHECK_CONTAINS(res.reason, "maps '/run/ramcryptfs/m', not /dev/ramcrypt");
		}
	}

	/* the argv said cache=none, but the image is open without O_DIRECT
	 * (a wrapper changed it, or a drive added over QMP) */
	proc(root, 105, GOOD_CMD, RC_MAP);
	fd(root, 105, 7, "/vm/d.img", "0100002");
	CHECK(rc_qemu_check_process(root, 105, 0, &res) == 0 &&
	      res.verdict == RC_QEMU_UNPROTECTED, "no O_DIRECT: %s", res.reason);
	CHECK_CONTAINS(res.reason, "disk image '/vm/d.img' is open without O_DIRECT (fd 7)");
	/* an image not on the command line, by its name */
	proc(root, 106, GOOD_CMD, RC_MAP);
	fd(root, 106, 8, "/srv/hotplug.qcow2", "0100002");
	fd(root, 106, 9, "/var/log/qemu/vm.log", "0102001");
	fd(root, 106, 10, "/usr/lib/x86_64-linux-gnu/qemu/ui-gtk.so", "02100000");
	CHECK(rc_qemu_check_process(root, 106, 0, &res) == 0 &&
	      res.verdict == RC_QEMU_UNPROTECTED, "hotplug drive");
	CHECK_CONTAINS(res.reason, "'/srv/hotplug.qcow2' is open without O_DIRECT (fd 8)");
	/* a deleted image */
	proc(root, 107, GOOD_CMD, RC_MAP);
	fd(root, 107, 3, "/vm/d.img (deleted)", "0100002");
	CHECK(rc_qemu_check_process(root, 107, 0, &res) == 0 &&
	      res.verdict == RC_QEMU_UNPROTECTED, "deleted image");
	/* a log file and a .so: no image, protected */
	proc(root, 108, GOOD_CMD, RC_MAP);
	fd(root, 108, 9, "/var/log/qemu/vm.log", "0102001");
	fd(root, 108, 4, "/vm/d.img", "0140000");
	CHECK(rc_qemu_check_process(root, 108, 0, &res) == 0 &&
	      res.verdict == RC_QEMU_PROTECTED, "log + direct image: %s", res.reason);

	/* a wrapper that exec'd QEMU: cmdline qemu, checked like argv */
	proc(root, 109, CMD("qemu-system-x86_64\0-m\0001G\0"), RC_MAP);
	CHECK(rc_qemu_check_process(root, 109, 0, &res) == 0 &&
	      res.verdict == RC_QEMU_UNPROTECTED, "exec'd qemu with -m");
	CHECK_CONTAINS(res.reason, "guest RAM (-m 1.0 GiB) has no memory backend");

	/* exe says qemu although argv[0] was rewritten */
	proc(root, 110, CMD("vm-test\0-machine\0q35,memory-backend=ram0\0-object\0memory-backend-file,id=ram0,size=1G,mem-path=/dev/ramcrypt,share=on\0-nographic\0"),
	     RC_MAP);
	{
		char p[4200];

		snprintf(p, sizeof(p), "%s/proc/110/exe", root);
		if (symlink("/usr/bin/qemu-system-x86_64", p) < 0)
			perror("symlink");
	}
	CHECK(rc_qemu_check_process(root, 110, 0, &res) == 0 &&
	      res.verdict == RC_QEMU_PROTECTED, "exe qemu: %s", res.reason);

	/* an empty cmdline (zombie) */
	proc(root, 111, "", 0, "");
	CHECK(rc_qemu_check_process(root, 111, 0, &res) == -ESRCH, "zombie");
	rm_tree(root);
}

int main(void)
{
	test_argv();
	test_process();
	test_process_adhoc();
	return test_done("test_qemu");
}
