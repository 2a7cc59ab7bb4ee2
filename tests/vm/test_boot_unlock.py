"""Early boot for real: a Debian 12 root file system on a LUKS2 disk, the
initramfs built inside that root by dracut or by update-initramfs, booted in
QEMU with the passphrase typed at the prompt on the serial console.

The root image (harness/debroot.py) is debootstrap + apt inside a chroot;
this project goes in with `make install` and the modules where DKMS puts
them. The LUKS2 header comes from stock `cryptsetup luksFormat` (argon2id)
and the ext4 payload is encrypted on the host with OpenSSL's AES-XTS
(harness/luks.py), so the build machine needs no device-mapper. A second
disk (same volume key, keyslot opened by a key file on the root file
system) is opened by the booted system's tresor-unlock.service.
"""
import hashlib
import os
import re
import time
import uuid

from harness import luks, memsearch, slowness
from harness.debroot import DebianSystem
from harness.registry import vm_test
from harness.swtpm import SoftTPM
from harness.vm import GuestError

ROOT_MB = 640           # ext4 payload of the root disk
SCRATCH_MB = 128        # plain disk: an initramfs built in the guest
MIRROR_MB = 8           # ext4 payload of the volume on the md RAID1
MIRROR_AT_MB = 64       # where the scratch disk carries its LUKS image
DATA_MB = 16            # ext4 payload of the key-file disk
HDR_MB = 16             # LUKS2 header area (cryptsetup's default offset)
MEMBER_MB = HDR_MB + MIRROR_MB + 2  # md 1.0: superblock at the end
ROOT_MEMBER_MB = HDR_MB + ROOT_MB + 2
# argon2id as a host admin would have it, but small enough for TCG
ARGON = ("--pbkdf", "argon2id", "--pbkdf-memory", "65536",
         "--pbkdf-parallel", "1", "--pbkdf-force-iterations", "4")
PROMPT = r"Please enter passphrase for disk [^\n]*\(root\)"
TOKEN_OPENED = r"root: volume key from LUKS2 token 0 systemd-tpm2"
# what the root's initramfs needs for a systemd-tpm2 token (systemd's
# TPM2 code dlopen()s them; Debian's systemd only Suggests them)
TSS2_PKGS = ["libtss2-esys-3.0.2-0", "libtss2-rc0", "libtss2-mu0",
             "libtss2-tcti-device0"]
BOOT_APPEND = "root=/dev/mapper/root rw"
# Files compared byte for byte: as built on the host, as read through
# xts(tresor) in the booted system, as read through stock cryptsetup.
TREE_HASH = "find usr/bin usr/sbin usr/lib/ramcrypt -type f | LC_ALL=C sort " \
    "| xargs sha256sum | sha256sum | cut -d' ' -f1"


def human_pause():
    """Type only a moment after the prompt shows, as a person would. Once
    (6.12, dracut, loaded host) input typed the instant systemd's console
    ask-password prompt appeared was echoed: the prompt is visible before
    the agent has turned echo off, it seems. tresor-unlock's own console
    prompt turns echo off before it prints."""
    time.sleep(2)


def blank_pair(ctx, stem, mb):
    """Two blank disk images of mb MiB (the members of an md RAID1)."""
    imgs = [ctx.workdir / f"{stem}{i}.img" for i in (1, 2)]
    for m in imgs:
        with open(m, "wb") as f:
            f.truncate(mb << 20)
    return imgs


