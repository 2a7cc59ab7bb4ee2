"""The bench reports failures honestly: a failing in-guest test, a guest that
never boots, a command that hangs and a test over its time limit are each
reported as failed, with their output, and no QEMU is left behind."""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.registry import selftest_enabled, vm_test

REPO = Path(__file__).resolve().parents[2]

if selftest_enabled():
    @vm_test(name="selftest-failing")
    def _failing(ctx):
        with ctx.boot() as vm:
            rc, out = vm.run("echo 'deliberate failure output 7731'; exit 3")
            assert rc == 0, f"in-guest test failed (rc={rc}):\n{out}"

    @vm_test(name="selftest-boot-hang")
    def _boot_hang(ctx):
        hang = "#!/bin/sh\necho 'hanging now 5521'\nwhile :; do sleep 1; done\n"
        with ctx.boot(extra_files={"test/boot.sh": hang}, boot_timeout=15):
            pass

    @vm_test(name="selftest-command-hang")
    def _command_hang(ctx):
        with ctx.boot() as vm:
            vm.run("echo 'about to hang 9043'; sleep 1000", timeout=5)

    @vm_test(name="selftest-watchdog", timeout=20)
    def _watchdog(ctx):
        with ctx.boot() as vm:
            vm.run("sleep 1000", timeout=600)


def _qemu_pids(tag):
    out = subprocess.run(["pgrep", "-f", f"qemu-system-x86_64.*{tag}"],
                         capture_output=True, text=True).stdout
    return set(out.split())


@vm_test(kernels=["6.1"])
def test_harness_reports_failures(ctx):
    # The inner run's QEMUs keep their sockets here (short: sun_path limit).
    tag = Path(tempfile.mkdtemp(prefix="rcself-"))
    env = dict(os.environ, RAMCRYPT_HARNESS_SELFTEST="1",
               RAMCRYPT_VM_TMPDIR=str(tag))
    r = subprocess.run([sys.executable, str(REPO / "tests" / "run"),
                        "--vm-only", "--kernel", ctx.kernel.release,
                        "-k", "selftest-"],
                       capture_output=True, text=True, env=env, timeout=600)
    out = r.stdout
    (ctx.workdir / "selftest.out").write_text(out + r.stderr)

    def detail(name):
        """Status line and indented detail of one inner test."""
        lines = out.splitlines()
        for i, ln in enumerate(lines):
            if f"/{name} (" in ln:
                rest = []
                for d in lines[i + 1:]:
                    if not d.startswith("    "):
                        break
                    rest.append(d)
                return ln, "\n".join(rest)
        raise AssertionError(f"{name} not reported:\n{out}")

    st, d = detail("selftest-failing")
    assert st.startswith("FAIL") and "deliberate failure output 7731" in d, \
        f"failing test: {st}\n{d}"
    st, d = detail("selftest-boot-hang")
    assert st.startswith("FAIL") and "timeout after 15s" in d \
        and "hanging now 5521" in d, f"boot hang: {st}\n{d}"
    st, d = detail("selftest-command-hang")
    assert st.startswith("FAIL") and "timeout after 5s" in d \
        and "about to hang 9043" in d, f"command hang: {st}\n{d}"
    st, d = detail("selftest-watchdog")
    assert st.startswith("FAIL") and "killed after the test's 20s limit" in d,\
        f"watchdog: {st}\n{d}"
    last = out.strip().splitlines()[-1]
    assert last == "1 passed, 4 failed", f"summary line: {last!r}"
    assert r.returncode == 1, f"exit code {r.returncode} on failures"
    left = _qemu_pids(tag)
    shutil.rmtree(tag, ignore_errors=True)
    assert not left, f"QEMU processes left running: {left}"
