"""Issue 15 (1, 5, CLI) without a kernel: `tresor-unlock check` at
initramfs build time on real LUKS2 headers (made with host cryptsetup on
files), dracut 90tresor's install() run with stubbed dracut functions
(keeps TRESOR volumes away from 90crypt, fails the build with the reason),
the initramfs-tools hook's check, tresor.ko and tresor_showregs.ko
required by both initramfs generators, the generator's warning for a volume in
both tables, and the CLI's one-line errors."""
import os
import subprocess
import tempfile
from pathlib import Path

from harness import luks
from harness.registry import unit_test

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "daemon" / "tresor-unlock"
BIN = SRC / "bin" / "tresor-unlock"
HINT = "cryptsetup reencrypt --key-size 256 --cipher aes-xts-plain64"
TRY = "Try 'tresor-unlock --help' for more information."
TPM2_PLUGIN = Path("/usr/lib/x86_64-linux-gnu/cryptsetup/"
                   "libcryptsetup-token-systemd-tpm2.so")


def build():
    subprocess.run(["make", "-s", "-C", str(SRC)], check=True)


def image(d, name, **opts):
    img = Path(d) / name
    with open(img, "wb") as f:
        f.truncate(20 << 20)
    uuid, _ = luks.luks_format(img, b"pw", os.urandom(opts.pop("kb", 32)),
                               **opts)
    return img, uuid


def check(tab, *args):
    return subprocess.run([str(BIN), "--tresortab", str(tab), *args,
                           "check"], capture_output=True, text=True,
                          timeout=60)


@unit_test()
def test_tresor_unlock_check_at_build():
    """check --initramfs --root --crypttab: a 512-bit and a non-XTS header,
    the root with a key file, a volume also in crypttab (by UUID, another
    name) each fail with the reason (exit 1); a good table passes and
    prints the LUKS UUIDs for the dracut module."""
    build()
    with tempfile.TemporaryDirectory() as d:
        good, ug = image(d, "good.img")
        x512, _ = image(d, "x512.img", kb=64, key_bits=512)
        cbc, _ = image(d, "cbc.img", cipher="aes-cbc-essiv:sha256")
        tab, ct = Path(d) / "tresortab", Path(d) / "crypttab"
        ct.write_text("# none of ours\nswap /dev/zz /dev/urandom swap\n")
        tab.write_text(f"root {good} none\n")
        r = check(tab, "--initramfs", "--root", "root", "--crypttab",
                  str(ct), "--print-uuids")
        assert r.returncode == 0 and f"uuid root {ug}" in r.stdout, \
            r.stdout + r.stderr
        tab.write_text(f"root {good} /etc/root.key\nbig {x512} none\n"
                       f"old {cbc} none\n")
        ct.write_text(f"luks-x UUID={ug.upper()} none luks\n")
        r = check(tab, "--initramfs", "--root", "root", "--crypttab",
                  str(ct))
        err = r.stderr
        assert r.returncode == 1, r.stdout + err
        assert "root: the root volume has the key file /etc/root.key" in err
        assert f"big: {x512} uses aes-xts-plain64 with a 512-bit key" in err
        assert f"old: {cbc} uses aes-cbc-essiv:sha256" in err and HINT in err
        assert f"root: also in {ct}:1 ('luks-x UUID={ug.upper()}')" in err
        assert "4 problems" in err, err
        r = check(tab, "--root", "nosuch")
        assert r.returncode == 2 and "--root: no entry 'nosuch'" in \
            r.stderr, r.stderr


