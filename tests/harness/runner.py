"""Runs unit tests and VM tests, prints one line per test and the totals."""
import collections
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
import traceback
from pathlib import Path

from . import initramfs, kernels, registry, slowness
from .log import log
from .registry import Skip
from .vm import VM, GuestError

REPO = Path(__file__).resolve().parents[2]


class Results:
    def __init__(self):
        self.passed = self.failed = self.skipped = 0
        self.lock = threading.Lock()
        self.t0 = time.monotonic()
        self.times = []  # (seconds, name)

    def report(self, status, name, secs, detail="", notes=()):
        with self.lock:
            self.times.append((secs, name))
            if status == "PASS":
                self.passed += 1
            elif status == "FAIL":
                self.failed += 1
            else:
                self.skipped += 1
            print(f"{status} {name} ({secs:.1f}s)", flush=True)
            for n in notes:
                print("    " + n)
            if detail and status != "PASS":
                for ln in detail.rstrip().splitlines():
                    print("    " + ln)
                sys.stdout.flush()

    def timing(self):
        """The block printed before the summary line: wall time, slowness
        factor, the five slowest tests."""
        wall = time.monotonic() - self.t0
        m, sec = divmod(int(round(wall)), 60)
        lines = [f"wall time {m}m {sec:02d}s ({wall:.0f}s)",
                 slowness.summary()]
        slow = sorted(self.times, reverse=True)[:5]
        if slow:
            lines.append("slowest tests:")
            lines += [f"  {secs:7.1f}s {name}" for secs, name in slow]
        return "\n".join(lines)

    def summary(self):
        s = f"{self.passed} passed, {self.failed} failed"
        if self.skipped:
            s += f", {self.skipped} skipped"
        return s


class Ctx:
    """What a VM test gets: its kernel, a work dir, and VMs to boot."""

    def __init__(self, kernel, base_initrd, workdir, module_dir):
        self.kernel = kernel
        self.base_initrd = base_initrd
        self.workdir = Path(workdir)
        self.module_dir = module_dir
        self.vms = []
        self.notes = []
        self.watchdog_timer = None  # set by the runner

    def boot(self, name="vm", extra_files=None, kernel=None, initrd=None,
             **opts):
        """A VM of the test kernel with the test initramfs, unless kernel
        (anything with .vmlinuz) and initrd say otherwise."""
        extra = initramfs.build_extra(extra_files) if extra_files else None
        vm = VM(kernel or self.kernel, initrd or self.base_initrd,
                workdir=self.workdir,
                name=name, extra_initrd=extra, **opts)
        # A plain guest's boot time updates the slowness factor.
        vm.plain = not (extra_files or kernel or initrd or opts)
        self.vms.append(vm)
        return vm

    def disk(self, name, size_mb):
        p = self.workdir / name
        with open(p, "wb") as f:
            f.truncate(size_mb << 20)
        return p

    def watchdog(self, seconds):
        """Restart the test's time limit: `seconds` (scaled by the slowness
        factor) from now on, for a limit tied to an event (e.g. the guest
        has booted) rather than to the test's start."""
        if self.watchdog_timer:
            self.watchdog_timer.arm(seconds, from_ctx=True)

    def note(self, msg):
        """A figure worth showing even when the test passes; printed with
        the test's result line."""
        self.notes.append(msg)

    def kill_all(self):
        for vm in self.vms:
            vm.kill()


