"""Check and use are one register read (issue 21 item 5, DESIGN.md §3.1).

Every CPU leaving kgdb/kdb runs hw_breakpoint_restore() (through
kgdb_correct_hw_break()), which loads DR0-DR3 from cpu_debugreg[]: zeros,
since tresor's breakpoint slots hold disabled events. kgdb stops the other
CPUs with an NMI, so this can land between a request's key check and the
register read of its encryption: before the fix dm-crypt then wrote sectors
under an all-zero key without an error. Now every assembly call checks the
round keys it is about to use, chunk by chunk, and writes nothing when they
do not match.

Debian's kernels (6.1 and 6.12) are built without CONFIG_KGDB, so the
debugger cannot be entered in the test VMs (no kgdboc, no sysrq-g).
tests/kmod/tresor_testdrzero.ko does what leaving it does to the registers,
from NMI context: the host floods NMIs (QMP inject-nmi) and the armed
module zeroes DR0-DR3 of the CPU an NMI interrupts, if it interrupted
tresor's code (a request). Phase 1: 24 times one CPU, which is then given
the key again from the other (SET_HOLDERS peer copy); requests must move
to the other holder (QEMU's inject-nmi reaches CPU 0 only: its LINT1 is
the NMI line). Phase 2, as kgdb's exit: both CPUs at once (by IPI);
writes and reads must then fail with EIO. On the host no sector may be encrypted under the zero
key, and every write dd reported done must decrypt under the real key."""
import os
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from harness import slowness
from harness.dmcrypt import open_tresor, xts_decrypt_image
from harness.guest import (LOAD_TRESOR, load_masked_key,
                           load_showregs_livepatch, masked_key_args)
from harness.registry import vm_test

PARAMS = "/sys/module/tresor_testdrzero/parameters"
SLOT = 16 << 10          # one dd write: 32 sectors of 512 B
NSLOTS = 2048            # 32 MiB, written round and round
TRIALS = 24              # phase 1: one CPU zeroed, then restored
SECTOR = 512


def status(vm, name):
    return vm.sh(f"cat /sys/kernel/tresor/{name}")


def _ecb(key, data, decrypt):
    c = Cipher(algorithms.AES(key), modes.ECB())
    op = c.decryptor() if decrypt else c.encryptor()
    return op.update(data) + op.finalize()