class Host:
    """The disks and secrets of one test host."""

    def __init__(self, ctx, generator, extra_pkgs=None, mirror=False,
                 md_root=False, second=False, tpm=False):
        self.ctx = ctx
        self.key = os.urandom(32)
        self.passphrase = "pp-" + os.urandom(9).hex()
        self.datakey = os.urandom(48).hex().encode()
        self.marker = "marker-" + os.urandom(12).hex()
        self.data_marker = "data-" + os.urandom(12).hex()
        self.root_uuid = str(uuid.uuid4())
        self.absent_partuuid = os.urandom(4).hex() + "-01"
        self.system = DebianSystem(ctx.kernel.release, generator,
                                   ctx.workdir, extra_pkgs=extra_pkgs)
        self.root_img = ctx.workdir / "root.img"
        self.data_img = ctx.workdir / "data.img"
        # plain disk (/dev/vdc) that an initramfs built in the guest is
        # copied out on
        self.scratch_img = ctx.workdir / "scratch.img"
        with open(self.scratch_img, "wb") as f:
            f.truncate(SCRATCH_MB << 20)
        # mirror: a LUKS volume (host key, the data key file) that the
        # guest puts on an md RAID1 (metadata 1.0: LUKS at offset 0 of
        # each member) of two blank disks, /dev/vdd and /dev/vde
        self.mirror = mirror
        self.mirror_uuid = str(uuid.uuid4())
        self.mirror_marker = "mirror-" + os.urandom(12).hex()
        self.member_imgs = blank_pair(ctx, "member", MEMBER_MB) \
            if mirror else []
        # second: a passphrase volume with the same volume key (its
        # keyslot's passphrase is another one), attached only to
        # run_boot's boots. "auto": the initramfs opens it after the root
        # with the run's key, without a second prompt (issue 15, one
        # prompt). "noauto": the booted system's unit asks for it through
        # systemd's password agents, and systemd-tty-ask-password-agent
        # (as an admin over SSH) answers.
        assert second in (False, "auto", "noauto"), second
        self.second = second
        self.second_img = ctx.workdir / "second.img"
        self.second_uuid = str(uuid.uuid4())
        self.second_marker = "second-" + os.urandom(12).hex()
        self.second_passphrase = "other-" + os.urandom(9).hex()
        # tpm: a software TPM 2.0 in every boot (one TPM: its state is
        # kept between boots); the first boot enrolls it in the root's
        # header (md_root_create)
        self.tpm = tpm
        self.softtpm = None
        # md_root: the root's LUKS image also on an md RAID1 (metadata
        # 1.0) of /dev/vdd and /dev/vde, booted degraded (issue 15.4)
        self.md_root = md_root
        self.md_uuid = ":".join(os.urandom(4).hex() for _ in range(4))
        self.root_member_imgs = blank_pair(ctx, "root-member",
                                           ROOT_MEMBER_MB) if md_root else []

    def build(self):
        s = self.system
        s.unpack()
        s.install_project(self.ctx.module_dir)
        s.install_agent()
        s.write("/etc/hostname", "tresor-host\n")
        s.write("/etc/fstab",
                "/dev/mapper/root / ext4 errors=remount-ro 0 1\n"
                "/dev/mapper/data /data ext4 nofail 0 2\n"
                "/dev/mapper/bad /bad ext4 nofail 0 2\n")
        # issue 15.3: 'absent' (nofail, its disk never shows; first, so
        # an initramfs that waited for it would hold up the root prompt)
        # must block nothing; 'bad' (no nofail, a key file that opens no
        # keyslot: fails at once) must fail its unit and what waits for
        # /dev/mapper/bad (the nofail mount above), not leave them
        # waiting for ever
        s.write("/etc/tresortab",
                "# name device keyfile options\n"
                f"absent PARTUUID={self.absent_partuuid} none "
                "nofail,x-systemd.device-timeout=30min\n"
                f"root UUID={self.root_uuid} none tries=3\n"
                "data /dev/vdb /root/keys/data.key\n"
                "bad /dev/vdb /etc/tresor/wrong.key\n"
                + (f"second UUID={self.second_uuid} none "
                   f"{'nofail' if self.second == 'auto' else 'noauto'}\n"
                   if self.second else ""))
        # under /root: tresor-unlock.service must read it through its
        # ProtectHome=read-only (ProtectHome=yes hid it)
        s.write("/root/keys/data.key", self.datakey, 0o400)
        s.write("/etc/tresor/data.key", self.datakey, 0o400)
        s.write("/etc/tresor/wrong.key", os.urandom(48).hex(), 0o400)
        s.write("/etc/ramcrypt-test-marker", self.marker + "\n")
        (s.root / "data").mkdir(exist_ok=True)
        (s.root / "bad").mkdir(exist_ok=True)
        if s.generator == "initramfs-tools":
            s.write("/etc/initramfs-tools/scripts/init-premount/"
                    "rc-test-ssh", SSH_STANDIN, 0o755)
        if self.md_root:
            # as `mdadm --detail --scan` would write it once the array
            # exists (the first boot creates it with this UUID)
            s.write("/etc/mdadm/mdadm.conf",
                    "HOMEHOST <system>\nMAILADDR root\n"
                    f"ARRAY /dev/md/root metadata=1.0 UUID={self.md_uuid}\n")
        self.initramfs_log = s.make_initramfs()
        if s.generator == "dracut":
            # dracut without systemd in the initramfs: the initqueue hook
            self.initrd_nosystemd = self.ctx.workdir / "initrd-nosystemd.img"
            s.make_initramfs("--omit 'systemd systemd-initrd dracut-systemd'",
                             self.initrd_nosystemd)
        self.tree_sha = self.tree_hash()

        # the data disk: same volume key, its own keyslot from the key file
        data_tree = self.ctx.workdir / "data-tree"
        data_tree.mkdir()
        (data_tree / "marker").write_text(self.data_marker + "\n")
        self._luks_disk(self.data_img, DATA_MB, self.datakey, data_tree,
                        None, luks.PBKDF_FAST)
        self._luks_disk(self.root_img, ROOT_MB, self.passphrase.encode(),
                        s.root, self.root_uuid, ARGON)
        if self.second:
            tree = self.ctx.workdir / "second-tree"
            tree.mkdir()
            (tree / "marker").write_text(self.second_marker + "\n")
            self._luks_disk(self.second_img, DATA_MB,
                            self.second_passphrase.encode(), tree,
                            self.second_uuid, luks.PBKDF_FAST)
        if self.mirror:
            tree = self.ctx.workdir / "mirror-tree"
            tree.mkdir()
            (tree / "marker").write_text(self.mirror_marker + "\n")
            img = self.ctx.workdir / "mirror.img"
            self._luks_disk(img, MIRROR_MB, self.datakey, tree,
                            self.mirror_uuid, luks.PBKDF_FAST)
            with open(self.scratch_img, "r+b") as f:
                f.seek(MIRROR_AT_MB << 20)
                f.write(img.read_bytes())
            img.unlink()

    def disks(self):
        """The disks of a boot: vda root, vdb data, vdc scratch, then the
        md members of the mirror and of the root, if any."""
        return [self.root_img, self.data_img, self.scratch_img] + \
            self.member_imgs + self.root_member_imgs

    def stop_tpm(self):
        if self.softtpm:
            self.softtpm.stop()
            self.softtpm = None

    def tree_hash(self):
        """TREE_HASH computed on the host over the root as built."""
        root = self.system.root
        files = sorted(str(p.relative_to(root)) for d in
                       ("usr/bin", "usr/sbin", "usr/lib/ramcrypt")
                       for p in (root / d).rglob("*")
                       if p.is_file() and not p.is_symlink())
        listing = "".join(
            f"{hashlib.sha256((root / f).read_bytes()).hexdigest()}  {f}\n"
            for f in files)
        return hashlib.sha256(listing.encode()).hexdigest()

    def _luks_disk(self, img, payload_mb, secret, tree, uid, pbkdf):
        plain = img.with_name(img.stem + ".ext4")
        self.system.ext4_image(plain, payload_mb, tree)
        with open(img, "wb") as f:
            f.truncate((HDR_MB + payload_mb) << 20)
        _, offset = luks.luks_format(img, secret, self.key, sector_size=4096,
                                     pbkdf=pbkdf, uuid=uid)
        assert offset == HDR_MB << 20, offset
        with open(plain, "rb") as src:
            luks.encrypt_payload(img, self.key, offset, 4096, src)
        plain.unlink()

    def boot(self, name, append="", initrd=None, disks=None, **opts):
        if self.tpm:
            self.stop_tpm()
            self.softtpm = SoftTPM(self.ctx)
            opts["qemu_args"] = self.softtpm.qemu_args()
        vm = self.ctx.boot(name, kernel=self.system,
                           initrd=initrd or self.system.initrd,
                           mem_mb=1024,
                           disks=disks or self.disks(),
                           append=BOOT_APPEND + " " + append,
                           boot_timeout=900, agent_tty="ttyS1", **opts)
        vm.secrets += [self.key.hex(), self.passphrase,
                       self.datakey.decode(), self.second_passphrase]
        return vm