def _load_test_files(kind):
    for path in sorted((REPO / "tests" / kind).glob("*.py")):
        spec = importlib.util.spec_from_file_location(
            f"rc_{kind}_{path.stem}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)


class Watchdog:
    """A test's time limit: calls on_expire (kills its QEMUs) once the
    nominal limit x the slowness factor has passed; the factor is re-read
    when it would expire, so a rise mid-test extends it."""

    def __init__(self, seconds, on_expire):
        self.on_expire = on_expire
        self.fired = False
        self.lock = threading.Lock()
        self.timer = None
        self.arm(seconds)

    def arm(self, seconds, from_ctx=False):
        with self.lock:
            self._cancel()
            self.nominal = seconds
            self.from_ctx = from_ctx
            self.t0 = time.monotonic()
            self._start(slowness.scaled(seconds))

    def _start(self, secs):
        self.timer = threading.Timer(max(secs, 0.0), self._expire)
        self.timer.daemon = True
        self.timer.start()

    def _expire(self):
        with self.lock:
            if self.fired or self.timer is not threading.current_thread():
                return
            left = self.t0 + slowness.scaled(self.nominal) - time.monotonic()
            if left > 0.5:
                self._start(left)
                return
            self.limit = slowness.scaled(self.nominal)
            self.fired = True
        self.on_expire()

    def _cancel(self):
        if self.timer:
            self.timer.cancel()
            self.timer = None

    def cancel(self):
        with self.lock:
            self._cancel()

    def message(self):
        lim = slowness.describe(self.nominal, self.limit)
        s = f"killed after the test's {lim} limit"
        return s + (" (counted from ctx.watchdog())" if self.from_ctx else "")


def _run_one(results, label, func, timeout, on_timeout=None, *args,
             notes=(), ctx=None):
    t0 = time.monotonic()
    timer = None
    if on_timeout:
        timer = Watchdog(timeout, on_timeout)
        if ctx is not None:
            ctx.watchdog_timer = timer
    try:
        func(*args)
    except Skip as e:
        results.report("SKIP", label, time.monotonic() - t0, f"skipped: {e}",
                       notes)
    except (AssertionError, GuestError, RuntimeError, OSError,
            subprocess.SubprocessError) as e:
        msg = str(e) or type(e).__name__
        if isinstance(e, AssertionError) and not str(e):
            msg = traceback.format_exc(limit=3)
        if timer and timer.fired:
            msg = f"{timer.message()}\n{msg}"
        results.report("FAIL", label, time.monotonic() - t0, msg, notes)
    except Exception:
        results.report("FAIL", label, time.monotonic() - t0,
                       traceback.format_exc(limit=6), notes)
    else:
        results.report("PASS", label, time.monotonic() - t0, notes=notes)
    finally:
        if timer:
            timer.cancel()


def run_unit(results, args):
    _load_test_files("unit")
    for t in registry.UNIT_TESTS:
        if args.k and args.k not in "unit/" + t.name:
            continue
        _run_one(results, f"unit/{t.name}", t.func, 0)


def prepare_kernel(results, release, args):
    """Fetch the kernel, build modules and the base initramfs.

    Reported as the test "<kver>/modules-build" (warnings fail it)."""
    k = kernels.Kernel(release)
    label = f"{k.short}/modules-build"
    t0 = time.monotonic()
    try:
        k.fetch()
        module_dir, warnings = k.build_modules()
        key = initramfs.digest_inputs([module_dir / f"{m}.ko"
                                       for m in kernels.OUR_MODULES] + [
                                       REPO / "tests" / "kmod",
                                       REPO / "tests" / "guest",
                                       REPO / "tests" / "harness"
                                       / "initramfs.py"])
        base = k.dir / f"initrd-{key}.cpio"
        if not base.exists():
            # Other checkouts may be running with other keys right now
            # (helpers, a CI clone): drop only what nobody used for a day.
            kernels.prune_stale(k.dir.glob("initrd-*.cpio"))
            log(f"building base initramfs for {release}")
            tmp = kernels.private_tmp(base)
            initramfs.build_base(k, module_dir, tmp)
            tmp.rename(base)
        base.touch()
    except Exception as e:  # the whole kernel is unusable
        results.report("FAIL", label, time.monotonic() - t0,
                       f"{e}\n(the VM tests of {release} were not run)")
        return None
    if warnings:
        results.report("FAIL", label, time.monotonic() - t0,
                       "compiler warnings:\n" + "\n".join(warnings))
    else:
        results.report("PASS", label, time.monotonic() - t0)
    return k, base, module_dir


def _selected(args, k, t):
    return not (args.k and args.k not in f"{k.short}/{t.name}") and \
        not (args.quick and t.slow) and \
        not (t.kernels and k.short not in t.kernels)


def _run_vm_test(results, args, prep, t):
    k, base, module_dir = prep
    label = f"{k.short}/{t.name}"
    workdir = Path(tempfile.mkdtemp(prefix=f"rc-{t.name}-",
                                    dir=args.workroot))
    ctx = Ctx(k, base, workdir, module_dir)
    _run_one(results, label, t.func, t.timeout, ctx.kill_all, ctx,
             notes=ctx.notes, ctx=ctx)
    for vm in ctx.vms:
        vm.close()
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)


_calibration = threading.Lock()
_calibrated = False


