"""The Debian and RPM packages (debian/, rpm/ramcrypt-host.spec; DESIGN.md
§4a): both build from a copy of the tracked tree (dpkg-buildpackage -b,
rpmbuild -bb), lintian reports no error or warning (overrides carry their
reason in the override files), rpmlint no error, and the file lists of the
.deb pair, the .rpm pair and `make install` + the DKMS source tree are the
same (modulo /lib vs /usr/lib, compressed man pages and docs, and the
files the package managers add themselves). Every page in docs/man is
mandoc -Tlint clean and installed."""
import atexit
import functools
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness.registry import unit_test

REPO = Path(__file__).resolve().parents[2]
PKG = "ramcrypt-host"


def _run(cmd, timeout=600, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       **kw)
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"{' '.join(map(str, cmd))}: exit " \
        f"{r.returncode}\n{out[-4000:]}"
    return out


def _need(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    assert not missing, f"missing tools {missing}: run tests/install-deps"


@functools.lru_cache(maxsize=None)
def _work():
    d = Path(tempfile.mkdtemp(prefix="ramcrypt-pkg-"))
    atexit.register(shutil.rmtree, d, True)
    return d


def _copy_tree(dest):
    """The tracked files only (a clean clone), never the checkout itself."""
    files = _run(["git", "-C", str(REPO), "ls-files", "-z"]).split("\0")
    dest.mkdir(parents=True)
    for f in files:
        src = REPO / f
        if not f or not (src.is_file() or src.is_symlink()):
            continue
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / f, follow_symlinks=False)
    return dest


def _dkms_version():
    m = re.search(r'^PACKAGE_VERSION="([^"]+)"',
                  (REPO / "module" / "dkms.conf").read_text(), re.M)
    assert m, "module/dkms.conf: no PACKAGE_VERSION"
    return m.group(1)


def _spec_version():
    m = re.search(r"^Version:\s*(\S+)",
                  (REPO / "rpm" / f"{PKG}.spec").read_text(), re.M)
    assert m, "rpm/ramcrypt-host.spec: no Version:"
    return m.group(1)


@functools.lru_cache(maxsize=None)
def _debs():
    _need("dpkg-buildpackage", "dh", "dh_dkms", "fakeroot")
    top = _work() / "deb"
    src = _copy_tree(top / PKG)
    _run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, timeout=900)
    debs = {}
    for name in (PKG, "ramcrypt-dkms"):
        found = sorted(top.glob(f"{name}_*.deb"))
        assert len(found) == 1, f"{name}: built {found}"
        debs[name] = found[0]
    changes = sorted(top.glob("*.changes"))
    assert len(changes) == 1, changes
    return debs, changes[0]


@functools.lru_cache(maxsize=None)
def _rpms():
    _need("rpmbuild")
    ver = _spec_version()
    top = _work() / "rpm"
    name = f"{PKG}-{ver}"
    _copy_tree(top / "x" / name)
    (top / "SOURCES").mkdir(parents=True)
    _run(["tar", "-C", str(top / "x"), "-czf",
          str(top / "SOURCES" / f"{name}.tar.gz"), name])
    # --nodeps: the BuildRequires are Fedora's names (pkgconfig(...)), which
    # the Debian host's rpm database does not know; the Debian packages
    # that provide them are installed by tests/install-deps.
    # debug_package %{nil}: Debian's rpm has no find-debuginfo.
    _run(["rpmbuild", "-bb", "--nodeps", "--define", f"_topdir {top}",
          "--define", "debug_package %{nil}",
          str(top / "x" / name / "rpm" / f"{PKG}.spec")], timeout=900)
    rpms = {}
    for pkg, arch in ((PKG, "x86_64"), ("ramcrypt-dkms", "noarch")):
        found = sorted((top / "RPMS" / arch).glob(f"{pkg}-{ver}-*.rpm"))
        assert len(found) == 1, f"{pkg}: built {found}"
        rpms[pkg] = found[0]
    return rpms


@functools.lru_cache(maxsize=None)
def _make_install():
    _need("make", "pkg-config")
    src = _copy_tree(_work() / "make" / "src")
    dest = _work() / "make" / "root"
    _run(["make", "-C", str(src), "install", f"DESTDIR={dest}"], timeout=600)
    return dest


