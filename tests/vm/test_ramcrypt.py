"""ramcrypt.ko: encrypted memory regions with a bounded plaintext window."""
import os
import re
import time

from harness import memsearch
from harness.ramcrypt_guest import (SYSFS, assert_all_freed,
                                    assert_clean_dmesg, start_canary,
                                    stats_of, stop_canary, sysfs)
from harness.ramcrypt_ct import (memory_tweak, page_set, tweak_salt,
                                 xts_page)
from harness.guest import LOAD_TRESOR, load_kvm, load_masked_key
from harness.registry import vm_test

def setup(vm, params="", key=True):
    vm.sh(LOAD_TRESOR)
    if key:
        load_masked_key(vm, os.urandom(32))
    vm.sh(f"modprobe ramcrypt {params}")


@vm_test(timeout=900)
def test_ramcrypt_integrity(ctx):
    disk = ctx.disk("d.img", 16)
    with ctx.boot(disks=[disk]) as vm:
        setup(vm, "window_pages=64")
        t0 = time.monotonic()
        out = vm.sh("rcmem stress 4 100000 64", timeout=700)
        st = stats_of(out)
        ctx.note(f"stress 4 threads x 100000 ops / 64 MiB, window 64: "
                 f"{out.splitlines()[0]}; faults={st['faults']} "
                 f"ev_window={st['ev_window']} ev_age={st['ev_age']} "
                 f"skipped={st['skipped']} plaintext={st['plaintext']} "
                 f"({time.monotonic() - t0:.0f}s)")
        assert "mismatches=0" in out, out
        assert st["ev_window"] > 0 and st["plaintext"] <= 64, st
        # The first region in this VM: its own counters (RAMCRYPT_IOC_STATS,
        # taken before it closed) are all the totals of sysfs had then;
        # the age timer can still evict between that snapshot and the close
        # (seen under load: ev_age=99), so the totals read later may be
        # higher, never lower.
        s = sysfs(vm)
        for mine, total in (("ev_clean", "evictions_clean"),
                            ("ev_ahead", "evictions_ahead"),
                            ("refaults", "refaults")):
            assert st[mine] <= s[total], (mine, st, s)
        assert 0 < st["ev_clean"] < sum(st[f"ev_{c}"] for c in
                                        ("window", "age", "flush")), st

        # The rest with evict-ahead: a worker keeps 8 frames free, its
        # encryptions racing with the faults (and GUP) of the cases below.
        vm.sh("echo 8 > /sys/module/ramcrypt/parameters/evict_ahead_pages")
        out = vm.sh("rcmem stress 4 30000 64", timeout=700)
        st, s = stats_of(out), sysfs(vm)
        ctx.note(f"stress with evict-ahead (8 of 64): {out.splitlines()[0]}"
                 f"; evictions_ahead={s['evictions_ahead']} raced="
                 f"{s['evict_ahead_raced']} plaintext={st['plaintext']}")
        assert "mismatches=0" in out, out
        assert s["evictions_ahead"] > 0 and st["plaintext"] <= 64, (st, s)
        assert st["ev_ahead"] == s["evictions_ahead"], (st, s)
        # Hot pages (256, window 16, reserve 4): accesses to a page while
        # evict-ahead encrypts it (kept resident: "raced").
        out = vm.sh("rcmem stress 2 200000 1 16", timeout=700)
        st, s2 = stats_of(out), sysfs(vm)
        ctx.note(f"hot stress with evict-ahead (4 of 16): "
                 f"{out.splitlines()[0]}; evictions_ahead="
                 f"{s2['evictions_ahead'] - s['evictions_ahead']} raced="
                 f"{s2['evict_ahead_raced'] - s['evict_ahead_raced']} "
                 f"plaintext={st['plaintext']}")
        assert "mismatches=0" in out, out
        assert st["plaintext"] <= 16, st

        for case in ("fork 512", "munmap 512", "mremap 512"):
            out = vm.sh(f"rcmem {case}", timeout=300)
            assert f"{case.split()[0]}: ok" in out, out
        out = vm.sh("rcmem odirect /dev/vda 256", timeout=300)
        st = stats_of(out)
        ctx.note(f"O_DIRECT 1 MiB into/out of a region (window 64): ok, "
                 f"skipped={st['skipped']} overflows={st['overflows']}")
        assert "odirect: ok" in out, out
        # Pages only read since they were decrypted are evicted without
        # encrypting; the checks above read them back after their eviction.
        s = sysfs(vm)
        total = sum(s[f"evictions_{c}"] for c in ("window", "age", "flush"))
        ctx.note(f"evictions without encryption (clean pages): "
                 f"{s['evictions_clean']} of {total}; "
                 f"refaults of resident frames: {s['refaults']}")
        assert s["evictions_clean"] > 0, s
        assert_all_freed(vm)
        assert_clean_dmesg(vm)