def check_dump_clean(ctx, vm, host, what):
    """A RAM dump now: no key schedule or raw half of the host key, no
    passphrase."""
    dump = vm.dump_ram(ctx.workdir / f"{what}.ram")
    try:
        res = memsearch.search_key(dump, host.key)
        pw = memsearch.find_bytes(dump, host.passphrase.encode())[0]
    finally:
        dump.unlink()
    assert not memsearch.key_found(res), f"{what}: key in RAM: {res}"
    assert pw == 0, f"{what}: the passphrase is in RAM ({pw} copies)"


# Issue 15.3, in the booted system: the nofail 'absent' volume (its disk
# never shows, device timeout 30min) is still waiting while multi-user.target
# is reached; 'bad' (no nofail, wrong key file) failed its unit, and
# nothing waits for /dev/mapper/bad.
NOFAIL_SH = """
timeout """ + str(slowness.secs(300)) + """ sh -c 'until systemctl is-active -q multi-user.target; do sleep 1; done'
echo "multi-user=$(systemctl is-active multi-user.target)"
u=$(systemd-escape --path --suffix=device /dev/disk/by-partuuid/@PARTUUID@)
echo "absent-devtimeout=$(systemctl show -p JobRunningTimeoutUSec --value "$u")"
echo "absent-before=$(systemctl show -p Before --value tresor-unlock@absent.service)"
echo "absent-wantedby=$(systemctl show -p WantedBy --value tresor-unlock@absent.service)"
echo "absent-mapper-requires=$(systemctl show -p Requires --value dev-mapper-absent.device)"
echo "absent-job=$(systemctl list-jobs --no-legend --no-pager | awk '$2 == "tresor-unlock@absent.service" { print $3 "/" $4 }')"
timeout """ + str(slowness.secs(120)) + """ sh -c 'until systemctl is-failed -q tresor-unlock@bad.service; do sleep 1; done'
echo "bad=$(systemctl is-failed tresor-unlock@bad.service)/$(systemctl show -p Result --value tresor-unlock@bad.service)"
echo "bad-jobs=$(systemctl list-jobs --no-legend --no-pager | grep -c -e dev-mapper-bad -e ' bad.mount' -e 'tresor-unlock@bad')"
echo "bad-mounted=$(mountpoint -q /bad && echo yes || echo no)"
echo "bad-log=$(journalctl -b -q -o cat -u tresor-unlock@bad.service | grep -c 'tresor-unlock: bad: ')"
echo "units-active=$(systemctl is-active tresor-unlock@root.service tresor-unlock@data.service | tr '\\n' ' ')"
"""


def check_nofail_failure(ctx, vm, out, start):
    """The NOFAIL_SH answers; no initramfs waited for 'absent' before the
    root prompt (start: where the prompt was answered)."""
    def val(key):
        m = re.search(r"(?m)^" + re.escape(key) + r"=(.*)$", out)
        assert m, f"{key} missing: {out}"
        return m.group(1).strip()
    assert val("multi-user") == "active", out
    # still waiting for its disk, and nothing waited for it
    assert val("absent-job") == "start/waiting", out
    assert val("absent-devtimeout") == "30min", out
    assert "cryptsetup.target" not in val("absent-before").split(), out
    assert val("absent-wantedby") == "cryptsetup.target", out
    assert val("absent-mapper-requires") == "tresor-unlock@absent.service", \
        out
    assert val("bad") == "failed/exit-code", out
    assert val("bad-jobs") == "0" and val("bad-mounted") == "no", out
    assert int(val("bad-log")) >= 1, out
    assert val("units-active") == "active active", out
    early = vm.console_text()[:start]
    assert "absent: waiting" not in early, \
        "an initramfs waited for the nofail volume before the root prompt"
    ctx.note("nofail volume without its disk: multi-user reached while its "
             "unit still waits (device timeout 30min); failing volume: "
             "unit failed, no job left waiting for /dev/mapper/bad")


def check_unit_stop(ctx, vm):
    """Issue 15: stopping tresor-unlock@data.service (its ExecStop=
    tresor-unlock detach data) unmounts /data (data.mount is bound to
    /dev/mapper/data, which requires the unit) and removes the mapping."""
    out = vm.sh("""
set +e
systemctl stop tresor-unlock@data.service 2>&1
echo "data-unit=$(systemctl is-active tresor-unlock@data.service)"
echo "data-mounted=$(mountpoint -q /data && echo yes || echo no)"
echo "data-mapped=$(dmsetup info data >/dev/null 2>&1 && echo yes || echo no)"
echo "detach-log=$(journalctl -b -q -o cat -u tresor-unlock@data.service | grep -c 'data: detached')"
echo "key_loaded=$(cat /sys/kernel/tresor/key_loaded)"
""", timeout=300)
    for want in ("data-unit=inactive", "data-mounted=no", "data-mapped=no",
                 "detach-log=1", "key_loaded=1"):
        assert want in out, f"{want!r} not in:\n{out}"
    ctx.note("systemctl stop tresor-unlock@data.service: /data unmounted, "
             "mapping detached, root still mapped (key stays loaded)")


