"""dm-crypt on xts(tresor): byte-compatible with AES-128-XTS on disk, no key
in RAM while it runs, and no I/O without the key."""
import hashlib
import os
import subprocess

from harness import memsearch
from harness.dmcrypt import open_stock, open_tresor, xts_decrypt_image
from harness.guest import (LOAD_TRESOR, load_masked_key,
                           load_showregs_livepatch)
from harness.registry import vm_test

DISK_MB = 32
# (cryptsetup cipher spec, sector size, dm-crypt perf flags)
CONFIGS = [
    ("capi:xts(tresor)-plain64", 512, False),
    ("capi:xts(tresor)-plain64", 4096, True),
    ("tresor-xts-plain64", 4096, False),
    ("tresor-xts-plain64", 512, True),
]
def debugfs_cat(image, name):
    r = subprocess.run(["debugfs", "-R", f"cat /{name}", str(image)],
                       capture_output=True)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout


@vm_test(timeout=900)
def test_tresor_dmcrypt_round_trip(ctx):
    key = os.urandom(32)
    set_id = int.from_bytes(os.urandom(4), "little") | 1
    disks = [ctx.disk(f"d{i}.img", DISK_MB) for i in range(len(CONFIGS))]
    with ctx.boot(disks=disks) as vm:
        vm.sh(LOAD_TRESOR)
        load_masked_key(vm, key)
        for i, (spec, ss, perf) in enumerate(CONFIGS):
            dev = "/dev/vd" + "abcd"[i]
            open_tresor(vm, dev, f"t{i}", spec, ss, perf)
            vm.sh(f"""
modprobe ext4
mkfs.ext4 -q /dev/mapper/t{i}
mount /dev/mapper/t{i} /mnt
for j in 0 1 2 3; do canary --print {set_id} $j > /mnt/small$j; done
for j in $(seq 100 355); do canary --print {set_id + i} $j; done > /mnt/big
sync
umount /mnt
DM_DISABLE_UDEV=1 cryptsetup close t{i}
""", timeout=300)
        vm.poweroff()
    for i, (spec, ss, perf) in enumerate(CONFIGS):
        plain = ctx.workdir / f"d{i}.plain"
        plain.write_bytes(xts_decrypt_image(disks[i], key, ss))
        for j in range(4):
            got = debugfs_cat(plain, f"small{j}")
            assert got == memsearch.canary_page(set_id, j), \
                f"{spec} sector {ss}: small{j} differs after decryption"
        want = b"".join(memsearch.canary_page(set_id + i, j)
                        for j in range(100, 356))
        assert debugfs_cat(plain, "big") == want, \
            f"{spec} sector {ss}: big differs after decryption"
        # the raw image is ciphertext: the canary is not readable there
        assert not memsearch.find_canaries(disks[i], set_id, 4), \
            f"{spec}: plaintext on the encrypted disk"
        ctx.note(f"{spec} sector {ss}{' no-workqueue' if perf else ''}: "
                 f"1 MiB + 4 pages decrypted byte-identical with OpenSSL")


