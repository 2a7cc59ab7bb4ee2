"""The Debian packages installed the way a user installs them (issue 16,
acceptance 2-4): the .debs built from HEAD go into a local apt repository
(apt-ftparchive) in a debootstrapped Debian 12 root (harness/pkgroot.py),
`apt-get install ramcrypt-host` by name pulls ramcrypt-dkms, DKMS builds the
modules for the root's kernel and the update-initramfs trigger puts them and
tresor-unlock into the initramfs, for dracut and for initramfs-tools.

packages-dracut: install, then version N+1 over N, then purge (chroot
steps only, no kernel is booted). packages-initramfs-tools-boot: install,
then that root, installed from the packages only (no make install), boots
on its LUKS2 root with the passphrase typed at the prompt, with every check
of tests/vm/test_boot_unlock.py's run_boot (its Host and run_boot, the
project taken from the packages).
"""
import os
import re
import time

from harness import registry
from harness.pkgroot import (DKMS_NAME, MODULES, PackagedSystem, build_debs,
                             deb_files, next_version, upstream_version)
from harness.registry import vm_test

# What the initramfs must hold for the early-boot unlock.
# A module file as DKMS installs it: plain, or compressed as the kernel's
# own modules are (CONFIG_MODULE_COMPRESS_*: Debian's 6.12 uses xz)
KO_Z = ("", ".xz", ".zst", ".gz")
IN_INITRAMFS = ("tresor.ko", "tresor_showregs.ko", "tresor-unlock")
# ext4 payload of the booted root: debroot + dkms, gcc, headers, packages
PKG_ROOT_MB = 1280


def _dkms_lines(s):
    return [ln for ln in s.dkms_status().splitlines()
            if ln.startswith(DKMS_NAME)]


def _modinfo(s):
    """{module: (file name or '', signer)} as modinfo -k <release> finds
    them in the root."""
    out = s.sh("for m in " + " ".join(MODULES) + "; do "
               f"echo \"$m $(modinfo -k {s.release} -F filename $m "
               f"2>/dev/null)|$(modinfo -k {s.release} -F signer $m "
               "2>/dev/null)\"; done")
    found = {}
    for m in MODULES:
        line = re.search(rf"^{m} ([^|]*)\|(.*)$", out, re.M)
        assert line, f"modinfo {m}: no answer\n{out}"
        found[m] = (line.group(1), line.group(2))
    return found


def _check_modules(s, ver, since):
    """dkms status says installed for the root's kernel (and no other
    version), modinfo finds all three modules in updates/dkms, built after
    `since` and signed by DKMS's MOK key."""
    rel = s.release
    lines = _dkms_lines(s)
    want = f"{DKMS_NAME}/{ver}, {rel}, x86_64: installed"
    assert want in lines, f"dkms status: want {want!r}, got {lines}"
    others = [ln for ln in lines if not ln.startswith(f"{DKMS_NAME}/{ver},")]
    assert not others, f"other versions left in dkms status: {others}"
    for m, (path, signer) in _modinfo(s).items():
        # DKMS compresses as the kernel's own modules are (6.12: .ko.xz)
        want = [f"/lib/modules/{rel}/updates/dkms/{m}.ko{z}" for z in KO_Z]
        assert path in want, f"modinfo -k {rel} {m}: {path!r}, want one " \
            f"of {want}"
        assert signer == "DKMS module signing key", \
            f"{m}: signer {signer!r}, want DKMS's MOK key"
        mt = os.stat(s.root / path.lstrip("/")).st_mtime
        assert mt >= since, f"{path} was not (re)built by this apt-get run"
    return lines


def _check_no_modules(s, what):
    lines = _dkms_lines(s)
    assert not lines, f"{what}: dkms status: {lines}"
    found = {m: p for m, (p, _) in _modinfo(s).items() if p}
    assert not found, f"{what}: modinfo finds {found}"