# initramfs-tools, test only: with rc.test.ssh on the kernel command
# line, a shell on ttyS1 in the initramfs, where an admin would have one
# over SSH from dropbear-initramfs (before the booted system's agent).
SSH_STANDIN = """#!/bin/sh
PREREQ=""
prereqs()
{
	echo "$PREREQ"
}
case "$1" in
prereqs)
	prereqs
	exit 0
	;;
esac
grep -qw rc.test.ssh /proc/cmdline || exit 0
sh -i < /dev/ttyS1 > /dev/ttyS1 2>&1 &
exit 0
"""


def answer_by_cryptroot_unlock(vm, host):
    """The passphrase through Debian's passfifo: `cryptroot-unlock` run in
    the initramfs shell on ttyS1 (SSH_STANDIN), as over
    dropbear-initramfs; nothing is typed on the console. The terminal
    echoes nothing of it."""
    vm.type_serial1("cryptroot-unlock; echo @@UNLOCKED rc=$?\n")
    human_pause()
    vm.type_serial1(host.passphrase + "\n")
    vm.wait_serial1(r"^@@UNLOCKED rc=0", 600, "cryptroot-unlock's success")
    vm.type_serial1("exit\n")
    text = vm.serial1_text()
    assert "Please unlock disk root" in text, text
    assert host.passphrase not in text, "cryptroot-unlock echoed it"
    # the second volume opened unasked: the end of the prompts, no error
    assert "Timeout reached" not in text, text


def run_boot(ctx, host, generator, initrd=None, after=None,
             answer="console"):
    """Boot, unlock the root at the prompt (answer: "console", typed
    there, or "cryptroot-unlock", see answer_by_cryptroot_unlock), check
    the booted system; then after(vm), if given, still in the booted
    system."""
    disks = host.disks() + [host.second_img] if host.second else None
    vm = host.boot("boot-" + generator.replace(" ", "-"), initrd=initrd,
                   disks=disks,
                   append="rc.test.ssh" if answer != "console" else "")
    try:
        m = vm.wait_console(PROMPT, 900, what="the passphrase prompt")
        assert host.passphrase not in vm.console_text(), "passphrase echoed"
        if answer == "console":
            human_pause()
            vm.type_console(host.passphrase + "\n")
        else:
            answer_by_cryptroot_unlock(vm, host)
        vm.wait_ready()
        start = m.end()
        out = vm.sh("""
cat /etc/ramcrypt-test-marker
echo "key_loaded=$(cat /sys/kernel/tresor/key_loaded)"
echo "valid_holders=$(cat /sys/kernel/tresor/valid_holders)"
echo "online=$(cat /sys/devices/system/cpu/online)"
findmnt -n -o SOURCE /
# /data is nofail: nothing before the agent waits for it (and with 'bad'
# failing, cryptsetup.target does not either), so give it time under load
timeout """ + str(slowness.secs(400)) + """ sh -c 'until mountpoint -q /data; do sleep 1; done' || true
systemctl status --no-pager -n 5 tresor-unlock@data.service data.mount 2>&1 | tail -n 20 || true
cat /data/marker
dmsetup table root
dmsetup table data
systemctl is-active tresor-unlock.service
""" + ("" if host.second != "noauto" else f"""
systemctl start --no-block tresor-unlock@second.service
timeout {slowness.secs(120)} sh -c 'until ls /run/systemd/ask-password/ask.* >/dev/null 2>&1; do sleep 1; done'
echo "ask-message=$(grep -h '^Message=' /run/systemd/ask-password/ask.*)"
printf '%s\\n' '{host.second_passphrase}' |
  script -qec 'systemd-tty-ask-password-agent --query' /dev/null >/dev/null
timeout {slowness.secs(120)} sh -c 'until systemctl is-active -q tresor-unlock@second.service; do sleep 1; done'
echo "second-unit=$(systemctl is-active tresor-unlock@second.service)"
""") + ("" if not host.second else """
echo "second-table=$(dmsetup table second)"
mkdir -p /mnt/second && mount -o ro /dev/mapper/second /mnt/second &&
  cat /mnt/second/marker && umount /mnt/second
""") + NOFAIL_SH.replace("@PARTUUID@", host.absent_partuuid) + """
echo written-by-boot > /var/lib/ramcrypt-test-written
sync
echo "tree=$(cd / && """ + TREE_HASH + """)"
# udev rule: /dev/ramcrypt for group kvm (QEMU as an unprivileged user)
modprobe ramcrypt
udevadm settle
echo "ramcrypt-node=$(stat -c '%G:%a' /dev/ramcrypt)"
id rc-qemu >/dev/null 2>&1 || useradd -M -G kvm rc-qemu
id rc-other >/dev/null 2>&1 || useradd -M rc-other
setpriv --reuid=rc-qemu --regid=rc-qemu --init-groups \
  sh -c 'exec 3<>/dev/ramcrypt && echo kvm-user-open=ok'
setpriv --reuid=rc-other --regid=rc-other --init-groups \
  sh -c 'exec 3<>/dev/ramcrypt && echo other-user-open=ok' 2>&1 || true
""", timeout=600)
        assert host.passphrase not in vm.console_text(start), \
            "the passphrase was echoed on the console"
        lines = out.splitlines()
        assert lines[0] == host.marker, f"marker: {lines[0]!r}"
        assert "key_loaded=1" in out, out
        online = re.search(r"online=(\S+)", out).group(1)
        vh = re.search(r"valid_holders=(\S+)", out).group(1)
        assert vh == online, f"key on CPUs {vh}, online {online}"
        assert "/dev/mapper/root" in out, out
        assert host.data_marker in out, "data disk (key file) not mounted"
        tree = re.search(r"tree=(\w+)", out).group(1)
        assert tree == host.tree_sha, \
            "files read through xts(tresor) differ from the image built"
        tables = [ln for ln in lines if " crypt " in ln and
                  not ln.startswith("second-table=")]
        assert len(tables) == 2 and all(
            "capi:xts(tresor)-plain64" in ln for ln in tables), out
        assert "passphrase for disk /dev/vdb" not in vm.console_text(), \
            "the key-file disk asked for a passphrase"
        check_nofail_failure(ctx, vm, out, start)
        if host.second:
            assert host.second_marker in out, f"second volume: {out}"
            assert "capi:xts(tresor)-plain64" in re.search(
                r"second-table=([^\n]*)", out).group(1), out
        if host.second == "auto":
            # one prompt: the second volume opened with the run's key
            prompts = re.findall(r"Please enter passphrase for disk "
                                 r"[^\n]*\((\w+)\)", vm.console_text())
            assert prompts == ["root"], f"prompts: {prompts}"
            ctx.note("one prompt: the second passphrase volume opened "
                     "with the root's volume key, not asked for")
        elif host.second == "noauto":
            assert "second-unit=active" in out and re.search(
                r"ask-message=Message=Please enter passphrase for disk "
                r"[^\n]*\(second\)", out), out
            assert host.second_passphrase not in vm.console_text(), \
                "the second passphrase reached the console"
            ctx.note("booted system: tresor-unlock@second asked through "
                     "systemd's agents, systemd-tty-ask-password-agent "
                     "--query (on a pty, as over SSH) answered")
        assert "ramcrypt-node=kvm:660" in out, out
        assert "kvm-user-open=ok" in out, out
        assert "other-user-open=ok" not in out and \
            "Permission denied" in out, out
        check_dump_clean(ctx, vm, host, "booted")
        if after:
            after(vm)
        check_unit_stop(ctx, vm)
        ctx.note(f"{generator}: root unlocked at the prompt ({answer}), "
                 "data disk by "
                 "key file, key on CPUs " + vh + "; RAM dump: no key "
                 "schedule, no K1/K2, no passphrase")
        vm.poweroff(timeout=300)
    finally:
        vm.close()