@vm_test(timeout=600)
def test_ramcrypt_kvm(ctx):
    with ctx.boot() as vm:
        setup(vm, "window_pages=32 evict_ahead_pages=4")
        load_kvm(vm)
        out = vm.sh("vmm --mem-file /dev/ramcrypt --mem-size 0x1000000 "
                    "pattern", timeout=400)
        s = sysfs(vm)
        ctx.note(f"KVM guest on a 16 MiB region, window 32: "
                 f"faults={s['faults']} ev_window={s['evictions_window']} "
                 f"(clean {s['evictions_clean']}, evict-ahead "
                 f"{s['evictions_ahead']}, raced {s['evict_ahead_raced']}) "
                 f"refaults={s['refaults']} "
                 f"skipped={s['skipped_referenced']}")
        assert "pattern: ok" in out, out
        assert s["evictions_window"] > 0 and s["evictions_ahead"] > 0, s
        assert_all_freed(vm)
        assert_clean_dmesg(vm)


@vm_test(timeout=600)
def test_ramcrypt_ciphertext(ctx):
    """The ciphertext in RAM is AES-128-XTS of each page under the loaded
    key with the documented tweak: low half (version << 32) | page index,
    high half 1 << 63 | region id (the first region of a load is 1, a
    page written once and evicted is version 1), both XORed with the
    load's tweak_salt. A wrong key, a disk-like tweak (upper half zero)
    or the tweak without the salt finds none of it."""
    count, set_id = 64, int.from_bytes(os.urandom(4), "little") | 1
    key = os.urandom(32)
    dump = ctx.workdir / "dump.raw"
    with ctx.boot(mem_mb=256) as vm:
        vm.sh(LOAD_TRESOR)
        load_masked_key(vm, key)
        vm.sh("modprobe ramcrypt window_pages=16 max_plaintext_age_ms=100")
        salt = tweak_salt(vm)
        start_canary(vm, f"--file /dev/ramcrypt {set_id} {count}")
        time.sleep(1)   # idle: every page evicted once (window, then age)
        s = sysfs(vm)
        assert s["plaintext_pages"] == 0 and s["encrypted_pages"] == count, s
        vm.dump_ram(dump)
        stop_canary(vm)

    # Frames and ciphertext pages are whole pages: page-aligned in the dump
    with open(dump, "rb") as f:
        data = f.read()
    heads = {data[o:o + 64] for o in range(0, len(data), 4096)}
    del data

    def found(k, version, s=salt, disk=False):
        n = 0
        for i in range(count):
            low, high = memory_tweak(s, 1, i, version)
            n += xts_page(k, memsearch.canary_page(set_id, i), low,
                           0 if disk else high)[:64] in heads
        return n

    right = found(key, 1)
    wrong_key = found(os.urandom(32), 1)
    disk_tweak = found(key, 1, disk=True)
    other_version = found(key, 2)
    unsalted = found(key, 1, s=(0, 0))
    plain = len(memsearch.find_canaries(dump, set_id, count))
    ctx.note(f"{count} pages written once and evicted: ciphertext under the "
             f"key and salted tweak found for {right}; under another key "
             f"{wrong_key}, with the upper tweak half zero {disk_tweak}, as "
             f"version 2 {other_version}, without the salt {unsalted}; "
             f"plaintext canaries {plain}")
    assert right == count, right
    assert wrong_key == disk_tweak == other_version == unsalted == plain == 0


