"""tresor.ko hardening: KVM guests vs key holders, forwarding, breakpoint
slots, CPU hotplug (issue: tresor hardening). Every scenario ends with a RAM
dump that must hold no key."""
import os
import time

from harness import memsearch
from harness.dmcrypt import open_tresor, xts_decrypt_image
from harness.guest import (LOAD_TRESOR, load_kvm, load_masked_key,
                           masked_key_args)
from harness.registry import vm_test

def status(vm):
    out = vm.sh("cd /sys/kernel/tresor && for f in *; do "
                "echo \"$f=$(cat $f)\"; done")
    return dict(ln.split("=", 1) for ln in out.split("\n"))


def cpulist(text):
    """The CPUs of a cpulist ("0-2,5")."""
    cpus = set()
    for part in filter(None, text.strip().split(",")):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def check_on_cpu(vm, key, cpu, n=100):
    """n random requests issued on `cpu`, compared with xts(aes)."""
    seed = int.from_bytes(os.urandom(4), "little")
    rc, out = vm.run(f"taskset -c {cpu} xtstest check {n} {seed} "
                     f"{masked_key_args(key)}", timeout=300)
    assert rc == 0 and f"check: {n} requests, 0 mismatches" in out, \
        f"requests on CPU {cpu}: {out}"


def dmcrypt_round_trip(vm, write_cpu, read_cpu, offset_blocks):
    """Write 1 MiB through xts(tresor) on one CPU (dm-crypt without
    workqueues encrypts in the writer's context), read it on another."""
    vm.sh(f"""
taskset -c {write_cpu} dd if=/test/data of=/dev/mapper/t bs=4096 \
  seek={offset_blocks} oflag=direct 2>/dev/null
echo 3 > /proc/sys/vm/drop_caches
taskset -c {read_cpu} dd if=/dev/mapper/t of=/tmp/back bs=4096 \
  skip={offset_blocks} count=256 iflag=direct 2>/dev/null
cmp /test/data /tmp/back
""", timeout=300)


def assert_no_key_in_ram(ctx, vm, key, label):
    dump = vm.dump_ram(ctx.workdir / f"{label}.raw")
    res = memsearch.search_key(dump, key)
    dump.unlink()
    assert not memsearch.key_found(res), f"{label}: key in RAM: {res}"
    ctx.note(f"{label}: RAM dump holds no key (aeskeyfind and raw search)")


def _kvm_scenario(ctx, holders_first):
    key = os.urandom(32)
    data = os.urandom(1 << 20)
    disk = ctx.disk("d.img", 16)
    with ctx.boot(disks=[disk], extra_files={"test/data": data}) as vm:
        vm.sh(LOAD_TRESOR)
        load_masked_key(vm, key)
        open_tresor(vm, "/dev/vda", "t", ss=4096, perf=True)
        load_kvm(vm)
        if holders_first:
            assert vm.sh("rcprobe set-holders 0") == "ok"
            st = status(vm)
            assert st["valid_holders"] == "0", st
        out = vm.sh("vmm --cpu 1 --seed 0x5000 dr", timeout=300)
        before = next(ln for ln in out.splitlines()
                      if ln.startswith("dr-before"))
        for w in memsearch.key_words(key):
            assert f"{w:016x}" not in out, "the KVM guest saw host key bytes"
        assert before == "dr-before " + " ".join(["0" * 16] * 4), before
        check_on_cpu(vm, key, 1)
        check_on_cpu(vm, key, 0)
        dmcrypt_round_trip(vm, 1, 0, 0)
        dmcrypt_round_trip(vm, 0, 1, 256)
        st = status(vm)
        ctx.note(f"after the guest: valid_holders={st['valid_holders']} "
                 f"check_failures={st['check_failures']} "
                 f"forwarded={st['forwarded_requests']}")
        assert st["valid_holders"] == "0", st
        assert int(st["forwarded_requests"]) > 0, st
        if holders_first:
            assert st["check_failures"] == "0", st
        else:
            assert st["check_failures"] == "1", st
        assert_no_key_in_ram(ctx, vm, key, "after-kvm")
        vm.sh("DM_DISABLE_UDEV=1 cryptsetup close t")
        vm.poweroff()
    # Everything on disk was encrypted with the real key (OpenSSL).
    plain = xts_decrypt_image(disk, key, 4096)
    for off in (0, 1 << 20):
        assert plain[off:off + (1 << 20)] == data, \
            f"disk at {off} not AES-XTS of the data"