def hostonly_rebuild(ctx, host):
    """after() for the first dracut boot: what an admin's kernel update
    does on a host with cryptsetup installed, `dracut --force --hostonly`
    in the booted system. 90crypt is in that image (it finds the LUKS
    root) but the TRESOR root is not handed to it: no rd.luks.uuid= for it
    in cmdline.d/90crypt.conf (rd.luks=0: no other LUKS volume), not in
    the initrd's crypttab. The image is copied out over the scratch disk
    (host.initrd_hostonly). Then leftover /etc/crypttab lines for both
    volumes are added for the next boots."""
    rel = ctx.kernel.release
    # an admin's md RAID1 (metadata 1.0) of /dev/vdd and /dev/vde, the
    # LUKS volume (from the scratch disk) written through the array, then
    # listed in tresortab by its LUKS UUID
    mirror_sh = "" if not host.mirror else f"""
mdadm --create /dev/md/mirror --metadata=1.0 --level=1 --raid-devices=2 \\
  --assume-clean --run /dev/vdd /dev/vde 2>&1 && echo md-created
udevadm settle
dd if=/dev/vdc of=/dev/md/mirror bs=1M skip={MIRROR_AT_MB} \\
  count={HDR_MB + MIRROR_MB} conv=fsync status=none && echo md-written
mdadm --detail --scan >> /etc/mdadm/mdadm.conf
echo "mirror UUID={host.mirror_uuid} /etc/tresor/data.key nofail" \\
  >> /etc/tresortab
"""

    def after(vm):
        out = vm.sh(f"""
img=/boot/initrd.img-{rel}
dracut --force --hostonly --kver {rel} $img >/tmp/dracut.log 2>&1
echo dracut-rc=$?
tail -n 5 /tmp/dracut.log
echo "modules= $(lsinitrd -m $img | tr '\n' ' ')"
echo "crypt-conf=$(lsinitrd -f etc/cmdline.d/90crypt.conf $img | tr '\n' ' ')"
echo "crypttab=$(lsinitrd -f etc/crypttab $img | tr '\n' ' ')"
echo "size=$(stat -c %s $img)"
[ $(stat -c %s $img) -lt {MIRROR_AT_MB << 20} ] || echo initrd-too-large
dd if=$img of=/dev/vdc bs=1M conv=fsync status=none && echo copied
{mirror_sh}
cat >> /etc/crypttab <<EOT
# left over from before the TRESOR conversion
data /dev/vdb /root/keys/data.key luks
root UUID={host.root_uuid} none luks
EOT
sync
""", timeout=1200)
        assert "dracut-rc=0" in out and "copied" in out and \
            "initrd-too-large" not in out, out
        assert not host.mirror or ("md-created" in out and
                                   "md-written" in out), out
        mods = re.search(r"modules=([^\n]*)", out).group(1).split()
        assert "crypt" in mods and "tresor" in mods, \
            f"hostonly image without 90crypt or 90tresor: {mods}"
        conf = re.search(r"crypt-conf=([^\n]*)", out).group(1)
        ct = re.search(r"crypttab=([^\n]*)", out).group(1)
        assert host.root_uuid not in conf.lower(), \
            f"90crypt would open the TRESOR root (key in RAM): {conf}"
        assert "rd.luks=0" in conf, conf
        assert host.root_uuid not in ct.lower(), ct
        size = int(re.search(r"size=(\d+)", out).group(1))
        with open(host.scratch_img, "rb") as f:
            data = f.read(size)
        assert len(data) == size, "initramfs larger than the scratch disk"
        host.initrd_hostonly = ctx.workdir / "initrd-hostonly.img"
        host.initrd_hostonly.write_bytes(data)
        ctx.note(f"dracut --hostonly in the guest: 90crypt in the image, "
                 f"90crypt.conf '{conf.strip()}', {size} bytes")
    return after