@vm_test(timeout=900)
def test_ramcrypt_tweak_reload(ctx):
    """Tweaks do not repeat across module loads (issue 21 item 6): the same
    64 canary pages in region 1 of two loads of ramcrypt.ko under the same
    key, each written once and evicted (version 1), dumped once per load.
    Each dump holds all 64 ciphertext pages under its load's salted tweak,
    and no ciphertext page of the first load equals any page of the
    second dump. Without a salt region 1 / page n / version 1 gets the
    same tweak on every load, and the two dumps share every page."""
    count, set_id = 64, int.from_bytes(os.urandom(4), "little") | 1
    key = os.urandom(32)
    dumps = [ctx.workdir / "load1.raw", ctx.workdir / "load2.raw"]
    salts = []
    with ctx.boot(mem_mb=256) as vm:
        vm.sh(LOAD_TRESOR)
        load_masked_key(vm, key)
        for n, dump in enumerate(dumps):
            vm.sh("modprobe ramcrypt window_pages=16 "
                  "max_plaintext_age_ms=100")
            salts.append(tweak_salt(vm))
            start_canary(vm, f"--file /dev/ramcrypt {set_id} {count}")
            time.sleep(1)   # idle: every page evicted once
            s = sysfs(vm)
            assert s["plaintext_pages"] == 0 and \
                s["encrypted_pages"] == count, s
            vm.dump_ram(dump)
            stop_canary(vm)
            assert_all_freed(vm)
            assert_clean_dmesg(vm)
            vm.sh("rmmod ramcrypt")

    pages = [page_set(d) for d in dumps]
    found = []
    for salt, got in zip(salts, pages):
        ct = {xts_page(key, memsearch.canary_page(set_id, i),
                       *memory_tweak(salt, 1, i, 1)) for i in range(count)}
        found.append(ct & got)
    equal = len(found[0] & pages[1])
    ctx.note(f"{count} pages of region 1, version 1, in two loads: "
             f"ciphertext found {len(found[0])} and {len(found[1])} under "
             f"each load's salted tweak; first load's ciphertext pages in "
             f"the second dump: {equal}; salts differ: "
             f"{salts[0] != salts[1]}")
    assert len(found[0]) == len(found[1]) == count, \
        [len(f) for f in found]
    assert equal == 0, f"{equal} equal ciphertext pages across loads"
    assert salts[0] != salts[1]


TESTPIN = "/sys/module/ramcrypt_testpin/parameters"


def orphan_pages(vm):
    rc, out = vm.run(f"cat {SYSFS}/orphan_pages")
    return int(out) if rc == 0 else None


@vm_test(timeout=600)
def test_ramcrypt_pinned_close(ctx):
    """Frames still referenced through get_user_pages() when their region
    closes (O_DIRECT reads in flight, issue 21 item 8) are wiped when the
    last reference goes, not only at the close: with init_on_free=0,
    ramcrypt_testpin.ko (tests/kmod) holds 256 pages of a region across
    the close and writes a canary into them afterwards, as a DMA completing
    late would. The canary is in RAM while the pages are held (the search
    sees it), counted in orphan_pages, and gone from RAM once they are
    dropped. (256 pages, not 1: the allocator hands a page just freed out
    first, so a single one is often reused before the dump.)"""
    seed, pinned = int.from_bytes(os.urandom(8), "little"), 256
    needle = (b"RCPINNED" + seed.to_bytes(8, "little")) * 2
    dumps = [ctx.workdir / "held.raw", ctx.workdir / "dropped.raw"]
    with ctx.boot(mem_mb=256, append="init_on_free=0") as vm:
        setup(vm, "window_pages=256")
        assert "init_on_free=0" in vm.sh("cat /proc/cmdline")
        vm.sh(f"modprobe ramcrypt_testpin pages={pinned}")
        vm.sh(f"echo /dev/ramcrypt > {TESTPIN}/pin")
        s = sysfs(vm)
        assert s["regions"] == 0, s     # closed when the write returned
        vm.sh(f"echo {seed} > {TESTPIN}/fill")
        held = orphan_pages(vm)
        rc_rmmod, out_rmmod = vm.run("rmmod ramcrypt")
        if rc_rmmod == 0:   # asserted below; the rest needs the module
            vm.sh("modprobe ramcrypt")
        vm.dump_ram(dumps[0])
        vm.sh(f"echo 1 > {TESTPIN}/drop")
        time.sleep(1)
        dropped = orphan_pages(vm)
        vm.dump_ram(dumps[1])
        assert_all_freed(vm)
        assert_clean_dmesg(vm)
        rc_rmmod2, out = vm.run("rmmod ramcrypt")
    found = [memsearch.find_bytes(d, needle)[0] for d in dumps]
    ctx.note(f"{pinned} pages of a closed region, held by get_user_pages "
             f"and written after the close, init_on_free=0: canary pages "
             f"in RAM while held {found[0] // 255}, 1 s after the drop "
             f"{found[1] // 255} ({found[1]} matches); "
             f"orphan_pages held {held}, dropped {dropped}; rmmod ramcrypt "
             f"while held: rc={rc_rmmod} {out_rmmod.strip()!r}, after: "
             f"rc={rc_rmmod2}")
    assert found[0] >= pinned * 255, \
        f"the canary written through the pins: {found[0]} matches"
    assert found[1] == 0, f"{found[1]} canary matches after the drop"
    assert held == pinned and dropped == 0, (held, dropped)
    assert rc_rmmod != 0 and rc_rmmod2 == 0, (rc_rmmod, rc_rmmod2)


