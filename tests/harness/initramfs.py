"""Busybox initramfs for the test guests, written as a newc cpio in Python.

A Python writer needs no root for device nodes and is deterministic. The base
image (busybox, kernel modules, our modules, test programs, host binaries with
their libraries) is built once per kernel and cached; each boot may append a
second small archive with per-test files (the kernel unpacks both).
"""
import hashlib
import lzma
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from .kernels import OUR_MODULES, build_test_kmods

REPO = Path(__file__).resolve().parents[2]
GUEST_DIR = REPO / "tests" / "guest"

# Kernel modules every test guest carries (dependencies are added).
GUEST_KMODS = [
    "virtio_pci", "virtio_blk", "virtio_console",
    "dm_mod", "dm_crypt", "xts", "ecb", "cbc", "aesni_intel", "aes_generic",
    "af_alg", "algif_skcipher", "ext4", "crc32c_generic", "crc32c_intel",
    "irqbypass", "ccp", "kvm", "kvm_amd", "kvm_intel",
]

# Host programs copied into the guest with their shared libraries.
HOST_BINARIES = ["dmsetup", "cryptsetup", "mkfs.ext4", "e2fsck", "debugfs"]


class Cpio:
    """Minimal newc writer."""

    def __init__(self):
        self.buf = bytearray()
        self.ino = 1
        self.seen = set()

    def _entry(self, name, mode, data=b"", rdev=(0, 0), nlink=1):
        name = name.lstrip("/")
        hdr = "070701" + "".join("%08X" % v for v in (
            self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0,
            rdev[0], rdev[1], len(name) + 1, 0))
        self.ino += 1
        self.buf += hdr.encode() + name.encode() + b"\0"
        self.buf += b"\0" * (-len(self.buf) % 4)
        self.buf += data
        self.buf += b"\0" * (-len(self.buf) % 4)

    def dir(self, name, mode=0o755):
        name = name.strip("/")
        if not name or name in self.seen:
            return
        parent = os.path.dirname(name)
        if parent:
            self.dir(parent)
        self.seen.add(name)
        self._entry(name, stat.S_IFDIR | mode, nlink=2)

    def file(self, name, data, mode=0o644):
        name = name.strip("/")
        if name in self.seen:
            return
        self.dir(os.path.dirname(name))
        self.seen.add(name)
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name, target):
        name = name.strip("/")
        if name in self.seen:
            return
        self.dir(os.path.dirname(name))
        self.seen.add(name)
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def node(self, name, kind, major, minor, mode=0o600):
        name = name.strip("/")
        self.dir(os.path.dirname(name))
        self.seen.add(name)
        self._entry(name, kind | mode, rdev=(major, minor))

    def host_file(self, name, path, mode=None):
        path = Path(path)
        if mode is None:
            mode = stat.S_IMODE(path.stat().st_mode)
        self.file(name, path.read_bytes(), mode)

    def finish(self):
        self._entry("TRAILER!!!", 0, nlink=1)
        self.buf += b"\0" * (-len(self.buf) % 512)
        return bytes(self.buf)


def _ldd_libs(path):
    out = subprocess.run(["ldd", str(path)], capture_output=True,
                         text=True).stdout
    libs = []
    for line in out.splitlines():
        line = line.strip()
        if "=>" in line:
            target = line.split("=>", 1)[1].split("(")[0].strip()
            if target and target.startswith("/"):
                libs.append(target)
        elif line.startswith("/"):
            libs.append(line.split()[0])
    return libs


def copy_exec(cpio, path, dest=None):
    """Copy a host executable and the shared libraries it needs."""
    path = Path(shutil.which(str(path)) or path)
    if not path.exists():
        raise RuntimeError(f"host binary {path} not found (is its package "
                           f"installed? see .ci/run)")
    cpio.host_file(dest or str(path), path.resolve(), 0o755)
    for lib in _ldd_libs(path):
        real = Path(lib).resolve()
        cpio.host_file(lib, real, 0o755)


class ModuleIndex:
    """Name -> file map and dependencies of an unpacked Debian module tree."""

    def __init__(self, tree):
        self.tree = Path(tree)
        self.paths = {}
        for p in self.tree.rglob("*.ko*"):
            name = p.name.split(".ko")[0].replace("-", "_")
            self.paths[name] = p
        self._deps = {}
        builtin = self.tree / "modules.builtin"
        self.builtin = set()
        if builtin.exists():
            for line in builtin.read_text().splitlines():
                self.builtin.add(Path(line).name.split(".ko")[0]
                                 .replace("-", "_"))

    def deps(self, name):
        if name not in self._deps:
            self._deps[name] = _ko_deps(self.paths[name])
        return self._deps[name]

    def closure(self, names):
        """Modules to ship (dependencies first); builtins are skipped."""
        order, seen = [], set()

        def visit(n):
            n = n.replace("-", "_")
            if n in seen:
                return
            seen.add(n)
            if n not in self.paths:
                if n in self.builtin:
                    return
                raise RuntimeError(f"module {n} not in {self.tree}")
            for d in self.deps(n):
                visit(d)
            order.append(n)
        for n in names:
            visit(n)
        return order

    def read(self, name):
        p = self.paths[name]
        data = p.read_bytes()
        if p.name.endswith(".xz"):
            data = lzma.decompress(data)
        elif p.name.endswith(".zst"):
            data = subprocess.run(["zstd", "-dc", str(p)], check=True,
                                  capture_output=True).stdout
        return data


