"""ramcryptfs: ramcrypt regions as regular files of a mountable file system
(module/ramcrypt_fs.c): mount options, create / ftruncate / mmap(MAP_SHARED)
/ hole punch / unlink, the cgroup policy taken at creation, the cold-boot
canary check on a file, and QEMU/KVM with its RAM on ramcryptfs."""
import os
import re
import time

from harness import memsearch, slowness
from harness.guest import LOAD_TRESOR, load_kvm, load_masked_key
from harness.ramcrypt_guest import (MBGUEST, QEMU, SYSFS,
                                    assert_clean_dmesg, qemu_files,
                                    start_canary, stats_of, stop_canary,
                                    sysfs)
from harness.ramcrypt_ct import canaries_encrypted, page_heads, tweak_salt
from harness.registry import vm_test

MNT = "/run/ramcrypt"
CG = "/sys/fs/cgroup"
POL = "/sys/kernel/config/ramcrypt/policies"
PAGE = 4096


def mem_free_kb(vm):
    """Free memory (KiB): MemFree plus the pages on per-CPU free lists
    (/proc/zoneinfo's pagesets counts), which MemFree does not count and
    where freed pages go first (6.12 keeps many there)."""
    out = vm.sh("grep '^MemFree:' /proc/meminfo; "
                "awk '$1 == \"count:\" { n += $2 } END { print n }' "
                "/proc/zoneinfo")
    free, pcp = out.split("\n")[0], out.split("\n")[1]
    return int(free.split()[1]) + int(pcp) * 4


def mount_fails(vm, opts, why):
    """A mount with bad options fails, the kernel log line saying why."""
    vm.sh("dmesg -c > /dev/null")
    rc, out = vm.run(f"mount -t ramcryptfs -o {opts} none {MNT} 2>&1")
    log = vm.sh("dmesg")
    assert rc != 0, f"mount -o {opts} succeeded: {out}"
    assert why in log, f"mount -o {opts}: {why!r} not in the log: {log}"
    return f"-o {opts}: {log.strip().splitlines()[-1]}"