AGE_SLACK_MS = 50   # scan work, timers and 2 ms polling under TCG


@vm_test(timeout=600)
def test_ramcrypt_age_bound(ctx):
    """The time bound: no page is plaintext longer than max_plaintext_age_ms
    after its last access. 64 pages kept hot for a second or so (every age
    scan unmaps them, every sweep faults them back in), then left alone:
    the time from the last access until the region holds no plaintext
    (resident or stale frames) is at most the bound, and at least half of
    it (an age scan every half bound: a page is evicted at the second scan
    that finds it unused). 6 runs, each hot a third of a scan period
    longer, so that the last access falls at different points between
    two scans."""
    age = 400
    with ctx.boot() as vm:
        setup(vm, f"window_pages=256 max_plaintext_age_ms={age}")
        idle = []
        for hot in range(1000, 1200, 33):
            out = vm.sh(f"rcmem age 64 {hot}", timeout=120)
            idle.append(int(re.search(r"idle_ms=(\d+)", out)[1]))
            st = stats_of(out)
            assert st["plaintext"] == 0 and st["ev_age"] >= 64, out
        ctx.note(f"max_plaintext_age_ms={age}: last access to no plaintext "
                 f"left: {idle} ms (bound {age} + {AGE_SLACK_MS} slack)")
        assert max(idle) <= age + AGE_SLACK_MS, idle
        assert min(idle) >= age // 2 - AGE_SLACK_MS, idle

        # Lowering the bound at runtime takes effect at once, not when the
        # scan timed for the old bound (30 s away) comes.
        param = "/sys/module/ramcrypt/parameters/max_plaintext_age_ms"
        vm.sh(f"echo 60000 > {param}")
        start_canary(vm, "--file /dev/ramcrypt 5 64")
        time.sleep(0.5)
        assert sysfs(vm)["plaintext_pages"] == 64
        out = vm.sh(f"echo {age} > {param}; for i in $(seq 100); do "
                    f"[ $(cat {SYSFS}/plaintext_pages) = 0 ] && "
                    f"echo gone=$i && break; sleep 0.05; done", timeout=60)
        stop_canary(vm)
        ctx.note(f"bound lowered from 60000 to {age} ms with 64 plaintext "
                 f"pages: {out.strip() or 'still there after 100 polls'} "
                 f"(polls 50 ms apart)")
        assert out.startswith("gone="), out
        assert int(out.split("=")[1]) * 50 <= 2 * age, out
        assert_clean_dmesg(vm)
        assert_all_freed(vm)


