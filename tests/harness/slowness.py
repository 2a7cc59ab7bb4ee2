"""How slow guests run on this machine today; every harness wait and test
watchdog is scaled by it.

The figures of the harness (a guest's boot limit, vm.sh(timeout=...), a
test's watchdog) are meant for an unloaded machine. At the start of the VM
tests the runner boots a plain guest and divides its boot time by the
nominal figure (NOMINAL_BOOT_S, ~11 s for a busybox 6.1 guest): that
ratio, clamped to >= 1, is the slowness factor. Every later
plain guest (the test initramfs, default options) updates it, so a load
that starts mid-run raises it too; it never goes down within a run. A limit
of N seconds is then N x factor seconds: still finite, so a real hang is
still reported. RAMCRYPT_TEST_SLOWNESS=F fixes the factor instead (no
calibration boot, no updates).
"""
import math
import os
import threading

# Wall time from QEMU's start to the agent's @@GUEST-READY line of a plain
# guest (512 MiB, 2 vCPUs, single-threaded TCG, the ~30 MiB test initramfs),
# per kernel series, with a host core to itself on the 2-core build machine:
# QEMU's own CPU time for that boot (10.1 s on 6.1, 9.0 s on 6.12, measured
# on a busy machine, where only the wall time grows) plus ~10%. (DESIGN.md's
# ~6 s predates the initramfs' growth.)
NOMINAL_BOOT_S = {"6.1": 11.0, "6.12": 10.0}

_lock = threading.Lock()
_factor = 1.0
_fixed = False
_how = "no plain guest booted at the start"
_plain_boots = 0
_worst = None  # (ratio, kernel short, seconds)


class Invalid(ValueError):
    pass


def init_from_env():
    """Apply RAMCRYPT_TEST_SLOWNESS; True if it fixed the factor."""
    global _factor, _fixed, _how
    val = os.environ.get("RAMCRYPT_TEST_SLOWNESS")
    if not val:
        return False
    try:
        f = float(val)
    except ValueError:
        f = 0.0
    if not f >= 1.0 or f > 1000:
        raise Invalid(f"Invalid RAMCRYPT_TEST_SLOWNESS={val!r}: expected a "
                      f"number from 1 to 1000.")
    with _lock:
        _factor, _fixed = f, True
        _how = "set by RAMCRYPT_TEST_SLOWNESS"
    return True


def fixed():
    return _fixed


def factor():
    return _factor


def scaled(seconds):
    """A nominal limit in seconds as this run allows it."""
    return seconds * _factor


def secs(seconds):
    """scaled() as whole seconds, rounded up: for a limit inside a guest
    script (`timeout N ...`), which the harness cannot scale itself."""
    return int(math.ceil(scaled(seconds)))


def describe(nominal, limit=None):
    """'15s', or '45s (15s x slowness 3.00)' when scaled."""
    if limit is None:
        limit = scaled(nominal)
    if abs(limit - nominal) < 0.05:
        return f"{nominal:g}s"
    return f"{limit:.0f}s ({nominal:g}s x slowness {limit / nominal:.2f})"


def note_boot(kernel_short, seconds, calibration=False):
    """Record a plain guest's boot time; return the factor it implies."""
    global _factor, _how, _plain_boots, _worst
    nominal = NOMINAL_BOOT_S.get(kernel_short)
    if nominal is None:
        return None
    ratio = seconds / nominal
    with _lock:
        _plain_boots += 1
        if _worst is None or ratio > _worst[0]:
            _worst = (ratio, kernel_short, seconds)
        if calibration and not _fixed:
            _how = (f"{max(1.0, ratio):.2f}, a plain {kernel_short} guest "
                    f"booted in {seconds:.1f}s (nominal {nominal:g}s)")
        if not _fixed and ratio > _factor:
            _factor = ratio
    return max(1.0, ratio)


def summary():
    """One line for the end of a run."""
    with _lock:
        s = f"slowness factor {_factor:.2f}"
        if not _fixed and not _plain_boots:
            return s + " (not measured: no VM test ran)"
        if _fixed:
            return s + f" ({_how})"
        s += f"; at the start: {_how}"
        if _worst and _plain_boots > 1:
            s += (f"; slowest of {_plain_boots} plain boots "
                  f"{_worst[2]:.1f}s on {_worst[1]} ({_worst[0]:.2f}x)")
        return s
