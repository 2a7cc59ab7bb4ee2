"""tresor-unlock on the host (no kernel): it builds with -Werror, and the
tresortab parser passes its C unit test, plain and under ASan+UBSan (good
lines, unknown options named with their line, missing fields, comments,
UUID=/PARTUUID=, tries=0/-1/garbage, time spans)."""
import subprocess
from pathlib import Path

from harness.registry import unit_test

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "daemon" / "tresor-unlock"


@unit_test()
def test_tresor_unlock_builds():
    r = subprocess.run(["make", "-s", "-C", str(SRC)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    r = subprocess.run([str(SRC / "bin" / "tresor-unlock"), "--help"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "tresortab" in r.stdout, r.stdout + r.stderr


@unit_test()
def test_tresortab_parser():
    r = subprocess.run(["make", "-s", "-C", str(SRC), "check"],
                       capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    passes = [ln for ln in out.splitlines() if ln.startswith("PASS ")]
    assert len(passes) == 2, out[-4000:]
    print("    " + passes[0] + " (plain and ASan+UBSan)")


@unit_test()
def test_tresor_unlock_check_names_bad_option():
    """`tresor-unlock check` on a bad table names the option and line and
    exits 2; a good table passes."""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        tab = Path(d) / "tresortab"
        tab.write_text("# comment\nroot /dev/vda none discard\n"
                       "data UUID=1234-abcd none tries=2,bogus=1\n")
        subprocess.run(["make", "-s", "-C", str(SRC)], check=True)
        r = subprocess.run([str(SRC / "bin" / "tresor-unlock"),
                            "--tresortab", str(tab), "check"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2, r.stdout + r.stderr
        assert f"{tab}:3: unknown option 'bogus=1'" in r.stderr, r.stderr
        tab.write_text("root /dev/vda none discard\n")
        r = subprocess.run([str(SRC / "bin" / "tresor-unlock"),
                            "--tresortab", str(tab), "check"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and "1 entry OK" in r.stdout, \
            r.stdout + r.stderr


@unit_test()
def test_tresor_boot_scripts():
    """dracut 90tresor and the initramfs-tools hook/local-top script parse
    (sh -n / bash -n), have the entry points their generator calls, and
    the initramfs-tools scripts answer `prereqs`. (Not a boot test.)"""
    import shutil
    dracut = REPO / "dracut" / "90tresor"
    itools = REPO / "initramfs-tools"
    shells = [("bash", dracut / "module-setup.sh"),
              ("sh", dracut / "parse-tresor.sh"),
              ("sh", dracut / "tresor-unlock.sh"),
              ("sh", itools / "hooks" / "tresor"),
              ("sh", itools / "scripts" / "local-top" / "tresor")]
    for sh, f in shells:
        r = subprocess.run([sh, "-n", str(f)], capture_output=True,
                           text=True)
        assert r.returncode == 0, f"{f}: {r.stderr}"
        if shutil.which("dash") and sh == "sh":
            r = subprocess.run(["dash", "-n", str(f)], capture_output=True,
                               text=True)
            assert r.returncode == 0, f"{f} (dash): {r.stderr}"
    text = (dracut / "module-setup.sh").read_text()
    for fn in ("check()", "depends()", "install()", "installkernel()"):
        assert fn in text, f"module-setup.sh lacks {fn}"
    unit = (dracut / "tresor-unlock.service").read_text()
    for needle in ("Before=cryptsetup.target", "rd.tresor=0",
                   "/usr/lib/ramcrypt/tresor-unlock"):
        assert needle in unit, f"tresor-unlock.service lacks {needle}"
    for f in (itools / "hooks" / "tresor",
              itools / "scripts" / "local-top" / "tresor"):
        r = subprocess.run([str(f), "prereqs"], capture_output=True,
                           text=True, timeout=10)
        assert r.returncode == 0 and r.stdout.strip() == "", \
            f"{f} prereqs: {r.stdout}{r.stderr}"


@unit_test()
def test_tresor_generator():
    """systemd/tresor-generator: every auto tresortab volume's mapped device
    gets a drop-in that pulls in tresor-unlock.service with no job timeout
    (names escaped as systemd does); noauto and comments are skipped."""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        tab = Path(d) / "tresortab"
        tab.write_text("# name device keyfile options\n\n"
                       "root UUID=0d1f none tries=3\n"
                       "vm-data /dev/vdb /etc/k discard\n"
                       "later /dev/vdc none noauto,tries=1\n")
        out = Path(d) / "gen"
        out.mkdir()
        r = subprocess.run([str(REPO / "systemd" / "tresor-generator"),
                            str(out), str(out), str(out)],
                           env={"TRESORTAB": str(tab), "PATH": "/usr/bin:/bin"},
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
        got = sorted(str(p.relative_to(out)) for p in out.rglob("*.conf"))
        assert got == ["dev-mapper-root.device.d/50-tresor.conf",
                       "dev-mapper-vm\\x2ddata.device.d/50-tresor.conf"], got
        conf = (out / got[0]).read_text()
        assert "JobTimeoutSec=infinity" in conf and \
            "Wants=tresor-unlock.service" in conf, conf