def xts_encrypt_sector(key, sector, plain):
    """AES-128-XTS by hand (python-cryptography refuses K1 == K2, as the
    all-zero key has): plain64 IV = sector number."""
    t = int.from_bytes(_ecb(key[16:], sector.to_bytes(16, "little"),
                            False), "little")
    tweaks = bytearray()
    for _ in range(len(plain) // 16):
        tweaks += t.to_bytes(16, "little")
        t = ((t << 1) ^ (0x87 if t >> 127 else 0)) & ((1 << 128) - 1)
    x = bytes(a ^ b for a, b in zip(plain, tweaks))
    return bytes(a ^ b for a, b in zip(_ecb(key[:16], x, False), tweaks))


def classify(disk, key, data, slots):
    """{slot: (good, zero_key, untouched, other) sector counts}."""
    raw = disk.read_bytes()
    plain = xts_decrypt_image(disk, key, SECTOR)
    zero = bytes(32)
    out = {}
    for i in slots:
        counts = [0, 0, 0, 0]
        for j in range(SLOT // SECTOR):
            off = i * SLOT + j * SECTOR
            want = data[j * SECTOR:(j + 1) * SECTOR]
            ct = raw[off:off + SECTOR]
            if plain[off:off + SECTOR] == want:
                counts[0] += 1
            elif ct == xts_encrypt_sector(zero, off // SECTOR, want):
                counts[1] += 1
            elif not any(ct):
                counts[2] += 1
            else:
                counts[3] += 1
        out[i] = counts
    return out


def flood_until(ctx, vm, want, limit):
    """Inject NMIs until the module has zeroed `want` times in all."""
    t0, n = time.monotonic(), 0
    while time.monotonic() - t0 < slowness.scaled(limit):
        for _ in range(20):
            vm.qmp.cmd("inject-nmi")
        n += 20
        if int(vm.sh(f"cat {PARAMS}/zeroed")) >= want:
            return n
    raise AssertionError(f"{n} NMIs in {limit}s nominal zeroed DR0-DR3 "
                         f"{vm.sh(f'cat {PARAMS}/zeroed')} times, not {want}")


def wait_for(vm, cond, what, limit=60):
    vm.sh(f"i=0; until {cond}; do i=$((i + 1)); "
          f"[ $i -lt {limit * 10} ] || {{ echo 'timeout: {what}'; exit 1; }}; "
          "sleep 0.1; done", timeout=limit + 30)


# ~3 min on 6.1 under TCG, most of it the 24 rounds of phase 1.
@vm_test(timeout=1500, est=200)
def test_tresor_kgdb_exit_zeroes_keys(ctx):
    key = os.urandom(32)
    data = os.urandom(SLOT)
    disk = ctx.disk("d.img", SLOT * NSLOTS >> 20)
    with ctx.boot(disks=[disk], mem_mb=256,
                  extra_files={"test/data": data}) as vm:
        vm.sh(LOAD_TRESOR)
        load_masked_key(vm, key)
        open_tresor(vm, "/dev/vda", "t", ss=SECTOR, perf=True)
        vm.sh("modprobe tresor_testdrzero")
        # one writer per CPU, CPU c the slots c, c+2, ... round and round;
        # each write read back (decrypted in place by dm-crypt) and
        # compared: "ok N", "bad N" (read back differs), "fail N <error>"
        # (the write failed), "rfail N <error>" (the read failed)
        vm.sh(f"""
rm -f /tmp/stop /tmp/done0 /tmp/done1
cat > /tmp/wloop <<'EOF'
c=$1; n=0
while [ ! -e /tmp/stop ]; do
  i=$(( (n * 2 + c) % {NSLOTS} )); n=$((n + 1))
  if ! dd if=/test/data of=/dev/mapper/t bs={SLOT} seek=$i oflag=direct \\
      2>/tmp/dderr$c; then
    echo "fail $i $(tr '\\n' ' ' < /tmp/dderr$c)"; sleep 0.2
  elif ! dd if=/dev/mapper/t of=/tmp/rb$c bs={SLOT} skip=$i count=1 \\
      iflag=direct 2>/tmp/dderr$c; then
    echo "rfail $i $(tr '\\n' ' ' < /tmp/dderr$c)"; sleep 0.2
  elif cmp -s /tmp/rb$c /test/data; then
    echo "ok $i"
  else
    echo "bad $i"
  fi
done > /tmp/log$c
touch /tmp/done$c
EOF
setsid taskset -c 0 sh /tmp/wloop 0 > /dev/null 2>&1 &
setsid taskset -c 1 sh /tmp/wloop 1 > /dev/null 2>&1 &
sleep 1
""")
        # Phase 1: one CPU at a time loses its key at a random point of a
        # request; its next call fails the check, it leaves the valid
        # holders, and it gets the key back from the other one.
        t0 = time.monotonic()
        nmis = 0
        for trial in range(TRIALS):
            vm.sh(f"echo 1 > {PARAMS}/arm")
            nmis += flood_until(ctx, vm, trial + 1, 120)
            wait_for(vm, "[ \"$(cat /sys/kernel/tresor/nr_valid_holders)\" "
                     "-lt 2 ]", "the zeroed CPU never failed its check")
            vm.sh("echo 0-1 > /sys/kernel/tresor/holders")
            assert status(vm, "nr_valid_holders") == "2"
        phase1 = time.monotonic() - t0
        sites = vm.sh(f"cat {PARAMS}/sites").splitlines()
        fails1 = int(status(vm, "check_failures"))
        # Phase 2: both CPUs at once, as every CPU leaving kgdb does.
        vm.sh(f"echo 1 > {PARAMS}/all")
        assert int(vm.sh(f"cat {PARAMS}/zeroed")) == TRIALS + 2
        wait_for(vm, "grep -q 'fail' /tmp/log0 /tmp/log1",
                 "no write failed with both keys gone")
        vm.sh("sleep 2; touch /tmp/stop")
        wait_for(vm, "[ -e /tmp/done0 ] && [ -e /tmp/done1 ]",
                 "the write loops did not end", 120)
        log = vm.sh("cat /tmp/log0 /tmp/log1")
        valid = status(vm, "nr_valid_holders")
        fails = int(status(vm, "check_failures"))
        dmesg = vm.sh("dmesg | grep -c 'lost its key' || true")
        vm.sh("DM_DISABLE_UDEV=1 cryptsetup close t")
        vm.poweroff()
    last, errors, bad_reads, n_ok, n_failed = {}, set(), [], 0, 0
    for ln in log.splitlines():
        f = ln.split(None, 2)
        i = int(f[1])
        if f[0] == "bad":
            bad_reads.append(i)
        elif f[0] == "ok":
            n_ok += 1
        else:
            n_failed += 1
            errors.add(f"{f[0]}: {f[2] if len(f) > 2 else ''}")
        # after a failed write the slot holds the one before, if any
        if f[0] != "fail" or i not in last:
            last[i] = f[0]
    ok = [i for i, st in last.items() if st != "fail"]
    failed = [i for i, st in last.items() if st == "fail"]
    ctx.note(f"phase 1: {TRIALS} single-CPU zeroings in {phase1:.0f}s, "
             f"{nmis} NMIs injected in all; check failures {fails1}; "
             f"interrupted in: {', '.join(sorted(set(sites)))}")
    ctx.note(f"phase 2 (both CPUs): valid holders {valid}, check failures "
             f"{fails} in all ({dmesg} 'lost its key' lines); writes read "
             f"back: {n_ok} ok, {len(bad_reads)} differing; {n_failed} "
             f"failed ({'; '.join(sorted(errors))})")
    res = classify(disk, key, data, sorted(ok + failed))
    zero_key = {i: c[1] for i, c in res.items() if c[1]}
    other = {i: c[3] for i, c in res.items() if c[3]}
    bad_ok = [i for i in ok if res[i][0] != SLOT // SECTOR]
    # a failed write leaves its slot as it was (zeros), or all of it written
    bad_failed = [i for i in failed
                  if res[i][0] + res[i][2] != SLOT // SECTOR or
                  0 < res[i][0] < SLOT // SECTOR]
    ctx.note(f"on disk: {sum(zero_key.values())} sectors under the zero key "
             f"in slots {sorted(zero_key)[:10]}, {sum(other.values())} "
             f"neither key; written slots not AES-XTS under K: "
             f"{len(bad_ok)}; failed slots holding a wrong write: "
             f"{len(bad_failed)}")
    assert not bad_reads, f"slots read back wrong: {bad_reads[:20]}"
    assert not zero_key, \
        f"sectors written under the all-zero key: {zero_key}"
    assert not other, f"sectors under no known key: {other}"
    assert not bad_ok, f"slots dd wrote that do not decrypt: {bad_ok[:20]}"
    assert not bad_failed, f"failed writes that hit the disk: {bad_failed}"
    assert n_failed and all("Input/output error" in e for e in errors), \
        f"phase 2: writes should fail with EIO: {errors or 'none failed'}"
    assert valid == "0", f"valid holders after phase 2: {valid}"
    assert fails >= TRIALS + 2, f"check failures {fails}"


@vm_test(est=60)
def test_tresor_kgdb_refused(ctx):
    """While a kgdb I/O driver is configured (kgdboc: it holds sysrq 'g';
    faked by tresor_testdrzero, Debian's kernels have no kgdb) SET_KEY is
    refused with EBUSY and a log line saying why; allow_kgdb=1 loads it
    and flags it in kgdb_exposed; with 'g' free the key loads unflagged."""
    key = os.urandom(32)
    with ctx.boot() as vm:
        vm.sh(LOAD_TRESOR + " && modprobe tresor_testdrzero")
        vm.sh(f"echo 1 > {PARAMS}/fake_kgdb")
        vm.secrets += [key.hex(), key[:16].hex(), key[16:].hex()]
        load_showregs_livepatch(vm)
        r = vm.sh(f"rcprobe set-key-masked {masked_key_args(key)}")
        assert r == "errno=EBUSY", f"SET_KEY with a debugger: {r}"
        log = vm.sh("dmesg")
        assert "tresor: refusing the key: a kernel debugger I/O driver is " \
            "configured (kgdboc or the like; it holds sysrq 'g')" in log and \
            "load tresor with allow_kgdb=1" in log, log[-2000:]
        assert status(vm, "key_loaded") == "0"
        vm.sh("rmmod tresor && modprobe tresor allow_kgdb=1")
        load_masked_key(vm, key, livepatch=False)
        assert status(vm, "kgdb_exposed") == "1"
        assert "loading the key anyway (allow_kgdb=1), flagged in " \
            "/sys/kernel/tresor/kgdb_exposed" in vm.sh("dmesg")
        vm.sh("rcprobe clear-key && rmmod tresor && modprobe tresor && "
              f"echo 0 > {PARAMS}/fake_kgdb")
        load_masked_key(vm, key, livepatch=False)
        assert status(vm, "kgdb_exposed") == "0"
        assert status(vm, "key_loaded") == "1"
        ctx.note("sysrq 'g' held: SET_KEY refused (EBUSY, reason logged); "
                 "allow_kgdb=1: loaded, kgdb_exposed=1; 'g' free: loaded")