@vm_test(timeout=900)
def test_ramcrypt_cipher_failure(ctx):
    """The key becomes unusable under a live region: a KVM guest overwrites
    the debug registers of the only CPU, so tresor has no valid key holder
    left. A fault on an encrypted page gets SIGBUS (never garbage, never a
    zero page); a page written meanwhile cannot be encrypted and stays
    resident; every page's ciphertext is still in RAM as it was (AES-XTS
    of its data under the key, version 1): nothing lost, nothing encrypted
    with registers that no longer hold the key, and no key in RAM."""
    count, set_id = 64, int.from_bytes(os.urandom(4), "little") | 1
    key = os.urandom(32)
    dump = ctx.workdir / "dump.raw"
    with ctx.boot(mem_mb=256, smp=1) as vm:
        vm.sh(LOAD_TRESOR)
        load_masked_key(vm, key)
        load_kvm(vm)
        vm.sh("modprobe ramcrypt window_pages=16 max_plaintext_age_ms=100")
        salt = tweak_salt(vm)
        start_canary(vm, f"--file /dev/ramcrypt --fault-on-usr1 {set_id} "
                      f"{count}")
        time.sleep(1)   # idle: every page evicted (encrypted) once
        s = sysfs(vm)
        assert s["plaintext_pages"] == 0 and s["encrypted_pages"] == count, s
        vm.sh("vmm --cpu 0 --seed 0x5000 dr", timeout=300)
        vm.sh("kill -USR1 $(cat /tmp/canary.pid); for i in $(seq 600); do "
              "grep -q 'sigbus\\|verified\\|corrupted' /tmp/canary.log && "
              "break; sleep 0.1; done", timeout=120)
        log = vm.sh("cat /tmp/canary.log")
        time.sleep(0.5)  # age scans try to encrypt the page written last
        s = sysfs(vm)
        tresor = vm.sh("cat /sys/kernel/tresor/check_failures "
                       "/sys/kernel/tresor/valid_holders").split("\n")
        dmesg = vm.sh("dmesg | grep -E 'ramcrypt|tresor' | tail -n 20")
        ctx.note(f"after the guest overwrote CPU 0's registers: canary "
                 f"{' / '.join(log.splitlines())}; tresor check_failures="
                 f"{tresor[0]} valid_holders='{tresor[1].strip()}'; "
                 f"crypto_errors={s['crypto_errors']} plaintext_pages="
                 f"{s['plaintext_pages']} encrypted_pages="
                 f"{s['encrypted_pages']}")
        assert "wrote-extra" in log and "sigbus page=0" in log, log
        assert "verified" not in log and "corrupted" not in log, log
        assert tresor[0] == "1" and not tresor[1].strip(), tresor
        assert "cannot decrypt page 0 (-5)" in dmesg, dmesg
        assert "cannot encrypt" in dmesg, dmesg
        # one failed decrypt, at least one failed encrypt of the new page
        assert s["crypto_errors"] >= 2, s
        assert s["plaintext_pages"] == 1 and s["encrypted_pages"] == count, s
        vm.dump_ram(dump)
        stop_canary(vm)
        s = sysfs(vm)
        assert s["regions"] == 0 and s["plaintext_pages"] == 0 and \
            s["encrypted_pages"] == 0, s

    with open(dump, "rb") as f:
        data = f.read()
    heads = {data[o:o + 64] for o in range(0, len(data), 4096)}
    del data
    intact = sum(xts_page(key, memsearch.canary_page(set_id, i),
                          *memory_tweak(salt, 1, i, 1))[:64] in heads
                 for i in range(count))
    plain = sorted(memsearch.find_canaries(dump, set_id, count + 1))
    res = memsearch.search_key(dump, key)
    ctx.note(f"RAM dump: ciphertext of {intact} of {count} pages intact "
             f"(version 1 under the key); plaintext canaries {plain}; key "
             f"found: {memsearch.key_found(res)}")
    assert intact == count, intact
    assert plain == [count], plain
    assert not memsearch.key_found(res), res


