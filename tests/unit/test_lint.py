"""Kernel code is checkpatch-clean; the Python bench is pyflakes-clean."""
import os
import subprocess
from pathlib import Path

from harness import kernels
from harness.registry import Skip, unit_test

REPO = Path(__file__).resolve().parents[2]

# Out-of-tree code for 6.1 and 6.12 needs version guards.
IGNORE = "LINUX_VERSION_CODE,CONSTANT_COMPARISON"
# tresor_asm.h holds GNU assembler macros, which checkpatch reads as C.
IGNORE_ASM_MACROS = IGNORE + ",SPACING,COMPLEX_MACRO"


def checkpatch():
    """checkpatch.pl from RAMCRYPT_CHECKPATCH, the test cache (where
    .ci/run extracts it from linux-source-6.1) or an unpacked source."""
    for p in (os.environ.get("RAMCRYPT_CHECKPATCH"),
              kernels.cache_dir() / "checkpatch" / "scripts" / "checkpatch.pl",
              Path("/usr/src/ksrc/linux-source-6.1/scripts/checkpatch.pl")):
        if p and Path(p).exists():
            return Path(p)
    raise Skip("no checkpatch.pl (.ci/run extracts it from linux-source-6.1)")


@unit_test()
def test_kernel_code_checkpatch_clean():
    cp = checkpatch()
    files = sorted((REPO / "module").glob("*.[ch]")) + \
        sorted((REPO / "module" / "include" / "uapi").glob("*.h")) + \
        sorted((REPO / "tests" / "kmod").glob("*.c"))
    bad = []
    for f in files:
        ignore = IGNORE_ASM_MACROS if f.name == "tresor_asm.h" else IGNORE
        r = subprocess.run(["perl", str(cp), "--no-tree", "--terse", "-q",
                            "--ignore", ignore, "-f", str(f)],
                           capture_output=True, text=True)
        out = "\n".join(ln for ln in r.stdout.splitlines()
                        if not ln.startswith("total:"))
        if r.returncode != 0 or out.strip():
            bad.append(out or r.stderr)
    assert not bad, "\n".join(bad)
    print(f"    checkpatch: {len(files)} files clean")


@unit_test()
def test_python_bench_pyflakes_clean():
    r = subprocess.run(["/usr/bin/python3", "-m", "pyflakes",
                        str(REPO / "tests")], capture_output=True, text=True)
    if "No module named pyflakes" in r.stderr:
        raise Skip("python3-pyflakes is not installed")
    assert r.returncode == 0, r.stdout + r.stderr
