"""daemon/shared (librcshared.a) on the host (no kernel): the library
builds with -Werror, and its C unit tests pass plain and under
ASan+UBSan on the fixture sysroots in tests/unit/fixtures/sysroot-*:
CPU sets, the kernel's files under a root (tresor, ramcrypt regions,
configfs policies, cgroup ids), topology and the default CPU roles,
the QEMU argv and /proc checks, the host checks."""
import re
import subprocess
from pathlib import Path

from harness.registry import unit_test

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "daemon" / "shared"
# each one runs twice (plain, ASan+UBSan); the marker parser's test joins
# when it exists
TESTS = ("test_cpuset", "test_kernel", "test_topology", "test_qemu",
         "test_hostchecks")


@unit_test()
def test_daemon_shared_builds():
    r = subprocess.run(["make", "-s", "-C", str(SRC)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    assert (SRC / "librcshared.a").exists()
    nm = subprocess.run(["nm", "-g", "--defined-only",
                         str(SRC / "librcshared.a")],
                        capture_output=True, text=True, check=True).stdout
    for sym in ("rc_cpuset_parse", "rc_policy_set", "rc_regions_list",
                "rc_topology_read", "rc_roles_default", "rc_qemu_check_argv",
                "rc_qemu_check_process", "rc_hostchecks_run"):
        assert re.search(rf" T {sym}$", nm, re.M), f"{sym} not in librcshared.a"


@unit_test()
def test_daemon_shared_units():
    r = subprocess.run(["make", "-s", "-C", str(SRC), "check"],
                       capture_output=True, text=True, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert "FAIL" not in out, out[-4000:]
    for t in TESTS:
        runs = re.findall(rf"^PASS {t} \((\d+) checks\)$", out, re.M)
        assert len(runs) == 2, f"{t}: want 2 PASS lines (plain, ASan)\n" + \
            out[-4000:]
        assert int(runs[0]) >= 50 and runs[0] == runs[1], (t, runs)
        print(f"    PASS {t} ({runs[0]} checks, plain and ASan+UBSan)")