def hostonly_checks(ctx, host):
    """after() for the boot of the hostonly image, /etc/crypttab listing
    both TRESOR volumes: no systemd-cryptsetup@ unit ran, in the initrd
    or after it (both mappings are on capi:xts(tresor) and the dump is
    clean: run_boot checked); the generator warned and skipped the
    booted system's systemd-cryptsetup@data and @root."""
    def after(vm):
        out = vm.sh("""
journalctl -b -q -o cat > /tmp/j
echo "initrd-lines=$(grep -c 'Reached target initrd.target' /tmp/j)"
echo "sc-started=$(grep -c 'Starting systemd-cryptsetup@' /tmp/j)"
echo "sc-lines=$(journalctl -b -q -t systemd-cryptsetup | wc -l)"
echo "skipped=$(grep -c 'systemd-cryptsetup@.*skipped because of an unmet condition' /tmp/j)"
# journald takes "tresor-generator:" of the kmsg line as its identifier
journalctl -b -q -o cat -t tresor-generator -p warning > /tmp/jg
for u in data root; do
  echo "$u-warned=$(grep -c "^$u (.*) is in /etc/tresortab and in /etc/crypttab" /tmp/jg)"
done
for u in data root; do
  echo "$u-cond=$(systemctl show -p ConditionResult --value systemd-cryptsetup@$u.service)"
done
""" + ("" if not host.mirror else """
timeout """ + str(slowness.secs(120)) + """ sh -c 'until [ -e /dev/mapper/mirror ]; do sleep 1; done'
echo "mirror-deps=$(dmsetup deps -o devname mirror)"
echo "mirror-table=$(dmsetup table mirror)"
for m in vdd vde; do echo "$m-holders=$(ls /sys/class/block/$m/holders | tr '\n' ' ')"; done
mkdir -p /mnt/m && mount -o ro /dev/mapper/mirror /mnt/m && cat /mnt/m/marker
umount /mnt/m
echo "mirror-lines=$(journalctl -b -q -o cat -u tresor-unlock@mirror.service | grep -c mirror)"
journalctl -b -q -o cat -u tresor-unlock@mirror.service | grep mirror
"""), timeout=300)
        assert "initrd-lines=0" not in out, \
            f"the journal has no initrd part, the check is blind: {out}"
        assert "sc-started=0" in out and "sc-lines=0" in out, \
            f"systemd-cryptsetup ran: {out}"
        assert "data-cond=no" in out and "root-cond=no" in out, out
        assert "skipped=0" not in out and "data-warned=0" not in out and \
            "root-warned=0" not in out, f"no skip or no warning: {out}"
        if host.mirror:
            # issue 15.2: opened through the array, never a member
            deps = re.search(r"mirror-deps=([^\n]*)", out).group(1)
            assert re.search(r"\(md\d+\)", deps), \
                f"mirror not mapped on the md array: {out}"
            for m in ("vdd", "vde"):
                h = re.search(m + r"-holders=([^\n]*)", out).group(1)
                assert re.fullmatch(r"md\d+", h.strip()), \
                    f"{m}: holders {h!r} (a member mapped?): {out}"
            assert "capi:xts(tresor)-plain64" in re.search(
                r"mirror-table=([^\n]*)", out).group(1), out
            assert host.mirror_marker in out, f"mirror marker: {out}"
            n = int(re.search(r"mirror-lines=(\d+)", out).group(1))
            assert n <= 3, f"tresor-unlock wrote {n} lines on mirror"
            ctx.note(f"md RAID1 (1.0): mirror opened on {deps.strip()}, "
                     f"members held only by md; {n} log lines")
        ctx.note("hostonly image + leftover crypttab lines: no "
                 "systemd-cryptsetup@ ran (initrd and booted system), "
                 "both volumes on capi:xts(tresor), dump clean")
    return after


def md_root_create(ctx, host):
    """after() for the first initramfs-tools boot: the admin's md RAID1
    (metadata 1.0: data from offset 0, superblock at the end) of the blank
    /dev/vdd and /dev/vde, with the UUID the root's mdadm.conf (and so
    its initramfs) names. The host then writes the root's LUKS image into
    the members (md_root_fill), as if the root had been on the array from
    the start."""
    def after(vm):
        out = vm.sh(f"""
mdadm --create /dev/md/root --metadata=1.0 --level=1 --raid-devices=2 \
  --assume-clean --run --uuid={host.md_uuid} /dev/vdd /dev/vde 2>&1 &&
  echo md-created
udevadm settle
echo "md-bytes=$(blockdev --getsize64 /dev/md/root)"
mdadm --detail /dev/md/root | grep -i -e uuid -e 'raid devices'
mdadm --stop /dev/md/root 2>&1
""" + ("" if not host.tpm else f"""
PASSWORD='{host.passphrase}' systemd-cryptenroll --tpm2-device=auto \
  --tpm2-pcrs=16 /dev/vda 2>&1 && echo tpm-enrolled
"""), timeout=600)
        assert "md-created" in out and host.md_uuid in out, out
        assert not host.tpm or "tpm-enrolled" in out, out
        size = int(re.search(r"md-bytes=(\d+)", out).group(1))
        assert size >= (HDR_MB + ROOT_MB) << 20, \
            f"array of {size} bytes, the root image is larger: {out}"
    return after