def _check_initramfs(s, since, present=True):
    """/boot/initrd.img-<release> was (re)built after `since` (by the
    update-initramfs trigger when since > 0) and holds (present=False: no
    longer holds) each of IN_INITRAMFS, as lsinitrd / lsinitramfs list it."""
    img = s.root / f"boot/initrd.img-{s.release}"
    assert img.exists(), f"{img.name}: no initramfs"
    assert img.stat().st_mtime >= since, \
        f"{img.name} not rebuilt by the update-initramfs trigger:\n" \
        + s.apt_log[-3000:]
    listing = s.initramfs_list()
    names = {re.sub(r"\.ko\.(xz|zst|gz)$", ".ko",
                    ln.split()[-1].rsplit("/", 1)[-1])
             for ln in listing.splitlines() if ln.strip()}
    assert len(names) > 50, \
        f"{img.name}: the listing looks wrong:\n{listing[:2000]}"
    for f in IN_INITRAMFS:
        assert (f in names) == present, \
            f"{img.name} ({s.generator}): {f} " \
            + ("missing" if present else "still there")


class CheckedSystem(PackagedSystem):
    """A PackagedSystem whose install_project() proves acceptance 2 on the
    way: before the install an initramfs built by the root's generator
    without our files and no module; after `apt-get install ramcrypt-host`
    both packages installed, the units disabled, the modules built by DKMS,
    the initramfs rebuilt by the trigger with our files. Host.build() of
    test_boot_unlock calls it."""

    def __init__(self, ctx, generator, version=None):
        super().__init__(ctx.kernel.release, generator, ctx.workdir,
                         version=version)
        self.ctx = ctx

    def install_project(self, module_dir=None, enable=True):
        if self.generator == "initramfs-tools":
            # its hook adds our files only for a tresortab with an entry
            # (Host.build() writes the real one after the install)
            self.write("/etc/tresortab", "root /dev/vda none\n")
        self.make_initramfs()
        _check_initramfs(self, 0, present=False)
        _check_no_modules(self, "before the install")
        ver = upstream_version()
        t0 = time.time()
        out = super().install_project(enable=False)
        secs = time.time() - t0
        new = re.search(r"The following NEW packages will be installed:\n"
                        r"((?:  .*\n)+)", out)
        assert new and set(new.group(1).split()) == set(
            ("ramcrypt-host", "ramcrypt-dkms")), \
            "apt-get install ramcrypt-host did not install exactly the " \
            "two packages:\n" + out[-3000:]
        dpkg = self.sh("dpkg-query -W -f '${Package} ${Version} ${Status}"
                       "\\n' ramcrypt-host ramcrypt-dkms")
        for p in ("ramcrypt-host", "ramcrypt-dkms"):
            assert f"{p} {ver}-1 install ok installed" in dpkg, dpkg
        # the units with an [Install] section ship disabled (ramcryptd has
        # none: static, started through D-Bus or ramcrypt-host.service)
        enabled = self.sh("systemctl is-enabled ramcrypt-host.service "
                          "tresor-unlock.service 2>&1 || true").split()
        assert enabled == ["disabled", "disabled"], \
            f"units enabled by the package: {enabled}"
        owner = self.sh("dpkg -S /usr/lib/ramcrypt/tresor-unlock 2>&1 || "
                        "true; ls /usr/local/sbin /usr/local/lib")
        assert owner.startswith("ramcrypt-host: "), \
            f"tresor-unlock not from the package: {owner}"
        _check_modules(self, ver, t0)
        _check_initramfs(self, t0)
        self.ctx.note(
            f"{self.generator}: apt-get install ramcrypt-host pulled "
            f"ramcrypt-dkms {ver}; DKMS built {', '.join(MODULES)} for "
            f"{self.release} (signed by the DKMS MOK key); the trigger's "
            f"initramfs holds {', '.join(IN_INITRAMFS)} "
            f"(apt-get install {secs:.0f}s)")
        if enable:
            self.sh("systemctl enable tresor-unlock.service 2>&1")
        return out


