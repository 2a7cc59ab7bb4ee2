"""tresor-unlock (early-boot unlock) in the busybox guest.

LUKS2 images are made on the host with stock cryptsetup (fast PBKDF2) and
their payload written with an independent AES-XTS (python3-cryptography), so
the host needs no device-mapper. In the guest, tresor-unlock reads
/etc/tresortab, unlocks with a key file, with --passphrase-fd, or on a
console: a second serial port (ttyS1) where the test types the passphrase
like a user at the console, and checks it is not echoed.
"""
import hashlib
import os
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

from harness import luks, memsearch
from harness.swtpm import SoftTPM
from harness.guest import (LIVEPATCH, LOAD_TRESOR, load_showregs_livepatch,
                           masked_key_args)
from harness.initramfs import _ldd_libs
from harness.registry import Skip, vm_test

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "daemon" / "tresor-unlock"
BIN = "/usr/lib/ramcrypt/tresor-unlock"
DISK_MB = 20            # 16 MiB LUKS2 header area + 4 MiB payload
HINT = "cryptsetup reencrypt --key-size 256 --cipher aes-xts-plain64"


def unlock_files():
    """extra_files for the guest: tresor-unlock and its shared libraries."""
    subprocess.run(["make", "-s", "-C", str(SRC)], check=True)
    exe = SRC / "bin" / "tresor-unlock"
    files = {BIN: exe}
    for lib in _ldd_libs(exe):
        files[lib] = Path(lib).resolve()
    return files


def luks_format(ctx, name, passphrase, key, **opts):
    """A LUKS2 image with this volume key; returns (path, uuid, offset)."""
    img = ctx.disk(name, DISK_MB)
    return (img, *luks.luks_format(img, passphrase, key, **opts))


