"""tresor-unlock on the host (no kernel): it builds with -Werror, and the
tresortab parser passes its C unit test, plain and under ASan+UBSan (good
lines, unknown options named with their line, missing fields, comments,
UUID=/PARTUUID=, tries=0/-1/garbage, time spans)."""
import os
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


def plain_and_asan():
    """tresor-unlock built plain and with ASan+UBSan (make -s): both paths."""
    r = subprocess.run(["make", "-s", "-C", str(SRC), "bin/tresor-unlock",
                        "bin/tresor-unlock_asan"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    return (SRC / "bin" / "tresor-unlock", SRC / "bin" / "tresor-unlock_asan")


@unit_test()
def test_tresor_unlock_journal_priorities():
    """Messages carry journald's <N> level prefix when stderr is the
    journal stream (JOURNAL_STREAM names its device:inode, as systemd sets
    it for a unit), so `journalctl -p err` shows a failed unlock: errors
    <3>, a wrong-table error included; detach of an inactive mapping is a
    notice <5>; a device left for later is info <6>. On a file or terminal
    that JOURNAL_STREAM does not name: no prefix. Plain and ASan+UBSan."""
    import tempfile
    for exe in plain_and_asan():
        with tempfile.TemporaryDirectory() as d:
            bad, ghost = Path(d) / "bad.tab", Path(d) / "ghost.tab"
            bad.write_text("root /dev/vda none frobnicate\n")
            ghost.write_text("ghost PARTUUID=0badc0de-01 none\n")
            cases = (([f"--tresortab={bad}", "check"], 2,
                      f"<3>tresor-unlock: {bad}:1: unknown option"),
                     (["detach", "rc-test-no-such-map"], 0,
                      "<5>tresor-unlock: rc-test-no-such-map: not active, "
                      "nothing to detach"),
                     ([f"--tresortab={ghost}", "--initramfs",
                       "--device-wait", "1", "open"], 0,
                      "<6>tresor-unlock: ghost: device not there after 1s"),
                     (["frob"], 2, "<3>tresor-unlock: unknown command "
                      "'frob'"))
            for args, rc, want in cases:
                for journal in (True, False):
                    err = Path(d) / "stderr"
                    with open(err, "w") as f:
                        st = os.fstat(f.fileno())
                        env = dict(os.environ)
                        env["JOURNAL_STREAM"] = \
                            f"{st.st_dev}:{st.st_ino}" if journal else \
                            f"{st.st_dev}:{st.st_ino + 1}"
                        p = subprocess.run([str(exe)] + args, stderr=f,
                                           stdout=subprocess.DEVNULL,
                                           env=env, timeout=60)
                    text = err.read_text()
                    exp = want if journal else want[3:]
                    assert p.returncode == rc and exp in text, \
                        f"{exe.name} {args} journal={journal}: rc " \
                        f"{p.returncode}, want {exp!r}:\n{text}"
                    if not journal:
                        assert "<" not in text.split("tresor-unlock:")[0], \
                            text
    print("    <3> errors, <5> notices, <6> info on the journal stream; "
          "none elsewhere (plain and ASan+UBSan)")


@unit_test()
def test_tresor_unlock_plymouth_messages():
    """Behind a boot splash (plymouth answers --ping), the last warning
    or error goes to plymouth's message line at exit (`plymouth
    display-message --text=...`, as Debian's initramfs message() shows
    its lines), a table error and an unlock error alike, a usage error
    without its "Try '--help'" line; info lines do not; without a running
    plymouth (--ping fails) nothing is sent. A fake plymouth in PATH
    records its arguments. Plain and ASan+UBSan."""
    import tempfile
    for exe in plain_and_asan():
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            (d / "bin").mkdir()
            fake = d / "bin" / "plymouth"
            fake.write_text('#!/bin/sh\necho "$*" >> "$PLYLOG"\n'
                            '[ "$1" = --ping ] && exit "$PING_RC"\n'
                            'exit 0\n')
            fake.chmod(0o755)
            bad, ghost = d / "bad.tab", d / "ghost.tab"
            gone = d / "gone.tab"
            bad.write_text("root /dev/vda none frobnicate\n")
            ghost.write_text("ghost PARTUUID=0badc0de-01 none\n")
            gone.write_text("gone PARTUUID=0badc0de-02 none "
                            "x-systemd.device-timeout=1s\n")
            cases = (([f"--tresortab={bad}", "check"], "0",
                      [f"display-message --text=tresor-unlock: {bad}:1: "
                       "unknown option 'frobnicate'"]),
                     ([f"--tresortab={gone}", "open"], "0",
                      ["display-message --text=tresor-unlock: gone: device "
                       "PARTUUID=0badc0de-02 did not appear within 1s"]),
                     (["frob"], "0",
                      ["display-message --text=tresor-unlock: unknown "
                       "command 'frob' (open, attach,"]),
                     ([f"--tresortab={ghost}", "--initramfs",
                       "--device-wait", "1", "open"], "0", []),
                     ([f"--tresortab={bad}", "check"], "1", []))
            for args, ping_rc, want in cases:
                log = d / "ply.log"
                log.unlink(missing_ok=True)
                env = dict(os.environ, PLYLOG=str(log), PING_RC=ping_rc,
                           PATH=f"{d / 'bin'}:{os.environ['PATH']}")
                p = subprocess.run([str(exe)] + args, capture_output=True,
                                   text=True, env=env, timeout=60)
                sent = [ln for ln in (log.read_text().splitlines()
                                      if log.exists() else [])
                        if ln.startswith("display-message")]
                assert len(sent) == len(want) and all(
                    s.startswith(w) for s, w in zip(sent, want)), \
                    f"{exe.name} {args} ping={ping_rc}: sent {sent}, " \
                    f"want {want}; stderr:\n{p.stderr}"
    print("    error -> plymouth display-message; info and no plymouth: "
          "nothing sent (plain and ASan+UBSan)")


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
              ("sh", dracut / "tresor-emergency.sh"),
              ("sh", itools / "hooks" / "tresor"),
              ("sh", itools / "scripts" / "local-top" / "tresor"),
              ("sh", itools / "scripts" / "local-block" / "tresor"),
              ("sh", REPO / "systemd" / "tresor-generator"),
              ("sh", REPO / "daemon" / "tresor-unlock" / "cryptroot-unlock")]
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
    # the hook after cryptsetup-initramfs's cryptroot-unlock hook (whose
    # script it keeps as cryptroot-unlock.cryptsetup)
    for f, want in ((itools / "hooks" / "tresor", "cryptroot-unlock"),
                    (itools / "scripts" / "local-top" / "tresor", ""),
                    (itools / "scripts" / "local-block" / "tresor", "")):
        r = subprocess.run([str(f), "prereqs"], capture_output=True,
                           text=True, timeout=10)
        assert r.returncode == 0 and r.stdout.strip() == want, \
            f"{f} prereqs: {r.stdout}{r.stderr}"


GEN = REPO / "systemd" / "tresor-generator"
GEN_FIXTURES = REPO / "tests" / "unit" / "fixtures" / "tresor-generator"


def tree(root):
    """{relative path: ("link", target) or ("file", text)} of a tree."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = ("link", os.readlink(p))
        elif p.is_file():
            out[rel] = ("file", p.read_text())
    return out


def run_generator_case(case, out, gen=GEN):
    """Run the generator on a fixture case (tresortab with @CASE@ for the
    case's directory, cmdline, in-initrd) into out; its tree with the
    temporary paths written back as @CASE@, and the process."""
    tab = out.parent / "tresortab"
    tab.write_text((case / "tresortab").read_text().replace("@CASE@",
                                                            str(case)))
    out.mkdir()
    env = {"TRESORTAB": str(tab), "CRYPTTAB": str(case / "crypttab"),
           "TRESOR_GENERATOR_KMSG": str(out.parent / "kmsg"),
           "SYSTEMD_PROC_CMDLINE": (case / "cmdline").read_text().strip(),
           "SYSTEMD_IN_INITRD": "1" if (case / "in-initrd").exists()
           else "0", "PATH": "/usr/bin:/bin"}
    r = subprocess.run([str(gen), str(out), str(out), str(out)], env=env,
                       capture_output=True, text=True, timeout=30)
    got = {k: (t, v.replace(str(tab), "@TRESORTAB@").replace(str(case),
                                                             "@CASE@"))
           for k, (t, v) in tree(out).items()}
    return got, r


def golden_failures(gen=GEN):
    """[(case, what differs)] over every case in GEN_FIXTURES."""
    import difflib
    import tempfile
    bad = []
    cases = sorted(p for p in GEN_FIXTURES.iterdir() if p.is_dir())
    assert cases, f"no cases in {GEN_FIXTURES}"
    for case in cases:
        with tempfile.TemporaryDirectory() as d:
            got, r = run_generator_case(case, Path(d) / "out", gen)
        if r.returncode != 0 or r.stderr:
            bad.append((case.name, f"exit {r.returncode}: {r.stderr}"))
            continue
        exp = tree(case / "expected") if (case / "expected").is_dir() \
            else {}
        if os.environ.get("TRESOR_GOLDEN_UPDATE") == "1":
            import shutil
            shutil.rmtree(case / "expected", ignore_errors=True)
            for rel, (t, v) in got.items():
                dst = case / "expected" / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                if t == "link":
                    dst.symlink_to(v)
                else:
                    dst.write_text(v)
            continue
        for rel in sorted(set(exp) | set(got)):
            if rel not in got:
                bad.append((case.name, f"{rel}: not written"))
            elif rel not in exp:
                bad.append((case.name, f"{rel}: written, not expected"))
            elif exp[rel] != got[rel]:
                diff = "".join(difflib.unified_diff(
                    exp[rel][1].splitlines(True),
                    got[rel][1].splitlines(True), "expected", "got"))
                bad.append((case.name, f"{rel} differs:\n{diff}"))
    return bad, len(cases)


@unit_test()
def test_tresor_generator_golden():
    """systemd/tresor-generator against the golden trees of
    tests/unit/fixtures/tresor-generator/ (TRESOR_GOLDEN_UPDATE=1 rewrites
    them): per volume a tresor-unlock@NAME.service with
    systemd-cryptsetup-generator's dependency set (BindsTo=/After= the
    backing device, Before=cryptsetup.target unless nofail, RequiresMountsFor=
    the key file, IgnoreOnIsolate, umount.target); /dev/mapper/NAME
    Requires= it, without a job timeout only for !nofail && !noauto;
    cryptsetup.target requires it (wants it with nofail, nothing with
    noauto); x-systemd.device-timeout= on the backing device, 0 = infinity;
    in the initrd no entry whose key file is missing; rd.tresor=0: no
    output."""
    bad, n = golden_failures()
    assert not bad, "\n".join(f"{c}: {w}" for c, w in bad)
    print(f"    {n} golden cases")


@unit_test()
def test_tresor_generator_golden_detects_change():
    """The golden comparison can fail: a generator that writes
    JobTimeoutSec=infinity for every volume (nofail too, as before issue
    15) is caught."""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        bent = Path(d) / "tresor-generator"
        bent.write_text(GEN.read_text().replace(
            '[ "$noauto" = 1 ] || [ "$nofail" = 1 ] ||', ""))
        bent.chmod(0o755)
        bad, _ = golden_failures(bent)
    assert any("JobTimeoutSec=infinity" in w for _, w in bad), bad