def _norm(path):
    """One spelling for a path in all three lists: merged /usr, man pages
    and docs without the compression suffix the packagers add."""
    p = re.sub(r"/+", "/", "/" + re.sub(r"^\./", "", path))
    if p.startswith("/lib/") or p.startswith("/sbin/") \
            or p.startswith("/bin/"):
        p = "/usr" + p
    if p.startswith("/usr/share/man/") or p.startswith("/usr/share/doc/"):
        p = re.sub(r"\.(gz|bz2|xz|zst)$", "", p)
    return p


# What dpkg/debhelper and rpmbuild add to every package by themselves.
DEB_EXTRA = re.compile(r"^/usr/share/doc/[^/]+/(copyright|changelog\.Debian)$"
                       r"|^/usr/share/lintian/overrides/[^/]+$")
RPM_EXTRA = re.compile(r"^/usr/share/licenses/[^/]+/copyright$"
                       r"|^/usr/lib/\.build-id/")


def _deb_files(deb):
    r = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True,
                       text=True, check=True)
    files = set()
    for line in r.stdout.splitlines():
        mode, path = line.split()[0], line.split(None, 5)[5]
        if mode.startswith("d"):
            continue
        path = path.split(" -> ")[0]
        p = _norm(path)
        if not DEB_EXTRA.search(p):
            files.add(p)
    return files


def _rpm_files(rpm):
    r = subprocess.run(["rpm", "-qp", "--nosignature", "--nodigest",
                        "--qf", "[%{FILEMODES:perms} %{FILENAMES}\n]",
                        str(rpm)], capture_output=True, text=True,
                       check=True)
    files = set()
    for line in r.stdout.splitlines():
        mode, path = line.split(" ", 1)
        if mode.startswith("d"):
            continue
        p = _norm(path)
        if not RPM_EXTRA.search(p):
            files.add(p)
    return files


def _expected():
    root = _make_install()
    host = {_norm("/" + str(f.relative_to(root))) for f in root.rglob("*")
            if f.is_file() or f.is_symlink()}
    assert host, "make install installed nothing"
    mod = _run(["git", "-C", str(REPO), "ls-files", "module"]).split()
    dkms = {f"/usr/src/{PKG}-{_dkms_version()}/" + f[len("module/"):]
            for f in mod}
    return {PKG: host, "ramcrypt-dkms": dkms}


def _diff(what, got, want):
    missing = sorted(want - got)
    extra = sorted(got - want)
    msg = []
    if missing:
        msg.append(f"{what} lacks {len(missing)}: " + ", ".join(missing))
    if extra:
        msg.append(f"{what} has {len(extra)} not in make install/DKMS "
                   "tree: " + ", ".join(extra))
    return msg


@unit_test()
def test_deb_build_lintian():
    """dpkg-buildpackage -b builds ramcrypt-host and ramcrypt-dkms; lintian
    has no error or warning; units shipped but not enabled or started;
    update-initramfs triggers, the conffile and the Depends are there."""
    _need("lintian")
    debs, changes = _debs()
    r = subprocess.run(["lintian", "--pedantic", str(changes)],
                       capture_output=True, text=True, timeout=600)
    bad = [ln for ln in r.stdout.splitlines() if re.match(r"[EW]: ", ln)]
    assert not bad and r.returncode == 0, \
        "lintian:\n" + "\n".join(bad or [r.stdout + r.stderr])
    ctl = _work() / "debctl"
    ctl.mkdir(exist_ok=True)
    info = {}
    for name, deb in debs.items():
        _run(["dpkg-deb", "-e", str(deb), str(ctl / name)])
        info[name] = _run(["dpkg-deb", "-f", str(deb)])
    host = ctl / PKG
    postinst = (host / "postinst").read_text()
    assert "deb-systemd-invoke" not in postinst, \
        "ramcrypt-host's postinst starts units:\n" + postinst
    # Units with an [Install] section get dh_installsystemd's snippet; with
    # --no-enable it only re-enables a unit the admin had enabled.
    udir = _make_install() / "usr/lib/systemd/system"
    if not udir.is_dir():
        udir = _make_install() / "lib/systemd/system"
    units = [u.name for u in sorted(udir.glob("*.service"))
             if "[Install]" in u.read_text()]
    assert units, f"make install installs no enableable unit in {udir}"
    for name in units:
        assert f"deb-systemd-helper debian-installed '{name}'" in postinst, \
            f"{name}: postinst enables it (not --no-enable)"
    for name in debs:
        trig = (ctl / name / "triggers").read_text()
        assert "activate-noawait update-initramfs" in trig, (name, trig)
    assert "/etc/ramcrypt/ramcryptd.json" in \
        (host / "conffiles").read_text().split(), "ramcryptd.json conffile"
    for want in ("ramcrypt-dkms (= ", "libcryptsetup12", "libsystemd0",
                 "libjson-c5", "dbus", "systemd"):
        assert want in info[PKG].split("Depends:", 1)[1].split("\n")[0], \
            f"ramcrypt-host Depends lacks {want}:\n{info[PKG]}"
    assert "Recommends: dracut | initramfs-tools" in info[PKG], info[PKG]
    dep = info["ramcrypt-dkms"]
    assert "linux-headers-amd64 | linux-headers-generic" in dep \
        and "dkms" in dep.split("Depends:", 1)[1], dep
    print(f"    {', '.join(p.name for p in debs.values())}: lintian clean")