def md_root_fill(host):
    """The root's LUKS image (as the first boot left it) into both
    members at offset 0, in the array's data area."""
    data = host.root_img.read_bytes()
    for m in host.root_member_imgs:
        with open(m, "r+b") as f:
            f.write(data)


def run_md_root_boot(ctx, host):
    """Issue 15.4: the root's LUKS volume on an md RAID1 that one member
    short, so it exists only once mdadm's local-block script starts it
    degraded (after 2/3 of ROOTDELAY), long after local-top/tresor gave
    up waiting: local-block/tresor opens it then, through the array, the
    member never mapped. vda is a blank disk so that no other copy of
    the root's LUKS UUID is there."""
    blank = ctx.workdir / "blank.img"
    with open(blank, "wb") as f:
        f.truncate(1 << 20)
    vm = host.boot("boot-md-root", disks=[
        blank, host.data_img, host.scratch_img, host.root_member_imgs[0]])
    try:
        if host.tpm:
            m = vm.wait_console(TOKEN_OPENED, 900, what="the root opened "
                                "by its TPM2 token on the degraded array")
        else:
            m = vm.wait_console(PROMPT, 900, what="the passphrase prompt "
                                "of the root on the degraded array")
            human_pause()
            vm.type_console(host.passphrase + "\n")
        vm.wait_ready()
        if host.tpm:
            assert not re.search(PROMPT, vm.console_text()), \
                "a passphrase was asked with the TPM2 token there"
        out = vm.sh("""
cat /etc/ramcrypt-test-marker
echo "source=$(findmnt -n -o SOURCE /)"
echo "root-deps=$(dmsetup deps -o devname root)"
echo "root-table=$(dmsetup table root)"
echo "vdd-holders=$(ls /sys/class/block/vdd/holders | tr '\n' ' ')"
grep -A1 '^md' /proc/mdstat | tr '\n' ' '; echo
echo "key_loaded=$(cat /sys/kernel/tresor/key_loaded)"
""", timeout=300)
        assert out.splitlines()[0] == host.marker, out
        assert "source=/dev/mapper/root" in out, out
        deps = re.search(r"root-deps=([^\n]*)", out).group(1)
        assert re.search(r"\(md\d+\)", deps), \
            f"root not mapped on the md array: {out}"
        h = re.search(r"vdd-holders=([^\n]*)", out).group(1).strip()
        assert re.fullmatch(r"md\d+", h), f"vdd held by {h!r}: {out}"
        assert "[2/1]" in out, f"array not degraded (1 of 2): {out}"
        assert "capi:xts(tresor)-plain64" in out and "key_loaded=1" in out, \
            out
        # the prompt came from the local-block stage, after mdadm's
        assert "Begin: Running /scripts/local-block" in \
            vm.console_text()[:m.start()], \
            "the prompt came before any local-block run"
        check_dump_clean(ctx, vm, host, "md-root")
        how = "its TPM2 token (no prompt)" if host.tpm else \
            "the passphrase"
        ctx.note(f"initramfs-tools, root on a degraded md RAID1 (1.0) "
                 f"started by mdadm's local-block: opened with {how} by "
                 f"local-block/tresor on {deps.split(':')[-1].strip()}, "
                 "dump clean")
        vm.poweroff(timeout=300)
    finally:
        vm.close()


# Where each generator gives up on a missing root device, and its shell:
# (kernel options, console text once the shell is there, key to press).
# The guest's own limit is wall time under TCG: it is scaled by this run's
# slowness factor, or under load the root job times out while the third
# argon2id attempt is still being checked (seen: after attempt 2).
FAIL_BOOT = {
    # dracut: the root device job times out after rd.timeout, then the
    # emergency shell (the root account is locked: "Press Enter")
    "dracut": (("rd.timeout", 60), r"Press Enter for maintenance", "\n"),
    # initramfs-tools: rootdelay, then panic() opens a shell (no panic=)
    "initramfs-tools": (("rootdelay", 20), r"\(initramfs\)", ""),
}
# One echo without quotes, so a line whose start the shell lost prints
# nothing that matches SHELL_ANSWER (which must start a line).
SHELL_PROBE = ("echo KL=$(cat /sys/kernel/tresor/key_loaded) "
               "MAPPED= $(ls /dev/mapper) X PROBE=$((6 * 7))\n")
# (bash may put a terminal mode sequence such as ESC[?2004l first)
SHELL_ANSWER = r"(?m)^(?:\x1b\[[0-9;?]*[A-Za-z])*KL=(\d) MAPPED=([^\n$]*)X PROBE=42"


