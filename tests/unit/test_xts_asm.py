"""tresor.ko's AES-XTS assembly, built natively (key from memory instead of
DR0-DR3, otherwise identical code) against OpenSSL: IEEE vectors, 10,000
random split requests, register hygiene; once plain, once under ASan+UBSan."""
import subprocess
from pathlib import Path

from harness.registry import Skip, unit_test

REPO = Path(__file__).resolve().parents[2]
MK = ["make", "-s", "-f", str(REPO / "tests" / "unit" / "Makefile.asm")]


def _cpu_flags():
    for line in open("/proc/cpuinfo"):
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


@unit_test()
def test_xts_asm_vs_openssl():
    if not {"aes", "sse4_1"} <= _cpu_flags():
        raise Skip("this machine's CPU has no AES-NI/SSE4.1")
    r = subprocess.run(MK + ["check", "CASES=10000"], capture_output=True,
                       text=True, timeout=900)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    passes = [ln for ln in out.splitlines() if ln.startswith("PASS ")]
    # aesni at least, twice (plain and sanitizer build)
    assert len(passes) >= 2 and not any(ln.startswith("FAIL") for ln in
                                        out.splitlines()), out[-4000:]
    for ln in passes[:len(passes) // 2]:
        print("    " + ln)
