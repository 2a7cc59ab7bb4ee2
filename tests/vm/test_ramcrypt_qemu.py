"""QEMU (KVM, inside the test VM) running a guest whose RAM is a ramcrypt
region: -object memory-backend-file,mem-path=/dev/ramcrypt,share=on."""
import os
import re

from harness import slowness
from harness.guest import LOAD_TRESOR, load_kvm, load_masked_key
from harness.ramcrypt_guest import MBGUEST, QEMU, qemu_files, sysfs
from harness.registry import vm_test

MUL = 0x9E3779B1


def floor_sum(n, m, a, b):
    """sum of floor((a*i + b) / m) for i in [0, n), a, b >= 0 (O(log))."""
    ans = 0
    while True:
        if a >= m:
            ans += (n - 1) * n // 2 * (a // m)
            a %= m
        if b >= m:
            ans += n * (b // m)
            b %= m
        y_max = a * n + b
        if y_max < m:
            return ans
        n, b, m, a = y_max // m, y_max % m, a, m


def mbguest_sum(start, end, seed):
    """What mbguest's checksums must be: the sum (mod 2^64) of the 32-bit
    words a * MUL + seed (mod 2^32) for a in [start, end) step 4."""
    m = 1 << 32
    n = (end - start) // 4
    c = (start * MUL + seed) % m
    d = (4 * MUL) % m
    raw = n * c + d * n * (n - 1) // 2
    return (raw - m * floor_sum(n, m, d, c)) % (1 << 64)


def run_nested_qemu(vm, mem_mb, seed, ramcrypt=True, timeout=300):
    """Boot mbguest in QEMU/KVM inside `vm`; while it runs, sample
    /sys/kernel/ramcrypt/plaintext_pages. Returns (qemu rc, serial output,
    QEMU's own output, max plaintext pages seen, samples, seconds)."""
    backend = ""
    if ramcrypt:
        backend = (f"-object memory-backend-file,id=ram0,size={mem_mb}M,"
                   f"mem-path=/dev/ramcrypt,share=on "
                   f"-machine pc,memory-backend=ram0")
    out = vm.sh(f"""
rm -f /tmp/mbguest.serial /tmp/qemu.out
t0=$(cut -d' ' -f1 /proc/uptime)
timeout {slowness.secs(timeout)} {QEMU} -accel kvm -m {mem_mb}M {backend} -smp 1 \\
    -nodefaults -display none -vga none -no-reboot -monitor none \\
    -serial file:/tmp/mbguest.serial \\
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 \\
    -L /usr/share/qemu -L /usr/share/seabios \\
    -kernel {MBGUEST} -append seed={seed:#x} > /tmp/qemu.out 2>&1 &
pid=$!
max=0; n=0
while kill -0 $pid 2>/dev/null; do
    if [ -e /sys/kernel/ramcrypt/plaintext_pages ]; then
        p=$(cat /sys/kernel/ramcrypt/plaintext_pages)
        [ "$p" -gt "$max" ] && max=$p
        n=$((n + 1))
    fi
    sleep 0.2
done
rc=0; wait $pid || rc=$?
t1=$(cut -d' ' -f1 /proc/uptime)
echo "qemu-rc=$rc max-plaintext=$max samples=$n t0=$t0 t1=$t1"
echo "--- serial"; cat /tmp/mbguest.serial 2>/dev/null || true
echo "--- qemu"; cat /tmp/qemu.out
""", timeout=timeout + 60)
    m = re.search(r"qemu-rc=(\d+) max-plaintext=(\d+) samples=(\d+) "
                  r"t0=([\d.]+) t1=([\d.]+)", out)
    assert m, out
    serial, qemu_out = out.split("--- serial\n", 1)[1].split("--- qemu", 1)
    return (int(m[1]), serial, qemu_out.strip(), int(m[2]), int(m[3]),
            float(m[5]) - float(m[4]))


def check_mbguest(serial, seed, min_bytes):
    """The ok line with the checksum the host computes; its (start, end)."""
    m = re.search(r"mbguest: ok start=0x([0-9a-f]+) end=0x([0-9a-f]+) "
                  r"seed=0x([0-9a-f]+) wsum=0x([0-9a-f]+) "
                  r"rsum1=0x([0-9a-f]+) rsum2=0x([0-9a-f]+) mismatches=0",
                  serial)
    assert m, f"no ok line from mbguest: {serial!r}"
    start, end, got_seed = int(m[1], 16), int(m[2], 16), int(m[3], 16)
    assert got_seed == seed, (hex(got_seed), hex(seed))
    assert end - start >= min_bytes, f"tested only {end - start} bytes"
    want = mbguest_sum(start, end, seed)
    for name, v in (("wsum", m[4]), ("rsum1", m[5]), ("rsum2", m[6])):
        assert int(v, 16) == want, \
            f"{name} {v} != expected {want:#018x}: {serial!r}"
    return start, end


@vm_test(timeout=900)
def test_ramcrypt_qemu_guest(ctx):
    """A 64 MiB QEMU/KVM guest on a ramcrypt region with a window of 1/16 of
    its RAM writes ~59 MiB, reads it back twice, reports over serial.
    The page-aging bound is set long, so the window does the evicting."""
    mem_mb = 64
    window = (mem_mb << 8) // 16
    with ctx.boot(mem_mb=768, extra_files=qemu_files()) as vm:
        vm.sh(LOAD_TRESOR)
        load_masked_key(vm, os.urandom(32))
        # A long age bound: the window, not the age scan, must be what
        # keeps the plaintext small while the (slow, nested) guest runs.
        vm.sh(f"modprobe ramcrypt window_pages={window} "
              f"max_plaintext_age_ms=30000")
        load_kvm(vm)
        seed = int.from_bytes(os.urandom(4), "little")
        rc, serial, qemu_out, max_pt, samples, secs = run_nested_qemu(
            vm, mem_mb, seed)
        s = sysfs(vm)
        ctx.note(f"{mem_mb} MiB QEMU/KVM guest on /dev/ramcrypt, window "
                 f"{window} pages: qemu rc={rc} in {secs:.1f}s; "
                 f"faults={s['faults']} ev_window={s['evictions_window']} "
                 f"ev_age={s['evictions_age']} "
                 f"skipped={s['skipped_referenced']} "
                 f"overflows={s['window_overflows']}; max plaintext pages "
                 f"seen {max_pt} over {samples} samples")
        ctx.note("serial: " + " | ".join(serial.strip().splitlines()))
        # isa-debug-exit: QEMU exits (0 << 1) | 1 when mbguest passes.
        assert rc == 1, f"qemu rc={rc}\nserial: {serial}\nqemu: {qemu_out}"
        start, end = check_mbguest(serial, seed, 48 << 20)
        pages = (end - start) >> 12
        # Every tested page was written, then read twice, in order, with
        # the window far smaller than the range: each pass faults every page
        # again and every fault past the first `window` evicts one.
        assert s["faults"] >= 3 * pages, s
        assert s["evictions_window"] >= 3 * pages - window, s
        assert s["crypto_errors"] == 0, s
        assert samples > 0 and max_pt <= window, (max_pt, window)
        # QEMU has exited: its region is gone.
        for f in ("regions", "plaintext_pages", "encrypted_pages",
                  "memory_pages"):
            assert s[f] == 0, s
        # The same guest on ordinary (anonymous) RAM, for the time ratio.
        seed2 = seed ^ 0xffffffff
        rc2, serial2, qemu_out2, _, _, secs2 = run_nested_qemu(
            vm, mem_mb, seed2, ramcrypt=False)
        assert rc2 == 1, f"qemu rc={rc2}\nserial: {serial2}\n{qemu_out2}"
        check_mbguest(serial2, seed2, 48 << 20)
        ctx.note(f"same guest on anonymous RAM: {secs2:.1f}s "
                 f"(ramcrypt run {secs / secs2:.1f}x as long)")
        dmesg = vm.sh("dmesg")
        for bad in ("WARNING:", "BUG:", "Oops", "Call Trace"):
            assert bad not in dmesg, dmesg[-3000:]
