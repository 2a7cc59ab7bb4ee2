"""What ramcrypt.ko's VM tests share: its sysfs counters, the stats line of
the guest programs, the canary program, kernel-log checks, and QEMU with
the multiboot test guest inside the test VM."""
import shutil
import subprocess
from pathlib import Path

from harness import initramfs

SYSFS = "/sys/kernel/ramcrypt"
REPO = Path(__file__).resolve().parents[2]
MBGUEST_DIR = REPO / "tests" / "guest" / "mbguest"
MBGUEST = "/test/mbguest.elf"
QEMU = "qemu-system-x86_64"
# Firmware QEMU loads for `-kernel <multiboot ELF>` with -nodefaults: SeaBIOS
# and the multiboot option ROM (the others are cheap insurance: linux boot
# ROMs and the KVM TPR-patching ROM some machine types add).
FIRMWARE = ("/usr/share/seabios/bios-256k.bin",
            "/usr/share/qemu/multiboot_dma.bin",
            "/usr/share/qemu/multiboot.bin",
            "/usr/share/qemu/linuxboot_dma.bin",
            "/usr/share/qemu/kvmvapic.bin")


def sysfs(vm):
    """/sys/kernel/ramcrypt's totals; regions/ (a directory, one entry per
    live region) as its count; flush is write-only."""
    out = vm.sh(f"cd {SYSFS} && for f in *; do if [ -d $f ]; then "
                f"echo \"$f=$(ls $f | wc -l)\"; elif [ $f != flush ]; then "
                f"echo \"$f=$(cat $f)\"; fi; done")
    return {k: int(v) for k, v in (ln.split("=", 1) for ln in out.split())}


def stats_of(out):
    """The key=value words of the last "stats:" line of rcmem or rcfs."""
    lines = [ln for ln in out.splitlines() if ln.startswith("stats:")]
    assert lines, f"no stats line in: {out}"
    return {k: int(v) for k, v in
            (w.split("=") for w in lines[-1].split()[1:])}


def assert_clean_dmesg(vm):
    dmesg = vm.sh("dmesg")
    for bad in ("WARNING:", "BUG:", "Oops", "Call Trace", "lockdep"):
        assert bad not in dmesg, f"kernel log has {bad}:\n{dmesg[-3000:]}"


def assert_all_freed(vm):
    s = sysfs(vm)
    for f in ("regions", "plaintext_pages", "encrypted_pages",
              "memory_pages"):
        assert s[f] == 0, f"after every region closed, {f}={s[f]}: {s}"


def start_canary(vm, args):
    """tests/guest/canary in the background, once it says ready."""
    vm.sh(f"canary {args} > /tmp/canary.log 2>&1 & echo $! > /tmp/canary.pid;"
          " for i in $(seq 1200); do grep -q ready /tmp/canary.log && break;"
          " sleep 0.1; done; grep -q ready /tmp/canary.log", timeout=300)


def stop_canary(vm):
    vm.sh("kill $(cat /tmp/canary.pid); "
          "while kill -0 $(cat /tmp/canary.pid) 2>/dev/null; do sleep 0.1;"
          " done; true")


def mbguest_elf():
    """Build the multiboot test image (tests/guest/mbguest); its path."""
    subprocess.run(["make", "-s", "-C", str(MBGUEST_DIR)], check=True)
    return MBGUEST_DIR / "bin" / "mbguest.elf"


def qemu_files():
    """extra_files for ctx.boot(): this machine's qemu-system-x86_64 with its
    shared libraries and firmware, and the mbguest image at MBGUEST."""
    qemu = Path(shutil.which(QEMU) or f"/usr/bin/{QEMU}")
    if not qemu.exists():
        raise RuntimeError(f"{QEMU} not found on this machine")
    files = {f"usr/bin/{QEMU}": qemu.resolve()}
    for lib in initramfs._ldd_libs(qemu):
        files[lib.lstrip("/")] = Path(lib).resolve()
    for fw in FIRMWARE:
        if Path(fw).exists():
            files[fw.lstrip("/")] = Path(fw).resolve()
    files[MBGUEST.lstrip("/")] = mbguest_elf()
    return files