@vm_test(timeout=900)
def test_ramcryptfs(ctx):
    count, window = 4096, 256
    fill_pages = 8192           # 32 MiB
    key = os.urandom(32)
    set_id = int.from_bytes(os.urandom(4), "little") | 1
    dump = ctx.workdir / "dump.raw"
    with ctx.boot(mem_mb=512) as vm:
        vm.sh(LOAD_TRESOR)
        load_masked_key(vm, key)
        vm.sh(f"modprobe ramcrypt window_pages={window}")
        vm.sh(f"mkdir -p {MNT} /mnt2; "
              f"mountpoint -q /sys/kernel/config || "
              f"mount -t configfs none /sys/kernel/config; "
              f"mountpoint -q {CG} || mount -t cgroup2 none {CG}")

        # -- mount options: bad ones are refused with a line naming them
        lines = [mount_fails(vm, "mode=10000", "mode 10000 is no permission"),
                 mount_fails(vm, "uid=alice", "Bad value for 'uid'"),
                 mount_fails(vm, "gid=4294967295",
                             "gid 4294967295 is no valid group id"),
                 mount_fails(vm, "size=1G", "Unknown parameter 'size'")]
        ctx.note("bad mount options: " + " | ".join(lines))
        # Only root mounts it (no FS_USERNS_MOUNT)
        rc, out = vm.run("rcfs as 1000 100 mount -t ramcryptfs none /mnt2 "
                         "2>&1")
        assert rc != 0 and ("ermission" in out or "not permitted" in out), \
            (rc, out)
        vm.sh(f"mount -t ramcryptfs -o mode=1770,gid=100 none {MNT}")
        mounts = vm.sh(f"grep ' {MNT} ' /proc/mounts")
        assert "ramcryptfs" in mounts and "mode=1770" in mounts and \
            "gid=100" in mounts, mounts
        assert vm.sh(f"stat -c '%a %u %g' {MNT}").strip() == "1770 0 100"
        # A remount applies the options given, keeps the others, and
        # refuses bad ones as the mount does
        vm.sh(f"mount -o remount,mode=1777,uid=7 {MNT}")
        assert vm.sh(f"stat -c '%a %u %g' {MNT}").strip() == "1777 7 100"
        rc, out = vm.run(f"mount -o remount,mode=10000 {MNT} 2>&1")
        assert rc != 0, out
        vm.sh(f"mount -o remount,mode=1770,uid=0 {MNT}")
        mounts = vm.sh(f"grep ' {MNT} ' /proc/mounts")
        assert "mode=1770" in mounts and "gid=100" in mounts and \
            "uid=" not in mounts, mounts
        assert vm.sh(f"stat -c '%a %u %g' {MNT}").strip() == "1770 0 100"
        # Group 100 (kvm's role) creates files, others cannot
        out = vm.sh(f"rcfs as 1000 100 rcfs create {MNT}/u1000 1048576")
        assert "created size=1048576" in out, out
        assert vm.sh(f"stat -c '%u %g %s' {MNT}/u1000").strip() == \
            "1000 100 1048576"
        rc, out = vm.run(f"rcfs as 1001 1001 rcfs create {MNT}/u1001 4096")
        assert rc == 2 and "open: errno=EACCES" in out, (rc, out)
        # Per-domain directories
        vm.sh(f"mkdir {MNT}/dom1 && rcfs create {MNT}/dom1/ram 65536 && "
              f"mv {MNT}/dom1/ram {MNT}/dom1/ram0 && rm {MNT}/dom1/ram0 && "
              f"rmdir {MNT}/dom1")

        # -- invalid uses of a file
        vm.sh("dmesg -c > /dev/null")
        out = vm.sh(f"rcfs bad {MNT}/bad")
        for want in ("ftruncate_unaligned: EINVAL",
                     "ftruncate_negative: EINVAL",
                     "set_size_ioctl: ENOTTY", "map_private: EINVAL",
                     "map_private_ro: EINVAL", "punch_unaligned: EINVAL",
                     "fallocate_alloc: EOPNOTSUPP", "read_syscall: EINVAL",
                     "page0: 42", "past_end: sigbus", "after_shrink: sigbus",
                     "regrown_page0: 0", "bad: ok"):
            assert want in out, f"{want!r} not in: {out}"
        log = vm.sh("dmesg")
        for want in ("size 4097 is no multiple of the page size",
                     "MAP_PRIVATE refused, only MAP_SHARED",
                     "hole punch at 100, length 4096, is not page-aligned"):
            assert want in log, f"{want!r} not in the log: {log}"

        # -- the policy of the creator's cgroup, as at the device's open()
        vm.sh(f"mkdir -p {CG}/vmA && mkdir {POL}/pA && "
              f"echo 32 > {POL}/pA/window_pages && "
              f"stat -c %i {CG}/vmA > {POL}/pA/cgroup_id")
        out = vm.sh(f"sh -c 'echo $$ > {CG}/vmA/cgroup.procs; "
                    f"exec rcfs create {MNT}/pol 262144'")
        rid = stats_of(out)["id"]
        assert stats_of(out)["window"] == 32, out
        assert vm.sh(f"cat {SYSFS}/regions/{rid}/cgroup").strip() == "/vmA"
        # mapped and written from outside the cgroup: still its window
        out = vm.sh(f"rcfs fill {MNT}/pol 5 && rcfs verify {MNT}/pol 5")
        assert "mismatches=0" in out and stats_of(out)["window"] == 32, out
        assert vm.sh(f"cat {SYSFS}/regions/{rid}/policy_source").strip() \
            == "cgroup"

        # -- a directory's policy (libvirt's domain memory directory):
        # root sets it once on an empty directory; a file made in it takes
        # it over its creator's cgroup policy, a subdirectory inherits it
        vm.sh("dmesg -c > /dev/null")
        d = f"{MNT}/dom"
        vm.sh(f"mkdir {d} {d}-full {d}-bad && touch {d}-full/x")
        refused = {
            "non-root": vm.run(f"rcfs as 1000 100 rcfs dirpolicy {d} 48 500 "
                               f"0 -1"),
            "not empty": vm.run(f"rcfs dirpolicy {d}-full 48 500 0 -1"),
            "window 0": vm.run(f"rcfs dirpolicy {d}-bad 0 500 0 -1"),
            "cpu 99": vm.run(f"rcfs dirpolicy {d}-bad 48 500 0 99"),
            "a file": vm.run(f"rcfs dirpolicy {d}-full/x 48 500 0 -1"),
            "none set": vm.run(f"rcfs dirpolicy {d}-bad"),
        }
        want = {"non-root": "EPERM", "not empty": "ENOTEMPTY",
                "window 0": "EINVAL", "cpu 99": "EINVAL",
                "a file": "ENOTDIR", "none set": "ENODATA"}
        for case, (rc, out) in refused.items():
            assert rc == 2 and f"errno={want[case]}" in out, (case, rc, out)
        vm.sh(f"rcfs dirpolicy {d} 48 500 0 -1")
        rc, out = vm.run(f"rcfs dirpolicy {d} 40 500 0 -1")
        assert rc == 2 and "errno=EBUSY" in out, out
        assert "policy window=48 age=500 evict_ahead=0 cpu=-1" in \
            vm.sh(f"rcfs dirpolicy {d}")
        log = vm.sh("dmesg")
        for line in ("directory dom-full: not empty",
                     "directory dom-bad: policy window_pages 0 is invalid",
                     "directory dom-bad: policy crypto_cpu 99 is invalid",
                     "directory dom: has a policy already"):
            assert line in log, f"{line!r} not in the log: {log}"
        vm.sh(f"mkdir {d}/sub")
        ids = {}
        for name in ("dom/pc.ram", "dom/sub/ram-node0", "top"):
            out = vm.sh(f"sh -c 'echo $$ > {CG}/vmA/cgroup.procs; "
                        f"exec rcfs create {MNT}/{name} 65536'")
            ids[name] = stats_of(out)["id"]
        out = vm.sh(f"rcfs create {MNT}/top-root 65536")
        ids["top-root"] = stats_of(out)["id"]
        got = {n: vm.sh(f"cd {SYSFS}/regions/{i} && echo $(cat "
                        f"policy_source window_pages max_plaintext_age_ms)"
                        ).strip() for n, i in ids.items()}
        ctx.note(f"directory policy (window 48, 500 ms) against the "
                 f"creator's cgroup policy (window 32): {got}; refused: "
                 + ", ".join(f"{c} {want[c]}" for c in want))
        assert got["dom/pc.ram"] == "directory 48 500", got
        assert got["dom/sub/ram-node0"] == "directory 48 500", got
        assert got["top"].startswith("cgroup 32 "), got
        assert got["top-root"].startswith("default 256 "), got
        # a file keeps its policy: it cannot be moved into (or out of) a
        # directory with another one, nor a directory of them; within one
        # directory, or between equal policies, it can
        vm.sh(f"mkdir {d}2 && rcfs dirpolicy {d}2 48 500 0 -1")
        moves = {
            "cgroup file into dom": vm.run(f"rcfs rename {MNT}/top {d}/top"),
            "dom file out": vm.run(f"rcfs rename {d}/pc.ram {MNT}/pc.ram"),
            "plain dir into dom": vm.run(f"mkdir {MNT}/plain && "
                                         f"rcfs rename {MNT}/plain {d}/p"),
            "within dom": vm.run(f"rcfs rename {d}/pc.ram {d}/pc.ram2"),
            "dom to equal dom2": vm.run(f"rcfs rename {d}/pc.ram2 "
                                        f"{d}2/pc.ram"),
        }
        ctx.note("renames: " + ", ".join(
            f"{c}: {'ok' if rc == 0 else out.strip()}"
            for c, (rc, out) in moves.items()))
        for case in ("cgroup file into dom", "dom file out",
                     "plain dir into dom"):
            rc, out = moves[case]
            assert rc == 2 and "errno=EXDEV" in out, (case, rc, out)
        for case in ("within dom", "dom to equal dom2"):
            assert moves[case][0] == 0, (case, moves[case])
        vm.sh(f"rm -r {d} {d}2 {d}-full {d}-bad {MNT}/plain {MNT}/top "
              f"{MNT}/top-root")

        vm.sh(f"rm {MNT}/pol && rmdir {POL}/pA")
        assert not vm.sh(f"ls {SYSFS}/regions/ | grep -x {rid} || true")

        # -- fill (window evictions), hole punch, read back, shrink
        path = f"{MNT}/f"
        vm.sh(f"rcfs create {path} {fill_pages * PAGE}")
        t0 = time.monotonic()
        out = vm.sh(f"rcfs fill {path} 11", timeout=600)
        st = stats_of(out)
        assert st["encrypted"] == fill_pages and st["plaintext"] == 0, st
        # No process holds the file: its region (ciphertext only) stays
        out = vm.sh(f"rcfs verify {path} 11", timeout=600)
        secs = time.monotonic() - t0
        assert "mismatches=0" in out, out
        vm.sh(f"echo 1 > {SYSFS}/flush")
        before, s0 = mem_free_kb(vm), sysfs(vm)
        half = fill_pages // 2
        out = vm.sh(f"rcfs punch {path} {half * PAGE} {half * PAGE}")
        st = stats_of(out)
        after, s1 = mem_free_kb(vm), sysfs(vm)
        ctx.note(f"{fill_pages} pages filled and read back through a window "
                 f"of {window} ({secs:.0f}s); punching the upper half: "
                 f"encrypted_pages {s0['encrypted_pages']} -> "
                 f"{s1['encrypted_pages']}, memory_pages "
                 f"{s0['memory_pages']} -> {s1['memory_pages']}, MemFree "
                 f"+{(after - before) >> 10} MiB")
        assert "punched size=%d" % (fill_pages * PAGE) in out, out
        assert st["encrypted"] == half, st
        assert s0["memory_pages"] - s1["memory_pages"] >= half, (s0, s1)
        assert after - before >= (half * 4 * 3) // 4, (before, after)
        out = vm.sh(f"rcfs verify {path} 11 {half} {fill_pages}",
                    timeout=600)
        assert f"zero_pages={half} mismatches=0" in out, out
        # Zero pages only read: no ciphertext made for the hole
        assert stats_of(out)["encrypted"] == half, out
        # MADV_REMOVE-like punch past the end and of a hole: no-ops
        vm.sh(f"rcfs punch {path} {fill_pages * PAGE} {PAGE}")
        out = vm.sh(f"rcfs truncate {path} {half // 2 * PAGE}")
        st = stats_of(out)
        assert st["size"] == half // 2 * PAGE, st
        assert st["encrypted"] == half // 2, st
        out = vm.sh(f"rcfs verify {path} 11", timeout=300)
        assert f"pages={half // 2} zero_pages=0 mismatches=0" in out, out

        # -- faults racing hole punches: a token written through one
        # mapping reads back through another unless a punch came between
        # (no fault maps a frame a punch has orphaned), and the orphans
        # are wiped and freed afterwards. ramcrypt_testfaultdelay.ko
        # (tests/kmod) holds each fault 300 us after ramcrypt's handler
        # returned, before the core maps the frame, so punches meet faults
        # there all the time (without it, 0 in 20 s on the old code)
        rpath = f"{MNT}/race"
        vm.sh(f"rcfs create {rpath} {8 * PAGE}")
        vm.sh("modprobe ramcrypt_testfaultdelay delay_us=300")
        out = vm.sh(f"rcfs punchrace {rpath} 20", timeout=300)
        delayed = vm.sh("cat /sys/module/ramcrypt_testfaultdelay/"
                        "parameters/delayed").strip()
        vm.sh("rmmod ramcrypt_testfaultdelay")
        race = dict(w.split("=") for w in
                    re.search(r"punchrace (.*)", out)[1].split())
        ctx.note(f"20 s of faults (each held 300 us before it is mapped) "
                 f"racing hole punches on 8 pages: {race['punches']} "
                 f"punches, {delayed} faults, {race['checks']} read-backs "
                 f"with no punch between, {race['mismatches']} mismatches")
        assert race["mismatches"] == "0", out
        assert int(race["punches"]) >= 1000 and int(delayed) >= 1000 and \
            int(race["checks"]) >= 1000, (out, delayed)
        vm.sh(f"rm {rpath}; for i in $(seq 100); do "
              f"[ $(cat {SYSFS}/orphan_pages) = 0 ] && break; sleep 0.1; "
              f"done")
        assert sysfs(vm)["orphan_pages"] == 0

        # -- unlink + last unmap frees the region
        out = vm.sh(f"rcfs unlink {MNT}/ul")
        for want in ("after_unlink_mapped: region present",
                     "content: intact", "after_munmap: region gone"):
            assert want in out, f"{want!r} not in: {out}"

        # -- cold-boot canaries in a file: idle 0, sweeping <= window, and
        # once no process holds the file (ciphertext only) 0
        def canaries():
            vm.dump_ram(dump)
            for name, needle in memsearch.key_needles(key).items():
                assert memsearch.find_bytes(dump, needle)[0] == 0, \
                    f"key half {name} in RAM"
            return len(memsearch.find_canaries(dump, set_id, count))

        cpath = f"{MNT}/canary"
        vm.sh(f"rcfs create {cpath} {count * PAGE}")
        start_canary(vm, f"--file {cpath} {set_id} {count}")
        time.sleep(1)
        idle = [canaries() for i in range(3)]
        stop_canary(vm)
        start_canary(vm, f"--file {cpath} --sweep {set_id} {count}")
        time.sleep(1)
        sweep = [canaries() for i in range(3)]
        log = vm.sh("cat /tmp/canary.log")
        stop_canary(vm)
        time.sleep(0.5)
        unheld = canaries()
        ctx.note(f"{count} canary pages in a ramcryptfs file, window "
                 f"{window}: idle {idle}, sweeping {sweep} per dump, no "
                 f"process holding the file {unheld}")
        assert "corrupted" not in log, log
        assert idle == [0] * 3, idle
        assert max(sweep) <= window, sweep
        assert unheld == 0, unheld
        vm.sh(f"rm {cpath}")

        # -- a punched page's tweaks do not come back: its ciphertext of
        # version 1 (written once, evicted) is in a dump; after a punch of
        # the whole file the same pages, written once more, are encrypted
        # above every version they had (2), never as version 1 again
        tpath = f"{MNT}/tweak"
        rid = stats_of(vm.sh(f"rcfs create {tpath} {count * PAGE}"))["id"]
        salt = tweak_salt(vm)
        found = []
        for n in range(2):
            if n:
                vm.sh(f"rcfs punch {tpath} 0 {count * PAGE}")
            start_canary(vm, f"--file {tpath} {set_id + 4} {count}")
            time.sleep(1)   # idle: every page evicted once
            vm.dump_ram(dump)
            stop_canary(vm)
            heads = page_heads(dump)
            found.append([canaries_encrypted(heads, key, salt, rid,
                                             set_id + 4, count, v)
                          for v in (1, 2)])
        ctx.note(f"{count} pages written once, evicted: ciphertext as "
                 f"version 1 / 2 in a dump {found[0][0]} / {found[0][1]}; "
                 f"after a hole punch of all of them and the same writes "
                 f"{found[1][0]} / {found[1][1]}")
        assert found[0] == [count, 0], found
        assert found[1] == [0, count], \
            f"tweaks reused after a hole punch: {found}"
        vm.sh(f"rm {tpath}")

        # Baseline: the dump search sees canaries in anonymous memory
        start_canary(vm, f"{set_id + 2} {count}")
        vm.dump_ram(dump)
        base = len(memsearch.find_canaries(dump, set_id + 2, count))
        stop_canary(vm)
        assert base == count, base

        # -- umount frees what is left; the module is pinned while mounted
        left = sysfs(vm)
        assert left["regions"] == 2, left   # u1000 and f
        rc, out = vm.run("rmmod ramcrypt 2>&1")
        assert rc != 0, out
        vm.sh(f"umount {MNT}")
        s = sysfs(vm)
        for f in ("regions", "plaintext_pages", "encrypted_pages",
                  "memory_pages"):
            assert s[f] == 0, f"after umount, {f}={s[f]}: {s}"
        assert_clean_dmesg(vm)
        vm.sh("rmmod ramcrypt")
        assert not re.search(r"^ramcrypt ", vm.sh("lsmod"), re.M)


