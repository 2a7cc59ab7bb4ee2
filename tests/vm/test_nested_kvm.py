"""KVM inside the test guest, and the minimal VMM that later tests drive."""
from harness.registry import vm_test

from harness.guest import load_kvm


@vm_test()
def test_nested_kvm_vmm(ctx):
    with ctx.boot() as vm:
        load_kvm(vm)
        out = vm.sh("vmm --mem-size 0x1000000 pattern", timeout=300)
        assert "pattern: ok" in out, out
        # Guest memory from a shared file mapping, as ramcrypt regions are.
        out = vm.sh("truncate -s 8M /dev/shm/guest-ram && "
                    "vmm --mem-file /dev/shm/guest-ram --mem-size 0x800000 "
                    "--seed 0x1234 pattern && "
                    "od -A d -t x8 -j 65536 -N 8 /dev/shm/guest-ram",
                    timeout=300)
        assert "pattern: ok" in out, out
        # The VMM's own check: the first data word as the host sees it.
        want = (0x10000 * 0x9E3779B97F4A7C15 ^ 0x1234) & (2**64 - 1)
        assert f"{want:016x}" in out, f"guest RAM file lacks the pattern: {out}"
        out = vm.sh("vmm --cpu 1 --seed 0x4000 dr", timeout=300)
        assert "dr-after 0000000000004000 0000000000004001 " \
               "0000000000004002 0000000000004003" in out, out
