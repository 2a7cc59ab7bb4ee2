"""Debian kernels under test: resolve, download, unpack, build our modules."""
import hashlib
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

from .log import log

REPO = Path(__file__).resolve().parents[2]

# The modules module/ builds (and the guest carries under extra/).
OUR_MODULES = ("tresor", "ramcrypt", "tresor_showregs")

# DESIGN.md §5. Each entry: pinned release, and the series to fall back to
# (newest available in the archive) once Debian drops the pinned one.
DEFAULT_KERNELS = [
    ("6.1.0-56-amd64", r"6\.1\.0-\d+-amd64"),
    ("6.12.107+deb12-amd64", r"6\.12\.\d+\+deb12-amd64"),
]


def cache_dir():
    d = Path(os.environ.get("RAMCRYPT_TEST_CACHE",
                            Path.home() / ".cache" / "ramcrypt-tests"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def _apt_has(pkg):
    out = subprocess.run(["apt-cache", "policy", pkg], capture_output=True,
                         text=True).stdout
    m = re.search(r"Candidate:\s*(\S+)", out)
    return bool(m) and m.group(1) != "(none)"


def _newest_in_series(pattern):
    out = subprocess.run(["apt-cache", "search", "--names-only",
                          "^linux-image-"], capture_output=True,
                         text=True).stdout
    rels = []
    for line in out.splitlines():
        name = line.split(" ", 1)[0]
        rel = name[len("linux-image-"):]
        if re.fullmatch(pattern, rel):
            rels.append(rel)

    def key(r):
        return [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", r)]
    return sorted(rels, key=key)[-1] if rels else None


def resolve_kernels():
    """Kernel releases to test, from RAMCRYPT_TEST_KERNELS or the defaults."""
    env = os.environ.get("RAMCRYPT_TEST_KERNELS")
    if env:
        return env.split()
    rels = []
    for pinned, series in DEFAULT_KERNELS:
        if (cache_dir() / pinned / "vmlinuz").exists() or \
                _apt_has("linux-image-" + pinned):
            rels.append(pinned)
            continue
        newer = _newest_in_series(series)
        if not newer:
            raise RuntimeError(f"no Debian kernel image for {pinned} or its "
                               f"series in the apt archive")
        log(f"kernel {pinned} is gone from the archive, using {newer}")
        rels.append(newer)
    return rels


_build_locks = {}
_build_locks_guard = threading.Lock()


def build_lock(product):
    """A lock for building the cached product at this path: the runner's
    threads (6.1 and 6.12 side by side) may want the same product at the
    same moment (the .debs, a root layer); the second waits and then finds
    it built instead of building it again. Other processes (a CI clone,
    another checkout) are kept apart by private_tmp() names."""
    with _build_locks_guard:
        return _build_locks.setdefault(str(product), threading.Lock())


def private_tmp(product):
    """The private name a product is built under before it is renamed into
    place: unique per process and thread."""
    product = Path(product)
    return product.with_name(
        f"{product.name}.{os.getpid()}-{threading.get_ident()}.tmp")


def prune_stale(paths, max_idle_s=86400, rmtree=False):
    """Delete cached build products not used (mtime: touched on use) for
    max_idle_s: several checkouts with different inputs share the cache at
    the same time, so a product another run uses now must survive."""
    for p in paths:
        try:
            if time.time() - p.stat().st_mtime > max_idle_s:
                if rmtree:
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink()
        except FileNotFoundError:
            pass


class Kernel:
    """One unpacked Debian kernel image package plus our modules built for it."""

    def __init__(self, release):
        self.release = release
        self.dir = cache_dir() / release
        self.root = self.dir / "root"
        self.vmlinuz = self.dir / "vmlinuz"
        self.build_dir = Path("/lib/modules") / release / "build"

    @property
    def short(self):
        return ".".join(self.release.split(".")[:2]).split("-")[0]

    def fetch(self):
        """Download and unpack linux-image-<release> into the cache (once)."""
        if self.vmlinuz.exists():
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        pkg = "linux-image-" + self.release
        for f in self.dir.glob("*.deb"):
            f.unlink()
        log(f"downloading {pkg}")
        subprocess.run(["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", pkg], cwd=self.dir,
                       check=True, stdout=subprocess.DEVNULL)
        deb = next(self.dir.glob("linux-image-*.deb"))
        tmp = self.dir / "root.tmp"
        subprocess.run(["rm", "-rf", str(tmp)], check=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp)], check=True)
        subprocess.run(["rm", "-rf", str(self.root)], check=True)
        tmp.rename(self.root)
        deb.unlink()
        (self.root / "boot" / ("vmlinuz-" + self.release)).rename(self.vmlinuz)

    def module_tree(self):
        return self.root / "lib" / "modules" / self.release

    def check_headers(self):
        if not (self.build_dir / "Makefile").exists():
            raise RuntimeError(
                f"kernel headers for {self.release} are missing: "
                f"apt-get install linux-headers-{self.release}")

    def build_modules(self):
        """Build module/ for this kernel in a private copy; return the dir.

        Returns (dir, warnings): the compiler's warning lines, which the
        module-build test asserts to be empty."""
        self.check_headers()
        # One directory per source digest, built under a private name and
        # renamed into place: other checkouts (a CI clone, another
        # engineer's tree) build other sources into the same cache at the
        # same time, and must never replace the .ko files a run is using.
        digest = _tree_digest(REPO / "module")
        out = self.dir / f"module-build-{digest}"
        with build_lock(out):
            return self._build_modules(out)

    def _build_modules(self, out):
        log_file = out / "build.log"
        if all((out / f"{m}.ko").exists() for m in OUR_MODULES):
            out.touch()
            return out, _warnings(log_file.read_text())
        prune_stale(self.dir.glob("module-build-*"), rmtree=True)
        tmp = private_tmp(out)
        subprocess.run(["rm", "-rf", str(tmp)], check=True)
        subprocess.run(["cp", "-r", str(REPO / "module"), str(tmp)], check=True)
        r = subprocess.run(["make", "-C", str(tmp), "KVER=" + self.release,
                            "modules"], capture_output=True, text=True)
        text = r.stdout + r.stderr
        (tmp / "build.log").write_text(text)
        if r.returncode != 0:
            raise RuntimeError(f"module build for {self.release} failed:\n"
                               + "\n".join(text.splitlines()[-30:]))
        try:
            tmp.rename(out)
        except OSError:  # another run finished the same sources first
            subprocess.run(["rm", "-rf", str(tmp)], check=True)
        return out, _warnings(text)


def _warnings(build_log):
    return [ln for ln in build_log.splitlines()
            if re.search(r"warning:|WARNING:", ln)]


def _tree_digest(path):
    h = hashlib.sha256()
    for f in sorted(Path(path).rglob("*")):
        if f.is_file() and f.suffix in (".c", ".h", ".S", "") or \
                f.name in ("Kbuild", "Makefile"):
            if f.is_file():
                h.update(str(f.relative_to(path)).encode())
                h.update(f.read_bytes())
    return h.hexdigest()[:16]


def build_test_kmods(kernel):
    """Build the test-only modules of tests/kmod (never shipped) for this
    kernel in a private copy; return the dir with their .ko files. Like
    module/, they must build without warnings."""
    kernel.check_headers()
    src = REPO / "tests" / "kmod"
    # Per source digest, renamed into place (see Kernel.build_modules).
    digest = _tree_digest(src)
    out = kernel.dir / f"kmod-build-{digest}"
    with build_lock(out):
        if (out / "build.ok").exists():
            out.touch()
            return out
        prune_stale(kernel.dir.glob("kmod-build-*"), rmtree=True)
        _build_test_kmods(kernel, src, out)
    return out


def _build_test_kmods(kernel, src, out):
    tmp = private_tmp(out)
    subprocess.run(["rm", "-rf", str(tmp)], check=True)
    subprocess.run(["cp", "-r", str(src), str(tmp)], check=True)
    r = subprocess.run(["make", "-C", str(kernel.build_dir), f"M={tmp}",
                        "modules"], capture_output=True, text=True)
    text = r.stdout + r.stderr
    if r.returncode != 0 or _warnings(text):
        raise RuntimeError(f"tests/kmod build for {kernel.release} failed:\n"
                           + "\n".join(text.splitlines()[-30:]))
    (tmp / "build.ok").write_text("")
    try:
        tmp.rename(out)
    except OSError:  # another run finished the same sources first
        subprocess.run(["rm", "-rf", str(tmp)], check=True)