@vm_test(timeout=900)
def test_tresor_kvm_guest_clobbers_holder(ctx):
    """Every CPU a holder: the guest's DR writes invalidate CPU 1, which is
    detected once, and its requests are forwarded, correct."""
    _kvm_scenario(ctx, holders_first=False)


@vm_test(timeout=900)
def test_tresor_holders_exclude_vcpu_cpu(ctx):
    """Holders = {0} before the guest runs on CPU 1: no check failure, CPU 1
    requests forwarded, correct."""
    _kvm_scenario(ctx, holders_first=True)


@vm_test(timeout=900)
def test_tresor_forward_retry_other_holder(ctx):
    """Three CPUs, holders {1, 2}. A KVM guest on CPU 2 overwrites its key
    while CPU 2 still counts as valid. Requests issued on CPU 0 are
    forwarded; those sent to CPU 2 fail its check there and must be retried
    on CPU 1, not on CPU 2 again: all succeed, one check failure.
    Then, in the same boot, requests whose holder fails in the middle
    (check_resume)."""
    key = os.urandom(32)
    with ctx.boot(smp=3) as vm:
        vm.sh(LOAD_TRESOR)
        load_masked_key(vm, key)
        load_kvm(vm)
        assert vm.sh("rcprobe set-holders 1,2") == "ok"
        vm.sh("vmm --cpu 2 --seed 0x7000 dr", timeout=300)
        assert status(vm)["check_failures"] == "0", \
            "CPU 2 was checked before the forwarded requests"
        check_on_cpu(vm, key, 0, 60)
        st = status(vm)
        ctx.note(f"valid_holders={st['valid_holders']} check_failures="
                 f"{st['check_failures']} forwarded="
                 f"{st['forwarded_requests']}")
        assert st["valid_holders"] == "1" and st["check_failures"] == "1", st
        check_resume(ctx, vm, key)


RESUME = "/sys/module/tresor_testresume/parameters"
# tests/kmod/tresor_testresume.c: its request's scatterlist entries
RESUME_SEG_LEN = (4096, 1024, 2048, 4096, 3072)
# (issuing CPU, op, inplace (dst = src) or copy (dst on other pages), the
# chunk calls that fail their check (1-based, over the whole request),
# key holders), on 3 CPUs
RESUME_CASES = (
    # the issuing holder fails at its 3rd chunk: queued to another holder
    # (tresor_xts_work), which resumes at that chunk
    (0, "enc", "inplace", (3,), "0,1,2"),
    (1, "dec", "copy", (3,), "0,1,2"),
    # that holder fails too, at its 2nd chunk: tresor_forward() hands the
    # request to the third (tresor_xts_here_cb), rctx->done accumulates
    (0, "enc", "copy", (2, 4), "0,1,2"),
    (2, "dec", "inplace", (2, 4), "0,1,2"),
    # CPU 0 is no holder: queued at once, the holder fails at its 2nd
    # chunk, forwarded to the other one
    (0, "enc", "inplace", (2,), "1,2"),
    (0, "dec", "copy", (2,), "1,2"),
)


def _resume_trace(text):
    calls = []
    for ln in text.splitlines():
        n, *kv = ln.split()
        calls.append(dict(kw.split("=") for kw in kv))
        assert int(n) == len(calls), text
    return calls