def dracut_install(d, tab_text, fstab, cmdline, crypttab_text):
    """Run 90tresor's install() as dracut would (functions stubbed);
    returns (rc, output, initdir)."""
    sysroot, initdir = Path(d) / "sysroot", Path(d) / "initdir"
    (sysroot / "etc").mkdir(parents=True)
    (initdir / "etc" / "cmdline.d").mkdir(parents=True)
    (sysroot / "etc" / "tresortab").write_text(tab_text)
    (sysroot / "etc" / "fstab").write_text(fstab)
    (initdir / "etc" / "cmdline.d" / "90crypt.conf").write_text(cmdline)
    if crypttab_text is not None:
        (sysroot / "etc" / "crypttab").write_text(crypttab_text)
        (initdir / "etc" / "crypttab").write_text(crypttab_text)
    script = f"""
dinfo() {{ echo "INFO: $*"; }}
derror() {{ echo "ERROR: $*"; }}
dfatal() {{ echo "FATAL: $*"; }}
inst_binary() {{ :; }}; inst_simple() {{ :; }}
inst_multiple() {{ echo "INST_MULTIPLE $*"; }}
inst_hook() {{ :; }}; dracut_need_initqueue() {{ :; }}
dracut_module_included() {{ return 1; }}
. {REPO}/dracut/90tresor/module-setup.sh
TRESOR_UNLOCK={BIN}
dracutsysrootdir={sysroot} initdir={initdir} hostonly=1
install
echo INSTALL-DONE
"""
    r = subprocess.run(["bash", "-c", script], capture_output=True,
                       text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr, initdir


@unit_test()
def test_dracut_keeps_tresor_from_90crypt():
    """Hostonly with cryptsetup installed, 90crypt lists every LUKS device
    (rd.luks.uuid=luks-UUID): 90tresor drops the TRESOR root's (any case)
    and keeps another volume's; with the root the only one it writes
    rd.luks=0; a TRESOR volume in crypttab fails the build naming the
    line; a 512-bit header fails it too."""
    build()
    with tempfile.TemporaryDirectory() as d:
        good, ug = image(d, "good.img")
        other = "11111111-2222-4333-8444-555555555555"
        tab = f"root {good} none\n"
        fstab = "/dev/mapper/root / ext4 defaults 0 1\n"
        rc, out, initdir = dracut_install(
            Path(d) / "a", tab, fstab,
            f" rd.luks.uuid=luks-{ug.upper()} rd.luks.uuid=luks-{other}\n",
            f"data UUID={other} none luks\n")
        assert rc == 0 and "INSTALL-DONE" in out, out
        if TPM2_PLUGIN.exists():    # LUKS2 tokens: plugins, tss2 libs
            inst = " ".join(ln for ln in out.splitlines()
                            if ln.startswith("INST_MULTIPLE -o /"))
            for want in (f"cryptsetup/{TPM2_PLUGIN.name}",
                         "/libtss2-esys.so.0", "/libtss2-tcti-device.so.0"):
                assert want in inst, f"{want} not installed: {out}"
        conf = (initdir / "etc/cmdline.d/90crypt.conf").read_text()
        assert ug.upper() not in conf and f"luks-{other}" in conf and \
            "rd.luks=0" not in conf, conf
        ct = (initdir / "etc/crypttab").read_text()
        assert f"data UUID={other}" in ct, ct
        rc, out, initdir = dracut_install(
            Path(d) / "b", tab, fstab, f" rd.luks.uuid=luks-{ug}\n", None)
        assert rc == 0, out
        conf = (initdir / "etc/cmdline.d/90crypt.conf").read_text()
        assert ug not in conf and "rd.luks=0" in conf, conf
        rc, out, _ = dracut_install(
            Path(d) / "c", tab, fstab, f" rd.luks.uuid=luks-{ug}\n",
            f"root UUID={ug} none luks\n")
        assert rc == 1 and "INSTALL-DONE" not in out and \
            "FATAL: 90tresor: /etc/tresortab cannot be unlocked" in out \
            and "root: also in" in out, out
        x512, _ = image(d, "x512.img", kb=64, key_bits=512)
        rc, out, _ = dracut_install(Path(d) / "e", f"root {x512} none\n",
                                    fstab, "", None)
        assert rc == 1 and "512-bit key" in out, out


def modules_tree(d, names):
    """ROOT/lib/modules/VER with modules NAMES (ELF objects with a
    .modinfo section, indexed by the real depmod -b): what
    `modprobe --set-version VER` finds there with MODPROBE_OPTIONS=-d."""
    root, ver = Path(d) / "modroot", "6.1.0-unit"
    dkms = root / "lib/modules" / ver / "updates/dkms"
    dkms.mkdir(parents=True)
    for n in names:
        subprocess.run(["gcc", "-c", "-x", "c", "-", "-o",
                        str(dkms / f"{n}.ko")], check=True,
                       input='static const char m[] __attribute__(('
                       'section(".modinfo"), used)) = "license=GPL";\n',
                       text=True)
    subprocess.run(["/sbin/depmod", "-b", str(root), ver], check=True,
                   capture_output=True)
    return root, ver


@unit_test()
def test_initramfs_requires_showregs():
    """tresor_showregs.ko is required like tresor.ko (tresor.ko refuses
    the key until the livepatch is active, so an image without it could
    never unlock): the initramfs-tools hook (real hook-functions, real
    modprobe on a depmod'ed tree) exits 1 naming the missing module, and
    dracut 90tresor's installkernel() fails (instmods -c, stubbed) naming
    it; with both modules, both succeed and install both."""
    build()
    hook = REPO / "initramfs-tools" / "hooks" / "tresor"
    with tempfile.TemporaryDirectory() as d:
        tab = Path(d) / "tresortab"
        tab.write_text("root UUID=0d1f none\n")
        for have, missing in ((("tresor", "tresor_showregs"), None),
                              (("tresor",), "tresor_showregs"),
                              (("tresor_showregs",), "tresor")):
            sub = Path(d) / "-".join(have)
            sub.mkdir()
            root, ver = modules_tree(sub, have)
            dest = sub / "dest"
            dest.mkdir()
            r = subprocess.run(
                ["sh", str(hook)], capture_output=True, text=True,
                timeout=120,
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                     "DESTDIR": str(dest), "version": ver, "verbose": "n",
                     "MODPROBE_OPTIONS": f"-d {root}",
                     "TRESOR_UNLOCK": str(BIN), "TRESORTAB": str(tab)})
            inst = sorted(p.name for p in dest.rglob("*.ko"))
            if missing is None:
                assert r.returncode == 0, r.stderr
                assert inst == ["tresor.ko", "tresor_showregs.ko"], inst
                assert (dest / "usr/lib/ramcrypt/tresor-unlock").exists()
                assert (dest / "etc/tresortab").read_text() == \
                    tab.read_text()
                # LUKS2 tokens: the installed plugins and what the TPM2
                # one dlopen()s (tresor-unlock-tpm2 runs them in a VM)
                if TPM2_PLUGIN.exists():
                    got = {p.name for p in dest.rglob("*.so*")}
                    for want in (TPM2_PLUGIN.name, "libtss2-esys.so.0",
                                 "libtss2-rc.so.0", "libtss2-mu.so.0",
                                 "libtss2-tcti-device.so.0",
                                 "libsystemd-shared-252.so"):
                        assert want in got, f"{want} not in the image"
            else:
                assert r.returncode == 1, (have, r.returncode, r.stderr)
                assert f"E: tresor: {missing}.ko is not available for " \
                    f"kernel {ver}" in r.stderr, r.stderr
            script = f"""
derror() {{ echo "ERROR: $*"; }}
instmods() {{
    local c= m
    [ "$1" = -c ] && {{ c=1; shift; }}
    for m; do
        case " {' '.join(have)} dm_crypt " in
        *" $m "*) echo "INSTALLED $m" ;;
        *) [ "$c" ] && return 1 ;;
        esac
    done
    return 0
}}
. {REPO}/dracut/90tresor/module-setup.sh
mkdir -p {sub}/sysroot/etc && cp {tab} {sub}/sysroot/etc/tresortab
dracutsysrootdir={sub}/sysroot kernel={ver}
installkernel
echo "rc=$?"
"""
            r = subprocess.run(["bash", "-c", script], capture_output=True,
                               text=True, timeout=60)
            if missing is None:
                assert "rc=0" in r.stdout and \
                    "INSTALLED tresor_showregs" in r.stdout, r.stdout
            else:
                assert "rc=1" in r.stdout and \
                    f"ERROR: 90tresor: {missing}.ko is not available for " \
                    f"kernel {ver}" in r.stdout, r.stdout + r.stderr