@vm_test(timeout=1800, est=350)
def test_packages_dracut(ctx):
    """dracut root, chroot only. Install: apt-get install ramcrypt-host by
    name from a local apt repository pulls ramcrypt-dkms; dkms status
    installed, modinfo finds the three modules in updates/dkms; lsinitrd of
    the initramfs the trigger rebuilt lists tresor.ko, tresor_showregs.ko,
    tresor-unlock; units disabled. Upgrade: version N+1 (changelog and
    dkms.conf bumped in a copy of HEAD) over N: DKMS drops N, builds N+1,
    the initramfs is rebuilt. Purge of both packages: none of their files
    (the .debs' file lists, the DKMS-built modules, /var/lib/dkms) left,
    dkms status empty, the rebuilt initramfs without our files."""
    s = CheckedSystem(ctx, "dracut")
    s.unpack()
    s.install_project(enable=False)

    ver, new = upstream_version(), next_version(upstream_version())
    t0 = time.time()
    debs = build_debs(new)
    ctx.note(f"build of {new} {time.time() - t0:.0f}s")
    s.publish(debs)
    t0 = time.time()
    out = s.apt("install --no-install-recommends ramcrypt-host")
    t_up = time.time() - t0
    assert re.search(r"The following packages will be upgraded:\n"
                     r"\s+ramcrypt-dkms ramcrypt-host\n", out), out[-3000:]
    _check_modules(s, new, t0)
    _check_initramfs(s, t0)
    for gone in (f"usr/src/{DKMS_NAME}-{ver}",
                 f"var/lib/dkms/{DKMS_NAME}/{ver}"):
        assert not os.path.lexists(s.root / gone), \
            f"/{gone} left after the upgrade"

    t1 = time.time()
    s.apt("purge ramcrypt-host ramcrypt-dkms")
    t_purge = time.time() - t1
    _check_no_modules(s, "after the purge")
    files = set().union(*(deb_files(d) for d in debs.values()))
    files |= {f"/lib/modules/{s.release}/updates/dkms/{m}.ko{z}"
              for m in MODULES for z in KO_Z}
    files |= {f"/var/lib/dkms/{DKMS_NAME}", f"/usr/src/{DKMS_NAME}-{new}"}
    assert "/usr/lib/ramcrypt/tresor-unlock" in files and any(
        f.startswith(f"/usr/src/{DKMS_NAME}-{new}/") for f in files), \
        "the .debs' file lists look wrong"
    left = sorted(f for f in files
                  if os.path.lexists(s.root / f.lstrip("/")))
    assert not left, f"left after purge ({len(left)}): " + ", ".join(left)
    dpkg = s.sh("dpkg-query -W -f '${Package} ${db:Status-Abbrev}\\n' "
                "'ramcrypt-*' 2>&1 || true")
    known = [ln for ln in dpkg.splitlines() if ln.startswith("ramcrypt-")
             and not ln.split()[1:2] == ["un"]]
    assert not known, f"dpkg still knows after the purge: {known}"
    _check_initramfs(s, t1, present=False)
    ctx.note(f"upgrade {ver} -> {new} {t_up:.0f}s: modules and initramfs "
             f"rebuilt, {ver} gone from DKMS; purge {t_purge:.0f}s: none of "
             f"{len(files)} files left, dkms status empty, initramfs "
             "rebuilt without our files")


def _boot_unlock():
    """The namespace of tests/vm/test_boot_unlock.py as the runner loaded
    it (the globals of its registered test; loading the file again would
    register its tests twice)."""
    for t in registry.VM_TESTS:
        if t.name == "boot-initramfs-tools-unlock":
            return t.func.__globals__
    raise AssertionError("tests/vm/test_boot_unlock.py is not loaded")


@vm_test(timeout=2400, est=300)
def test_packages_initramfs_tools_boot(ctx):
    """initramfs-tools root: the install checks of packages-dracut
    (lsinitramfs), then that root, installed from the packages only
    (apt-get install ramcrypt-host, DKMS-built modules, no make install),
    boots on its LUKS2 root with the passphrase typed at the prompt, with
    every check of test_boot_unlock's run_boot (marker, key on every CPU,
    data disk by key file, files read through xts(tresor), /dev/ramcrypt
    for group kvm, RAM dump clean)."""
    boot = _boot_unlock()

    class PkgHost(boot["Host"]):
        """test_boot_unlock's Host on a root from the packages; the root
        (dkms, gcc, kernel headers) needs a larger disk than its ROOT_MB."""

        def _luks_disk(self, img, payload_mb, *args):
            if img == self.root_img:
                payload_mb = max(payload_mb, PKG_ROOT_MB)
            return super()._luks_disk(img, payload_mb, *args)

    host = PkgHost(ctx, "initramfs-tools")
    host.system = CheckedSystem(ctx, "initramfs-tools")
    t0 = time.time()
    host.build()
    t_build = time.time() - t0
    t0 = time.time()
    boot["run_boot"](ctx, host, "initramfs-tools")
    ctx.note(f"booted from the packages (DKMS-built modules): root built "
             f"{t_build:.0f}s, boot {time.time() - t0:.0f}s")
