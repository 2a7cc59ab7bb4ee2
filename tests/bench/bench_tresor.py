"""xts(tresor) speed, as ratios against a baseline measured in the same run."""
import re
import subprocess
from pathlib import Path

from harness.guest import LOAD_TRESOR
from harness.registry import bench

REPO = Path(__file__).resolve().parents[2]


@bench(native=True)
def bench_tresor_asm_vs_openssl():
    """The module's assembly, built natively (key from memory instead of
    DR0-DR3, otherwise identical), vs the kernel's own AES-XTS assembly
    (arch/x86/crypto/aes-xts-avx-x86_64.S of linux-source-6.12, unpacked at
    build time; the anchor) and OpenSSL EVP_aes_128_xts: 16 B, 512 B and
    4 KiB units, ratios measured in the same process. xts_bench exits
    non-zero if any tresor or kernel path differs from OpenSSL; a CPU
    without VAES/AVX-512 or a missing tarball only drops those rows."""
    subprocess.run(["make", "-s", "-f", str(REPO / "tests/unit/Makefile.asm"),
                    str(REPO / "tests/bench/bin/xts_bench")], check=True)
    r = subprocess.run([str(REPO / "tests/bench/bin/xts_bench")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "output check:" in r.stdout, r.stdout + r.stderr
    print("    " + r.stdout.rstrip().replace("\n", "\n    "))


@bench()
def bench_tresor_in_guest(ctx):
    """In the QEMU guest (TCG: emulated AES, so only the ratio means
    anything): 4 KiB AF_ALG requests, each xts(tresor) driver vs xts(aes)."""
    with ctx.boot() as vm:
        vm.sh(LOAD_TRESOR)
        out = vm.sh("xtstest bench 3", timeout=120)
        for ln in out.splitlines():
            ctx.note(ln)
        assert re.search(r"xts-tresor-aesni 4KiB: .* ratio", out), out


@bench()
def bench_tresor_forwarded_vs_local(ctx):
    """Holders = {CPU 0}: 4 KiB requests issued on CPU 0 run locally, those
    issued on CPU 1 are queued to CPU 0's worker (async completion)."""
    import os
    from harness.guest import load_masked_key
    with ctx.boot() as vm:
        vm.sh(LOAD_TRESOR)
        load_masked_key(vm, os.urandom(32))
        assert vm.sh("rcprobe set-holders 0") == "ok"
        rates = {}
        for _ in range(2):  # interleaved rounds, best of each
            for cpu in (0, 1):
                out = vm.sh(f"taskset -c {cpu} xtstest rate 2", timeout=60)
                r = float(out.split()[1])
                rates[cpu] = max(rates.get(cpu, 0), r)
        fw = int(vm.sh("cat /sys/kernel/tresor/forwarded_requests"))
        ctx.note(f"local (CPU 0) {rates[0]:.1f} MB/s, forwarded (CPU 1 -> 0) "
                 f"{rates[1]:.1f} MB/s: a forwarded 4 KiB request costs "
                 f"{rates[0] / rates[1]:.2f}x a local one "
                 f"({fw} requests forwarded)")
        assert fw > 0, "nothing was forwarded"
