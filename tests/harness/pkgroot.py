"""The Debian packages as a user gets them: built .debs (cached per source
digest), a local apt repository made with apt-ftparchive, and a Debian 12
root (debroot.stage1() plus what the packages depend on, cached as a layer)
into which `apt-get install ramcrypt-host` installs them by name.

The layer holds every dependency of the two packages (dkms, the compiler,
the root kernel's headers and linux-headers-amd64, dbus, the libraries), so
a test's apt sees only the local repository: the install, upgrade and purge
run offline and resolve ramcrypt-dkms from ramcrypt-host's Depends.
"""
import re
import shutil
import subprocess

from .debroot import DebianSystem, _run, chroot, chroot_mounts
from .kernels import (REPO, build_lock, cache_dir, private_tmp,
                      prune_stale)
from .log import log

PKGS = ("ramcrypt-host", "ramcrypt-dkms")
DKMS_NAME = "ramcrypt-host"
MODULES = ("tresor", "ramcrypt", "tresor_showregs")
LAYER_VERSION = "1"
# What ramcrypt-host and ramcrypt-dkms pull from Debian (their Depends, and
# dkms's), installed once into the cached layer. openssl: dkms signs the
# modules with the MOK key it generates (/var/lib/dkms/mok.key), as on a
# standard Debian 12 install, where openssl is priority important.
LAYER_PKGS = ["dkms", "gcc", "make", "dpkg-dev", "patch", "openssl",
              "linux-headers-amd64", "dbus", "libjson-c5", "libcryptsetup12",
              "libsystemd0", "kmod"]
REPO_DIR = "/srv/ramcrypt-repo"
MAINT = "ramcrypt-host tests <tests@users.noreply.r-seed-8df2d838.example>"


def _head():
    """The commit the packages are built from: HEAD, as a clean clone has
    it. Not the work tree: other work in progress there (a tracked file
    changed to use a file not yet added) must not break the packages."""
    return subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"],
                          capture_output=True, text=True,
                          check=True).stdout.strip()


def _source_digest(commit):
    tree = subprocess.run(["git", "-C", str(REPO), "rev-parse",
                           f"{commit}^{{tree}}"], capture_output=True,
                          text=True, check=True).stdout.strip()
    return tree[:16]


def _export(commit, dest):
    """The commit's files (git archive), as a clean clone has them."""
    dest.mkdir(parents=True)
    arch = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar",
                           commit], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-C", str(dest), "-xf", "-"], input=arch,
                   check=True)
    return dest


def upstream_version(commit="HEAD"):
    text = subprocess.run(["git", "-C", str(REPO), "show",
                           f"{commit}:debian/changelog"], capture_output=True,
                          text=True, check=True).stdout
    m = re.match(r"\S+ \(([^)-]+)-[^)]*\)", text)
    if not m:
        raise RuntimeError("debian/changelog: no version in the first line")
    return m.group(1)


def next_version(ver):
    """0.1.0 -> 0.1.1: the version N+1 an upgrade test installs."""
    parts = ver.split(".")
    parts[-1] = str(int(parts[-1]) + 1)
    return ".".join(parts)


def _bump(src, ver):
    """Make the copy in src version ver (upstream): a changelog entry on
    top, as dch -v would write it, and dkms.conf's PACKAGE_VERSION (which
    debian/rules checks against the changelog)."""
    cl = src / "debian/changelog"
    entry = (f"ramcrypt-host ({ver}-1) unstable; urgency=medium\n\n"
             f"  * Test build of version {ver} (upgrade test).\n\n"
             f" -- {MAINT}  Wed, 02 Dec 2026 22:00:00 +0000\n\n")
    cl.write_text(entry + cl.read_text())
    conf = src / "module/dkms.conf"
    text, n = re.subn(r'^PACKAGE_VERSION="[^"]*"', f'PACKAGE_VERSION="{ver}"',
                      conf.read_text(), flags=re.M)
    if n != 1:
        raise RuntimeError("module/dkms.conf: no PACKAGE_VERSION line")
    conf.write_text(text)


def build_debs(version=None):
    """{package: .deb path} built by dpkg-buildpackage -b from HEAD's
    files, at its version or (version=) a bumped one. Cached per source
    tree and version, built under a private name and renamed into place
    (like kernels.Kernel.build_modules)."""
    commit = _head()
    ver = version or upstream_version(commit)
    d = cache_dir() / "debs"
    d.mkdir(exist_ok=True)
    out = d / f"{_source_digest(commit)}-{ver}"
    with build_lock(out):
        if (out / "build.ok").exists():
            out.touch()
        else:
            prune_stale(d.glob("*-*"), rmtree=True)
            _build_debs(commit, ver, version, out)
    debs = {}
    for name in PKGS:
        found = sorted(out.glob(f"{name}_{ver}-*.deb"))
        if len(found) != 1:
            raise RuntimeError(f"{name} {ver}: built {found}")
        debs[name] = found[0]
    return debs


