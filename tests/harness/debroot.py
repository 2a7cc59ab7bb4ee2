"""A real Debian 12 system for boot tests.

Stage 1 (cached in the test cache, keyed by everything that goes into it):
debootstrap a minbase bookworm root, then apt-get install the kernel under
test and one initramfs generator (dracut or initramfs-tools) inside it.
Stage 2 (per test): unpack it, `make install` this project into it, put the
modules where DKMS would (updates/dkms), and let the generator build the
initramfs inside the root, as `update-initramfs` / `dracut` would on a host.
"""
import contextlib
import hashlib
import shutil
import subprocess
from pathlib import Path

from .kernels import (REPO, build_lock, cache_dir, private_tmp,
                      prune_stale)
from .log import log

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
BASE_PKGS = ["systemd", "systemd-sysv", "udev", "kmod", "libcryptsetup12",
             "libdevmapper1.02.1", "libblkid1", "e2fsprogs", "zstd"]
GENERATORS = {
    "dracut": ["dracut"],
    "initramfs-tools": ["initramfs-tools", "busybox"],
}
# What a headless VM never needs: keeps the root image (and the work of
# encrypting it on the host) small. Written before the kernel is installed.
SLIM = """\
path-exclude=/usr/share/doc/*
path-exclude=/usr/share/man/*
path-exclude=/usr/share/locale/*
path-exclude=/usr/share/info/*
path-exclude=/lib/modules/*/kernel/sound/*
path-exclude=/lib/modules/*/kernel/drivers/gpu/*
path-exclude=/lib/modules/*/kernel/drivers/media/*
path-exclude=/lib/modules/*/kernel/drivers/net/wireless/*
path-exclude=/lib/modules/*/kernel/drivers/net/ethernet/*
path-exclude=/lib/modules/*/kernel/drivers/infiniband/*
path-exclude=/lib/modules/*/kernel/drivers/staging/*
path-exclude=/lib/modules/*/kernel/drivers/bluetooth/*
path-exclude=/lib/modules/*/kernel/drivers/usb/*
path-exclude=/lib/modules/*/kernel/drivers/iio/*
path-exclude=/lib/modules/*/kernel/drivers/isdn/*
path-exclude=/lib/modules/*/kernel/net/wireless/*
path-exclude=/lib/modules/*/kernel/net/mac80211/*
path-exclude=/lib/modules/*/kernel/net/bluetooth/*
"""
STAGE1_VERSION = "2"
AGENT_UNIT = """\
[Unit]
Description=ramcrypt test agent on ttyS1 (tests only)
After=local-fs.target

[Service]
Environment=AGENT_TTY=ttyS1
ExecStart=/bin/sh /usr/local/lib/ramcrypt-test/agent.sh

[Install]
WantedBy=multi-user.target
"""


def _run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed "
                           f"({r.returncode}):\n"
                           + "\n".join((r.stdout + r.stderr)
                                       .splitlines()[-30:]))
    return r.stdout


@contextlib.contextmanager
def chroot_mounts(root):
    """/proc, /sys and /dev inside root while the block runs."""
    done = []
    try:
        for src, dst, args in (("proc", "proc", ["-t", "proc"]),
                               ("sysfs", "sys", ["-t", "sysfs"]),
                               ("/dev", "dev", ["--bind"])):
            _run(["mount", *args, src, str(root / dst)])
            done.append(root / dst)
        yield
    finally:
        for p in reversed(done):
            subprocess.run(["umount", "-l", str(p)], capture_output=True)


def chroot(root, script, env=None):
    """Run a shell script inside root (mounts must be set up)."""
    base = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
            "DEBIAN_FRONTEND": "noninteractive", "HOME": "/root"}
    base.update(env or {})
    return _run(["chroot", str(root), "/bin/sh", "-ec", script], env=base)


def _stage1_key(release, generator):
    h = hashlib.sha256()
    for part in (STAGE1_VERSION, SUITE, MIRROR, release, generator,
                 " ".join(BASE_PKGS), " ".join(GENERATORS[generator]), SLIM):
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:12]


