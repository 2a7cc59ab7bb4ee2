"""Register dumps on a key holder do not print the key (DESIGN.md §3.1,
debug-register ownership): the livepatch tresor_showregs.ko replaces
__show_regs(), which prints DR0-DR3. tresor_testoops.ko (tests/kmod, test
only) raises a WARN or an oops on demand."""
import os
import re

from harness import memsearch
from harness.guest import LOAD_TRESOR, load_masked_key, load_showregs_livepatch
from harness.registry import vm_test

TRIGGER = "/sys/module/tresor_testoops/parameters"
# The lines of an x86_64 __show_regs(SHOW_REGS_ALL) dump, DR lines aside.
DUMP_LINES = ["RIP: ", "Code: ", "RSP: ", "RAX: ", "RDX: ", "RBP: ", "R10: ",
              "R13: ", "FS: ", "CS: ", "CR2: "]


def key_texts(key):
    """Every text form of key material a register dump could print."""
    texts = set()
    for w in memsearch.key_words(key):
        texts |= {f"{w:016x}", f"{w:x}",
                  w.to_bytes(8, "little").hex()}
    for half in (key[:16], key[16:]):
        texts |= {half.hex(), half[::-1].hex()}
    return texts


def online_cpus(vm):
    """CPU numbers of the guest, after checking that all hold the key."""
    online = vm.sh("cat /sys/devices/system/cpu/online")
    holders = vm.sh("cat /sys/kernel/tresor/valid_holders")
    assert holders == online, \
        f"key holders {holders!r} are not all online CPUs {online!r}"
    cpus = []
    for part in online.split(","):
        lo, _, hi = part.partition("-")
        cpus += range(int(lo), int(hi or lo) + 1)
    return cpus


def warn_on_each(vm, cpus):
    """A WARN (full register dump) in a task pinned to each CPU."""
    for c in cpus:
        vm.sh(f"taskset -c {c} sh -c 'echo 1 > {TRIGGER}/warn'")
    return vm.sh("dmesg")


def dumps(log):
    """Each kernel-mode register dump in a dmesg text: a list of its lines
    (timestamps stripped), from its kernel RIP line on. (The short dumps
    of user registers at the end of a call trace have RIP: 0033:.)"""
    out = []
    for ln in log.splitlines():
        ln = re.sub(r"^\[[ 0-9.]+\] ", "", ln)
        if ln.startswith("RIP: 0010:"):
            out.append([])
        if out:
            out[-1].append(ln)
    return out


@vm_test()
def test_tresor_oops_no_key(ctx):
    key = os.urandom(32)
    words = memsearch.key_words(key)
    secrets = sorted(key_texts(key)) + [key.hex()]

    # 1. Baseline, livepatch not loaded: the stock __show_regs prints the
    # key. This proves the checks below would see a leak. (tresor.ko
    # refuses the key without the livepatch unless allow_no_showregs=1.)
    with ctx.boot(name="stock") as vm:
        vm.secrets += secrets
        vm.sh(LOAD_TRESOR.replace("modprobe tresor ",
                                  "modprobe tresor allow_no_showregs=1 ", 1)
              + " && modprobe tresor_testoops")
        load_masked_key(vm, key, livepatch=False)
        assert "loading the key anyway (allow_no_showregs=1)" in \
            vm.sh("dmesg"), "no warning about the missing livepatch"
        cpus = online_cpus(vm)
        log = warn_on_each(vm, cpus)
        assert log.count("tresor_testoops: WARN on CPU") == len(cpus), \
            vm.redact(log[-3000:])
        seen = re.findall(r"DR0: ([0-9a-f]{16}) DR1: ([0-9a-f]{16}) "
                          r"DR2: ([0-9a-f]{16})\n(?:\[[ 0-9.]+\] )?"
                          r"DR3: ([0-9a-f]{16})", log)
        assert len(seen) == len(cpus) and \
            all([int(x, 16) for x in s] == words for s in seen), \
            "stock kernel: the WARN dumps do not show the key in DR0-DR3 " \
            f"({len(seen)} DR dumps for {len(cpus)} CPUs)"
        ctx.note(f"stock: {len(seen)} WARN dumps print DR0-DR3 = the key")

    # 2. With the livepatch: the rest of the dump, no key in any form.
    with ctx.boot(name="patched") as vm:
        vm.secrets += secrets
        load_showregs_livepatch(vm)
        vm.sh(LOAD_TRESOR + " && modprobe tresor_testoops")
        load_masked_key(vm, key)
        cpus = online_cpus(vm)
        warn_on_each(vm, cpus)
        # and an oops, in a kernel thread on the last CPU
        vm.sh(f"echo {cpus[-1]} > {TRIGGER}/oops; sleep 2")
        log = vm.sh("dmesg")
        assert "enabling patch 'tresor_showregs'" in log, \
            vm.redact(log[:3000])
        assert log.count("tresor_testoops: WARN on CPU") == len(cpus)
        assert "BUG: kernel NULL pointer dereference" in log, \
            vm.redact(log[-3000:])
        ds = dumps(log)
        # an oops dumps the registers twice (the second time in the
        # "executive summary" after the trace)
        warns = [d for d in ds if d[0].startswith("RIP: 0010:warn_set")]
        oopses = [d for d in ds if d[0].startswith("RIP: 0010:oops_thread")]
        assert len(warns) == len(cpus) and oopses, \
            f"{len(warns)} WARN dumps for {len(cpus)} CPUs, " \
            f"{len(oopses)} oops dumps"
        for d in ds:
            text = "\n".join(d)
            for want in DUMP_LINES:
                assert any(ln.startswith(want) for ln in d), \
                    f"no {want!r} line in a register dump:\n" \
                    + vm.redact(text)
            assert any(ln.startswith("DR0-DR3: hidden (tresor) DR6: ")
                       for ln in d), vm.redact(text)
        assert not re.search(r"DR[0-3]: [0-9a-f]", log), \
            "a dump prints DR0-DR3 values"
        low = log.lower()
        leaked = [t for t in key_texts(key) if t in low]
        assert not leaked, f"key material in dmesg ({len(leaked)} forms)"
        # 3. No key in RAM after the dumps either.
        dump = vm.dump_ram(ctx.workdir / "after-oops.raw")
        res = memsearch.search_key(dump, key)
        assert not memsearch.key_found(res), \
            f"the key is in RAM after the register dumps: {res}"
        dump.unlink()
        ctx.note(f"patched: {len(cpus)} WARN dumps + 1 oops dump with all "
                 f"registers but DR0-DR3; no key in dmesg or RAM")
