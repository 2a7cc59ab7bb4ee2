"""Test registration: @unit_test and @vm_test decorators, Skip."""
import importlib.util
import os
import sys

UNIT_TESTS = []
VM_TESTS = []
BENCHES = []


class Skip(Exception):
    """Raise with the reason: the test is counted as skipped, not passed."""


class TestDef:
    def __init__(self, func, name, **opts):
        self.func = func
        self.name = name or func.__name__.removeprefix("test_").replace("_", "-")
        self.slow = opts.pop("slow", False)
        self.timeout = opts.pop("timeout", 600)
        self.kernels = opts.pop("kernels", None)  # None = every kernel
        self.native = opts.pop("native", False)
        # expected seconds on an idle machine: the runner starts the
        # longest first (tests/harness/runner.py run_vm)
        self.est = opts.pop("est", 60)
        self.opts = opts


def unit_test(name=None, **opts):
    def deco(func):
        UNIT_TESTS.append(TestDef(func, name, **opts))
        return func
    return deco


def vm_test(name=None, **opts):
    """A test run once per kernel; the function gets a harness.runner.Ctx."""
    def deco(func):
        VM_TESTS.append(TestDef(func, name, **opts))
        return func
    return deco


def bench(name=None, **opts):
    """A `make bench` figure: prints ratios, asserts nothing about speed.
    native=True: runs once on this machine (function takes no argument);
    otherwise once per kernel in a VM, like @vm_test."""
    def deco(func):
        BENCHES.append(TestDef(func, name, **opts))
        return func
    return deco


def selftest_enabled():
    return os.environ.get("RAMCRYPT_HARNESS_SELFTEST") == "1"


def test_helpers(path, name):
    """Another test file as a module, for its helpers. The runner loads
    every test file once, under a name it does not put in sys.modules, so
    a plain import would run that file again and register its tests a
    second time: it is loaded here under `name` (once) and what that load
    registered is dropped (the runner's own load registers it)."""
    if name not in sys.modules:
        lists = (UNIT_TESTS, VM_TESTS, BENCHES)
        counts = [len(lst) for lst in lists]
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        try:
            spec.loader.exec_module(mod)
        finally:
            for lst, n in zip(lists, counts):
                del lst[n:]
    return sys.modules[name]