def _guest_programs():
    """Static in-guest test programs, built by `make -C tests/guest`."""
    subprocess.run(["make", "-s", "-C", str(GUEST_DIR)], check=True)
    return sorted(p for p in (GUEST_DIR / "bin").iterdir() if p.is_file())


def _ko_deps(path):
    out = subprocess.run(["modinfo", "-F", "depends", str(path)],
                         capture_output=True, text=True).stdout
    return [d.replace("-", "_") for d in out.strip().split(",") if d]


def build_base(kernel, module_dir, out_path):
    """Write the cached base initramfs for one kernel; return its path."""
    tree = kernel.module_tree()
    idx = ModuleIndex(tree)
    ours = {ko: _ko_deps(Path(module_dir) / f"{ko}.ko")
            for ko in OUR_MODULES}
    # Test-only modules (tests/kmod), loaded only by the tests that use them.
    test_kos = sorted(build_test_kmods(kernel).glob("*.ko"))
    wanted = [m for m in GUEST_KMODS if m in idx.paths or m in idx.builtin]
    wanted += [d for deps in ours.values() for d in deps if d not in ours]
    mods = idx.closure(wanted)
    c = Cpio()
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev",
              "tmp", "run", "mnt", "root", "etc", "var/tmp"):
        c.dir(d)
    c.node("dev/console", stat.S_IFCHR, 5, 1)
    c.node("dev/null", stat.S_IFCHR, 1, 3, 0o666)
    c.node("dev/ttyS0", stat.S_IFCHR, 4, 64)
    busybox = Path("/bin/busybox")
    c.host_file("bin/busybox", busybox, 0o755)
    applets = subprocess.run([str(busybox), "--list"], capture_output=True,
                             text=True, check=True).stdout.split()
    for a in applets:
        if a != "busybox":
            c.symlink("bin/" + a, "busybox")
    # The kernel's module autoloader calls /sbin/modprobe.
    c.symlink("sbin/modprobe", "/bin/busybox")
    mdir = f"lib/modules/{kernel.release}"
    # Stage the module tree and let depmod write modules.dep/.alias/...
    # (busybox modprobe and the kernel's autoloader need both).
    with tempfile.TemporaryDirectory() as stage:
        sroot = Path(stage) / mdir
        for m in mods:
            rel = idx.paths[m].relative_to(tree).as_posix().split(".ko")[0]
            dst = sroot / (rel + ".ko")
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(idx.read(m))
        (sroot / "extra").mkdir(parents=True, exist_ok=True)
        for ko in ours:
            shutil.copy(Path(module_dir) / f"{ko}.ko", sroot / "extra")
        for ko in test_kos:
            shutil.copy(ko, sroot / "extra")
        for f in ("modules.order", "modules.builtin",
                  "modules.builtin.modinfo"):
            if (tree / f).exists():
                shutil.copy(tree / f, sroot / f)
        subprocess.run(["depmod", "-b", stage, kernel.release], check=True)
        for f in sorted(sroot.rglob("*")):
            if f.is_file() and not f.name.endswith(".bin"):
                c.host_file(f"{mdir}/{f.relative_to(sroot).as_posix()}", f,
                            0o644)
    for prog in _guest_programs():
        c.host_file("usr/bin/" + prog.name, prog, 0o755)
    for b in HOST_BINARIES:
        copy_exec(c, b)
    c.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
           b"nobody:x:65534:65534:nobody:/:/bin/false\n")
    c.file("etc/group", b"root:x:0:\nkvm:x:108:\nnogroup:x:65534:\n")
    c.host_file("init", REPO / "tests" / "guest" / "init.sh", 0o755)
    c.host_file("usr/bin/guest-agent", REPO / "tests" / "guest" / "agent.sh",
                0o755)
    Path(out_path).write_bytes(c.finish())
    return out_path


def build_extra(files):
    """A second archive with per-boot files: {guest path: bytes or Path}."""
    c = Cpio()
    for name, data in files.items():
        if isinstance(data, Path):
            c.host_file(name, data)
        else:
            mode = 0o755 if name.endswith(".sh") else 0o644
            c.file(name, data if isinstance(data, bytes) else data.encode(),
                   mode)
    return c.finish()


def digest_inputs(paths):
    h = hashlib.sha256()
    for p in paths:
        p = Path(p)
        files = sorted(p.rglob("*")) if p.is_dir() else [p]
        for f in files:
            if f.is_file():
                h.update(str(f).encode())
                h.update(f.read_bytes())
    return h.hexdigest()[:16]