def mbr_disk(ctx, name, luks_img, signature):
    """A disk with an MBR whose partition 1 (at 1 MiB) holds luks_img; its
    PARTUUID is <signature>-01."""
    size = luks_img.stat().st_size
    img = ctx.disk(name, (size >> 20) + 2)
    mbr = bytearray(512)
    mbr[0x1B8:0x1BC] = signature.to_bytes(4, "little")
    part = bytes([0, 0xFE, 0xFF, 0xFF, 0x83, 0xFE, 0xFF, 0xFF]) + \
        (2048).to_bytes(4, "little") + (size // 512).to_bytes(4, "little")
    mbr[0x1BE:0x1CE] = part
    mbr[510:512] = b"\x55\xaa"
    with open(img, "r+b") as f:
        f.write(mbr)
        f.seek(1 << 20)
        f.write(luks_img.read_bytes())
    return img, f"{signature:08x}-01"


def payload_bytes(offset):
    return (DISK_MB << 20) - offset


class ConsoleTyper(threading.Thread):
    """Types a passphrase on the guest's ttyS1 (a QEMU socket chardev) once
    the prompt shows, then records what the guest sends back (no echo)."""

    def __init__(self, sock_path, passphrase, prompt=b"passphrase"):
        super().__init__(daemon=True)
        self.path, self.passphrase, self.prompt = sock_path, passphrase, \
            prompt
        self.seen = b""
        self.typed = threading.Event()
        self.error = None

    def run(self):
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            deadline = time.monotonic() + 60
            while True:
                try:
                    s.connect(str(self.path))
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            s.settimeout(1.0)
            while self.prompt not in self.seen.lower():
                if time.monotonic() > deadline:
                    raise TimeoutError("no prompt on ttyS1: %r"
                                       % self.seen[-200:])
                try:
                    chunk = s.recv(4096)
                except socket.timeout:
                    continue
                if not chunk:
                    raise EOFError("ttyS1 closed")
                self.seen += chunk
            mark = len(self.seen)
            s.sendall(self.passphrase + b"\r")
            self.typed.set()
            end = time.monotonic() + 3
            while time.monotonic() < end:
                try:
                    chunk = s.recv(4096)
                except socket.timeout:
                    continue
                if not chunk:
                    break
                self.seen += chunk
            self.after = self.seen[mark:]
            s.close()
        except Exception as e:  # reported by the test
            self.error = e


def console_args(ctx):
    sock = ctx.workdir / "ttyS1.sock"
    return sock, ["-chardev", f"socket,id=pw,path={sock},server=on,wait=off",
                  "-serial", "chardev:pw"]


def guest_setup(vm):
    vm.sh(LOAD_TRESOR + " && modprobe dm_crypt")


def wait_stopped(vm, pid, timeout=120):
    """Wait until the tresor-unlock process stops itself (test hook) or
    exits; returns True if it is stopped."""
    out = vm.sh(f"""
i=0
while [ -e /proc/{pid} ] && ! grep -q '^State:.*T' /proc/{pid}/status; do
  i=$((i + 1)); [ $i -lt {timeout * 10} ] || break; sleep 0.1
done
grep -q '^State:.*T' /proc/{pid}/status 2>/dev/null && echo stopped || echo gone
""", timeout=timeout + 30)
    return out.strip() == "stopped"


def check_attach_and_polls(vm, partuuid):
    """Issue 15.3/15.4: `attach NAME` (a tresor-unlock@ unit's command)
    opens one entry, noauto or not, and fails when it fails, nofail or
    not; `--initramfs --device-wait 0` (initramfs-tools' local-block poll)
    passes over absent devices silently, `--device-wait 1` says so, and
    neither fails for them; `--once` tries an entry once per boot."""
    out = vm.sh(f"""
set +e
mkdir -p /run
dmsetup remove gamma
head -c 48 /dev/urandom > /etc/wrong.key
cat > /etc/t2.tab <<EOT
gamma PARTUUID={partuuid} /etc/alpha.key noauto,nofail
bad PARTUUID={partuuid} /etc/wrong.key nofail
EOT
cat > /etc/t3.tab <<EOT
ghost PARTUUID=0badc0de-01 none
gone PARTUUID=0badc0de-02 none nofail,x-systemd.device-timeout=0
EOT
echo "bad2 PARTUUID={partuuid} /etc/wrong.key" > /etc/t4.tab
{BIN} --tresortab /etc/t2.tab attach gamma 2>&1; echo "rc-gamma=$?"
{BIN} --tresortab /etc/t2.tab attach bad 2>&1; echo "rc-bad=$?"
{BIN} --tresortab /etc/t2.tab attach nosuch 2>&1; echo "rc-nosuch=$?"
{BIN} --tresortab /etc/t2.tab attach 2>&1; echo "rc-noname=$?"
{BIN} --tresortab /etc/t3.tab --initramfs --once --device-wait 0 open \
  > /tmp/poll 2>&1
echo "rc-poll=$?"
echo "poll-out=[$(cat /tmp/poll)]"
{BIN} --tresortab /etc/t3.tab --initramfs --device-wait 1 open 2>&1
echo "rc-wait1=$?"
{BIN} --tresortab /etc/t4.tab --once open > /tmp/once1 2>&1
echo "rc-once1=$?"
echo "once1=[$(grep -c 'bad2: ' /tmp/once1)]"
{BIN} --tresortab /etc/t4.tab --once open > /tmp/once2 2>&1
echo "rc-once2=$?"
echo "once2=[$(cat /tmp/once2)]"
echo "tried=$(ls /run/tresor-unlock/tried | tr '\\n' ' ')"
""", timeout=300)
    for want in ("rc-gamma=0", "rc-bad=1", "rc-nosuch=2", "rc-noname=2",
                 "rc-poll=0", "poll-out=[]", "rc-wait1=0", "rc-once1=1",
                 "rc-once2=0", "once2=[]", "tried=bad2 ",
                 "gamma: /dev/vdc1 opened on xts(tresor)",
                 "tresor-unlock: bad: ", "attach needs exactly one NAME",
                 "no entry 'nosuch'",
                 "ghost: device not there after 1s; left for a later run",
                 "gone: nofail and the device is not there yet"):
        assert want in out, f"{want!r} not in:\n{out}"
    assert "once1=[0]" not in out, out


@vm_test(timeout=900)
def test_tresor_unlock_open(ctx):
    """Console prompt (UUID= device, 4096-byte sectors), then a key-file
    entry (path device, same volume key) and one on an MBR partition
    named by PARTUUID= that open with the run's host key (the key files
    are read by `attach` below): all mapped on xts(tresor), content as
    written on the host,
    key on every CPU, and a RAM dump taken while tresor-unlock is still
    alive holds no key, no schedule and not the typed passphrase."""
    key = os.urandom(32)
    pa, pb = os.urandom(12).hex().encode(), os.urandom(12).hex().encode()
    a, _, off_a = luks_format(ctx, "a.img", pa, key, sector_size=512)
    b, uuid_b, off_b = luks_format(ctx, "b.img", pb, key, sector_size=4096)
    data_a = os.urandom(payload_bytes(off_a))
    data_b = os.urandom(payload_bytes(off_b))
    luks.encrypt_payload(a, key, off_a, 512, data_a)
    luks.encrypt_payload(b, key, off_b, 4096, data_b)
    c0, _, off_c = luks_format(ctx, "c0.img", pa, key, sector_size=512)
    data_c = os.urandom(payload_bytes(off_c))
    luks.encrypt_payload(c0, key, off_c, 512, data_c)
    c, partuuid = mbr_disk(ctx, "c.img", c0, 0x6a8e3b2c)
    c0.unlink()
    files = unlock_files()
    # beta (asked on the console) first: alpha and gamma then open with
    # the host key of the run (one prompt for several volumes); their key
    # file is read by check_attach_and_polls' attach
    files["/etc/tresortab"] = (
        "# test table\n"
        f"beta UUID={uuid_b} none tries=2,readonly\n"
        "alpha /dev/vda /etc/alpha.key discard\n"
        f"gamma PARTUUID={partuuid} /etc/alpha.key\n").encode()
    files["/etc/alpha.key"] = pa
    sock, qargs = console_args(ctx)
    with ctx.boot(disks=[a, b, c], extra_files=files,
                  qemu_args=qargs) as vm:
        vm.secrets += [key.hex(), pa.decode(), pb.decode()]
        guest_setup(vm)
        typer = ConsoleTyper(sock, pb)
        typer.start()
        pid = vm.sh(f"TRESOR_UNLOCK_TEST_STOP=1 {BIN} --console /dev/ttyS1 "
                    "> /tmp/unlock.out 2>&1 & echo $!").strip()
        stopped = wait_stopped(vm, pid)
        typer.join(30)
        out = vm.sh("cat /tmp/unlock.out")
        assert stopped, f"tresor-unlock ended early:\n{out}"
        assert typer.error is None, f"console: {typer.error}"
        assert pb not in typer.after, "the passphrase was echoed on ttyS1"
        dump = vm.dump_ram(ctx.workdir / "dump.raw")
        vm.sh(f"kill -CONT {pid}; while [ -e /proc/{pid} ]; do sleep 0.1; "
              "done")
        out = vm.sh("cat /tmp/unlock.out")
        assert "beta: /dev/vdb opened on xts(tresor) as /dev/mapper/beta " \
            "(host key loaded)" in out, out
        assert "alpha: /dev/vda opened on xts(tresor) as /dev/mapper/alpha " \
            "with the host key of beta" in out, out
        assert "gamma: /dev/vdc1 opened on xts(tresor) as /dev/mapper/gamma " \
            "with the host key of beta" in out, out
        st = vm.sh("cat /sys/kernel/tresor/key_loaded "
                   "/sys/kernel/tresor/nr_valid_holders; nproc").split()
        assert st[0] == "1" and st[1] == st[2], f"key status {st}"
        tables = vm.sh("dmsetup table alpha; dmsetup table beta")
        assert f"capi:xts(tresor)-plain64 {'0' * 64} 0 " in tables, tables
        assert "allow_discards" in tables and "sector_size:4096" in tables, \
            tables
        ro = vm.sh("blockdev --getro /dev/mapper/alpha; "
                   "blockdev --getro /dev/mapper/beta").split()
        assert ro == ["0", "1"], f"read-only flags {ro} (beta is readonly)"
        sums = vm.sh("sha256sum /dev/mapper/alpha /dev/mapper/beta "
                     "/dev/mapper/gamma")
        got = [ln.split()[0] for ln in sums.splitlines()]
        assert got[0] == hashlib.sha256(data_a).hexdigest(), \
            "alpha: content differs from what the host wrote"
        assert got[1] == hashlib.sha256(data_b).hexdigest(), \
            "beta: content differs from what the host wrote"
        assert got[2] == hashlib.sha256(data_c).hexdigest(), \
            "gamma: content differs from what the host wrote"
        check_attach_and_polls(vm, partuuid)
        vm.poweroff()
    res = memsearch.search_key(dump, key)
    typed = memsearch.find_bytes(dump, pb)[0]
    ctx.note(f"dump with tresor-unlock stopped before exit: aeskeyfind="
             f"{res['aeskeyfind']} raw={sum(res['raw'].values())}, typed "
             f"passphrase copies={typed}; key file passphrase copies="
             f"{memsearch.find_bytes(dump, pa)[0]} (the key file is in the "
             f"initramfs)")
    assert not memsearch.key_found(res), f"volume key in RAM: {res}"
    assert typed == 0, f"typed passphrase in RAM {typed} times"
    ctx.note(f"alpha 512 B sectors, beta 4096 B sectors via UUID= (console), "
             f"gamma via PARTUUID=: {len(data_a) >> 10} + {len(data_b) >> 10}"
             f" + {len(data_c) >> 10} KiB equal")


@vm_test(timeout=900)
def test_tresor_unlock_refusals(ctx):
    """Stock cryptsetup opens a TRESOR volume; wrong passphrase `tries`
    times, non-XTS, 512-bit XTS, an unknown option and a second volume with
    another key are all refused with a clear message and leave no key and
    no mapping behind."""
    key, other = os.urandom(32), os.urandom(32)
    pw = b"correct horse battery"
    good, _, off = luks_format(ctx, "good.img", pw, key)
    data = os.urandom(payload_bytes(off))
    luks.encrypt_payload(good, key, off, 512, data)
    cbc, _, _ = luks_format(ctx, "cbc.img", pw, os.urandom(32),
                            cipher="aes-cbc-essiv:sha256")
    x512, _, _ = luks_format(ctx, "x512.img", pw, os.urandom(64),
                             key_bits=512)
    diff, _, _ = luks_format(ctx, "diff.img", pw, other)
    # held: the host key; /dev/vde is only ever opened through a dm-linear
    # device on top (as an md member through its array): named by its
    # UUID in upper case, the scan (no udev here) must skip the member
    held, uuid_held, off_h = luks_format(ctx, "held.img", pw, key)
    data_h = os.urandom(payload_bytes(off_h))
    luks.encrypt_payload(held, key, off_h, 512, data_h)
    absent = "0badc0de-0000-4000-8000-000000000001"
    files = unlock_files()
    files["/etc/tresortab"] = (
        "good /dev/vda none tries=3\n"
        "cbc /dev/vdb none\n"
        "x512 /dev/vdc none\n"
        "diff /dev/vdd none x-systemd.device-timeout=5s\n"
        f"held UUID={uuid_held.upper()} none x-systemd.device-timeout=20s\n"
        f"absent UUID={absent} none x-systemd.device-timeout=3s\n"
        f"member UUID={uuid_held} none x-systemd.device-timeout=3s\n"
        ).encode()
    files["/etc/bad.tab"] = b"# ok\ngood /dev/vda none tries=3,frobnicate\n"
    with ctx.boot(disks=[good, cbc, x512, diff, held],
                  extra_files=files) as vm:
        vm.secrets += [key.hex(), other.hex()]
        # stock cryptsetup, no tresor.ko: the same disk opens and reads
        vm.sh(f"""
modprobe dm_crypt
printf '%s' '{pw.decode()}' | DM_DISABLE_UDEV=1 cryptsetup luksOpen \
  --key-file - /dev/vda stock
dmsetup mknodes stock
sha256sum /dev/mapper/stock > /tmp/stock.sum
DM_DISABLE_UDEV=1 cryptsetup close stock
""", timeout=120)
        stock = vm.sh("cat /tmp/stock.sum").split()[0]
        assert stock == hashlib.sha256(data).hexdigest(), \
            "stock cryptsetup reads other content"
        guest_setup(vm)

        def unlock(args, stdin=""):
            return vm.run(f"printf '{stdin}' | {BIN} --passphrase-fd 0 "
                          f"{args} 2>&1", timeout=120)

        def no_key_no_map():
            assert vm.sh("cat /sys/kernel/tresor/key_loaded") == "0", \
                "a key is loaded"
            maps = vm.sh("dmsetup ls")
            assert "No devices found" in maps, f"mappings left: {maps}"

        # issue 15.1: a stock (key-in-RAM) mapping with the entry's name is
        # not "already active": refused, named, no key loaded
        vm.sh(f"""
printf '%s' '{pw.decode()}' | DM_DISABLE_UDEV=1 cryptsetup open \
  --key-file - /dev/vda good
""", timeout=120)
        rc, out = unlock("open good", pw.decode() + "\\n")
        assert rc == 1 and "good: /dev/mapper/good exists but is not a " \
            "TRESOR mapping" in out and "aes-xts-plain64" in out and \
            "CRYPT-LUKS2-" in out, out
        assert "already active" not in out, out
        assert vm.sh("cat /sys/kernel/tresor/key_loaded") == "0", \
            "a key is loaded"
        rc, out = vm.run(f"{BIN} status good 2>&1", timeout=60)
        assert rc == 1 and "key: not loaded" in out and "good: " \
            "/dev/mapper/good is active but NOT a TRESOR mapping: its key " \
            "is in RAM" in out, out
        vm.sh("DM_DISABLE_UDEV=1 cryptsetup close good")
        rc, out = unlock("--tresortab /etc/bad.tab")
        assert rc == 2 and "/etc/bad.tab:2: unknown option 'frobnicate'" \
            in out, out
        rc, out = unlock("open good", "wrong1\\nwrong2\\nwrong3\\n"
                         + pw.decode() + "\\n")
        assert rc == 1 and out.count("wrong passphrase") == 3 and \
            "no valid passphrase after 3 attempts" in out, out
        no_key_no_map()
        for name, what in (("cbc", "aes-cbc-essiv:sha256"),
                           ("x512", "512-bit")):
            rc, out = unlock(f"open {name}", pw.decode() + "\\n")
            assert rc == 1 and what in out and HINT in out, out
            no_key_no_map()
        dump0 = vm.dump_ram(ctx.workdir / "dump0.raw")
        rc, out = unlock("open good diff", (pw.decode() + "\\n") * 2)
        assert rc == 1 and "good: /dev/vda opened" in out, out
        assert "diff: this volume's key differs from the key already " \
            "loaded" in out, out
        maps = vm.sh("dmsetup ls")
        assert "good" in maps and "diff" not in maps, maps
        dump1 = vm.dump_ram(ctx.workdir / "dump1.raw")
        rc, out = unlock("open good")
        assert rc == 0 and "already active on xts(tresor)" in out, out
        # status (cryptsetup's exit codes: 0 active, 4 inactive)
        rc, out = vm.run(f"{BIN} status good 2>&1", timeout=60)
        assert rc == 0 and "key: loaded in the CPU debug registers" in out \
            and "good: active on capi:xts(tresor)-plain64 as " \
            "/dev/mapper/good (/dev/vda: /dev/vda)" in out, out
        rc, out = vm.run(f"{BIN} status good cbc 2>&1", timeout=60)
        assert rc == 4 and "cbc: inactive (/dev/vdb: /dev/vdb)" in out, out
        rc, out = vm.run(f"{BIN} status nosuch 2>&1", timeout=60)
        assert rc == 2 and "no entry 'nosuch'" in out, out
        # --debug: libcryptsetup's debug lines
        rc, out = vm.run(f"{BIN} --debug --print-uuids check 2>&1",
                         timeout=120)
        assert "# Allocating context for crypt device /dev/vda" in out, out
        # issue 15.2: the member under a holder is never mapped; the
        # holder (dm-linear here, an md array on a host) is
        sectors = (DISK_MB << 20) // 512
        vm.sh(f"DM_DISABLE_UDEV=1 dmsetup create lin --table "
              f"'0 {sectors} linear /dev/vde 0' && dmsetup mknodes lin")
        lin = vm.sh("readlink -f /sys/class/block/vde/holders/*").strip()
        lin = "/dev/" + lin.rsplit("/", 1)[-1]
        rc, out = unlock("open held", pw.decode() + "\\n")
        assert rc == 0 and f"held: {lin} opened on xts(tresor)" in out, \
            f"expected {lin}:\n{out}"
        got = vm.sh("sha256sum /dev/mapper/held").split()[0]
        assert got == hashlib.sha256(data_h).hexdigest(), \
            "held: content differs from what the host wrote"
        # a member whose holder does not show the volume (an md array
        # that is not started yet, a multipath map; here dm-linear from
        # sector 8): never mapped, the volume is waited for instead
        vm.sh(f"{BIN} close held && DM_DISABLE_UDEV=1 dmsetup remove lin"
              f" && DM_DISABLE_UDEV=1 dmsetup create hold --table "
              f"'0 {sectors - 8} linear /dev/vde 8' && dmsetup mknodes hold")
        rc, out = unlock("open member", pw.decode() + "\n")
        assert rc == 1 and f"member: device UUID={uuid_held} did not " \
            "appear within 3s" in out and "opened" not in out, out
        maps = vm.sh("dmsetup ls")
        holders = vm.sh("ls /sys/class/block/vde/holders").split()
        assert "member" not in maps and len(holders) == 1, \
            f"the member was mapped: {maps}, vde held by {holders}"
        vm.sh("DM_DISABLE_UDEV=1 dmsetup remove hold")
        # an absent disk: one "waiting" line, one timeout line in seconds
        rc, out = unlock("open absent")
        lines = [ln for ln in out.splitlines() if ln.strip()]
        assert rc == 1 and len(lines) <= 2 and \
            f"absent: device UUID={absent} did not appear within 3s" \
            in out, out
        # unknown verb: an error, not a volume name
        rc, out = vm.run(f"{BIN} held 2>&1", timeout=60)
        assert rc == 2 and "unknown command 'held'" in out and \
            "Try 'tresor-unlock --help'" in out, out
        vm.poweroff()
    res = memsearch.search_key(dump0, key)
    assert not memsearch.key_found(res), f"key in RAM after refusals: {res}"
    found = memsearch.aeskeyfind(dump1)
    for name, k in (("host", key), ("refused volume's", other)):
        res = memsearch.search_key(dump1, k, found)
        assert not memsearch.key_found(res), \
            f"{name} key in RAM after the key comparison: {res}"
    ctx.note("refused: a stock mapping of the same name, 3 wrong "
             "passphrases, aes-cbc-essiv, 512-bit XTS, unknown option, "
             "different volume key; dumps after the refusals and after the "
             "key comparison: no key; UUID= (upper case) under a dm holder "
             "opened through the holder, never a held member whose holder "
             "does not show it; absent disk: 2 lines")


@vm_test(timeout=900)
def test_tresor_unlock_format(ctx):
    """`tresor-unlock format` makes a TRESOR-ready LUKS2 volume; with
    --volume-key-from the second one shares the first one's volume key;
    both open on xts(tresor) and the host sees the same volume key."""
    d1, d2 = ctx.disk("f1.img", DISK_MB), ctx.disk("f2.img", DISK_MB)
    p1, p2 = b"first-pass", b"second-pass"
    files = unlock_files()
    files["/etc/tresortab"] = (b"one /dev/vda none\n"
                               b"two /dev/vdb none\n")
    with ctx.boot(disks=[d1, d2], extra_files=files) as vm:
        guest_setup(vm)
        fmt = f"{BIN} --passphrase-fd 0 --pbkdf-force-iterations 1000 format"
        out = vm.sh(f"printf 'first-pass\\n' | {fmt} --sector-size 4096 "
                    "/dev/vda 2>&1", timeout=120)
        assert "LUKS2 aes-xts-plain64, 256-bit key" in out, out
        rc, out = vm.run(f"printf 'x\\n' | {fmt} /dev/vda 2>&1")
        assert rc == 1 and "already has a LUKS header" in out, out
        out = vm.sh(f"printf 'first-pass\\nsecond-pass\\n' | {fmt} "
                    "--volume-key-from one /dev/vdb 2>&1", timeout=120)
        assert "(the host volume key)" in out, out
        out = vm.sh(f"printf 'first-pass\\nsecond-pass\\n' | {BIN} "
                    "--passphrase-fd 0 2>&1", timeout=120)
        assert "one: /dev/vda opened" in out and \
            "two: /dev/vdb opened" in out, out
        vm.sh("dd if=/dev/urandom of=/tmp/x bs=64k count=16 2>/dev/null; "
              "dd if=/tmp/x of=/dev/mapper/one bs=64k oflag=direct "
              "2>/dev/null; dd if=/tmp/x of=/dev/mapper/two bs=64k "
              "oflag=direct 2>/dev/null; sync")
        vm.poweroff()
    keys = []
    for img, pw in ((d1, p1), (d2, p2)):
        out = subprocess.run(["cryptsetup", "luksDump", "--dump-volume-key",
                              "--batch-mode", "--key-file", "-", str(img)],
                             input=pw, capture_output=True, check=True,
                             text=False).stdout.decode()
        hexkey = re.search(r"(?:MK dump|Volume key):\s*((?:[0-9a-f]{2}\s+)+)", out).group(1)
        keys.append(bytes.fromhex("".join(hexkey.split())))
        assert "Cipher name:   \taes" in out and "xts-plain64" in out, out
    assert len(keys[0]) == 32 and keys[0] == keys[1], \
        "the volumes do not share the volume key"
    ctx.note("format + --volume-key-from: same 256-bit volume key, "
             "both open on xts(tresor)")


def unlock_vol(vm, pw):
    """tresor-unlock open vol, the passphrase pw on --passphrase-fd."""
    return vm.run(f"printf '{pw.decode()}\\n' | {BIN} --passphrase-fd 0 "
                  "open vol 2>&1", timeout=120)


def assert_opened(vm, out, want):
    """vol opened on xts(tresor), its content hashing to want."""
    assert "vol: /dev/vda opened on xts(tresor)" in out, out
    got = vm.sh("sha256sum /dev/mapper/vol").split()[0]
    assert got == want, "vol: content differs from what the host wrote"


@vm_test(timeout=900)
def test_tresor_unlock_key_policy(ctx):
    """tresor.ko refuses SET_KEY under a hypervisor (QEMU TCG sets CPUID's
    hypervisor bit) unless allow_hypervisor=1, and before the
    tresor_showregs livepatch is active unless allow_no_showregs=1; each
    refusal has its errno (EOPNOTSUPP, ENOPKG) and a log line saying why,
    and tresor-unlock prints the reason. tresor-unlock loads the livepatch
    itself and waits for its transition before loading the key."""
    key = os.urandom(32)
    pw = b"policy passphrase"
    img, _, off = luks_format(ctx, "policy.img", pw, key)
    data = os.urandom(payload_bytes(off))
    luks.encrypt_payload(img, key, off, 512, data)
    want = hashlib.sha256(data).hexdigest()
    files = unlock_files()
    files["/etc/tresortab"] = b"vol /dev/vda none\n"


    def set_key(vm):
        return vm.sh(f"rcprobe set-key-masked {masked_key_args(key)}")

    def no_key(vm):
        assert vm.sh("cat /sys/kernel/tresor/key_loaded") == "0", \
            "a key is loaded after a refusal"
        maps = vm.sh("dmsetup ls")
        assert "No devices found" in maps, f"mappings left: {maps}"


    # 1. The bench's tresor.allow_hypervisor=1 left off the command line.
    with ctx.boot(name="hypervisor", disks=[img], extra_files=files,
                  bench_params=False) as vm:
        vm.secrets += [key.hex(), key[:16].hex(), key[16:].hex()]
        flags = vm.sh("grep -m1 '^flags' /proc/cpuinfo").split()
        assert "hypervisor" in flags, "the guest CPU reports no hypervisor"
        assert "tresor." not in vm.sh("cat /proc/cmdline")
        guest_setup(vm)
        load_showregs_livepatch(vm)
        r = set_key(vm)
        assert r == "errno=EOPNOTSUPP", f"SET_KEY under a hypervisor: {r}"
        assert vm.sh("cat /sys/module/tresor/parameters/allow_hypervisor") \
            == "N"
        log = vm.sh("dmesg")
        assert "tresor: refusing the key: CPUID reports a hypervisor, " \
            "which saves DR0-DR3 (the key) to its own RAM on VM exits; " \
            "load tresor with allow_hypervisor=1" in log, log[-2000:]
        no_key(vm)
        rc, out = unlock_vol(vm, pw)
        assert rc == 1 and "vol: tresor.ko refuses the key: this machine " \
            "runs under a hypervisor (CPUID hypervisor bit)" in out and \
            "tresor.allow_hypervisor=1" in out, out
        no_key(vm)
        # the parameter accepts it, with a warning
        vm.sh("rmmod tresor && modprobe tresor allow_hypervisor=1")
        rc, out = unlock_vol(vm, pw)
        assert rc == 0, out
        assert_opened(vm, out, want)
        assert "loading the key anyway (allow_hypervisor=1)" in \
            vm.sh("dmesg"), "no warning that the key is loaded anyway"
        vm.poweroff()

    # 2. Bench parameters on, no livepatch yet.
    with ctx.boot(name="livepatch", disks=[img], extra_files=files) as vm:
        vm.secrets += [key.hex(), key[:16].hex(), key[16:].hex()]
        guest_setup(vm)
        assert vm.sh(f"test -e {LIVEPATCH} && echo loaded || echo none") \
            == "none"
        r = set_key(vm)
        assert r == "errno=ENOPKG", f"SET_KEY without the livepatch: {r}"
        assert "tresor: refusing the key: the tresor_showregs livepatch " \
            "is not loaded, so an oops or WARN would print DR0-DR3 (the " \
            "key) to the log" in vm.sh("dmesg")
        no_key(vm)
        # tresor-unlock cannot load it (modprobe fails): the reason, twice
        # (a script: busybox would run its modprobe applet by argv[0])
        vm.sh("printf '#!/bin/sh\\nexit 1\\n' > /tmp/nomodprobe && "
              "chmod +x /tmp/nomodprobe && "
              "echo /tmp/nomodprobe > /proc/sys/kernel/modprobe")
        rc, out = unlock_vol(vm, pw)
        vm.sh("echo /sbin/modprobe > /proc/sys/kernel/modprobe")
        assert rc == 1 and "vol: could not load the tresor_showregs " \
            "livepatch (modprobe tresor_showregs: exit status 1)" in out \
            and "vol: tresor.ko refuses the key: the tresor_showregs " \
            "livepatch is not active" in out, out
        no_key(vm)
        # tresor-unlock loads it and waits for the transition: opened
        rc, out = unlock_vol(vm, pw)
        assert rc == 0, out
        assert_opened(vm, out, want)
        assert vm.sh(f"cat {LIVEPATCH}/enabled {LIVEPATCH}/transition") \
            == "1\n0"
        log = vm.sh("dmesg")
        done = log.find("tresor_showregs: transition done")
        loaded = log.find("tresor: key loaded on CPUs")
        assert 0 <= done < loaded, \
            f"transition done at {done}, key loaded at {loaded}:\n" \
            + log[-2000:]
        vm.poweroff()
    ctx.note("SET_KEY under a hypervisor: EOPNOTSUPP + log line, "
             "tresor-unlock says why; allow_hypervisor=1 opens; without the "
             "livepatch: ENOPKG + log line; tresor-unlock loads it, waits "
             "for the transition and opens")


@vm_test(timeout=900)
def test_tresor_unlock_pmu_policy(ctx):
    """tresor.ko refuses SET_KEY on a CPU whose PMU can write XMM registers
    (the round keys) to RAM, unless lockdown forbids such sampling or
    allow_pebs_xmm=1 accepts it (then flagged in pmu_xmm_exposed). TCG has
    no PMU: assume_pebs_xmm=1 forces the capability path; the decision on
    IA32_PERF_CAPABILITIES itself cannot run here. (1) refused with
    EKEYREJECTED, a log line, tresor-unlock's reason; (2) allow_pebs_xmm=1
    opens and flags it; (3) after `lockdown=confidentiality` (set at run
    time: the unsigned test modules could not load under it) the same
    module opens with nothing flagged."""
    key = os.urandom(32)
    pw = b"pmu passphrase"
    img, _, off = luks_format(ctx, "pmu.img", pw, key)
    data = os.urandom(payload_bytes(off))
    luks.encrypt_payload(img, key, off, 512, data)
    want = hashlib.sha256(data).hexdigest()
    files = unlock_files()
    files["/etc/tresortab"] = b"vol /dev/vda none\n"
    sysfs = "/sys/kernel/tresor/pmu_xmm_exposed"



    def reload(vm, params):
        vm.sh("! dmsetup info vol >/dev/null 2>&1 || dmsetup remove vol; "
              "[ $(cat /sys/kernel/tresor/key_loaded) = 0 ] || "
              f"rcprobe clear-key; rmmod tresor; modprobe tresor {params}")

    with ctx.boot(name="pmu", disks=[img], extra_files=files) as vm:
        vm.secrets += [key.hex(), key[:16].hex(), key[16:].hex()]
        guest_setup(vm)
        load_showregs_livepatch(vm)
        reload(vm, "assume_pebs_xmm=1")
        r = vm.sh(f"rcprobe set-key-masked {masked_key_args(key)}")
        assert r == "errno=EKEYREJECTED", f"SET_KEY with PEBS XMM: {r}"
        log = vm.sh("dmesg")
        assert "tresor: refusing the key: this CPU's PMU can write XMM " \
            "registers, which hold the AES round keys during a request, to " \
            "RAM (adaptive PEBS, perf record --intr-regs) and kernel " \
            "lockdown does not forbid it; boot with " \
            "lockdown=confidentiality, or load tresor with " \
            "allow_pebs_xmm=1" in log, log[-2000:]
        assert vm.sh("cat /sys/kernel/tresor/key_loaded") == "0"
        rc, out = unlock_vol(vm, pw)
        assert rc == 1 and "vol: tresor.ko refuses the key: this CPU's PMU " \
            "can write XMM registers" in out and \
            "lockdown=confidentiality" in out and \
            "allow_pebs_xmm=1" in out, out
        assert "No devices found" in vm.sh("dmsetup ls")

        # (2) accepted, flagged
        reload(vm, "assume_pebs_xmm=1 allow_pebs_xmm=1")
        rc, out = unlock_vol(vm, pw)
        assert rc == 0, out
        assert_opened(vm, out, want)
        assert vm.sh(f"cat {sysfs}") == "1"
        assert "loading the key anyway (allow_pebs_xmm=1), flagged in " \
            f"{sysfs}" in vm.sh("dmesg")
        flags = vm.sh("rcprobe tresor-status")
        assert "pmu_xmm_exposed=1" in flags, flags

        # (3) lockdown forbids interrupt-register sampling: no refusal
        reload(vm, "assume_pebs_xmm=1")
        lock = vm.sh("mountpoint -q /sys/kernel/security || mount -t "
                     "securityfs none /sys/kernel/security; "
                     "echo confidentiality > /sys/kernel/security/lockdown; "
                     "cat /sys/kernel/security/lockdown")
        assert "[confidentiality]" in lock, lock
        rc, out = unlock_vol(vm, pw)
        assert rc == 0, out
        assert_opened(vm, out, want)
        assert vm.sh(f"cat {sysfs}") == "0"
        vm.poweroff()
    ctx.note("PMU that can sample XMM (forced: assume_pebs_xmm=1): SET_KEY "
             "EKEYREJECTED + log line, tresor-unlock says why; "
             "allow_pebs_xmm=1 opens, pmu_xmm_exposed=1; under "
             "lockdown=confidentiality it opens, pmu_xmm_exposed=0")


AGENT = "/usr/lib/ramcrypt/test-ask-agent"
CRYPTROOT_UNLOCK = "/usr/lib/ramcrypt/cryptroot-unlock"


def generated_exec_stop(ctx, name):
    """The ExecStop= command tresor-generator writes into
    tresor-unlock@NAME.service for a tresortab with that entry."""
    d = ctx.workdir / "gen"
    (d / "out").mkdir(parents=True, exist_ok=True)
    (d / "tresortab").write_text(f"{name} /dev/vda none\n")
    env = {"TRESORTAB": str(d / "tresortab"), "CRYPTTAB": "/nonexistent",
           "TRESOR_GENERATOR_KMSG": str(d / "kmsg"),
           "SYSTEMD_PROC_CMDLINE": "", "SYSTEMD_IN_INITRD": "0",
           "PATH": "/usr/bin:/bin"}
    subprocess.run([str(REPO / "systemd" / "tresor-generator")] +
                   [str(d / "out")] * 3, env=env, check=True)
    unit = (d / "out" / f"tresor-unlock@{name}.service").read_text()
    stops = [ln.split("=", 1)[1] for ln in unit.splitlines()
             if ln.startswith("ExecStop=")]
    assert len(stops) == 1, f"ExecStop= lines of the unit: {stops}\n{unit}"
    return stops[0]


@vm_test(timeout=900)
def test_tresor_unlock_headless(ctx):
    """Issue 15, headless unlock, detach, one prompt. Where systemd runs
    (/run/systemd/system) the passphrase is asked through systemd's
    password agents: a test agent answers the ask file on its socket
    (stdin is no terminal, no console is read); a wrong passphrase that
    way fails as usual. Without systemd, Debian's passfifo: the
    cryptroot-unlock script writes the passphrase into
    /lib/cryptsetup/passfifo while tresor-unlock asks on a console nobody
    types on (a wrong one first). `detach NAME` removes our mapping,
    refuses a stock one naming it, and is the generated unit's ExecStop=.
    `open` of two volumes with the same volume key asks one passphrase
    (the second opens by crypt_volume_key_verify) and refuses a third
    with another key without asking."""
    key, other = os.urandom(32), os.urandom(32)
    p1, p2 = b"first-" + os.urandom(6).hex().encode(), \
        b"second-" + os.urandom(6).hex().encode()
    one, _, off1 = luks_format(ctx, "one.img", p1, key)
    two, _, off2 = luks_format(ctx, "two.img", p2, key, sector_size=4096)
    odd, _, _ = luks_format(ctx, "odd.img", p1, other)
    d1, d2 = os.urandom(payload_bytes(off1)), os.urandom(payload_bytes(off2))
    luks.encrypt_payload(one, key, off1, 512, d1)
    luks.encrypt_payload(two, key, off2, 4096, d2)
    want1, want2 = hashlib.sha256(d1).hexdigest(), hashlib.sha256(d2).hexdigest()
    stop_cmd = generated_exec_stop(ctx, "one")
    files = unlock_files()
    files[AGENT] = SRC / "bin" / "test-ask-agent"
    files[CRYPTROOT_UNLOCK] = SRC / "cryptroot-unlock"
    files["/etc/one.tab"] = b"one /dev/vda none tries=1\n"
    files["/etc/fifo.tab"] = b"one /dev/vda none tries=3\n"
    files["/etc/all.tab"] = (b"one /dev/vda none\n"
                             b"two /dev/vdb none readonly\n"
                             b"odd /dev/vdc none nofail\n")
    sock, qargs = console_args(ctx)
    with ctx.boot(disks=[one, two, odd], extra_files=files,
                  qemu_args=qargs) as vm:
        vm.secrets += [key.hex(), other.hex(), p1.decode(), p2.decode()]
        guest_setup(vm)
        vm.sh("mkdir -p /run/systemd/system /run/systemd/ask-password")

        # 1. systemd's agents: a wrong passphrase, then the right one
        rc, out = vm.run(f"""
set +e
printf 'wrong-one\\n' | {AGENT} --timeout 60 > /tmp/agent1 2>&1 &
a=$!
{BIN} --tresortab /etc/one.tab --timeout 60 attach one < /dev/null 2>&1
echo "rc=$?"
wait $a; echo "agent-rc=$?"
cat /tmp/agent1
ls /run/systemd/ask-password | wc -l
""", timeout=180)
        assert "rc=1" in out and "agent-rc=0" in out, out
        assert "one: wrong passphrase (attempt 1 of 1)" in out and \
            "one: no valid passphrase after 1 attempt" in out, out
        for want in ("Message=Please enter passphrase for disk /dev/vda "
                     "(one)", "AcceptCached=0", "Echo=0",
                     "Id=tresor-unlock:one", "Socket=/run/systemd/"
                     "ask-password/sck.", "answered (passphrase)"):
            assert want in out, f"{want!r} not in:\n{out}"
        assert out.strip().endswith("0"), f"ask files left:\n{out}"
        rc, out = vm.run(f"""
set +e
printf '%s\\n' '{p1.decode()}' | {AGENT} --timeout 60 > /tmp/agent2 2>&1 &
a=$!
{BIN} --tresortab /etc/one.tab --timeout 60 attach one < /dev/null 2>&1
echo "rc=$?"
wait $a; echo "agent-rc=$?"
ls /run/systemd/ask-password | wc -l
""", timeout=180)
        assert "rc=0" in out and "agent-rc=0" in out, out
        assert out.strip().endswith("0"), f"ask files left:\n{out}"
        assert "one: /dev/vda opened on xts(tresor)" in out, out
        assert vm.sh("sha256sum /dev/mapper/one").split()[0] == want1

        # 2. detach: ours goes (key stays), twice is no error, a stock
        # mapping of the name is refused and named; the unit's ExecStop=
        rc, out = vm.run(f"{BIN} detach one 2>&1; echo rc=$?; "
                         f"{BIN} detach one 2>&1; echo rc=$?; "
                         "dmsetup ls; cat /sys/kernel/tresor/key_loaded",
                         timeout=60)
        assert "one: detached\nrc=0" in out and \
            "one: not active, nothing to detach\nrc=0" in out and \
            "No devices found" in out and out.strip().endswith("1"), out
        vm.sh(f"printf '%s' '{p1.decode()}' | DM_DISABLE_UDEV=1 cryptsetup "
              "open --key-file - /dev/vda one && dmsetup mknodes one",
              timeout=120)
        rc, out = vm.run(f"{BIN} detach one 2>&1", timeout=60)
        assert rc == 1 and "one: /dev/mapper/one is not a TRESOR mapping " \
            "(DM UUID 'CRYPT-LUKS2-" in out and "crypt aes-xts-plain64" in \
            out and "refusing to detach it" in out, out
        assert "one" in vm.sh("dmsetup ls"), "the stock mapping went"
        vm.sh("DM_DISABLE_UDEV=1 cryptsetup close one")
        rc, out = vm.run(f"printf '%s\\n' '{p1.decode()}' | {BIN} "
                         "--passphrase-fd 0 --tresortab /etc/one.tab attach "
                         f"one 2>&1 && {stop_cmd} 2>&1 && dmsetup ls",
                         timeout=180)
        assert rc == 0 and "one: detached" in out and \
            "No devices found" in out, f"{stop_cmd}:\n{out}"

        # 3. no systemd: the passfifo, answered by cryptroot-unlock; the
        # console (ttyS1) is never typed on
        vm.sh("rm -rf /run/systemd")
        rc, out = vm.run(f"""
set +e
{BIN} --tresortab /etc/fifo.tab --console /dev/ttyS1 --timeout 120 open \
  > /tmp/fifo.out 2>&1 &
u=$!
printf 'wrong-two' | TIMEOUT=90 {CRYPTROOT_UNLOCK} 2>&1; echo "cu1=$?"
cat /run/tresor-unlock/asking
printf '%s' '{p1.decode()}' | {CRYPTROOT_UNLOCK} 2>&1; echo "cu2=$?"
wait $u; echo "rc=$?"
cat /tmp/fifo.out
ls -d /lib/cryptsetup/passfifo /run/tresor-unlock/asking 2>&1
""", timeout=300)
        for want in ("Please unlock disk one", "one: wrong passphrase",
                     "cu1=1", "TRIED=1", "TRIES=3",
                     "tresor-unlock: one set up successfully", "cu2=0",
                     "rc=0", "one: wrong passphrase (attempt 1 of 3)",
                     "one: /dev/vda opened on xts(tresor)",
                     "/lib/cryptsetup/passfifo: No such file",
                     "/run/tresor-unlock/asking: No such file"):
            assert want in out, f"{want!r} not in:\n{out}"
        assert vm.sh("sha256sum /dev/mapper/one").split()[0] == want1
        vm.sh(f"{BIN} detach one")

        # 4. one passphrase for two volumes; the third (another key) is
        # refused without asking
        rc, out = vm.run(f"printf '%s\\n' '{p1.decode()}' | {BIN} "
                         "--passphrase-fd 0 --tresortab /etc/all.tab open "
                         "2>&1", timeout=300)
        assert rc == 0, out
        assert "one: /dev/vda opened on xts(tresor)" in out and \
            "two: /dev/vdb opened on xts(tresor) as /dev/mapper/two with " \
            "the host key of one" in out, out
        assert "odd: this volume's key differs from the key already " \
            "loaded in tresor.ko (the host key, from one)" in out and \
            "odd: failed (nofail: continuing)" in out, out
        assert "no more passphrases" not in out, out
        sums = vm.sh("sha256sum /dev/mapper/one /dev/mapper/two")
        got = [ln.split()[0] for ln in sums.splitlines()]
        assert got == [want1, want2], "content differs from the host's"
        vm.poweroff()
    ctx.note("agent socket: wrong passphrase refused, right one opens; "
             "detach + foreign refusal + generated ExecStop=; passfifo via "
             "cryptroot-unlock (wrong, then right); one passphrase for two "
             "volumes, other key refused unasked")


# ---- LUKS2 tokens: systemd-cryptenroll's TPM2 on a software TPM ----------

# libcryptsetup 2.6.1's token directory (crypt_token_external_path();
# /usr/lib/... on the merged-/usr host, not in the busybox guest)
TOKEN_DIR = "/lib/x86_64-linux-gnu/cryptsetup"
TPM2_PLUGIN = f"{TOKEN_DIR}/libcryptsetup-token-systemd-tpm2.so"
CRYPTENROLL = "/usr/bin/systemd-cryptenroll"
# dlopen()ed by libsystemd-shared's TPM2 code (systemd 252), not in ldd
TSS2_LIBS = ["libtss2-esys.so.0", "libtss2-rc.so.0", "libtss2-mu.so.0",
             "libtss2-tcti-device.so.0"]
LIBDIR = "/usr/lib/x86_64-linux-gnu"


def tpm2_guest_files():
    """extra_files for systemd-cryptenroll, the libcryptsetup TPM2 token
    plugin and the tss2 libraries, at the host's paths; a list of what is
    missing on the host instead (the test is skipped then)."""
    want = [CRYPTENROLL, TPM2_PLUGIN] + [f"{LIBDIR}/{n}" for n in TSS2_LIBS]
    missing = [p for p in want if not Path(p).exists()]
    if missing:
        return None, missing
    files = {}
    for p in want:
        files[p] = Path(p).resolve()
        for lib in _ldd_libs(p):
            files[lib] = Path(lib).resolve()
    return files, []


def pcr16_extend_cmd():
    """A raw TPM2_PCR_Extend of PCR 16 (the debug PCR, empty password
    authorisation) in the SHA-1 and SHA-256 banks (an unallocated bank's
    digest is ignored)."""
    body = (0x10).to_bytes(4, "big") + (9).to_bytes(4, "big") + \
        (0x40000009).to_bytes(4, "big") + b"\0\0" + b"\0" + b"\0\0" + \
        (2).to_bytes(4, "big") + b"\x00\x04" + b"\x11" * 20 + \
        b"\x00\x0b" + b"\x22" * 32
    return b"\x80\x02" + (10 + len(body)).to_bytes(4, "big") + \
        (0x182).to_bytes(4, "big") + body


@vm_test(timeout=900)
def test_tresor_unlock_tpm2(ctx):
    """Issue 15, tokens: a LUKS2 volume enrolled in the guest with
    `systemd-cryptenroll --tpm2-device=auto --tpm2-pcrs=16` on a software
    TPM (swtpm on the host, QEMU tpm-tis) opens with no passphrase input
    (the passphrase fd is empty), reads back right, and its table is
    capi:xts(tresor) with the zero key. The TPM hidden (its ACPI table
    still there): waited for token-timeout=, one line, then the
    passphrase is asked; headless: the line, and it fails without reading
    the passphrase; a TPM 3 s late is waited for (default 30s) and opens
    it. PCR 16 extended (the PCR policy no longer holds): the
    same. TPM2+PIN (`--tpm2-with-pin=yes`): the PIN asked through the
    password agent (prompt names the token PIN), a wrong PIN counted,
    the right one opens."""
    guest, missing = tpm2_guest_files()
    if missing:
        raise Skip("not on the host: " + ", ".join(missing) +
                   " (tests/install-deps installs them)")
    if subprocess.run(["sh", "-c", "command -v swtpm"],
                      capture_output=True).returncode:
        raise Skip("swtpm is not installed (tests/install-deps installs "
                   "it)")
    key = os.urandom(32)
    pw = b"tpm-" + os.urandom(6).hex().encode()
    pin = "4711" + os.urandom(2).hex()
    img, _, off = luks_format(ctx, "tpm.img", pw, key)
    data = os.urandom(payload_bytes(off))
    luks.encrypt_payload(img, key, off, 512, data)
    want = hashlib.sha256(data).hexdigest()
    files = unlock_files()
    files.update(guest)
    files[AGENT] = SRC / "bin" / "test-ask-agent"
    files["/etc/pcr16.bin"] = pcr16_extend_cmd()
    files["/etc/v.tab"] = b"v /dev/vda none tries=2\n"
    files["/etc/h.tab"] = \
        b"v /dev/vda none headless,tpm2-device=auto,token-timeout=2s\n"
    files["/etc/g.tab"] = b"v /dev/vda none tries=2,token-timeout=2s\n"
    tpm = SoftTPM(ctx)
    try:
        with ctx.boot(disks=[img], extra_files=files,
                      qemu_args=tpm.qemu_args()) as vm:
            vm.secrets += [key.hex(), pw.decode(), pin]
            guest_setup(vm)
            vm.sh("mkdir -p /run")

            def attach(tab, stdin="", extra=""):
                """attach v; the passphrase fd is stdin (printf'd)."""
                return vm.run(f"printf '{stdin}' | {BIN} --tresortab "
                              f"{tab} --passphrase-fd 0 {extra} attach v "
                              "2>&1", timeout=300)

            def opened_right():
                assert vm.sh("sha256sum /dev/mapper/v").split()[0] == \
                    want, "content differs from the host's"
                table = vm.sh("dmsetup table --showkeys v")
                assert f"crypt capi:xts(tresor)-plain64 {'0' * 64} 0 " \
                    in table, table
                vm.sh(f"{BIN} detach v")

            def not_mapped():
                assert "No devices found" in vm.sh("dmsetup ls"), \
                    vm.sh("dmsetup ls")

            out = vm.sh(f"ls /dev/tpm0 /dev/tpmrm0 && "
                        f"PASSWORD='{pw.decode()}' {CRYPTENROLL} "
                        "--tpm2-device=auto --tpm2-pcrs=16 /dev/vda 2>&1 && "
                        "cryptsetup luksDump /dev/vda | sed -n "
                        "'/^Tokens:/,/^Digests:/p'", timeout=300)
            assert "systemd-tpm2" in out, out

            # 1. the TPM opens it: nothing is read from the passphrase fd
            rc, out = attach("/etc/v.tab")
            assert rc == 0, out
            assert "v: volume key from LUKS2 token 0 systemd-tpm2" in out \
                and "v: /dev/vda opened on xts(tresor)" in out, out
            assert "passphrase" not in out, out
            opened_right()

            # 2. the TPM gone (its ACPI table still there: the firmware
            # has one): waited for token-timeout=2s, one line, then the
            # passphrase; headless fails with the line and reads no
            # passphrase
            assert "acpi-tpm2" in vm.sh(
                "test -e /sys/firmware/acpi/tables/TPM2 && echo acpi-tpm2"
                " || true"), "no ACPI TPM2 table: the wait is not tested"
            vm.sh("mkdir -p /dev/gone && mv /dev/tpm0 /dev/tpmrm0 /dev/gone/")
            rc, out = attach("/etc/g.tab", pw.decode() + "\\n")
            assert rc == 0, out
            assert "v: the firmware has a TPM2 chip but /dev/tpmrm0 is not " \
                "there; waiting up to 2s for it (token-timeout=)" in out \
                and "v: no /dev/tpmrm0 after 2s" in out, out
            gone = [ln for ln in out.splitlines()
                    if "v: LUKS2 token 0 systemd-tpm2" in ln]
            assert len(gone) == 1 and gone[0].endswith(
                "; asking for the passphrase"), out
            assert "v: /dev/vda opened on xts(tresor)" in out, out
            opened_right()
            # a TPM late by 3 s (its driver still loading): the default
            # token-timeout (30s) waits for it, and it opens, unasked
            rc, out = vm.run(f"""
set +e
(sleep 3; mv /dev/gone/tpm0 /dev/gone/tpmrm0 /dev/) &
{BIN} --tresortab /etc/v.tab --passphrase-fd 0 attach v < /dev/null 2>&1
echo "rc=$?"
wait
mv /dev/tpm0 /dev/tpmrm0 /dev/gone/
""", timeout=300)
            assert "rc=0" in out and "waiting up to 30s for it " \
                "(token-timeout=)" in out and "v: volume key from LUKS2 " \
                "token 0 systemd-tpm2" in out and "passphrase" not in out, \
                out
            opened_right()
            # no TPM at all (no tpmrm device, no ACPI TPM2 table: bind
            # mounts hide both): the plugin says EAGAIN, but with no TPM
            # in the firmware none will come, so the passphrase is asked
            # at once, not after token-timeout (30s)
            rc, out = vm.run(f"""
set +e
mkdir -p /tmp/empty
mount --bind /tmp/empty /sys/class/tpmrm &&
  mount --bind /tmp/empty /sys/firmware/acpi/tables && echo hidden
s=$(date +%s)
printf '%s\\n' '{pw.decode()}' | {BIN} --tresortab /etc/v.tab \
  --passphrase-fd 0 attach v 2>&1
echo "rc=$?"
echo "secs=$(( $(date +%s) - s ))"
umount /sys/firmware/acpi/tables; umount /sys/class/tpmrm
""", timeout=300)
            secs = int(re.search(r"secs=(\d+)", out).group(1))
            assert "hidden" in out and "rc=0" in out and "needs a device " \
                "that is not here" in out and secs < 15, \
                f"{secs}s for a TPM the host does not have:\n{out}"
            opened_right()
            rc, out = attach("/etc/h.tab", pw.decode() + "\\n")
            assert rc == 1 and "; headless: no passphrase is asked" in out \
                and "opened" not in out, out
            not_mapped()
            vm.sh("mv /dev/gone/tpm0 /dev/gone/tpmrm0 /dev/")
            tpm_gone = gone[0]

            # 3. PCR 16 changed: the policy fails, the passphrase opens it
            rsp = vm.sh("exec 3<>/dev/tpmrm0; dd if=/etc/pcr16.bin bs=87 "
                        "count=1 >&3 2>/dev/null; dd bs=64 count=1 <&3 "
                        "2>/dev/null | od -An -tx1")
            assert rsp.split()[:10] == ["80", "02", "00", "00", "00", "13",
                                        "00", "00", "00", "00"], rsp
            rc, out = attach("/etc/v.tab", pw.decode() + "\\n")
            assert rc == 0, out
            pcr = [ln for ln in out.splitlines()
                   if "v: LUKS2 token 0 systemd-tpm2" in ln]
            assert len(pcr) == 1 and pcr[0].endswith(
                "; asking for the passphrase"), out
            opened_right()
            rc, out = attach("/etc/h.tab", pw.decode() + "\\n")
            assert rc == 1 and "; headless: no passphrase is asked" in out, \
                out
            not_mapped()
            pcr_line = pcr[0]
            # no plugin for the token's type: said so (headless: fails)
            vm.sh(f"mv {TPM2_PLUGIN} /tmp/plugin.so")
            rc, out = attach("/etc/h.tab", pw.decode() + "\\n")
            assert rc == 1 and "v: LUKS2 token 0 systemd-tpm2 (no plugin) " \
                "could not be used: libcryptsetup has no plugin for its " \
                f"type in {TOKEN_DIR}" in out and "; headless: no " \
                "passphrase is asked" in out, out
            not_mapped()
            vm.sh(f"mv /tmp/plugin.so {TPM2_PLUGIN}")

            # 4. TPM2+PIN, the PIN through the password agent
            out = vm.sh(f"PASSWORD='{pw.decode()}' NEWPIN='{pin}' "
                        f"{CRYPTENROLL} --wipe-slot=tpm2 --tpm2-device=auto "
                        "--tpm2-with-pin=yes --tpm2-pcrs=16 /dev/vda 2>&1",
                        timeout=300)
            vm.sh("mkdir -p /run/systemd/system /run/systemd/ask-password")
            rc, out = vm.run(f"""
set +e
printf '%s\\n' 0000 '{pin}' | {AGENT} --count 2 --timeout 120 > /tmp/ag 2>&1 &
a=$!
{BIN} --tresortab /etc/v.tab --timeout 120 attach v < /dev/null 2>&1
echo "rc=$?"
wait $a; echo "agent-rc=$?"
cat /tmp/ag
""", timeout=300)
            assert "rc=0" in out and "agent-rc=0" in out, out
            # --wipe-slot=tpm2 removed token 0; the new one is token 1
            for w in ("Message=Please enter the LUKS2 token PIN (token "
                      "1 systemd-tpm2) for disk /dev/vda (v)",
                      "Id=tresor-unlock-pin:v",
                      "v: wrong token PIN (attempt 1 of 2)",
                      "v: volume key from LUKS2 token 1 systemd-tpm2",
                      "v: /dev/vda opened on xts(tresor)"):
                assert w in out, f"{w!r} not in:\n{out}"
            assert "Please enter passphrase" not in out, out
            opened_right()
            vm.sh("rm -rf /run/systemd")
            rc, out = attach("/etc/h.tab", pw.decode() + "\\n")
            assert rc == 1 and "needs a PIN; headless: no passphrase is " \
                "asked" in out, out
            pin_line = [ln for ln in out.splitlines() if "needs a PIN" in ln][0]
            not_mapped()
            vm.poweroff()
    finally:
        tpm.stop()
    ctx.note(f"TPM gone: '{tpm_gone.split(': ', 2)[-1]}'; PCR changed: "
             f"'{pcr_line.split(': ', 2)[-1]}'; headless PIN token: "
             f"'{pin_line.split(': ', 2)[-1]}'")