def check_resume(ctx, vm, key):
    """Issue 21 item 5: a holder's check fails in the middle of a request
    of several chunks (five scatterlist entries, each on its own page),
    after it did some (tresor_testresume.ko: a kprobe on the xts assembly
    entry overwrites DR0 of the CPU at the chosen chunk calls). The request
    must continue on another valid holder at the failed chunk, with the
    running tweak (rctx->done / rctx->tweak), not start over: the output
    must be xts(aes)'s (in place, starting over encrypts the done chunks
    twice), the chunk calls must cover each entry once plus the failed
    ones again, and the inverse request must give the input back."""
    log_start = int(vm.sh("dmesg | wc -l"))
    vm.sh(f"modprobe tresor_testresume && "
          f"echo {masked_key_args(key)} > {RESUME}/key")
    impl = vm.sh("cat /sys/kernel/tresor/implementation")
    t0, done = time.monotonic(), []
    for cpu, op, mode, fails, holders in RESUME_CASES:
        assert vm.sh(f"rcprobe set-holders {holders}") == "ok"
        before = status(vm)
        assert cpulist(before["valid_holders"]) == cpulist(holders), before
        label = f"CPU {cpu} {op} {mode} fail at call {fails}"
        vm.sh(f"echo '{cpu} {op} {mode} "
              f"{','.join(map(str, fails))}' > {RESUME}/run", timeout=120)
        res = vm.sh(f"cat {RESUME}/result")
        calls = _resume_trace(vm.sh(f"cat {RESUME}/trace"))
        st = status(vm)
        # chunk calls: entry by entry, a failed one again on another CPU
        want, seg = [], 0
        while seg < len(RESUME_SEG_LEN):
            want.append(seg)
            if len(want) not in fails:
                seg += 1
        assert res == f"err=0 match=1 roundtrip=1 calls={len(want)}", \
            (label, res, calls)
        assert [int(c["seg"]) for c in calls] == want, (label, calls)
        lost = set()
        for n, c in enumerate(calls, 1):
            assert c["op"] == op and c["impl"] == impl, (label, c)
            assert c["off"] == "0" and \
                int(c["len"]) == RESUME_SEG_LEN[int(c["seg"])], (label, c)
            # only the request's first call encrypts the IV (first != 0)
            assert c["first"] == ("1" if n == 1 else "0"), (label, calls)
            assert c["clobbered"] == ("1" if n in fails else "0"), \
                (label, calls)
            if n > 1:
                prev = calls[n - 2]
                # one FPU section per holder: a CPU change only after a
                # failed check, and never back to a CPU that failed
                assert (c["cpu"] != prev["cpu"]) == (n - 1 in fails), \
                    (label, calls)
            assert c["cpu"] not in lost, (label, calls)
            if n in fails:
                lost.add(c["cpu"])
            assert int(c["cpu"]) in cpulist(holders), (label, calls)
        if cpu in cpulist(holders):
            assert calls[0]["cpu"] == str(cpu), (label, calls)
        last = int(calls[-1]["cpu"])
        assert int(st["check_failures"]) == \
            int(before["check_failures"]) + len(fails), (label, st)
        assert cpulist(st["valid_holders"]) == \
            cpulist(holders) - {int(c) for c in lost}, (label, st)
        assert int(st["forwarded_requests"]) > \
            int(before["forwarded_requests"]), (label, st)
        # completed requests, counted where they completed: this one and
        # its inverse, not the holders' partial runs
        per_cpu = [[int(x) for x in d["requests_per_cpu"].split()]
                   for d in (st, before)]
        assert per_cpu[0][last] > per_cpu[1][last], (label, st)
        assert sum(per_cpu[0]) == sum(per_cpu[1]) + 2, (label, st, before)
        done.append(f"{op} {mode} on {cpu}: "
                    + " ".join(f"{c['cpu']}:{c['seg']}"
                               + ("x" if c["clobbered"] == "1" else "")
                               for c in calls))
    ctx.note(f"resume ({impl}, {time.monotonic() - t0:.1f}s), cpu:entry "
             f"per chunk call, x = check failed: " + "; ".join(done))
    assert vm.sh("rcprobe set-holders 0,1,2") == "ok"
    vm.sh("rmmod tresor_testresume")
    log = vm.sh(f"dmesg | tail -n +{log_start + 1}")
    bad = [ln for ln in log.splitlines() if any(
        w in ln for w in ("WARNING:", "BUG:", "Oops", "Call Trace"))]
    assert not bad, log