@vm_test(timeout=900, est=250)
def test_ramcrypt_coldboot(ctx):
    count, window = 16384, 256
    key = os.urandom(32)
    set_id = int.from_bytes(os.urandom(4), "little") | 1
    dump = ctx.workdir / "dump.raw"
    with ctx.boot(mem_mb=512) as vm:
        vm.sh(LOAD_TRESOR)
        load_masked_key(vm, key)
        vm.sh(f"modprobe ramcrypt window_pages={window}")

        def take(what, keysearch=False):
            vm.dump_ram(dump)
            found = memsearch.find_canaries(dump, set_id, count)
            if keysearch:
                res = memsearch.search_key(dump, key)
                assert not memsearch.key_found(res), f"{what}: key in RAM"
            else:
                for name, needle in memsearch.key_needles(key).items():
                    assert memsearch.find_bytes(dump, needle)[0] == 0, \
                        f"{what}: key half {name} in RAM"
            return found

        # (a) idle longer than max_plaintext_age_ms
        start_canary(vm, f"--file /dev/ramcrypt {set_id} {count}")
        time.sleep(1)
        idle = [len(take("idle")) for i in range(5)]
        s = sysfs(vm)
        ctx.note(f"(a) idle region, {count} canaries, window {window}: "
                 f"found {idle} per dump; plaintext_pages="
                 f"{s['plaintext_pages']} ev_age={s['evictions_age']}")
        assert idle == [0] * 5, idle
        stop_canary(vm)

        # (b) sweeping continuously
        start_canary(vm, f"--file /dev/ramcrypt --sweep {set_id} {count}")
        time.sleep(1)
        sweep = [len(take("sweep", keysearch=(i == 0))) for i in range(5)]
        out = vm.sh("cat /tmp/canary.log")
        ctx.note(f"(b) sweeping: distinct canary pages per dump {sweep} "
                 f"(window {window}); {out.splitlines()[-1]}")
        assert "corrupted" not in out, out
        assert max(sweep) <= window, sweep
        stop_canary(vm)

        # (a) and (b) again with evict-ahead (a reserve of 64 spare frames,
        # evicted pages left unwiped until reused or the age scan): spare
        # frames count against the window and are wiped in time.
        vm.sh("echo 64 > /sys/module/ramcrypt/parameters/evict_ahead_pages")
        start_canary(vm, f"--file /dev/ramcrypt {set_id} {count}")
        time.sleep(1)
        idle = [len(take("idle, evict-ahead")) for i in range(3)]
        stop_canary(vm)
        start_canary(vm, f"--file /dev/ramcrypt --sweep {set_id} {count}")
        time.sleep(1)
        sweep = [len(take("sweep, evict-ahead")) for i in range(3)]
        out = vm.sh("cat /tmp/canary.log")
        stop_canary(vm)
        s = sysfs(vm)
        ctx.note(f"(a, b) with evict-ahead (64 of {window}): idle {idle}, "
                 f"sweeping {sweep} per dump; evictions_ahead="
                 f"{s['evictions_ahead']}")
        assert "corrupted" not in out, out
        assert idle == [0] * 3, idle
        assert max(sweep) <= window, sweep
        assert s["evictions_ahead"] > 0, s
        vm.sh("echo 0 > /sys/module/ramcrypt/parameters/evict_ahead_pages")

        # (c) after exit
        time.sleep(0.5)
        after = len(take("after exit"))
        ctx.note(f"(c) after exit: {after} canaries")
        assert after == 0
        assert_all_freed(vm)

        # Baseline: the same canaries in ordinary anonymous memory.
        base_id = set_id + 2
        start_canary(vm, f"{base_id} {count}")
        vm.dump_ram(dump)
        base = len(memsearch.find_canaries(dump, base_id, count))
        ctx.note(f"baseline anonymous memory: {base} of {count} found")
        assert base == count, base
        stop_canary(vm)
        assert_clean_dmesg(vm)


CGROUP = "/sys/fs/cgroup"


