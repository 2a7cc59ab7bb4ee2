"""tresor.ko core: the key in DR0-DR3 and xts(tresor) (issue: tresor core)."""
import os

from harness.registry import vm_test

from harness.guest import (LOAD_TRESOR as LOAD, load_masked_key,  # noqa: F401
                           load_showregs_livepatch)


@vm_test()
def test_tresor_known_answers(ctx):
    with ctx.boot() as vm:
        vm.sh(LOAD)
        load_showregs_livepatch(vm)  # xtstest loads keys
        impl = vm.sh("cat /sys/kernel/tresor/implementation")
        out = vm.sh("xtstest kat", timeout=120)
        ctx.note(f"implementation {impl}; " + "; ".join(
            ln for ln in out.splitlines() if ln.startswith("vector 4")))
        assert out.count(": 32 bytes encrypt+decrypt ok") + \
            out.count(": 512 bytes encrypt+decrypt ok") == 8, out


@vm_test(timeout=1200)
def test_tresor_random_vs_xts_aes(ctx):
    seed = int.from_bytes(os.urandom(4), "little")
    with ctx.boot() as vm:
        vm.sh(LOAD)
        load_showregs_livepatch(vm)
        out = vm.sh(f"xtstest random 10000 {seed}", timeout=1100)
        ctx.note(out.splitlines()[-1] + f" (seed {seed})")
        assert "random: 10000 requests" in out and \
            "0 mismatches" in out, out


@vm_test()
def test_tresor_bad_input(ctx):
    with ctx.boot() as vm:
        vm.sh(LOAD)
        load_showregs_livepatch(vm)
        rc, out = vm.run("xtstest bad", timeout=120)
        assert rc == 0, out
        assert "FAIL" not in out, out


@vm_test()
def test_tresor_refuses_suspend_with_key(ctx):
    with ctx.boot() as vm:
        vm.sh(LOAD)
        states = vm.sh("cat /sys/power/state").split()
        assert "mem" in states and "disk" in states, states
        load_masked_key(vm, os.urandom(32))
        for state in ("mem", "disk"):
            rc, out = vm.run(f"echo {state} > /sys/power/state")
            assert rc != 0 and "Device or resource busy" in out, \
                f"suspend to {state} with a key loaded: {out}"
        assert "refusing suspend/hibernation" in vm.sh("dmesg")
        assert vm.sh("rcprobe clear-key") == "ok"
        # Without a key tresor no longer objects: hibernation now fails
        # for its own reason (this guest has no swap), not with EBUSY.
        rc, out = vm.run("echo disk > /sys/power/state")
        assert "Device or resource busy" not in out, out