def _build_debs(commit, ver, version, out):
    tmp = private_tmp(out)
    subprocess.run(["rm", "-rf", str(tmp)], check=True)
    src = _export(commit, tmp / "src" / "ramcrypt-host")
    if version:
        _bump(src, version)
    log(f"dpkg-buildpackage of ramcrypt-host {ver} ({commit[:12]})")
    r = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b"],
                       cwd=src, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(
            f"dpkg-buildpackage ({ver}) failed:\n"
            + "\n".join((r.stdout + r.stderr).splitlines()[-30:]))
    for deb in (tmp / "src").glob("*.deb"):
        deb.rename(tmp / deb.name)
    shutil.rmtree(tmp / "src")
    (tmp / "build.ok").write_text("")
    try:
        tmp.rename(out)
    except OSError:  # another run built the same sources first
        subprocess.run(["rm", "-rf", str(tmp)], check=True)


def deb_files(deb):
    """The files (not directories) a .deb installs, as absolute paths."""
    out = _run(["dpkg-deb", "-c", str(deb)])
    files = set()
    for line in out.splitlines():
        if line.startswith("d"):
            continue
        path = line.split(None, 5)[5].split(" -> ")[0]
        files.add("/" + path.removeprefix("./"))
    return files


class PackagedSystem(DebianSystem):
    """A DebianSystem that gets this project from the packages: unpacked
    from a layer with LAYER_PKGS, then install_project() installs ramcrypt-host by
    name from a local apt repository (no `make install`, no copied
    modules: DKMS builds them in the root for its kernel)."""
    LAYER_NAME = "pkg"
    LAYER_VERSION = LAYER_VERSION

    def __init__(self, release, generator, workdir, version=None):
        super().__init__(release, generator, workdir)
        self.version = version
        self.apt_log = ""
        self.EXTRA_PKGS = tuple(LAYER_PKGS + [f"linux-headers-{release}"])

    def unpack(self):
        super().unpack()
        # only the local repository: every other dependency is installed
        src = self.root / "etc/apt/sources.list.d"
        for f in src.iterdir():
            f.rename(self.root / "etc/apt" / (f.name + ".off"))
        (src / "ramcrypt.list").write_text(
            f"deb [trusted=yes] file:{REPO_DIR} ./\n")

    def publish(self, debs):
        """The .debs as the root's apt repository (apt-ftparchive), in
        place of what it held; apt-get update inside the root."""
        repo = self.root / REPO_DIR.lstrip("/")
        subprocess.run(["rm", "-rf", str(repo)], check=True)
        repo.mkdir(parents=True)
        for deb in debs.values():
            shutil.copy(deb, repo / deb.name)
        packages = _run(["apt-ftparchive", "packages", "."], cwd=repo)
        (repo / "Packages").write_text(packages)
        release = _run(["apt-ftparchive", "-o",
                        "APT::FTPArchive::Release::Origin=ramcrypt-test",
                        "release", "."], cwd=repo)
        (repo / "Release").write_text(release)
        with chroot_mounts(self.root):
            chroot(self.root, "apt-get update -q 2>&1")

    def apt(self, args):
        """apt-get ARGS inside the root; its output is kept in apt_log."""
        with chroot_mounts(self.root):
            out = chroot(self.root, f"apt-get -y -q {args} 2>&1")
        self.apt_log += out
        return out

    def sh(self, script):
        with chroot_mounts(self.root):
            return chroot(self.root, script)

    def install_project(self, module_dir=None, enable=True):
        """`apt-get install ramcrypt-host` by name from the local
        repository (ramcrypt-dkms comes as its dependency), then what the
        admin does: enable tresor-unlock.service (the units ship
        disabled). module_dir is unused: DKMS builds the modules."""
        self.publish(build_debs(self.version))
        out = self.apt("install --no-install-recommends ramcrypt-host")
        if enable:
            self.sh("systemctl enable tresor-unlock.service 2>&1")
        return out

    def dkms_status(self):
        return self.sh("dkms status 2>&1").strip()

    def initramfs_list(self):
        """The file list of /boot/initrd.img-<release> (lsinitrd for
        dracut, lsinitramfs for initramfs-tools)."""
        img = f"/boot/initrd.img-{self.release}"
        tool = "lsinitrd" if self.generator == "dracut" else "lsinitramfs"
        return self.sh(f"{tool} {img}")