@vm_test(timeout=900)
def test_tresor_forward_walks_whole_mask(ctx):
    """Eight CPUs, all holders (issue 21 item 7). Each round loads the key
    again, overwrites DR0 on CPUs 0-6 (tresor_testdr.ko, as a KVM guest
    would), which still count as valid, and issues one request on CPU 0:
    CPU 0 fails its check, the request is forwarded and must walk the
    holder mask until it reaches CPU 7, however many invalid holders come
    first. It never fails. (A fixed 4 retries gave up, EIO, whenever the
    walk started at CPU 0, 1 or 2: about 3 rounds in 8.)"""
    rounds = 12
    key = os.urandom(32)
    with ctx.boot(smp=8) as vm:
        vm.sh(LOAD_TRESOR)
        vm.sh("modprobe tresor_testdr")
        fails = []
        failures = int(status(vm)["check_failures"])
        for r in range(rounds):
            if r:
                assert vm.sh("rcprobe clear-key") == "ok"
            load_masked_key(vm, key)
            assert status(vm)["valid_holders"] == "0-7", status(vm)
            vm.sh("echo 0-6 > /sys/module/tresor_testdr/parameters/clobber")
            seed = int.from_bytes(os.urandom(4), "little")
            rc, out = vm.run(f"taskset -c 0 xtstest check 1 {seed} "
                             f"{masked_key_args(key)}", timeout=120)
            st = status(vm)
            if rc != 0 or "check: 1 requests, 0 mismatches" not in out:
                fails.append(f"round {r}: rc={rc} {out.strip()!r}; dmesg: "
                             + vm.sh("dmesg | grep -i tresor | tail -12"))
            assert 7 in cpulist(st["valid_holders"]), st
        failures = int(st["check_failures"]) - failures
        ctx.note(f"{rounds} rounds, CPUs 0-6 invalid, CPU 7 valid, one "
                 f"request on CPU 0 each: {rounds - len(fails)} succeeded; "
                 f"invalid holders detected on the way: {failures}"
                 + (f"; failed: {fails}" if fails else ""))
        assert not fails, fails
        assert failures >= rounds, failures


@vm_test()
def test_tresor_breakpoint_slots_refused(ctx):
    key = os.urandom(32)
    with ctx.boot() as vm:
        base = vm.sh("dbgprobe")
        assert base == "poke-dr0=ok poke-dr7=ok perf-bp=ok", \
            f"baseline: the probe cannot set breakpoints at all: {base}"
        vm.sh(LOAD_TRESOR)
        load_masked_key(vm, key)
        out = vm.sh("dbgprobe")
        ctx.note(f"with tresor.ko: {out}")
        assert "=ok" not in out, f"a debug register was programmable: {out}"
        for cpu in (0, 1):
            check_on_cpu(vm, key, cpu, 50)
        st = status(vm)
        assert st["check_failures"] == "0" and \
            st["valid_holders"] == "0-1", st


@vm_test(timeout=900)
def test_tresor_cpu_hotplug(ctx):
    key = os.urandom(32)
    with ctx.boot() as vm:
        vm.sh(LOAD_TRESOR)
        load_masked_key(vm, key)
        cycle = "echo 0 > /sys/devices/system/cpu/cpu1/online; " \
                "echo 1 > /sys/devices/system/cpu/cpu1/online"
        # policy: keyless (default) -> CPU 1 forwards
        vm.sh(cycle)
        st = status(vm)
        assert st["valid_holders"] == "0" and st["peer_copies"] == "0", st
        fw = int(st["forwarded_requests"])
        check_on_cpu(vm, key, 1, 50)
        assert int(status(vm)["forwarded_requests"]) > fw
        assert "=ok" not in vm.sh("dbgprobe"), "slots lost over hotplug"
        # policy: peer copy -> CPU 1 holds the key again
        vm.sh("echo 1 > /sys/module/tresor/parameters/hotplug_peer_copy; "
              + cycle)
        st = status(vm)
        ctx.note(f"peer-copy policy: valid_holders={st['valid_holders']} "
                 f"peer_copies={st['peer_copies']}")
        assert st["valid_holders"] == "0-1" and st["peer_copies"] == "1", st
        fw = int(st["forwarded_requests"])
        check_on_cpu(vm, key, 1, 50)
        st = status(vm)
        assert int(st["forwarded_requests"]) == fw, st
        assert st["check_failures"] == "0", st
        assert_no_key_in_ram(ctx, vm, key, "after-peer-copy")