@unit_test()
def test_rpm_build_rpmlint():
    """rpmbuild -bb builds ramcrypt-host and ramcrypt-dkms (noarch);
    rpmlint (with rpm/ramcrypt-host.rpmlintrc's commented filters) reports
    no error; the dkms scriptlets and dracut %posttrans are there."""
    _need("rpmlint", "rpm")
    rpms = _rpms()
    r = subprocess.run(["rpmlint", "-r",
                        str(REPO / "rpm" / f"{PKG}.rpmlintrc")]
                       + [str(p) for p in rpms.values()],
                       capture_output=True, text=True, timeout=600)
    errors = [ln for ln in r.stdout.splitlines() if ": E: " in ln]
    assert not errors, "rpmlint:\n" + "\n".join(errors)
    assert re.search(r"\b0 errors\b", r.stdout), r.stdout[-2000:]
    scripts = _run(["rpm", "-qp", "--scripts", "--nosignature",
                    str(rpms["ramcrypt-dkms"])])
    for want in ("/usr/lib/dkms/common.postinst", "dkms remove",
                 "--rpm_safe_upgrade"):
        assert want in scripts, f"ramcrypt-dkms scriptlets lack {want}"
    scripts = _run(["rpm", "-qp", "--scripts", "--nosignature",
                    str(rpms[PKG])])
    assert "posttrans" in scripts and "dracut --regenerate-all" in scripts, \
        scripts
    conf = _run(["rpm", "-qcp", "--nosignature", str(rpms[PKG])]).split()
    assert "/etc/ramcrypt/ramcryptd.json" in conf, conf
    arch = _run(["rpm", "-qp", "--qf", "%{ARCH}", "--nosignature",
                 str(rpms["ramcrypt-dkms"])]).strip()
    assert arch == "noarch", arch
    print(f"    {', '.join(p.name for p in rpms.values())}: rpmlint "
          "0 errors")


@unit_test()
def test_package_file_lists():
    """The .deb pair, the .rpm pair and make install + module/ as the DKMS
    tree hold the same files; every difference is named."""
    want = _expected()
    debs, _ = _debs()
    rpms = _rpms()
    msg = []
    for name in (PKG, "ramcrypt-dkms"):
        msg += _diff(f"{debs[name].name}", _deb_files(debs[name]),
                     want[name])
        msg += _diff(f"{rpms[name].name}", _rpm_files(rpms[name]),
                     want[name])
    assert not msg, "\n".join(msg)
    for page in sorted((REPO / "docs" / "man").iterdir()):
        sec = page.name.rsplit(".", 1)[1]
        assert f"/usr/share/man/man{sec}/{page.name}" in want[PKG], \
            f"docs/man/{page.name} is not installed by make install"
    print(f"    {len(want[PKG])} + {len(want['ramcrypt-dkms'])} files, "
          "same in the .debs, the .rpms and make install")


@unit_test()
def test_man_pages_lint():
    """mandoc -Tlint reports nothing (not even style) for every page in
    docs/man."""
    _need("mandoc")
    pages = sorted(p for p in (REPO / "docs" / "man").iterdir()
                   if re.search(r"\.[1-8]$", p.name))
    assert pages, "docs/man has no page"
    bad = []
    for p in pages:
        r = subprocess.run(["mandoc", "-Tlint", "-W", "style", str(p)],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0 or r.stdout or r.stderr:
            bad.append(r.stdout + r.stderr)
    assert not bad, "\n".join(bad)
    print(f"    {len(pages)} pages: " + ", ".join(p.name for p in pages))