def qemu_cmd(mem_mb, backend, append, exit_dev=True, balloon=False):
    dev = "-device isa-debug-exit,iobase=0xf4,iosize=0x04" if exit_dev \
        else ""
    if balloon:
        dev += " -device virtio-balloon-pci,disable-modern=on"
    return (f"{QEMU} -accel kvm -m {mem_mb}M -object memory-backend-file,"
            f"id=ram0,size={mem_mb}M,{backend} -machine pc,memory-backend="
            f"ram0 -smp 1 -nodefaults -display none -vga none -no-reboot "
            f"-monitor none -serial file:/tmp/mb.serial {dev} "
            f"-L /usr/share/qemu -L /usr/share/seabios -kernel {MBGUEST} "
            f"-append '{append}'")


@vm_test(timeout=1200)
def test_ramcryptfs_qemu(ctx):
    """QEMU/KVM (nested) with its RAM on ramcryptfs: a directory as mem-path
    (QEMU makes, sizes and unlinks its own file there) and a named file
    with discard-data=on, whose hole punch at QEMU's exit (MADV_REMOVE)
    frees the region's pages while the file stays; and a guest that gives
    pages back while it runs (a legacy virtio-balloon inflate of the last
    N of its canary pages): QEMU discards each (ram_block_discard_range(),
    fallocate(PUNCH_HOLE) of the file) and the region shrinks by N while
    the guest keeps checking the rest."""
    mem_mb, window = 32, 256
    key = os.urandom(32)
    dump = ctx.workdir / "dump.raw"
    with ctx.boot(mem_mb=768, extra_files=qemu_files()) as vm:
        vm.sh(LOAD_TRESOR)
        load_masked_key(vm, key)
        vm.sh(f"modprobe ramcrypt window_pages={window} "
              f"max_plaintext_age_ms=30000")
        load_kvm(vm)
        vm.sh(f"mkdir -p {MNT} && "
              f"mount -t ramcryptfs -o mode=1770,gid=100 none {MNT}")

        # (1) mem-path a directory on ramcryptfs, the self-checking guest
        seed = int.from_bytes(os.urandom(4), "little")
        cmd = qemu_cmd(mem_mb, f"mem-path={MNT},share=on", f"seed={seed:#x}")
        out = vm.sh(f"""
rm -f /tmp/mb.serial
timeout {slowness.secs(400)} {cmd} > /tmp/qemu.out 2>&1 &
pid=$!; max=0; regions=0
while kill -0 $pid 2>/dev/null; do
    p=$(cat {SYSFS}/plaintext_pages); [ "$p" -gt "$max" ] && max=$p
    r=$(ls {SYSFS}/regions | wc -l); [ "$r" -gt "$regions" ] && regions=$r
    sleep 0.2
done
rc=0; wait $pid || rc=$?
echo "qemu-rc=$rc max-plaintext=$max max-regions=$regions"
echo "files: $(ls -A {MNT} | wc -l)"
cat /tmp/mb.serial /tmp/qemu.out
""", timeout=500)
        s = sysfs(vm)
        m = re.search(r"qemu-rc=(\d+) max-plaintext=(\d+) max-regions=(\d+)",
                      out)
        ok = re.search(r"mbguest: ok start=0x([0-9a-f]+) end=0x([0-9a-f]+) "
                       r"seed=0x[0-9a-f]+ wsum=(0x[0-9a-f]+) "
                       r"rsum1=(0x[0-9a-f]+) rsum2=(0x[0-9a-f]+) "
                       r"mismatches=0", out)
        ctx.note(f"{mem_mb} MiB QEMU/KVM guest, mem-path={MNT} (a "
                 f"directory): {m and m[0]}; faults={s['faults']} "
                 f"ev_window={s['evictions_window']}")
        assert m and ok, out
        assert int(m[1]) == 1 and int(m[3]) == 1, out
        assert int(m[2]) <= window, out
        assert ok[3] == ok[4] == ok[5], out
        assert int(ok[2], 16) - int(ok[1], 16) >= (mem_mb - 8) << 20, out
        assert "files: 0" in out and "ftruncate" not in out, out
        assert s["faults"] >= 3 * ((mem_mb - 8) << 8), s
        assert s["regions"] == 0 and s["memory_pages"] == 0, s

        # (2) a named file, discard-data=on, a guest that runs on: canaries
        # in a dump <= window; SIGTERM, QEMU punches its RAM at exit
        set_id = int.from_bytes(os.urandom(4), "little") | 1
        cmd = qemu_cmd(mem_mb, f"mem-path={MNT}/vm1,share=on,"
                       f"discard-data=on", f"canary={set_id:#x} loop",
                       exit_dev=False)
        vm.sh(f"""
rm -f /tmp/mb.serial
{cmd} > /tmp/qemu.out 2>&1 & echo $! > /tmp/qemu.pid
for i in $(seq 3000); do
    grep -q 'canary pass=2 ok' /tmp/mb.serial 2>/dev/null && break
    kill -0 $(cat /tmp/qemu.pid) || break; sleep 0.2
done
grep 'canary pass=2 ok' /tmp/mb.serial || {{ cat /tmp/mb.serial /tmp/qemu.out; false; }}
""", timeout=700)
        serial = vm.sh("cat /tmp/mb.serial")
        pages = int(re.search(r"canary written set=0x[0-9a-f]+ "
                              r"start=0x[0-9a-f]+ pages=(\d+)", serial)[1])
        vm.dump_ram(dump)
        found = len(memsearch.find_canaries(dump, set_id, pages))
        running = sysfs(vm)
        vm.sh("kill -TERM $(cat /tmp/qemu.pid); "
              "while kill -0 $(cat /tmp/qemu.pid) 2>/dev/null; do "
              "sleep 0.1; done", timeout=120)
        qemu_out = vm.sh("cat /tmp/qemu.out")
        after = sysfs(vm)
        size = vm.sh(f"stat -c %s {MNT}/vm1").strip()
        ctx.note(f"named file {MNT}/vm1, discard-data=on: {found} of "
                 f"{pages} guest canary pages in a RAM dump while it ran "
                 f"(window {window}); encrypted_pages {running['encrypted_pages']}"
                 f" -> {after['encrypted_pages']}, memory_pages "
                 f"{running['memory_pages']} -> {after['memory_pages']} at "
                 f"QEMU's exit; the file stays ({size} bytes)")
        assert found <= window, (found, window)
        assert running["encrypted_pages"] >= pages - window, running
        assert after["regions"] == 1 and size == str(mem_mb << 20), \
            (after, size)
        assert after["encrypted_pages"] == 0, (after, qemu_out)
        assert after["plaintext_pages"] == 0, after
        assert after["memory_pages"] == 0, after
        vm.sh(f"rm {MNT}/vm1")
        assert sysfs(vm)["regions"] == 0

        # (3) discard while QEMU runs: the guest inflates a legacy
        # virtio-balloon by its last `give` canary pages (balloon_wait: 3 s
        # after "canary written", so the figures before are read first).
        # The pages the region holds: encrypted_pages just after a flush
        # (every page is then one ciphertext page, and a read refault keeps
        # it; encrypted + plaintext counts a clean resident page twice)
        give, slack = 3000, 32
        t_start = time.monotonic()
        set_id = int.from_bytes(os.urandom(4), "little") | 1
        cmd = qemu_cmd(mem_mb, f"mem-path={MNT}/vm2,share=on,"
                       f"discard-data=on", f"canary={set_id:#x} loop "
                       f"balloon={give} balloon_wait=3", exit_dev=False,
                       balloon=True)
        region_stats = (f"r=$(ls {SYSFS}/regions | head -1); "
                        f"m=$(cat {SYSFS}/memory_pages); "
                        f"echo 1 > {SYSFS}/flush; "
                        f"echo \"stats: regions=$(ls {SYSFS}/regions | "
                        f"wc -l) encrypted_pages=$(cat {SYSFS}/regions/$r/"
                        f"encrypted_pages) plaintext_pages=$(cat {SYSFS}/"
                        f"regions/$r/plaintext_pages) memory_pages=$m\"")
        out = vm.sh(f"""
rm -f /tmp/mb.serial
{cmd} > /tmp/qemu.out 2>&1 & echo $! > /tmp/qemu.pid
for i in $(seq 1500); do
    grep -q 'canary written' /tmp/mb.serial 2>/dev/null && break
    kill -0 $(cat /tmp/qemu.pid) || break; sleep 0.1
done
{region_stats}
echo "inflated-before: $(grep -c 'balloon' /tmp/mb.serial)"
cat /tmp/mb.serial /tmp/qemu.out
""", timeout=300)
        before = stats_of(out)
        assert "canary written" in out and "inflated-before: 0" in out, out
        out = vm.sh(f"""
for i in $(seq 3000); do
    grep -q 'canary pass=2 \\|FAIL' /tmp/mb.serial && break
    kill -0 $(cat /tmp/qemu.pid) || break; sleep 0.2
done
{region_stats}
cat /tmp/mb.serial /tmp/qemu.out
""", timeout=700)
        after = stats_of(out)
        vm.sh("kill -TERM $(cat /tmp/qemu.pid); "
              "while kill -0 $(cat /tmp/qemu.pid) 2>/dev/null; do "
              "sleep 0.1; done", timeout=120)
        pages = int(re.search(r"canary written set=0x[0-9a-f]+ "
                              r"start=0x[0-9a-f]+ pages=(\d+)", out)[1])
        drop = before["encrypted_pages"] - after["encrypted_pages"]
        mem_drop = before["memory_pages"] - after["memory_pages"]
        ctx.note(f"balloon={give} of {pages} canary pages, {MNT}/vm2 "
                 f"(discard-data=on) while QEMU runs: region pages (after a "
                 f"flush) {before['encrypted_pages']} -> "
                 f"{after['encrypted_pages']} ({-drop:+d}), memory_pages "
                 f"{before['memory_pages']} -> {after['memory_pages']} "
                 f"({-mem_drop:+d}); {time.monotonic() - t_start:.1f} s")
        assert before["regions"] == after["regions"] == 1, (before, after)
        assert give - slack <= drop <= give, (drop, give, out)
        assert give - window - slack <= mem_drop <= give + window, \
            (mem_drop, give, out)
        ok = re.search(r"mbguest: balloon inflated pages=(\d+) .*\n"
                       r"(?:.*\n)*mbguest: canary pass=2 ok pages=(\d+) "
                       r"mismatches=0", out)
        assert ok and int(ok[1]) == give and int(ok[2]) == pages - give, out
        assert "FAIL" not in out, out
        vm.sh(f"rm {MNT}/vm2")
        assert sysfs(vm)["regions"] == 0
        assert_clean_dmesg(vm)
