"""ramcrypt-generator and its [X-RamCrypt] parser on the host (no kernel):
the parser's C unit test (plain and ASan+UBSan), the generator's golden-file
cases in tests/unit/fixtures/generator/ (exact output tree and log lines,
plain and ASan+UBSan), its kmsg records, its exit status on bad arguments and
on an output it cannot write, and systemd-analyze verify of a unit with the
drop-in it writes."""
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness.registry import Skip, unit_test

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "daemon" / "generator"
FIXTURES = REPO / "tests" / "unit" / "fixtures" / "generator"
GEN = SRC / "bin" / "ramcrypt-generator"


def _build():
    r = subprocess.run(["make", "-s", "-C", str(SRC)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]


def _run(out, unit_path, log="stderr", args=None):
    env = {"PATH": "/usr/bin:/bin", "SYSTEMD_UNIT_PATH": unit_path,
           "RAMCRYPT_GENERATOR_LOG": log}
    argv = [str(GEN)] + (args if args is not None else [out, out, out])
    return subprocess.run(argv, env=env, capture_output=True, text=True,
                          timeout=30)


@unit_test()
def test_generator_check():
    """`make -C daemon/generator check`: the parser's unit test and every
    golden case, each plain and under ASan+UBSan."""
    r = subprocess.run(["make", "-s", "-C", str(SRC), "check"],
                       capture_output=True, text=True, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-6000:]
    cases = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
    assert len(cases) >= 17, cases
    passes = [ln for ln in out.splitlines() if ln.startswith("PASS ")]
    parser = [ln for ln in passes if ln.startswith("PASS test_rc_marker")]
    assert len(parser) == 2, out[-4000:]
    for c in cases:
        n = passes.count(f"PASS {c}")
        assert n == 2, f"case {c} passed {n} times, want 2:\n{out[-4000:]}"
    assert "FAIL" not in out, out[-4000:]
    print(f"    {parser[0]} (plain and ASan+UBSan); "
          f"{len(cases)} golden cases (plain and ASan+UBSan)")


@unit_test()
def test_generator_golden_detects_change():
    """The golden comparison can fail: a case whose expected drop-in is
    changed, or whose marker is removed, is reported as FAIL."""
    _build()
    with tempfile.TemporaryDirectory() as d:
        fx = Path(d) / "fx"
        shutil.copytree(FIXTURES / "marked-fragment", fx / "changed",
                        symlinks=True)
        conf = fx / "changed/expected/vm-test.service.d/50-ramcrypt.conf"
        conf.write_text(conf.read_text().replace("enroll", "enrol"))
        shutil.copytree(FIXTURES / "bad-window", fx / "unmarked",
                        symlinks=True)
        unit = fx / "unmarked/etc/vm-test.service"
        unit.write_text(unit.read_text().split("[X-RamCrypt]")[0])
        r = subprocess.run([str(SRC / "run-golden"), str(GEN), str(fx)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1, r.stdout + r.stderr
        assert "FAIL changed: output tree differs" in r.stdout, r.stdout
        assert "FAIL unmarked: output tree differs" in r.stdout, r.stdout
        assert "FAIL unmarked: log differs" in r.stdout, r.stdout


@unit_test()
def test_generator_kmsg_records():
    """Log lines are kernel log records: '<N>ramcrypt-generator: ' with
    N = LOG_DAEMON | priority (err 27, warning 28), one per line."""
    _build()
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "out")
        os.mkdir(out)
        kmsg = os.path.join(d, "kmsg")
        case = FIXTURES / "service-hint"
        r = _run(out, f"{FIXTURES / 'bad-window' / 'etc'}:{case / 'etc'}",
                 log=kmsg)
        assert r.returncode == 0 and r.stderr == "", r.stderr
        lines = Path(kmsg).read_text().splitlines()
        assert lines[0] == (
            f"<27>ramcrypt-generator: vm-test.service: "
            f"{FIXTURES}/bad-window/etc/vm-test.service:9: Window=banana: "
            "not a size in bytes or pages; the unit will fail to start."), \
            lines
        assert len(lines) == 4 and all(
            ln.startswith("<28>ramcrypt-generator: vm") for ln in lines[1:]), \
            lines


@unit_test()
def test_generator_exit_status():
    """Wrong argument count: exit 1 with systemd's sentence. An output it
    cannot write: exit 1 naming the file, after the other units were
    written. Bad units alone: exit 0."""
    _build()
    with tempfile.TemporaryDirectory() as d:
        r = _run(d, str(FIXTURES / "bad-window" / "etc"), args=[d])
        assert r.returncode == 1 and \
            "This program takes zero or three arguments." in r.stderr, \
            r.stderr
        out = Path(d) / "out"
        out.mkdir()
        # a file where the drop-in directory of vm-a.service must go
        (out / "vm-a.service.d").write_text("in the way\n")
        units = Path(d) / "units"
        units.mkdir()
        for u in ("vm-a", "vm-b"):
            (units / f"{u}.service").write_text(
                "[Service]\nExecStart=/bin/true\n[X-RamCrypt]\nRamCrypt=yes\n")
        r = _run(str(out), str(units))
        assert r.returncode == 1, r.stderr
        assert f"Failed to write {out}/vm-a.service.d/50-ramcrypt.conf" in \
            r.stderr, r.stderr
        assert (out / "vm-b.service.d" / "50-ramcrypt.conf").is_file()
        r = _run(str(Path(d) / "out2"),
                 str(FIXTURES / "unknown-key" / "etc") + ":" +
                 str(FIXTURES / "unknown-key" / "usr-lib"))
        assert r.returncode == 0 and r.stderr.count("will fail to start") == 2, \
            r.stderr


@unit_test()
def test_generator_systemd_analyze_verify():
    """systemd-analyze verify (it needs no running systemd) loads a QEMU
    unit with the drop-in the generator wrote next to it: no unknown key,
    bad specifier or bad line anywhere. Its only complaint is the one that
    shows it parsed our ExecStartPre=: /usr/bin/ramcryptctl is not installed
    on this build machine. A drop-in with an unknown key is reported, so the
    check can fail."""
    if not shutil.which("systemd-analyze"):
        raise Skip("systemd-analyze is not installed")
    _build()
    with tempfile.TemporaryDirectory() as d:
        units = Path(d) / "units"
        units.mkdir()
        for dep in ("ramcryptd.service", "ramcrypt-host.service"):
            (units / dep).write_text("[Service]\nExecStart=/bin/true\n")
        unit = units / "vm-test.service"
        unit.write_text(
            "[Unit]\nDescription=test VM\n[Service]\n"
            "ExecStartPre=/bin/true\n"
            "ExecStart=/bin/sleep infinity\n"
            "DevicePolicy=closed\nDeviceAllow=/dev/kvm rw\n"
            "[X-RamCrypt]\nRamCrypt=yes\nWindow=64M\n")
        r = _run(str(units), str(units), args=[str(units)] * 3)
        assert r.returncode == 0, r.stderr
        dropin = units / "vm-test.service.d" / "50-ramcrypt.conf"
        assert "DeviceAllow=/dev/ramcrypt rw" in dropin.read_text()
        env = dict(os.environ, SYSTEMD_UNIT_PATH=f"{units}:")

        def verify():
            r = subprocess.run(["systemd-analyze", "verify", "--man=no",
                                str(unit)], capture_output=True, text=True,
                               timeout=120, env=env)
            return [ln for ln in (r.stdout + r.stderr).splitlines()
                    if ln.strip()]

        missing = ("vm-test.service: Command /usr/bin/ramcryptctl is not "
                   "executable: No such file or directory")
        lines = verify()
        if os.access("/usr/bin/ramcryptctl", os.X_OK):
            assert lines == [], lines
        else:
            assert lines == [missing], lines
        with dropin.open("a") as f:
            f.write("Bogus=1\n")
        lines = verify()
        assert any("Unknown key" in ln and "Bogus" in ln for ln in lines), \
            lines
        if os.access("/usr/bin/ramcryptctl", os.X_OK):
            return
        # systemctl edit's override.conf sorts after 50-ramcrypt.conf and
        # resets ExecStartPre= (and here ExecStopPost=): systemd still has
        # the enrollment, from override~ramcrypt.conf; without that file the
        # ramcryptctl lines are gone (verify no longer reports them)
        shutil.rmtree(units / "vm-test.service.d")
        (units / "vm-test.service.d").mkdir()
        (units / "vm-test.service.d" / "override.conf").write_text(
            "[Service]\nExecStartPre=\nExecStopPost=\n")
        gen = Path(d) / "gen"
        gen.mkdir()
        r = _run(str(gen), str(units), args=[str(gen)] * 3)
        assert r.returncode == 0 and "adding the enrollment again" in r.stderr, \
            r.stderr
        late = gen / "vm-test.service.d" / "override~ramcrypt.conf"
        assert late.is_file(), sorted(p.name for p in gen.rglob("*"))
        env["SYSTEMD_UNIT_PATH"] = f"{units}:{gen}:"
        assert verify() == [missing], verify()
        late.unlink()
        assert verify() == [], verify()
        print("    systemd-analyze verify: clean but for the missing "
              "/usr/bin/ramcryptctl")