@vm_test(timeout=600)
def test_ramcrypt_memcg(ctx):
    """A region's frames and ciphertext pages are charged to the memory
    cgroup of the process that maps it, also those evict-ahead's worker
    allocates, and its memory.max holds for them, as for anonymous guest
    RAM."""
    with ctx.boot(mem_mb=512) as vm:
        setup(vm, "window_pages=256 evict_ahead_pages=64")
        vm.sh(f"""
mountpoint -q {CGROUP} || mount -t cgroup2 none {CGROUP}
echo +memory > {CGROUP}/cgroup.subtree_control
mkdir -p {CGROUP}/vm1 {CGROUP}/vm2
echo 16M > {CGROUP}/vm2/memory.max
""")
        # 64 MiB region, window 256: 16,384 ciphertext pages + 256 frames.
        def run_in(cg, cmd):
            return vm.run(f"sh -c 'echo $$ > {CGROUP}/{cg}/cgroup.procs; "
                          f"exec {cmd}'", timeout=300)

        ahead = sysfs(vm)["evictions_ahead"]
        rc, out = run_in("vm1", "rcmem touch 16384 256")
        assert rc == 0 and "touch: ok" in out, (rc, out)
        # The worker stored (and allocated) most new ciphertext pages
        ahead = sysfs(vm)["evictions_ahead"] - ahead
        assert ahead > 8192, ahead
        peak, cur = (int(vm.sh(f"cat {CGROUP}/vm1/memory.{f}"))
                     for f in ("peak", "current"))
        ctx.note(f"64 MiB region in a cgroup: memory.peak {peak >> 20} MiB, "
                 f"memory.current after exit {cur >> 10} KiB ({ahead} pages "
                 f"evicted ahead)")
        assert peak >= (16384 + 256) * 4096, peak
        assert cur < 4 << 20, cur
        # memory.max 16 MiB: the process cannot fill 64 MiB of region.
        rc, out = run_in("vm2", "rcmem touch 16384 256")
        ev = vm.sh(f"cat {CGROUP}/vm2/memory.events")
        peak = int(vm.sh(f"cat {CGROUP}/vm2/memory.peak"))
        ctx.note(f"the same under memory.max=16M: rc={rc} "
                 f"{out.strip()[-80:]!r}; peak {peak >> 10} KiB; "
                 f"{' '.join(ev.split())}")
        assert rc != 0 and "touch: ok" not in out, (rc, out)
        # try_charge lets a task being OOM-killed past memory.max a little
        assert peak <= 17 << 20, peak
        assert int(re.search(r"^oom_kill (\d+)", ev, re.M)[1]) > 0, ev
        assert_all_freed(vm)
        dmesg = vm.sh("dmesg")
        for bad in ("WARNING:", "BUG:", "Oops"):
            assert bad not in dmesg, dmesg[-3000:]


@vm_test(timeout=600)
def test_ramcrypt_bad_input(ctx):
    with ctx.boot() as vm:
        setup(vm, key=False)
        # No key: SIGBUS, never zero pages.
        rc, out = vm.run("rcmem read 4", timeout=60)
        assert rc == 3 and "sigbus page=0" in out, (rc, out)
        assert "no TRESOR key loaded" in vm.sh("dmesg"), vm.sh("dmesg")
        load_masked_key(vm, os.urandom(32))

        out = vm.sh("rcmem bad")
        for want in ("map_private: EINVAL", "mmap_past_set_size: EINVAL",
                     "mmap_past_first_mmap: EINVAL",
                     "set_window_nonroot: EPERM", "bad: ok"):
            assert want in out, out

        # Over the memory cap: SIGBUS and a clear kernel line.
        vm.sh("echo 2 > /sys/module/ramcrypt/parameters/max_memory_mb")
        rc, out = vm.run("rcmem touch 2048 1024", timeout=120)
        dmesg = vm.sh("dmesg | grep 'memory cap reached' | tail -1")
        ctx.note(f"over a 2 MiB cap: rc={rc} {out.strip()}; dmesg: {dmesg}")
        assert rc == 3 and re.search(r"sigbus page=\d+", out), (rc, out)
        assert "memory cap reached" in dmesg
        # At the cap, a fault that needs room evicts a clean frame when no
        # dirty one can be stored, rather than fail on the first victim.
        vm.sh("echo 1 > /sys/module/ramcrypt/parameters/max_memory_mb")
        rc, out = vm.run("rcmem capclean", timeout=120)
        ctx.note(f"at a 1 MiB cap, window 128: rc={rc} "
                 f"{' / '.join(out.strip().splitlines())}")
        assert "page255=written" in out and "verified" in out, (rc, out)
        assert rc == 3 and "sigbus page=0" in out, (rc, out)
        vm.sh("echo 0 > /sys/module/ramcrypt/parameters/max_memory_mb")
        out = vm.sh("rcmem touch 2048 1024", timeout=120)
        assert "touch: ok" in out, out

        # The key cannot be cleared (or replaced) while a region exists.
        out = vm.sh("exec 3</dev/ramcrypt; rcprobe clear-key; exec 3<&-; "
                    "rcprobe clear-key")
        assert out.split("\n") == ["errno=EBUSY", "ok"], \
            f"CLEAR_KEY with an open region, then without: {out}"

        # Everything freed once all regions are closed.
        assert_all_freed(vm)
        s = sysfs(vm)
        ctx.note(f"sysfs after close: {s}")
        assert_clean_dmesg(vm)