def stage1(release, generator):
    """The cached tarball of a bookworm root with the kernel and generator."""
    d = cache_dir() / "debroot"
    d.mkdir(exist_ok=True)
    tar = d / f"{SUITE}-{generator}-{release}-{_stage1_key(release, generator)}.tar.zst"
    with build_lock(tar):
        if tar.exists():
            tar.touch()
            return tar
        prune_stale(d.glob(f"{SUITE}-{generator}-{release}-*.tar.zst"))
        _build_stage1(tar, release, generator)
    return tar


def _build_stage1(tar, release, generator):
    root = private_tmp(tar.with_name("build-" + tar.name.split(".tar")[0]))
    subprocess.run(["rm", "-rf", str(root)], check=True)
    log(f"debootstrap {SUITE} for {generator} ({release}), once")
    _run(["debootstrap", "--variant=minbase",
          "--include=" + ",".join(BASE_PKGS), SUITE, str(root), MIRROR])
    (root / "etc/dpkg/dpkg.cfg.d/90-ramcrypt-test-slim").write_text(SLIM)
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    (root / "etc/apt/sources.list.d/debian.sources").write_text(
        f"Types: deb\nURIs: {MIRROR}\nSuites: {SUITE} {SUITE}-updates\n"
        "Components: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: http://deb.debian.org/debian-security\n"
        f"Suites: {SUITE}-security\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    with chroot_mounts(root):
        # the kernel's postinst builds an initramfs the tests do not use
        chroot(root, "apt-get update -q && apt-get install -y -q "
               "--no-install-recommends "
               + " ".join(GENERATORS[generator])
               + f" linux-image-{release} && apt-get clean"
               " && rm -rf /var/lib/apt/lists/*"
               f" && rm -f /boot/initrd.img-{release}",
               env={"INITRD": "No"})
    tmp = private_tmp(tar)
    _run(["tar", "--zstd", "--numeric-owner", "-C", str(root), "-cf",
          str(tmp), "."])
    tmp.rename(tar)
    subprocess.run(["rm", "-rf", str(root)], check=True)


def layer(release, generator, pkgs, name, version="1"):
    """stage1() plus the Debian packages pkgs, cached as its own tarball
    keyed by the base tarball, the list and version: a test that needs
    cryptsetup, libvirt or QEMU in its root names them here (the layer is
    built once, later runs unpack it)."""
    base = stage1(release, generator)
    h = hashlib.sha256()
    for part in (version, base.name, " ".join(pkgs)):
        h.update(part.encode() + b"\0")
    d = cache_dir() / "debroot"
    stem = f"{name}-{SUITE}-{generator}-{release}"
    tar = d / f"{stem}-{h.hexdigest()[:12]}.tar.zst"
    with build_lock(tar):
        if tar.exists():
            tar.touch()
            return tar
        prune_stale(d.glob(f"{stem}-*.tar.zst"))
        _build_layer(tar, base, release, generator, pkgs, name)
    return tar


def _build_layer(tar, base, release, generator, pkgs, name):
    root = private_tmp(tar.with_name("build-" + tar.name.split(".tar")[0]))
    subprocess.run(["rm", "-rf", str(root)], check=True)
    root.mkdir(parents=True)
    log(f"{name} root layer for {generator} ({release}), once: "
        + " ".join(pkgs))
    _run(["tar", "--zstd", "--numeric-owner", "-C", str(root), "-xf",
          str(base)])
    with chroot_mounts(root):
        chroot(root, "apt-get update -q && apt-get install -y -q "
               "--no-install-recommends " + " ".join(pkgs)
               + " && apt-get clean && rm -rf /var/lib/apt/lists/*"
               f" && rm -f /boot/initrd.img-{release}",
               env={"INITRD": "No"})
    tmp = private_tmp(tar)
    _run(["tar", "--zstd", "--numeric-owner", "-C", str(root), "-cf",
          str(tmp), "."])
    tmp.rename(tar)
    subprocess.run(["rm", "-rf", str(root)], check=True)


class DebianSystem:
    """One Debian root in a test's work dir."""

    # a subclass (or an instance) names Debian packages to add to the
    # root: they come from layer(), cached under LAYER_NAME
    EXTRA_PKGS = ()
    LAYER_NAME = "extra"
    LAYER_VERSION = "1"

    def __init__(self, release, generator, workdir, extra_pkgs=None):
        if extra_pkgs is not None:
            self.EXTRA_PKGS = tuple(extra_pkgs)
        if generator not in GENERATORS:
            raise ValueError(f"unknown initramfs generator {generator!r}")
        self.release = release
        self.generator = generator
        self.root = Path(workdir) / f"root-{generator}"
        self.initrd = Path(workdir) / f"initrd-{generator}.img"
        self.vmlinuz = self.root / "boot" / f"vmlinuz-{release}"

    def tarball(self):
        if not self.EXTRA_PKGS:
            return stage1(self.release, self.generator)
        return layer(self.release, self.generator, list(self.EXTRA_PKGS),
                     self.LAYER_NAME, self.LAYER_VERSION)

    def unpack(self):
        tar = self.tarball()
        subprocess.run(["rm", "-rf", str(self.root)], check=True)
        self.root.mkdir(parents=True)
        _run(["tar", "--zstd", "--numeric-owner", "-C", str(self.root),
              "-xf", str(tar)])

    def install_project(self, module_dir):
        """`make install` plus the modules where DKMS puts them."""
        _run(["make", "-s", "-C", str(REPO), "install",
              f"DESTDIR={self.root}"])
        dkms = self.root / "lib/modules" / self.release / "updates/dkms"
        dkms.mkdir(parents=True, exist_ok=True)
        for ko in Path(module_dir).glob("*.ko"):
            shutil.copy(ko, dkms / ko.name)
        # what the package's postinst does (debhelper: deb-systemd-helper)
        chroot(self.root, "systemctl enable tresor-unlock.service")

    def install_agent(self):
        """The test agent as a service on ttyS1 (the console stays ttyS0)."""
        d = self.root / "usr/local/lib/ramcrypt-test"
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "tests/guest/agent.sh", d / "agent.sh")
        unit = self.root / "etc/systemd/system/ramcrypt-test-agent.service"
        unit.write_text(AGENT_UNIT)
        wants = self.root / "etc/systemd/system/multi-user.target.wants"
        wants.mkdir(parents=True, exist_ok=True)
        (wants / unit.name).unlink(missing_ok=True)
        (wants / unit.name).symlink_to(f"/etc/systemd/system/{unit.name}")

    def write(self, path, text, mode=0o644):
        p = self.root / path.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text) if isinstance(text, str) else p.write_bytes(text)
        p.chmod(mode)

    def make_initramfs(self, dracut_args="", dest=None):
        """Run the generator inside the root, the way the host's kernel
        hooks would; copy the image to dest (default self.initrd)."""
        rel = self.release
        img = f"/boot/initrd.img-{rel}"
        with chroot_mounts(self.root):
            out = chroot(self.root, f"depmod -a {rel}")
            if self.generator == "dracut":
                out += chroot(self.root, f"dracut --force --no-hostonly "
                              f"{dracut_args} --kver {rel} {img} 2>&1")
            else:
                out += chroot(self.root, f"update-initramfs -c -k {rel} 2>&1")
        dest = dest or self.initrd
        shutil.copy(self.root / img.lstrip("/"), dest)
        return out

    def ext4_image(self, path, size_mb, tree=None):
        """A tree (default: the root) as an ext4 image (mkfs.ext4 -d, no
        mount)."""
        with open(path, "wb") as f:
            f.truncate(size_mb << 20)
        _run(["mkfs.ext4", "-q", "-F", "-L", "root", "-b", "4096",
              "-d", str(tree or self.root), str(path)])
        return path