def run_wrong_passphrase(ctx, host, generator):
    """`tries` wrong passphrases: the console says why, the root is never
    mounted, no key is loaded (tresor status in the initramfs shell) and a
    RAM dump holds no key."""
    (opt, secs), shell, key = FAIL_BOOT[generator]
    append = f"{opt}={slowness.secs(secs)}"
    vm = host.boot("wrong", append=append,
                   console_append="console=ttyS0 loglevel=4 nokaslr")
    try:
        pos = 0
        for i in range(3):
            m = vm.wait_console(PROMPT, 600, start=pos,
                                what=f"passphrase prompt {i + 1}")
            human_pause()
            vm.type_console(f"wrong-{i}-{host.passphrase[::-1]}\n")
            pos = m.end()
        gave_up = vm.wait_console(
            r"root: no valid passphrase after 3 attempts; giving up, "
            r"no key loaded", 600, start=pos, what="the give-up message")
        check_dump_clean(ctx, vm, host, "wrong-passphrase")
        vm.wait_console(shell, 600, start=gave_up.end(),
                        what="the initramfs emergency shell")
        vm.type_console(key)
        time.sleep(3)
        # a shell may flush input typed while it starts: type until answered
        for attempt in range(10):
            if attempt:
                # Ctrl-C drops what a lost line start left open (a "$("); it
                # also flushes input typed right after it, hence the pause
                vm.type_console("\x03")
                time.sleep(2)
            vm.type_console(SHELL_PROBE)
            try:
                ans = vm.wait_console(SHELL_ANSWER, 20, start=gave_up.end(),
                                      what="the shell's answer")
                break
            except GuestError:
                if attempt == 9:
                    raise
        assert ans.group(1) == "0", "key loaded after a failed unlock"
        assert "root" not in ans.group(2).split(), \
            f"root mapped: {ans.group(2)}"
        assert host.marker not in vm.console_text() and \
            "login:" not in vm.console_text(), "the system booted anyway"
    finally:
        vm.close()


def stock_open_matches(ctx, host):
    """Compatibility: stock cryptsetup (no tresor.ko) opens the same disk
    after the TRESOR boot; the marker and the file the booted system wrote
    are there and the file system is clean."""
    vm = ctx.boot("stock", disks=[host.root_img])
    vm.secrets += [host.key.hex(), host.passphrase]
    with vm:
        out = vm.sh(f"""
modprobe dm_crypt; modprobe xts; modprobe aesni_intel; modprobe ext4
printf %s '{host.passphrase}' > /tmp/pp
! grep -qw tresor /proc/modules
DM_DISABLE_UDEV=1 cryptsetup open --disable-external-tokens \
  --key-file /tmp/pp /dev/vda stockroot
rm /tmp/pp
dmsetup mknodes stockroot
dmsetup table stockroot | grep -o 'aes-xts-plain64'
e2fsck -fn /dev/mapper/stockroot >/dev/null 2>&1 && echo fsck-clean
mkdir -p /mnt && mount -o ro /dev/mapper/stockroot /mnt
cat /mnt/etc/ramcrypt-test-marker /mnt/var/lib/ramcrypt-test-written
echo "tree=$(cd /mnt && """ + TREE_HASH + """)"
umount /mnt
cryptsetup close stockroot
""", timeout=300)
    assert "aes-xts-plain64" in out and "fsck-clean" in out, out
    assert host.marker in out and "written-by-boot" in out, out
    tree = re.search(r"tree=(\w+)", out).group(1)
    assert tree == host.tree_sha, "stock cryptsetup reads other files"


@vm_test(timeout=2400, est=1000)
def test_boot_dracut_unlock(ctx):
    """dracut (systemd in the initramfs), cryptsetup installed in the root:
    3 wrong passphrases refused (no key, no root, dump clean); then the
    right one at the console prompt: root mounted, marker read, data disk
    by key file, key on every CPU, RAM dump clean; in that system
    `dracut --hostonly` (90crypt keeps off the TRESOR root) and leftover
    /etc/crypttab lines; that image boots the same way with no
    systemd-cryptsetup@ unit run; the same with dracut's initqueue hook
    (an initramfs without systemd); then stock cryptsetup opens the same
    disk. Only the boot at the prompt and the stock open are run on both
    kernels: the wrong passphrases, the hostonly image, the md RAID1 and
    the initramfs without systemd test dracut, systemd, md and
    tresor-unlock of the one Debian root, not the kernel, and take ~8
    minutes under TCG, so they are the 6.1 run's only."""
    full = ctx.kernel.short == "6.1"
    host = Host(ctx, "dracut", mirror=full,
                second="noauto" if full else False,
                extra_pkgs=["cryptsetup", "mdadm"] if full else None)
    host.build()
    if full:
        run_wrong_passphrase(ctx, host, "dracut")
        run_boot(ctx, host, "dracut", after=hostonly_rebuild(ctx, host))
        run_boot(ctx, host, "dracut hostonly", host.initrd_hostonly,
                 after=hostonly_checks(ctx, host))
        run_boot(ctx, host, "dracut without systemd", host.initrd_nosystemd)
    else:
        run_boot(ctx, host, "dracut")
    stock_open_matches(ctx, host)


@vm_test(timeout=2400, est=280)
def test_boot_initramfs_tools_unlock(ctx):
    """initramfs-tools (busybox, no systemd in the initramfs): the same,
    with a second passphrase volume opened unasked (one prompt); then,
    enrolled in a software TPM2 in that system, the root on a degraded md
    RAID1 that only mdadm's local-block script starts: local-block/tresor
    opens it with its TPM2 token (the token plugin and the tss2 libraries
    in the initramfs), no prompt, dump clean. As for dracut, the wrong
    passphrases, the second volume, the TPM and the md root are the 6.1
    run's only (initramfs-tools, mdadm and tresor-unlock of the one
    Debian root, not the kernel)."""
    full = ctx.kernel.short == "6.1"
    host = Host(ctx, "initramfs-tools", md_root=full, tpm=full,
                second="auto" if full else False,
                extra_pkgs=["mdadm"] + TSS2_PKGS if full else None)
    try:
        _initramfs_tools_boots(ctx, host, full)
    finally:
        host.stop_tpm()


def _initramfs_tools_boots(ctx, host, full):
    host.build()
    if full:
        run_wrong_passphrase(ctx, host, "initramfs-tools")
    run_boot(ctx, host, "initramfs-tools",
             after=md_root_create(ctx, host) if full else None,
             answer="cryptroot-unlock" if full else "console")
    if full:
        md_root_fill(host)
        run_md_root_boot(ctx, host)
    stock_open_matches(ctx, host)
