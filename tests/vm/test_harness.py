"""The bench reports failures honestly: a failing in-guest test, a guest that
never boots, a command that hangs and a test over its time limit are each
reported as failed, with their output, and no QEMU is left behind; also with
a CPU-bound load beside it (every hang's limit counts from an event the
harness has seen, not from a start whose duration depends on the machine)."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import slowness
from harness.registry import selftest_enabled, vm_test

REPO = Path(__file__).resolve().parents[2]

if selftest_enabled():
    # Short limits: each counts from an event after which the guest only
    # hangs, and is scaled by the slowness factor anyway.
    @vm_test(name="selftest-failing")
    def _failing(ctx):
        with ctx.boot() as vm:
            rc, out = vm.run("echo 'deliberate failure output 7731'; exit 3")
            assert rc == 0, f"in-guest test failed (rc={rc}):\n{out}"

    @vm_test(name="selftest-boot-hang")
    def _boot_hang(ctx):
        # The boot limit counts from the marker: from there on the guest
        # hangs, however long it took to get there.
        hang = "#!/bin/sh\necho 'hanging now 5521'\nwhile :; do sleep 1; done\n"
        with ctx.boot(extra_files={"test/boot.sh": hang}, boot_timeout=3,
                      boot_timeout_from="hanging now 5521"):
            pass

    @vm_test(name="selftest-command-hang")
    def _command_hang(ctx):
        with ctx.boot() as vm:
            vm.run("echo 'about to hang 9043'; sleep 1000", timeout=3,
                   timeout_from="about to hang 9043")

    @vm_test(name="selftest-watchdog")
    def _watchdog(ctx):
        with ctx.boot() as vm:
            vm.sh("true")
            ctx.watchdog(5)  # from here on the test only waits
            vm.run("sleep 1000", timeout=600)


def _qemu_pids(tag):
    out = subprocess.run(["pgrep", "-f", f"qemu-system-x86_64.*{tag}"],
                         capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


def _limit(nominal):
    """What a timeout message says for a nominal limit, at any factor."""
    return rf"(?:{nominal}s|\d+s \({nominal}s x slowness [\d.]+\))"


def _run_selftest(ctx, hogs=0):
    """Run the selftest suite in an inner tests/run, `hogs` busy loops
    beside it; assert each deliberate failure is reported as it should."""
    # The inner run's QEMUs keep their sockets here (short: sun_path limit).
    tag = Path(tempfile.mkdtemp(prefix="rcself-"))
    env = dict(os.environ, RAMCRYPT_HARNESS_SELFTEST="1",
               RAMCRYPT_VM_TMPDIR=str(tag))
    env.pop("RAMCRYPT_TEST_SLOWNESS", None)  # the inner run measures its own
    busy = []
    limit = slowness.scaled(900)
    t0 = time.monotonic()
    try:
        for _ in range(hogs):
            busy.append(subprocess.Popen(
                [sys.executable, "-c", "while True: pass"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL))
        try:
            r = subprocess.run([sys.executable, str(REPO / "tests" / "run"),
                                "--vm-only", "--kernel", ctx.kernel.release,
                                "-k", "selftest-"], capture_output=True,
                               text=True, env=env, timeout=limit)
            out, err, rc = r.stdout, r.stderr, r.returncode
        except subprocess.TimeoutExpired as e:
            out, err, rc = (e.stdout or b"").decode(), \
                (e.stderr or b"").decode(), None
    finally:
        for p in busy:
            p.kill()
            p.wait()
        wall = time.monotonic() - t0
        left = _qemu_pids(tag)
        for pid in left:  # QEMUs of the inner run only (their socket dir)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(tag, ignore_errors=True)
    (ctx.workdir / "selftest.out").write_text(out + err)
    assert rc is not None, \
        f"inner run not done after {limit:.0f}s:\n{out}\n{err[-2000:]}"

    def detail(name):
        """Status line, indented detail and the detail's serial tail."""
        lines = out.splitlines()
        for i, ln in enumerate(lines):
            if f"/{name} (" in ln:
                rest = []
                for d in lines[i + 1:]:
                    if not d.startswith("    "):
                        break
                    rest.append(d)
                d = "\n".join(rest)
                return ln, d, d.partition("--- serial tail ---")[2]
        raise AssertionError(f"{name} not reported:\n{out}")

    st, d, _ = detail("selftest-failing")
    assert st.startswith("FAIL") and "deliberate failure output 7731" in d, \
        f"failing test: {st}\n{d}"
    st, d, tail = detail("selftest-boot-hang")
    assert st.startswith("FAIL") and re.search(
        "timeout after " + _limit(3) + " waiting for the guest to boot "
        r"\(counted from 'hanging now 5521'\)", d) \
        and "hanging now 5521" in tail, f"boot hang: {st}\n{d}"
    st, d, tail = detail("selftest-command-hang")
    assert st.startswith("FAIL") and re.search(
        "timeout after " + _limit(3) + " waiting for command c1 to finish: "
        r".*\(counted from 'about to hang 9043'\)", d) \
        and "about to hang 9043" in tail, f"command hang: {st}\n{d}"
    st, d, _ = detail("selftest-watchdog")
    assert st.startswith("FAIL") and re.search(
        "killed after the test's " + _limit(5) +
        r" limit \(counted from ctx.watchdog\(\)\)", d), f"watchdog: {st}\n{d}"
    last = out.strip().splitlines()[-1]
    assert last == "1 passed, 4 failed", f"summary line: {last!r}"
    assert rc == 1, f"exit code {rc} on failures"
    assert not left, f"QEMU processes left running: {sorted(left)}"
    factor = re.search(r"^slowness factor ([\d.]+)", out, re.M)
    assert factor, f"the inner run printed no slowness factor:\n{out}"
    ctx.note(f"inner run {wall:.0f}s with {hogs} busy loop(s) beside it, "
             f"slowness factor {factor.group(1)}")


@vm_test(kernels=["6.1"], timeout=1200)
def test_harness_reports_failures(ctx):
    _run_selftest(ctx)


@vm_test(kernels=["6.1"], timeout=1200, slow=True, est=110)
def test_harness_reports_failures_under_load(ctx):
    # A busy loop per host core for the whole inner run.
    _run_selftest(ctx, hogs=os.cpu_count() or 2)


@vm_test(kernels=["6.1"], timeout=600, est=60)
def test_harness_commands_survive_dying_orphans(ctx):
    """Commands reach the guest agent whole while orphans die around it:
    background jobs outlive the command that started them, are reparented
    to PID 1 and signal it when they exit. With the agent as PID 1 those
    SIGCHLDs made busybox's `read` drop what it had read of the next
    command line, and the host waited for a command that never started
    (tresor-nmi-transit hung so). 200 orphans end over ~6 s while the
    host sends 400-character commands, each of which must run and echo
    its number."""
    pad = "x" * 400
    with ctx.boot() as vm:
        vm.sh("for i in $(seq 200); do "
              "(sleep $((i / 30)).$((i % 30 / 3)); exit 0) & done")
        n, t0 = 0, time.monotonic()
        while time.monotonic() - t0 < slowness.scaled(10):
            n += 1
            out = vm.sh(f": {pad}; echo cmd{n}", timeout=60)
            assert out.strip() == f"cmd{n}", (n, out)
        left = vm.sh("ps | grep -c '[s]leep' || true")
        ctx.note(f"{n} commands of {len(pad) + 20} characters while 200 "
                 f"orphans ended; sleeps left {left.strip()}")
        assert n >= 20, n
        assert left.strip() == "0", left