def calibrate(kernel, base_initrd, args):
    """Once a run, before the first VM test: boot a plain guest and derive
    the slowness factor from its boot time (harness/slowness.py)."""
    global _calibrated
    with _calibration:
        if _calibrated:
            return
        _calibrated = True
        if slowness.fixed():
            print(f"slowness factor {slowness.factor():.2f} "
                  f"(set by RAMCRYPT_TEST_SLOWNESS)", flush=True)
            return
        workdir = Path(tempfile.mkdtemp(prefix="rc-calibrate-",
                                        dir=args.workroot))
        vm = VM(kernel, base_initrd, workdir=workdir, name="calibrate")
        try:
            vm.wait_ready()
            vm.sh("true")
        except GuestError as e:
            first = str(e).splitlines()[0]
            print(f"slowness factor {slowness.factor():.2f}: the plain "
                  f"{kernel.short} guest that measures it failed: {first}",
                  flush=True)
        else:
            slowness.note_boot(kernel.short, vm.boot_secs, calibration=True)
            print(f"slowness factor {slowness.factor():.2f}: a plain "
                  f"{kernel.short} guest booted in {vm.boot_secs:.1f}s "
                  f"(nominal {slowness.NOMINAL_BOOT_S[kernel.short]:g}s); "
                  f"every VM wait and test limit is scaled by it",
                  flush=True)
        finally:
            vm.close()
            shutil.rmtree(workdir, ignore_errors=True)


def run_vm(results, args, defs):
    """Every (kernel, test) pair, --jobs at a time from one queue, the
    longest expected first (TestDef.est): the two kernels' long boot tests
    start together and the short ones fill the gaps, so neither job idles
    at the end while the other still has a long list (a core of its own
    per job: host-side searches and guest waits leave one idle otherwise).
    Each kernel is prepared (modules, base initramfs) first, side by
    side."""
    jobs = max(1, args.jobs)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        preps = list(pool.map(lambda rel: prepare_kernel(results, rel, args),
                              args.kernels))
    todo = [(prep, t) for prep in preps if prep for t in defs
            if _selected(args, prep[0], t)]
    if not todo:
        return
    calibrate(todo[0][0][0], todo[0][0][1], args)
    todo.sort(key=lambda item: -item[1].est)  # stable: file order otherwise
    queue = collections.deque(todo)
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                prep, t = queue.popleft()
            _run_vm_test(results, args, prep, t)
    threads = [threading.Thread(target=worker) for _ in range(jobs)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()


def main(argv):
    import argparse
    p = argparse.ArgumentParser(prog="tests/run")
    p.add_argument("--quick", action="store_true",
                   help="first kernel only, skip tests marked slow")
    p.add_argument("--kernel", action="append", dest="kernels",
                   help="kernel release to test (repeatable)")
    p.add_argument("-k", help="run only tests whose name contains this")
    p.add_argument("--bench", action="store_true", help="run benchmarks")
    p.add_argument("--unit-only", action="store_true")
    p.add_argument("--vm-only", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep work dirs")
    p.add_argument("--jobs", type=int, default=1,
                   help="VM tests run side by side, the longest expected "
                   "first (default 1)")
    p.add_argument("--print-kernels", action="store_true")
    p.epilog = ("Every VM wait and test time limit is scaled by a slowness "
                "factor measured at the start from a plain guest's boot "
                "(RAMCRYPT_TEST_SLOWNESS=F fixes it). The run ends with its "
                "wall time, the five slowest tests and 'N passed, N failed'.")
    args = p.parse_args(argv)
    try:
        slowness.init_from_env()
    except slowness.Invalid as e:
        print(f"tests/run: {e}\nTry 'tests/run --help' for more "
              f"information.", file=sys.stderr)
        return 2

    if not args.kernels:
        args.kernels = kernels.resolve_kernels()
        if args.quick:
            args.kernels = args.kernels[:1]
    if args.print_kernels:
        print(" ".join(args.kernels))
        return 0
    args.workroot = kernels.cache_dir() / "work"
    args.workroot.mkdir(exist_ok=True)

    results = Results()
    if args.bench:
        _load_test_files("bench")
        for t in registry.BENCHES:
            if t.native and not (args.k and args.k not in t.name):
                _run_one(results, f"native/{t.name}", t.func, 0)
        run_vm(results, args, [t for t in registry.BENCHES if not t.native])
    else:
        if not args.vm_only:
            run_unit(results, args)
        if not args.unit_only:
            _load_test_files("vm")
            run_vm(results, args, registry.VM_TESTS)
    print(results.timing(), flush=True)
    print(results.summary(), flush=True)
    return 1 if results.failed else 0