@vm_test(timeout=900, est=150)
def test_tresor_cold_boot_during_io(ctx):
    """With every protection active (livepatch, breakpoint slots, holders =
    {CPU 0} so that CPU 1's I/O is forwarded), 5 dumps during I/O hold no
    trace of the key; the same dumps show a stock dm-crypt key."""
    key = os.urandom(32)
    base_key = os.urandom(32)
    disks = [ctx.disk("tresor.img", 64), ctx.disk("stock.img", 64)]
    with ctx.boot(disks=disks) as vm:
        vm.sh(LOAD_TRESOR + " && modprobe dm_crypt")
        load_showregs_livepatch(vm)
        load_masked_key(vm, key)
        assert vm.sh("rcprobe set-holders 0") == "ok"
        open_tresor(vm, "/dev/vda", "tres", ss=4096, perf=True)
        open_stock(vm, base_key, "base", "/dev/vdb")
        # one writer per CPU on the TRESOR disk (CPU 1's requests are
        # forwarded to CPU 0), one on the stock disk
        vm.sh("""
io() {
  while :; do
    taskset -c $1 dd if=/dev/urandom of=/dev/mapper/$2 bs=64k count=64 \
      seek=$3 oflag=direct
    taskset -c $1 dd if=/dev/mapper/$2 of=/dev/null bs=64k count=64 \
      skip=$3 iflag=direct
  done > /dev/null 2>&1
}
io 0 tres 0 & io 1 tres 256 & io 0 base 0 &
sleep 2
""")
        last = int(vm.sh("cat /sys/kernel/tresor/requests"))
        for n in range(5):
            dump = vm.dump_ram(ctx.workdir / f"dump{n}.raw")
            now = int(vm.sh("sleep 1; cat /sys/kernel/tresor/requests"))
            assert now > last, "no xts(tresor) I/O between dumps"
            last = now
            found = memsearch.aeskeyfind(dump)
            res = memsearch.search_key(dump, key, found)
            base = memsearch.search_key(dump, base_key, found)
            ctx.note(f"dump {n}: tresor key aeskeyfind={res['aeskeyfind']} "
                     f"raw={sum(res['raw'].values())}; stock baseline "
                     f"aeskeyfind={base['aeskeyfind']} "
                     f"raw={sum(base['raw'].values())}")
            assert not memsearch.key_found(res), \
                f"dump {n}: the TRESOR key is in RAM: {res}"
            assert base["aeskeyfind"] == ["K1", "K2"], \
                f"dump {n}: baseline key not found, the search is blind"
            dump.unlink()
        fw = int(vm.sh("cat /sys/kernel/tresor/forwarded_requests"))
        ctx.note(f"xts(tresor) requests during the test: {last}, "
                 f"forwarded from CPU 1: {fw}")
        assert fw > 0, "CPU 1's I/O was not forwarded"


@vm_test()
def test_tresor_dmcrypt_bad_input(ctx):
    disk = ctx.disk("d.img", 16)
    pattern = os.urandom(16 << 20)
    disk.write_bytes(pattern)
    key = os.urandom(32)
    with ctx.boot(disks=[disk]) as vm:
        vm.sh(LOAD_TRESOR + " && modprobe dm_crypt")
        # no key loaded: the mapping can be set up but every I/O fails
        open_tresor(vm, "/dev/vda", "nokey", ss=4096)
        rc, out = vm.run("dd if=/dev/zero of=/dev/mapper/nokey bs=4096 "
                         "count=16 oflag=direct")
        assert rc != 0 and "Input/output error" in out, f"write without key: {out}"
        rc, out = vm.run("dd if=/dev/mapper/nokey of=/dev/null bs=4096 "
                         "count=1 iflag=direct")
        assert rc != 0 and "Input/output error" in out, f"read without key: {out}"
        # a real key in the table is refused: only the placeholder is valid
        rc, out = vm.run(
            f"dmsetup create bad --table \"0 32768 crypt "
            f"capi:xts(tresor)-plain64 {os.urandom(32).hex()} 0 /dev/vda 0\"")
        assert rc != 0 and "Invalid argument" in out, f"non-zero key: {out}"
        # with a key: nothing hands it back
        load_masked_key(vm, key)
        out = vm.sh("for f in /sys/kernel/tresor/*; do echo \"$f=$(cat $f)\";"
                    " done; rcprobe tresor-status; dmesg; "
                    "dmsetup table --showkeys nokey")
        assert "0" * 64 in out, "dm-crypt should hold only the placeholder"
        for needle in memsearch.key_needles(key).values():
            assert needle.hex() not in out, "key bytes in sysfs/status/dmesg"
        vm.sh("DM_DISABLE_UDEV=1 cryptsetup close nokey")
        vm.poweroff()
    assert hashlib.sha256(disk.read_bytes()).digest() == \
        hashlib.sha256(pattern).digest(), "disk changed by keyless I/O"