@unit_test()
def test_generator_warns_both_tables():
    """tresor-generator: a volume listed in /etc/crypttab too (by name, or
    by device in any case under another name) gets a warning in the kernel
    log naming it, and its systemd-cryptsetup@ unit a drop-in that skips
    it unless rd.tresor=0 (systemd-cryptsetup would map it with the key in
    RAM); its device drop-in is still written. Without a writable kmsg the
    warning goes to stderr."""
    with tempfile.TemporaryDirectory() as d:
        tab, ct = Path(d) / "tresortab", Path(d) / "crypttab"
        tab.write_text("root UUID=0d1f none\ndata /dev/vdb none\n"
                       "other /dev/vdc none\n")
        ct.write_text("# c\nroot UUID=0d1f none luks\n"
                      "luks-x /dev/VDB none luks\nstock /dev/vdd none\n")
        kmsg = Path(d) / "kmsg"
        kmsg.write_text("")

        def gen(out, kmsg_path):
            out.mkdir()
            return subprocess.run(
                [str(REPO / "systemd" / "tresor-generator"),
                 str(out), str(out), str(out)],
                env={"TRESORTAB": str(tab), "CRYPTTAB": str(ct),
                     "TRESOR_GENERATOR_KMSG": str(kmsg_path),
                     "PATH": "/usr/bin:/bin"},
                capture_output=True, text=True, timeout=30)
        out = Path(d) / "gen"
        r = gen(out, kmsg)
        assert r.returncode == 0 and r.stderr == "", r.stderr
        log = kmsg.read_text().splitlines()
        assert len(log) == 2, log
        assert log[0].startswith("<4>tresor-generator: root (UUID=0d1f) "
                                 "is in") and "key in RAM" in log[0], log
        assert log[1].startswith("<4>tresor-generator: data (/dev/vdb) "
                                 "is in") and "(as luks-x)" in log[1], log
        for unit in ("root", "luks\\x2dx"):
            drop = out / f"systemd-cryptsetup@{unit}.service.d/50-tresor.conf"
            assert "\nConditionKernelCommandLine=rd.tresor=0\n" in \
                drop.read_text(), unit
        assert not list(out.glob("systemd-cryptsetup@stock*")) and \
            not list(out.glob("systemd-cryptsetup@other*"))
        assert (out / "dev-mapper-root.device.d/50-tresor.conf").exists()
        r = gen(Path(d) / "gen2", Path(d) / "no" / "kmsg")
        assert r.returncode == 0 and "tresor-generator: root (UUID=0d1f)" \
            in r.stderr and "tresor-generator: data" in r.stderr, r.stderr


@unit_test()
def test_tresor_unlock_cli_errors():
    """Unknown option, missing argument, bad value, unknown verb: one line
    naming it + "Try 'tresor-unlock --help' ...", exit 2; --version."""
    build()
    cases = [(["--bogus"], "unrecognized option '--bogus'"),
             (["-x"], "invalid option '-x'"),
             (["--timeout"], "option '--timeout' requires an argument"),
             (["--timeout", "soon"], "invalid --timeout 'soon'"),
             (["root"], "unknown command 'root' (open, attach, detach, close, status, check or format)"),
             (["check", "extra"], "check takes no argument: 'extra'")]
    for args, want in cases:
        r = subprocess.run([str(BIN), *args], capture_output=True,
                           text=True, timeout=30)
        lines = r.stderr.splitlines()
        assert r.returncode == 2 and lines == [f"tresor-unlock: {want}",
                                               TRY], (args, r.stderr)
    r = subprocess.run([str(BIN), "--version"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith("tresor-unlock "), \
        r.stdout
