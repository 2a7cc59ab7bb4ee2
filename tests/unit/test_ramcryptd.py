"""ramcryptd and ramcryptctl on the build machine (no kernel): a private
dbus-daemon (a system-like bus), a fake org.freedesktop.systemd1
(tests/unit/ramcryptd_fake_systemd.c, sd-bus; records its calls), and the daemon
built with ASan+UBSan on a fixture root made per test (sysfs, configfs,
cgroups, /proc). Every Manager and Unit property, every method, AccessDenied
for a caller with another uid (setpriv), malformed configs named by key,
enrollment and its refusals, release, restart rediscovery, post-start
verification, SetupHost/RestoreHost, ramcryptctl (also ASan+UBSan) --json
against busctl."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from harness.registry import unit_test

REPO = Path(__file__).resolve().parents[2]
DAEMON_SRC = REPO / "daemon" / "ramcryptd"
CTL_SRC = REPO / "daemon" / "ramcryptctl"
FAKE_SD_SRC = Path(__file__).resolve().parent / "ramcryptd_fake_systemd.c"
BUS = "org.ramcrypt.RamCrypt1"
MGR = "/org/ramcrypt/RamCrypt1"
MGR_IF = "org.ramcrypt.RamCrypt1.Manager"
UNIT_IF = "org.ramcrypt.RamCrypt1.Unit"
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

QEMU_OK = ["/usr/bin/qemu-system-x86_64", "qemu-system-x86_64",
           "-accel", "kvm", "-m", "1024M",
           "-object", "memory-backend-file,id=ram0,size=1024M,"
           "mem-path=/dev/ramcrypt,share=on",
           "-machine", "memory-backend=ram0", "-vga", "none",
           "-display", "none",
           "-drive", "file=/var/lib/vm.img,if=virtio,format=raw,cache=none"]
QEMU_BUFFERED = QEMU_OK[:-1] + ["file=/var/lib/vm-buf.img,if=virtio,"
                                "format=raw,id=disk0"]
QEMU_ANON = ["/usr/bin/qemu-system-x86_64", "qemu-system-x86_64", "-m",
             "512M", "-vga", "none", "-display", "none"]


def build():
    for src, target in ((DAEMON_SRC, "asan"), (CTL_SRC, "all"),
                        (CTL_SRC, "asan")):
        r = subprocess.run(["make", "-s", "-C", str(src), target],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    return DAEMON_SRC / "bin" / "ramcryptd-asan", CTL_SRC / "bin" / \
        "ramcryptctl"


def wfile(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def cpu_bytes(cpus):
    n = max(cpus) // 8 + 1 if cpus else 0
    b = [0] * n
    for c in cpus:
        b[c // 8] |= 1 << (c % 8)
    return b


def make_root(root, ncpus=4, smt=False):
    """A host with ncpus CPUs (one cache domain; with smt, CPU i and
    i + ncpus/2 are SMT siblings), tresor with a key on every CPU, ramcrypt
    without regions, cgroups of the test units, IRQs 0-2 (IRQ 2 refuses new
    affinities)."""
    cpu = root / "sys/devices/system/cpu"
    wfile(cpu / "online", f"0-{ncpus - 1}\n")
    wfile(cpu / "possible", f"0-{ncpus - 1}\n")
    wfile(cpu / "present", f"0-{ncpus - 1}\n")
    for i in range(ncpus):
        h = ncpus // 2
        sib = f"{i % h},{i % h + h}" if smt else f"{i}"
        wfile(cpu / f"cpu{i}/topology/thread_siblings_list", f"{sib}\n")
        wfile(cpu / f"cpu{i}/topology/core_cpus_list", f"{sib}\n")
        wfile(cpu / f"cpu{i}/power/pm_qos_resume_latency_us", "0\n")
        if i:
            wfile(cpu / f"cpu{i}/online", "1\n")
    t = root / "sys/kernel/tresor"
    for k, v in {"key_loaded": "1", "holders": f"0-{ncpus - 1}",
                 "valid_holders": f"0-{ncpus - 1}", "check_failures": "3",
                 "forwarded_requests": "1234", "peer_copies": "16",
                 "requests": "98765", "implementation": "aesni",
                 "nr_holders": str(ncpus),
                 "nr_valid_holders": str(ncpus)}.items():
        wfile(t / k, v + "\n")
    rc = root / "sys/kernel/ramcrypt"
    for k, v in {"plaintext_pages": "5", "encrypted_pages": "250",
                 "faults": "77", "window_pages": "64", "flush": "",
                 "memory_pages": "0", "memory_cap_pages": "262144",
                 "evictions_window": "0", "evictions_age": "0",
                 "evictions_flush": "0",
                 "oldest_plaintext_age_ms": "12"}.items():
        wfile(rc / k, v + "\n")
    (rc / "regions").mkdir(parents=True, exist_ok=True)
    (root / "sys/kernel/config/ramcrypt/policies").mkdir(parents=True)
    for cg in ("init.scope", "user.slice", "system.slice/vm.service",
               "system.slice/vm2.service", "system.slice/vm3.service",
               "system.slice/vm-anon.service", "system.slice/nginx.service",
               "system.slice/banana.service", "system.slice/plain.service",
               "system.slice/buffered.service", "system.slice/big.service"):
        wfile(root / "sys/fs/cgroup" / cg / "cgroup.procs", "")
    for irq in (0, 1):
        wfile(root / f"proc/irq/{irq}/smp_affinity_list", f"0-{ncpus - 1}\n")
    (root / "proc/irq/2").mkdir(parents=True)
    os.symlink("/dev/full", root / "proc/irq/2/smp_affinity_list")
    wfile(root / "sys/devices/virtual/workqueue/cpumask", "f\n")
    wfile(root / "proc/cmdline", "BOOT_IMAGE=/vmlinuz init_on_free=1\n")
    wfile(root / "proc/cpuinfo", "".join(
        f"processor\t: {i}\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu vme "
        "de pse msr aes avx2\n\n" for i in range(ncpus)))
    wfile(root / "sys/module/zswap/parameters/enabled", "N\n")
    wfile(root / "sys/power/disk", "[disabled]\n")
    wfile(root / "sys/power/state", "freeze mem\n")


def add_process(root, pid, argv, ramcrypt_mb=0, anon_mb=0, images=()):
    """proc/PID of a QEMU: cmdline, maps (a shared /dev/ramcrypt mapping
    and/or anonymous RAM), open disk images (fdinfo flags, O_DIRECT set
    when cache=none)."""
    p = root / f"proc/{pid}"
    p.mkdir(parents=True, exist_ok=True)
    (p / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv[1:])
                                + b"\0")
    maps, addr = [], 0x7f0000000000
    if ramcrypt_mb:
        end = addr + ramcrypt_mb * 2**20
        maps.append(f"{addr:x}-{end:x} rw-s 00000000 00:05 77 "
                    "/dev/ramcrypt")
        addr = end + 0x1000
    if anon_mb:
        end = addr + anon_mb * 2**20
        maps.append(f"{addr:x}-{end:x} rw-p 00000000 00:00 0 ")
        addr = end + 0x1000
    maps.append("7fff00000000-7fff00021000 rw-p 00000000 00:00 0 [stack]")
    (p / "maps").write_text("\n".join(maps) + "\n")
    (p / "fd").mkdir(exist_ok=True)
    (p / "fdinfo").mkdir(exist_ok=True)
    for i, (img, direct) in enumerate(images, start=10):
        os.symlink(img, p / f"fd/{i}")
        flags = 0o140002 if direct else 0o100002
        (p / f"fdinfo/{i}").write_text(f"pos:\t0\nflags:\t0{flags:o}\n"
                                       "mnt_id:\t25\nino:\t1234\n")
    (p / "exe").parent.mkdir(exist_ok=True)
    cg = "0::/system.slice/vm.service\n"
    (p / "cgroup").write_text(cg)


def add_region(root, rid, cgroup, pid, size=1 << 30, plaintext=7,
               faults=100, evictions=40, oldest=33, window=256):
    cgid = os.stat(root / "sys/fs/cgroup" / cgroup.lstrip("/")).st_ino
    d = root / f"sys/kernel/ramcrypt/regions/{rid}"
    vals = {"cgroup_id": cgid, "cgroup": cgroup, "pid": pid, "size": size,
            "window_pages": window, "max_plaintext_age_ms": 100,
            "crypto_cpu": 1, "evict_ahead_pages": 32,
            "plaintext_pages": plaintext, "encrypted_pages": 9,
            "faults": faults, "evictions": evictions,
            "oldest_plaintext_age_ms": oldest}
    for k, v in vals.items():
        wfile(d / k, f"{v}\n")


def marker_unit(d, name, marker):
    path = d / "units" / name
    wfile(path, "[Unit]\nDescription=test\n\n[Service]\n"
          "ExecStart=/usr/bin/true\n\n[X-RamCrypt]\n" + marker + "\n")
    return str(path)


class Bench:
    """dbus-daemon + fake systemd + fixture root; start/stop the daemon."""

    def __init__(self, config=None, ncpus=4, smt=False):
        self.daemon_bin, self.ctl_bin = build()
        self.tmp = Path(tempfile.mkdtemp(prefix="ramcryptd-test-"))
        os.chmod(self.tmp, 0o755)
        self.root = self.tmp / "root"
        make_root(self.root, ncpus, smt)
        self.state = self.tmp / "state"
        self.units_file = self.tmp / "units.json"
        self.calls_file = self.tmp / "calls.jsonl"
        self.calls_file.write_text("")
        self.config = self.tmp / "ramcryptd.json"
        self.config.write_text(json.dumps(config if config is not None else
                                          {"verify_interval_ms": 200}))
        # binaries where the nobody user can run them
        shutil.copy(CTL_SRC / "bin" / "ramcryptctl-asan",
                    self.tmp / "ramcryptctl")
        self.ctl_bin = self.tmp / "ramcryptctl"
        os.chmod(self.ctl_bin, 0o755)
        d = self.tmp
        self.units = {
            "vm.service": {
                "FragmentPath": marker_unit(d, "vm.service",
                                            "RamCrypt=yes\nWindow=1M\nCPUs=1"),
                "DropInPaths": [], "ControlGroup": "/system.slice/vm.service",
                "ExecStart": [QEMU_OK], "MainPID": 0},
            "vm2.service": {
                "FragmentPath": marker_unit(d, "vm2.service", "RamCrypt=yes"),
                "ControlGroup": "/system.slice/vm2.service",
                "ExecStart": [QEMU_OK], "MainPID": 0},
            "vm3.service": {
                "FragmentPath": marker_unit(d, "vm3.service", "RamCrypt=yes"),
                "ControlGroup": "/system.slice/vm3.service",
                "ExecStart": [QEMU_OK], "MainPID": 0},
            "vm-anon.service": {
                "FragmentPath": marker_unit(d, "vm-anon.service",
                                            "RamCrypt=yes"),
                "ControlGroup": "/system.slice/vm-anon.service",
                "ExecStart": [["/bin/sh", "/bin/sh", "/usr/local/bin/vm-wrap"]],
                "MainPID": 0},
            "nginx.service": {
                "FragmentPath": marker_unit(d, "nginx.service",
                                            "RamCrypt=yes"),
                "ControlGroup": "/system.slice/nginx.service",
                "ExecStart": [["/usr/sbin/nginx", "nginx", "-g",
                               "daemon off;"]], "MainPID": 0},
            "banana.service": {
                "FragmentPath": marker_unit(d, "banana.service",
                                            "RamCrypt=yes\nWindow=banana"),
                "ControlGroup": "/system.slice/banana.service",
                "ExecStart": [QEMU_OK], "MainPID": 0},
            "plain.service": {
                "FragmentPath": str(d / "units/plain.service"),
                "ControlGroup": "/system.slice/plain.service",
                "ExecStart": [QEMU_OK], "MainPID": 0},
            "buffered.service": {
                "FragmentPath": marker_unit(d, "buffered.service",
                                            "RamCrypt=yes"),
                "ControlGroup": "/system.slice/buffered.service",
                "ExecStart": [QEMU_BUFFERED], "MainPID": 0},
            "big.service": {
                "FragmentPath": marker_unit(d, "big.service",
                                            "RamCrypt=yes\nCPUs=3"),
                "ControlGroup": "/system.slice/big.service",
                "ExecStart": [QEMU_OK], "MainPID": 0},
            "system.slice": {}, "user.slice": {}, "init.scope": {},
        }
        wfile(d / "units/plain.service",
              "[Unit]\nDescription=x\n[Service]\nExecStart=/bin/true\n")
        self.units_file.write_text(json.dumps(self.units))

        (self.tmp / "policy.d").mkdir()
        shutil.copy(REPO / "dbus" / "org.ramcrypt.RamCrypt1.conf",
                    self.tmp / "policy.d")
        sock = self.tmp / "bus"
        (self.tmp / "bus.conf").write_text(f"""<!DOCTYPE busconfig PUBLIC
 "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={sock}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
  <includedir>{self.tmp / "policy.d"}</includedir>
</busconfig>
""")
        self.env = dict(os.environ,
                        DBUS_SYSTEM_BUS_ADDRESS=f"unix:path={sock}",
                        ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
                        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
        self.procs = []
        self.busd = subprocess.Popen(
            ["dbus-daemon", "--nofork", "--nopidfile",
             f"--config-file={self.tmp / 'bus.conf'}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        assert sock.exists(), self.busd.stderr.read() if \
            self.busd.poll() is not None else "no bus socket"
        fake = self.tmp / "fake-systemd"
        cflags = subprocess.run(["pkg-config", "--cflags", "--libs",
                                 "libsystemd", "json-c"], check=True,
                                capture_output=True, text=True).stdout.split()
        r = subprocess.run(["gcc", "-std=gnu11", "-Wall", "-Wextra", "-Werror",
                            "-O1", "-g", "-o", str(fake), str(FAKE_SD_SRC),
                            *cflags], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        self.fake = subprocess.Popen(
            [str(fake), str(self.units_file), str(self.calls_file),
             str(self.root)], env=self.env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        line = self.fake.stdout.readline()
        assert line.strip() == "READY", self.fake.stderr.read()
        self.daemon = None
        self.daemon_log = self.tmp / "ramcryptd.log"

    # -- daemon -------------------------------------------------------------
    def start(self, extra=(), wait=True):
        self.log_fh = open(self.daemon_log, "a")
        self.daemon = subprocess.Popen(
            [str(self.daemon_bin), f"--root={self.root}",
             f"--config={self.config}", f"--state-dir={self.state}",
             *extra], env=self.env, stdout=self.log_fh,
            stderr=subprocess.STDOUT)
        if not wait:
            return
        for _ in range(200):
            r = self.busctl("status", BUS, check=False)
            if r.returncode == 0:
                return
            assert self.daemon.poll() is None, self.log()
            time.sleep(0.05)
        raise AssertionError("ramcryptd did not take its name: " + self.log())

    def stop(self):
        """SIGTERM; the daemon must exit 0 with no sanitizer report."""
        if not self.daemon:
            return
        self.daemon.send_signal(signal.SIGTERM)
        rc = self.daemon.wait(timeout=30)
        self.log_fh.close()
        self.daemon = None
        log = self.log()
        assert rc == 0 and "Sanitizer" not in log and \
            "runtime error" not in log, f"rc={rc}\n{log[-4000:]}"

    def log(self):
        return self.daemon_log.read_text() if self.daemon_log.exists() \
            else ""

    def close(self):
        try:
            self.stop()
        finally:
            for p in (self.fake, self.busd):
                if p.poll() is None:
                    p.terminate()
                    p.wait(timeout=10)
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- clients ------------------------------------------------------------
    def busctl(self, *args, nobody=False, check=True):
        r = subprocess.run((NOBODY if nobody else []) +
                           ["busctl", "--system", "--no-pager", *args],
                           capture_output=True, text=True, env=self.env,
                           timeout=60)
        if check:
            assert r.returncode == 0, f"busctl {args}: {r.stderr}"
        return r

    def prop(self, path, iface, name, nobody=False):
        r = self.busctl("--json=short", "get-property", BUS, path, iface,
                        name, nobody=nobody)
        return json.loads(r.stdout)["data"]

    def mgr(self, name, nobody=False):
        return self.prop(MGR, MGR_IF, name, nobody=nobody)

    def call(self, method, sig=None, *args, nobody=False, check=True):
        a = ["--json=short", "call", BUS, MGR, MGR_IF, method]
        if sig:
            a += [sig, *args]
        r = self.busctl(*a, nobody=nobody, check=False)
        if check:
            assert r.returncode == 0, f"{method}{args}: {r.stderr}"
            return json.loads(r.stdout)["data"] if r.stdout.strip() else None
        return r

    def ctl(self, *args, nobody=False):
        """ramcryptctl under ASan+UBSan: a sanitizer report fails the test."""
        r = subprocess.run((NOBODY if nobody else []) +
                           [str(self.ctl_bin), *args],
                           capture_output=True, text=True, env=self.env,
                           timeout=60)
        assert "Sanitizer" not in r.stderr and \
            "runtime error" not in r.stderr, r.stderr
        return r

    def calls(self, method=None):
        out = [json.loads(ln) for ln in
               self.calls_file.read_text().splitlines() if ln]
        return [c for c in out if method is None or c["method"] == method]

    def set_unit(self, name, **kw):
        """As systemd: a unit with a main process is active unless the
        caller says otherwise."""
        if "MainPID" in kw and "ActiveState" not in kw:
            kw["ActiveState"] = "active" if kw["MainPID"] else "inactive"
        units = json.loads(self.units_file.read_text())
        units[name].update(kw)
        self.units_file.write_text(json.dumps(units))

    def unit_path(self, name):
        esc = "".join(c if c.isalnum() and c.isascii() else f"_{ord(c):02x}"
                      for c in name)
        return f"/org/ramcrypt/RamCrypt1/unit/{esc}"

    def uprop(self, name, prop):
        return self.prop(self.unit_path(name), UNIT_IF, prop)

    def wait_state(self, name, state, secs=10):
        st = None
        for _ in range(int(secs * 20)):
            st = self.uprop(name, "State")
            if st == state:
                return
            time.sleep(0.05)
        raise AssertionError(f"{name}: State={st}, not {state}\n"
                             + self.log()[-3000:])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def setup_roles(b):
    b.call("SetupHost")
    assert b.mgr("RolesApplied") is True


def enroll_refused(b, unit):
    r = b.call("EnrollUnit", "s", unit, check=False)
    assert r.returncode != 0, r.stdout
    return r.stderr.strip()


@unit_test()
def test_ramcryptd_config_errors():
    """A malformed config stops the daemon (exit 1) with one line naming
    the file, the key and what is wrong; --check-config accepts a good one."""
    daemon, _ = build()
    with tempfile.TemporaryDirectory() as d:
        cfg = Path(d) / "ramcryptd.json"
        cases = [
            ('{"window": "banana"}', "key 'window': not a window size"),
            ('{"window": "5000"}', None),  # a page count is fine
            ('{"window": "6K"}', "key 'window'"),
            ('{"colour": "blue"}', "key 'colour': unknown key"),
            ('{"housekeeping_cpus": "0-x", "crypto_cpus": "1", '
             '"vm_cpus": "2-3"}', "key 'housekeeping_cpus': not a CPU list"),
            ('{"housekeeping_cpus": "0"}', "key 'housekeeping_cpus'"),
            ('{"unprotected_action": "ignore"}',
             "key 'unprotected_action': must be \"stop\" or \"warn\""),
            ('{"cache_confinement": "maybe"}', "key 'cache_confinement'"),
            ('{"verify_interval_ms": 5}', "key 'verify_interval_ms'"),
            ('{"verify_grace_ms": 50}', "key 'verify_grace_ms'"),
            ('{"verify_grace_ms": "1s"}', "key 'verify_grace_ms'"),
            ('{"max_plaintext_age_ms": "100"}',
             "key 'max_plaintext_age_ms': not an integer"),
            ('{"anonymous_ram_threshold": "lots"}',
             "key 'anonymous_ram_threshold'"),
            ('{"window": 16', "not valid JSON"),
            ('[1]', "not a JSON object"),
        ]
        for text, want in cases:
            cfg.write_text(text)
            # the real start, not only --check-config: it must exit
            r = subprocess.run([str(daemon), f"--config={cfg}",
                                f"--root={d}", "--check-config"],
                               capture_output=True, text=True, timeout=30)
            if want is None:
                assert r.returncode == 0, (text, r.stderr)
                continue
            assert r.returncode == 1 and want in r.stderr and \
                str(cfg) in r.stderr, (text, r.returncode, r.stderr)
            assert r.stderr.startswith("<3>"), r.stderr
        cfg.write_text('{"colour": "blue"}')
        r = subprocess.run([str(daemon), f"--config={cfg}", f"--root={d}"],
                           capture_output=True, text=True, timeout=30,
                           env=dict(os.environ,
                                    DBUS_SYSTEM_BUS_ADDRESS="unix:path=/x"))
        assert r.returncode == 1 and "colour" in r.stderr, r.stderr
        r = subprocess.run([str(daemon), "--bogus"], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 2 and "Try 'ramcryptd --help'" in r.stderr
        cfg.write_text(json.dumps({
            "housekeeping_cpus": "0", "crypto_cpus": "1", "vm_cpus": "2-3",
            "window": "64M", "max_plaintext_age_ms": 250,
            "evict_ahead_pages": 16, "unprotected_action": "warn",
            "anonymous_ram_threshold": "4M", "verify_interval_ms": 500,
            "cache_confinement": "off"}))
        r = subprocess.run([str(daemon), f"--config={cfg}", "--check-config"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert "window_pages: 16384" in r.stdout and \
            "roles: housekeeping 0, crypto 1, vm 2-3" in r.stdout and \
            "unprotected_action: warn" in r.stdout and \
            "anonymous_ram_threshold: 4194304" in r.stdout, r.stdout
    # the shipped default config is valid
    r = subprocess.run([str(daemon), "--config="
                        + str(REPO / "etc/ramcrypt/ramcryptd.json"),
                        "--check-config"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@unit_test()
def test_ramcryptd_manager_properties():
    """Every Manager property over busctl, as root and as nobody, before and
    after SetupHost; ramcryptctl status --json agrees with busctl."""
    with Bench() as b:
        b.start()
        assert b.mgr("Version") == "0.1"
        assert b.mgr("Version", nobody=True) == "0.1"
        assert b.mgr("KeyLoaded") is True
        assert b.mgr("KeyHolders") == [0, 1, 2, 3]
        assert b.mgr("ValidKeyHolders") == [0, 1, 2, 3]
        assert b.mgr("CheckFailures") == 3
        assert b.mgr("ForwardedRequests") == 1234
        assert b.mgr("RolesApplied") is False
        for p in ("HousekeepingCPUs", "CryptoCPUs", "VMCPUs", "FreeVMCPUs",
                  "IRQsNotMoved"):
            assert b.mgr(p) == [], p
        assert b.mgr("Regions") == 0
        assert b.mgr("PlaintextPages") == 5
        assert b.mgr("EncryptedPages") == 250
        assert b.mgr("CacheConfinement") == "none"
        assert "no L3 CAT" in b.mgr("CacheConfinementReason")
        checks = b.mgr("HostChecks")
        assert checks and all(len(c) == 3 and isinstance(c[1], bool)
                              for c in checks), checks
        setup_roles(b)
        assert b.mgr("HousekeepingCPUs") == [0]
        assert b.mgr("CryptoCPUs") == [1]
        assert b.mgr("VMCPUs") == [2, 3]
        assert b.mgr("FreeVMCPUs") == [2, 3]
        assert b.mgr("KeyHolders") == [0, 1]
        add_region(b.root, 5, "/system.slice/vm.service", 4242)
        assert b.mgr("Regions") == 1

        r = b.ctl("status", "--json")
        assert r.returncode == 0, r.stderr
        st = json.loads(r.stdout)
        names = ["Version", "KeyLoaded", "KeyHolders", "ValidKeyHolders",
                 "CheckFailures", "ForwardedRequests", "RolesApplied",
                 "HousekeepingCPUs", "CryptoCPUs", "VMCPUs", "FreeVMCPUs",
                 "IRQsNotMoved", "Regions", "PlaintextPages",
                 "EncryptedPages", "CacheConfinement",
                 "CacheConfinementReason", "HostChecks"]
        for p in names:
            assert st[p] == b.mgr(p), (p, st[p], b.mgr(p))
        assert set(st) == set(names), set(st) ^ set(names)
        r = b.ctl("status", nobody=True)
        assert r.returncode == 0 and "VMCPUs: 2-3" in r.stdout, r.stdout
        r = b.ctl("check", "--json")
        ck = json.loads(r.stdout)
        checks = b.mgr("HostChecks")
        names_ok = {c[0]: c[1] for c in checks}
        # the fixture: a key on 0-3, holders 0-1 after SetupHost, VM CPUs
        # 2-3 keyless, init_on_free=1, zswap off, hibernation disabled
        assert names_ok.get("init-on-free") is True, checks
        assert names_ok.get("zswap-off") is True, checks
        assert names_ok.get("vm-cpus-keyless") is True, checks
        assert "key-loaded" in names_ok and "bare-metal" in names_ok, checks
        assert [[c["name"], c["ok"], c["detail"]] for c in ck] == checks
        assert r.returncode == (1 if not all(c[1] for c in checks) else 0)
        intro = b.busctl("introspect", BUS, MGR).stdout
        for p in names:
            assert p in intro, p
        b.stop()


@unit_test()
def test_ramcryptd_enroll_release():
    """EnrollUnit reserves a VM CPU, picks the crypto CPU, sets AllowedCPUs=
    through systemd and the region policy keyed by the unit's cgroup id; the
    unit object has every property; ramcryptctl units/unit --json agree with
    busctl; a non-root caller gets AccessDenied; ReleaseUnit gives the CPU
    back, removes the policy and the object, with UnitEnrolled/UnitReleased
    signals."""
    with Bench() as b:
        b.start()
        mon = subprocess.Popen(
            ["busctl", "--system", "monitor", "--json=short",
             f"--match=type='signal',sender='{BUS}'"],
            env=b.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True)
        time.sleep(0.5)
        # no roles yet: refused
        err = enroll_refused(b, "vm.service")
        assert "CPU roles are not applied" in err, err
        setup_roles(b)

        # non-root: AccessDenied, nothing changed
        for cmd in (["enroll", "vm.service"], ["release", "vm.service"],
                    ["flush"], ["reload"], ["setup-host"], ["restore-host"]):
            r = b.ctl(*cmd, nobody=True)
            assert r.returncode == 1 and "requires root" in r.stderr and \
                "EUID 65534" in r.stderr, (cmd, r.returncode, r.stderr)
        r = b.call("EnrollUnit", "s", "vm.service", nobody=True, check=False)
        assert r.returncode != 0 and "Access denied" in r.stderr, r.stderr
        r = subprocess.run(NOBODY + [
            "dbus-send", "--system", "--print-reply", f"--dest={BUS}", MGR,
            f"{MGR_IF}.EnrollUnit", "string:vm.service"],
            capture_output=True, text=True, env=b.env)
        assert "org.freedesktop.DBus.Error.AccessDenied" in r.stderr, r.stderr
        assert b.call("ListUnits") == [[]]
        assert not b.calls("SetUnitProperties")[3:], b.calls()

        r = b.ctl("enroll", "vm.service")
        assert r.returncode == 0, r.stderr + b.log()
        path = b.unit_path("vm.service")
        assert path in r.stdout, r.stdout
        assert b.call("GetUnit", "s", "vm.service") == [path]
        assert b.call("ListUnits") == [[["vm.service", "enrolling", path]]]
        cgid = os.stat(b.root / "sys/fs/cgroup/system.slice/vm.service"
                       ).st_ino
        pol = b.root / "sys/kernel/config/ramcrypt/policies/vm.service"
        got = {f.name: f.read_text().strip() for f in pol.iterdir()}
        assert got == {"window_pages": "256", "max_plaintext_age_ms": "100",
                       "crypto_cpu": "1", "evict_ahead_pages": "32",
                       "cgroup_id": str(cgid)}, got
        sp = [c for c in b.calls("SetUnitProperties")
              if c["args"][0] == "vm.service"]
        assert sp[-1]["args"] == ["vm.service", True,
                                  [["AllowedCPUs", cpu_bytes([2])]]], sp
        assert b.mgr("FreeVMCPUs") == [3]
        want = {"Unit": "vm.service", "ControlGroup":
                "/system.slice/vm.service", "MainPID": 0,
                "State": "enrolling", "StateReason": "", "CPUs": [2],
                "CryptoCPU": 1, "WindowPages": 256,
                "MaxPlaintextAgeMs": 100, "CacheConfinement": "auto",
                "Regions": 0, "RegionBytes": 0, "PlaintextPages": 0,
                "Faults": 0, "Evictions": 0, "OldestPlaintextAgeMs": 0,
                "AnonymousRAMBytes": 0}
        for k, v in want.items():
            assert b.uprop("vm.service", k) == v, (k, b.uprop("vm.service",
                                                              k))
        # stats from the regions of the unit's cgroup only
        add_region(b.root, 1, "/system.slice/vm.service", 4242,
                   size=1 << 30, plaintext=7, faults=100, evictions=40,
                   oldest=33)
        add_region(b.root, 2, "/system.slice/vm.service", 4242,
                   size=1 << 20, plaintext=3, faults=5, evictions=1,
                   oldest=50)
        add_region(b.root, 3, "/system.slice/nginx.service", 99)
        assert b.uprop("vm.service", "Regions") == 2
        assert b.uprop("vm.service", "RegionBytes") == (1 << 30) + (1 << 20)
        assert b.uprop("vm.service", "PlaintextPages") == 10
        assert b.uprop("vm.service", "Faults") == 105
        assert b.uprop("vm.service", "Evictions") == 41
        assert b.uprop("vm.service", "OldestPlaintextAgeMs") == 50
        tree = b.busctl("tree", BUS).stdout
        assert path in tree, tree
        # idempotent for the same run of the unit
        assert b.call("EnrollUnit", "s", "vm.service") == [path]

        ut = json.loads(b.ctl("unit", "vm.service", "--json").stdout)
        for k in want:
            assert ut[k] == b.uprop("vm.service", k), k
        assert ut["Path"] == path
        us = json.loads(b.ctl("units", "--json").stdout)
        assert [u["Unit"] for u in us] == ["vm.service"], us
        r = b.ctl("units")
        assert "vm.service" in r.stdout and "1 unit enrolled" in r.stdout
        r = b.ctl("unit", "nope.service")
        assert r.returncode == 4 and "not enrolled" in r.stderr, r.stderr
        r = b.call("GetUnit", "s", "nope.service", check=False)
        assert r.returncode != 0 and "not enrolled" in r.stderr

        # a second unit takes the other VM CPU; the third finds none free
        assert b.ctl("enroll", "vm2.service").returncode == 0
        assert b.uprop("vm2.service", "CPUs") == [3]
        assert b.uprop("vm2.service", "WindowPages") == 16384  # config
        err = enroll_refused(b, "vm3.service")
        assert "no free VM CPUs: 2 of 2 taken by vm.service, vm2.service " \
            "(vm3.service needs 1 core)" in err, err
        assert b.ctl("release", "vm2.service").returncode == 0
        err = enroll_refused(b, "big.service")
        assert "no free VM CPUs" in err and "needs 3 cores" in err, err

        assert b.ctl("flush").returncode == 0
        assert (b.root / "sys/kernel/ramcrypt/flush").read_text() == "1\n"

        r = b.ctl("release", "vm.service")
        assert r.returncode == 0, r.stderr
        assert not pol.exists()
        assert b.call("ListUnits") == [[]]
        assert b.mgr("FreeVMCPUs") == [2, 3]
        assert path not in b.busctl("tree", BUS).stdout
        r = b.ctl("release", "vm.service")
        assert r.returncode == 4, r.stderr
        sp = [c for c in b.calls("SetUnitProperties")
              if c["args"][0] == "vm.service"]
        assert sp[-1]["args"] == ["vm.service", True,
                                  [["AllowedCPUs", []]]], sp
        time.sleep(0.5)
        mon.terminate()
        sigs = [json.loads(ln) for ln in mon.stdout.read().splitlines()
                if ln.strip()]
        seen = [(s["member"], s["payload"]["data"][0]) for s in sigs
                if s.get("member") in ("UnitEnrolled", "UnitReleased")]
        assert ("UnitEnrolled", "vm.service") in seen and \
            ("UnitReleased", "vm.service") in seen and \
            seen.index(("UnitEnrolled", "vm.service")) < \
            seen.index(("UnitReleased", "vm.service")), seen
        changed = [(s["path"], sorted(s["payload"]["data"][1]))
                   for s in sigs if s.get("member") == "PropertiesChanged"]
        assert (MGR, ["FreeVMCPUs"]) in changed, changed
        assert any(p == MGR and "RolesApplied" in c for p, c in changed), \
            changed
        assert (path, ["State", "StateReason"]) in changed, changed
        b.stop()


@unit_test()
def test_ramcryptd_enroll_refusals():
    """Refused enrollments name the reason: bad marker (file, key, value),
    not marked, not a QEMU guest, a buffered drive, no key, tresor not
    loaded, confinement required, unknown unit; nothing is reserved."""
    with Bench() as b:
        b.start()
        setup_roles(b)
        err = enroll_refused(b, "banana.service")
        assert "banana.service" in err and "Window" in err and \
            "banana" in err, err
        err = enroll_refused(b, "plain.service")
        assert "not marked RamCrypt=yes" in err, err
        err = enroll_refused(b, "nginx.service")
        assert "RamCrypt protects guest RAM on ramcrypt regions only; " \
            "nginx.service is not a QEMU guest" in err, err
        err = enroll_refused(b, "buffered.service")
        assert "vm-buf.img" in err or "disk0" in err, err
        err = enroll_refused(b, "ghost.service")
        assert "systemd does not know it" in err, err
        r = b.call("EnrollUnit", "s", "bad/name", check=False)
        assert r.returncode != 0 and "Not a valid unit name" in r.stderr
        r = b.ctl("enroll", "nginx.service")
        assert r.returncode == 1 and \
            r.stderr.startswith("Failed to enroll nginx.service: "), r.stderr

        (b.root / "sys/kernel/tresor/key_loaded").write_text("0\n")
        err = enroll_refused(b, "vm.service")
        assert "no key is loaded" in err, err
        (b.root / "sys/kernel/tresor/key_loaded").write_text("1\n")

        wfile(Path(b.units["vm3.service"]["FragmentPath"]),
              "[X-RamCrypt]\nRamCrypt=yes\nCacheConfinement=required\n")
        err = enroll_refused(b, "vm3.service")
        assert "cache confinement required but unavailable: no L3 CAT" \
            in err, err

        assert b.call("ListUnits") == [[]]
        assert b.mgr("FreeVMCPUs") == [2, 3]
        assert not list((b.root / "sys/kernel/config/ramcrypt/policies")
                        .iterdir())
        assert not [c for c in b.calls("SetUnitProperties")
                    if c["args"][0].endswith(".service")], b.calls()
        log = b.log()
        assert "<3>Refusing to enroll nginx.service" in log, log

        # AllowedCPUs= of a unit whose slice restricts the cpuset: the
        # kernel narrows it to the slice's CPUs; refused, naming the slice
        wfile(b.root / "sys/fs/cgroup/system.slice/cpuset.cpus.effective",
              "0\n")
        b.set_unit("vm2.service", SliceCPUs="0")
        err = enroll_refused(b, "vm2.service")
        assert "its slice system.slice limits it to CPUs 0" in err and \
            "put the unit in machine.slice or a slice that allows CPU 2" \
            in err, err
        assert (b.root / "sys/fs/cgroup/system.slice/vm2.service/"
                "cpuset.cpus.effective").read_text() == "0\n"
        assert b.call("ListUnits") == [[]]
        assert b.mgr("FreeVMCPUs") == [2, 3]
        assert not list((b.root / "sys/kernel/config/ramcrypt/policies")
                        .iterdir())
        # its AllowedCPUs= is reset again
        sp = [c["args"] for c in b.calls("SetUnitProperties")
              if c["args"][0] == "vm2.service"]
        assert sp[-1] == ["vm2.service", True, [["AllowedCPUs", []]]], sp
        # in machine.slice (unrestricted) the same unit is enrolled
        (b.root / "sys/fs/cgroup/machine.slice/vm2.service").mkdir(
            parents=True)
        b.set_unit("vm2.service", ControlGroup="/machine.slice/vm2.service")
        units = json.loads(b.units_file.read_text())
        del units["vm2.service"]["SliceCPUs"]
        b.units_file.write_text(json.dumps(units))
        r = b.ctl("enroll", "vm2.service")
        assert r.returncode == 0, r.stderr + b.log()[-2000:]
        assert (b.root / "sys/fs/cgroup/machine.slice/vm2.service/"
                "cpuset.cpus.effective").read_text() == "2\n"
        assert b.uprop("vm2.service", "ControlGroup") == \
            "/machine.slice/vm2.service"
        assert b.uprop("vm2.service", "CPUs") == [2]
        b.stop()


@unit_test()
def test_ramcryptd_verify_after_start():
    """After the main process runs: a QEMU with its RAM on /dev/ramcrypt and
    O_DIRECT images is `protected`; a wrapper whose QEMU has anonymous RAM is
    `unprotected` with the reason, logged at err, and stopped through
    systemd (StopUnit replace); with unprotected_action=warn it keeps
    running. A daemon restart rediscovers the enrolled unit: same CPUs,
    same state, MainPID. The first daemon verifies on systemd's
    PropertiesChanged only (its timer is an hour), the last on its timer."""
    with Bench({"verify_interval_ms": 3600000}) as b:
        b.start()
        setup_roles(b)
        assert b.ctl("enroll", "vm.service").returncode == 0
        add_process(b.root, 4242, QEMU_OK, ramcrypt_mb=1024, anon_mb=20,
                    images=[("/var/lib/vm.img", True)])
        (b.root / "sys/fs/cgroup/system.slice/vm.service/cgroup.procs"
         ).write_text("4242\n")
        b.set_unit("vm.service", MainPID=4242)
        assert b.uprop("vm.service", "State") == "enrolling"
        b.busctl("call", "org.freedesktop.systemd1", "/org/ramcrypt/Test",
                 "org.ramcrypt.Test", "EmitChanged", "s", "vm.service")
        b.wait_state("vm.service", "protected")
        assert b.calls("Subscribe"), b.calls()  # else systemd sends nothing
        assert b.uprop("vm.service", "MainPID") == 4242
        assert b.uprop("vm.service", "StateReason") == ""
        # a 20 MiB anonymous block (video RAM) is reported, not refused
        assert b.uprop("vm.service", "AnonymousRAMBytes") == 20 << 20

        # a drive the argv declared cache=none but opened without O_DIRECT
        assert b.ctl("enroll", "vm3.service").returncode == 0
        add_process(b.root, 4545, QEMU_OK, ramcrypt_mb=1024,
                    images=[("/var/lib/vm.img", False)])
        b.set_unit("vm3.service", MainPID=4545)
        b.busctl("call", "org.freedesktop.systemd1", "/org/ramcrypt/Test",
                 "org.ramcrypt.Test", "EmitChanged", "s", "vm3.service")
        b.wait_state("vm3.service", "unprotected")
        reason = b.uprop("vm3.service", "StateReason")
        assert "/var/lib/vm.img" in reason, reason
        for _ in range(100):
            if b.calls("StopUnit"):
                break
            time.sleep(0.05)
        assert b.calls("StopUnit")[0]["args"] == ["vm3.service",
                                                  "replace"], b.calls()
        assert b.ctl("release", "vm3.service").returncode == 1
        b.calls_file.write_text("")  # the StopUnit below is the next one

        # QEMU behind a wrapper script: enrolled, decided after the start
        r = b.ctl("enroll", "vm-anon.service")
        assert r.returncode == 0, r.stderr
        assert b.uprop("vm-anon.service", "State") == "enrolling"
        add_process(b.root, 4343, ["/bin/sh", "sh", "/usr/local/bin/vm-wrap"])
        add_process(b.root, 4344, QEMU_ANON, anon_mb=512)
        (b.root / "sys/fs/cgroup/system.slice/vm-anon.service/cgroup.procs"
         ).write_text("4343\n4344\n")
        b.set_unit("vm-anon.service", MainPID=4343)
        b.busctl("call", "org.freedesktop.systemd1", "/org/ramcrypt/Test",
                 "org.ramcrypt.Test", "EmitChanged", "s", "vm-anon.service")
        b.wait_state("vm-anon.service", "unprotected")
        reason = b.uprop("vm-anon.service", "StateReason")
        assert reason and ("anonymous" in reason.lower() or "-m" in reason), \
            reason
        for _ in range(100):
            if b.calls("StopUnit"):
                break
            time.sleep(0.05)
        assert b.calls("StopUnit")[0]["args"] == ["vm-anon.service",
                                                  "replace"], b.calls()
        log = b.log()
        assert "<3>vm-anon.service is UNPROTECTED: " in log, log
        assert b.uprop("vm.service", "State") == "protected"
        # its ExecStopPost= release fails, so systemd marks the unit failed
        r = b.ctl("release", "vm-anon.service")
        assert r.returncode == 1, (r.returncode, r.stderr)
        assert r.stderr.startswith("vm-anon.service ran UNPROTECTED: ") \
            and reason in r.stderr, r.stderr
        assert b.ctl("unit", "vm-anon.service").returncode == 4

        # restart: the unit is rediscovered from its policy + systemd
        before = {k: b.uprop("vm.service", k) for k in
                  ("CPUs", "CryptoCPU", "WindowPages", "MaxPlaintextAgeMs",
                   "MainPID", "ControlGroup")}
        b.stop()
        b.start()
        assert b.call("ListUnits") == [[["vm.service", "protected",
                                         b.unit_path("vm.service")]]], \
            b.log()[-2000:]
        after = {k: b.uprop("vm.service", k) for k in before}
        assert after == before, (before, after)
        assert b.mgr("RolesApplied") is True
        assert b.mgr("FreeVMCPUs") == [3]
        # a policy whose unit is gone is removed at start
        b.stop()
        b.set_unit("vm.service", ControlGroup="")
        b.start()
        assert b.call("ListUnits") == [[]]
        assert not (b.root / "sys/kernel/config/ramcrypt/policies/vm.service"
                    ).exists()
        assert "stale region policy of vm.service" in b.log()
        b.stop()

    with Bench({"verify_interval_ms": 200,
                "unprotected_action": "warn"}) as b:
        b.start()
        setup_roles(b)
        assert b.ctl("enroll", "vm-anon.service").returncode == 0
        add_process(b.root, 4344, QEMU_ANON, anon_mb=512)
        b.set_unit("vm-anon.service", MainPID=4344)
        b.wait_state("vm-anon.service", "unprotected")
        time.sleep(0.5)
        assert not b.calls("StopUnit"), b.calls()
        b.stop()


@unit_test()
def test_ramcryptd_verify_grace():
    """A QEMU that has not mapped its memory backend yet (no /dev/ramcrypt
    mapping, no guest-RAM-sized anonymous block) stays `enrolling` and is
    not stopped; once it maps /dev/ramcrypt it is `protected`. One that
    never maps is `unprotected` after verify_grace_ms and stopped."""
    with Bench({"verify_interval_ms": 100, "verify_grace_ms": 3000}) as b:
        b.start()
        setup_roles(b)
        assert b.ctl("enroll", "vm.service").returncode == 0
        add_process(b.root, 4242, QEMU_OK, anon_mb=20,
                    images=[("/var/lib/vm.img", True)])
        (b.root / "sys/fs/cgroup/system.slice/vm.service/cgroup.procs"
         ).write_text("4242\n")
        b.set_unit("vm.service", MainPID=4242)
        time.sleep(1.0)   # 10 checks, all before the mapping
        assert b.uprop("vm.service", "State") == "enrolling", b.log()[-2000:]
        assert b.uprop("vm.service", "MainPID") == 4242
        assert not b.calls("StopUnit"), b.calls()
        # the backend is mapped now (its image fd stays open)
        add_process(b.root, 4242, QEMU_OK, ramcrypt_mb=1024, anon_mb=20)
        b.wait_state("vm.service", "protected")
        assert not b.calls("StopUnit"), b.calls()

        # never maps: unprotected after the grace, then stopped
        assert b.ctl("enroll", "vm3.service").returncode == 0
        add_process(b.root, 4545, QEMU_OK, images=[("/var/lib/vm.img", True)])
        (b.root / "sys/fs/cgroup/system.slice/vm3.service/cgroup.procs"
         ).write_text("4545\n")
        t0 = time.monotonic()
        b.set_unit("vm3.service", MainPID=4545)
        time.sleep(1.0)
        assert b.uprop("vm3.service", "State") == "enrolling"
        assert not b.calls("StopUnit"), b.calls()
        b.wait_state("vm3.service", "unprotected")
        assert time.monotonic() - t0 >= 2.5, time.monotonic() - t0
        reason = b.uprop("vm3.service", "StateReason")
        assert "no mapping of /dev/ramcrypt" in reason and \
            "3000 ms after the start" in reason, reason
        for _ in range(100):
            if b.calls("StopUnit"):
                break
            time.sleep(0.05)
        assert b.calls("StopUnit")[0]["args"] == ["vm3.service",
                                                  "replace"], b.calls()
        assert b.uprop("vm.service", "State") == "protected"

        # a clean stop: QEMU has exited while systemd still reports the
        # main PID (deactivating, ExecStopPost= to run): not judged, so
        # not "unprotected" and not stopped again (it once was: a clean
        # 'systemctl stop' then ended failed)
        b.calls_file.write_text("")
        shutil.rmtree(b.root / "proc/4242")
        (b.root / "sys/fs/cgroup/system.slice/vm.service/cgroup.procs"
         ).write_text("")
        b.set_unit("vm.service", ActiveState="deactivating")
        b.busctl("call", "org.freedesktop.systemd1", "/org/ramcrypt/Test",
                 "org.ramcrypt.Test", "EmitChanged", "s", "vm.service")
        time.sleep(1.0)   # 10 checks, long past the grace
        assert b.uprop("vm.service", "State") == "protected", b.log()[-2000:]
        assert not b.calls("StopUnit"), b.calls()
        r = b.ctl("release", "vm.service")
        assert r.returncode == 0, r.stderr
        b.stop()


@unit_test()
def test_ramcryptd_setup_restore_host():
    """SetupHost: AllowedCPUs= of system.slice, user.slice, init.scope =
    housekeeping (runtime), IRQs and the unbound workqueue mask to
    housekeeping (the IRQ that refuses is reported), holders = housekeeping
    + crypto, the crypto CPUs polling ones (poll_cpus), PM QoS on crypto
    and VM CPUs; recorded in the state dir.
    RestoreHost is refused while a unit is enrolled, then undoes it all,
    also from a restarted daemon."""
    with Bench() as b:
        b.start()
        r = b.ctl("setup-host")
        assert r.returncode == 0, r.stderr + b.log()
        sp = {c["args"][0]: c["args"] for c in b.calls("SetUnitProperties")}
        for s in ("system.slice", "user.slice", "init.scope"):
            assert sp[s] == [s, True, [["AllowedCPUs", [1]]]], sp
        # machine.slice, the marked units' slice, is left unrestricted
        assert set(sp) == {"system.slice", "user.slice", "init.scope"}, sp
        root = b.root
        rd = lambda p: (root / p).read_text().strip()  # noqa: E731
        assert rd("proc/irq/0/smp_affinity_list") == "0"
        assert rd("proc/irq/1/smp_affinity_list") == "0"
        assert b.mgr("IRQsNotMoved") == [2]
        assert rd("sys/devices/virtual/workqueue/cpumask") == "1"
        assert rd("sys/kernel/tresor/holders") == "0-1"
        # the crypto CPU polls for forwarded page ciphers
        assert rd("sys/kernel/tresor/poll_cpus") == "1"
        cpu = "sys/devices/system/cpu/cpu{}/power/pm_qos_resume_latency_us"
        assert rd(cpu.format(0)) == "0"
        for c in (1, 2, 3):
            assert rd(cpu.format(c)) == "n/a", c
        st = json.loads((b.state / "host.json").read_text())
        assert st["vm"] == "2-3" and st["irq"]["0"] == "0-3", st
        assert "IRQ 2 stays where it is" in b.log()

        assert b.ctl("enroll", "vm.service").returncode == 0
        r = b.ctl("restore-host")
        assert r.returncode == 1 and "vm.service" in r.stderr, r.stderr
        assert b.ctl("release", "vm.service").returncode == 0

        b.stop()
        b.start()      # the restarted daemon still knows what to restore
        assert b.mgr("RolesApplied") is True
        assert b.mgr("VMCPUs") == [2, 3]
        r = b.ctl("restore-host")
        assert r.returncode == 0, r.stderr
        assert rd("proc/irq/0/smp_affinity_list") == "0-3"
        assert rd("sys/devices/virtual/workqueue/cpumask") == "f"
        assert rd("sys/kernel/tresor/holders") == "0-3"
        assert rd("sys/kernel/tresor/poll_cpus") == ""
        for c in (1, 2, 3):
            assert rd(cpu.format(c)) == "0", c
        sp = {c["args"][0]: c["args"] for c in b.calls("SetUnitProperties")}
        for s in ("system.slice", "user.slice", "init.scope"):
            assert sp[s] == [s, True, [["AllowedCPUs", []]]], sp
        assert not (b.state / "host.json").exists()
        assert b.mgr("RolesApplied") is False and b.mgr("VMCPUs") == []
        # roles from the config, validated
        b.config.write_text(json.dumps({"housekeeping_cpus": "0",
                                        "crypto_cpus": "0",
                                        "vm_cpus": "2-3"}))
        assert b.ctl("reload").returncode == 0
        r = b.ctl("setup-host")
        assert r.returncode == 1 and "not valid" in r.stderr, r.stderr
        b.config.write_text('{"window": "banana"}')
        r = b.ctl("reload")
        assert r.returncode == 1 and "key 'window'" in r.stderr, r.stderr
        b.stop()


@unit_test()
def test_ramcryptctl_cli():
    """ramcryptctl: --help, --version, usage errors (exit 2, one line + the
    Try line), qemu-args (plain and --json), no daemon (exit 3)."""
    _, ctl = build()
    run = lambda *a, **kw: subprocess.run(  # noqa: E731
        [str(ctl), *a], capture_output=True, text=True, timeout=30, **kw)
    r = run("--help")
    assert r.returncode == 0 and "qemu-args" in r.stdout and \
        "Exit status" in r.stdout
    assert run("--version").stdout.startswith("ramcryptctl ")
    for args, what in ((["--frobnicate"], "unrecognized option"),
                       (["frob"], "unknown command 'frob'"),
                       (["unit"], "takes one unit name"),
                       (["status", "x"], "takes no arguments"),
                       ([], "a command is needed"),
                       (["status", "--size=1G"], "options of qemu-args"),
                       (["qemu-args", "--size=banana"], "--size=banana"),
                       (["qemu-args", "--size=1000K"], "whole MiB"),
                       (["qemu-args", "--name=0x"], "--name=0x")):
        r = run(*args)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and what in lines[0] and \
            lines[-1] == "Try 'ramcryptctl --help' for more information." \
            and len(lines) == 2, (args, r.returncode, r.stderr)
    r = run("qemu-args", "--size=2G", "--name=guest")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [
        "-m", "2048M", "-object",
        "memory-backend-file,id=guest,size=2048M,mem-path=/dev/ramcrypt,"
        "share=on", "-machine", "memory-backend=guest", "-vga", "none",
        "-display", "none"], r.stdout
    assert "cache=none" in r.stderr and "-vga none" in r.stderr
    j = json.loads(run("qemu-args", "--json").stdout)
    assert j["args"][:2] == ["-m", "1024M"] and \
        j["drive_options"] == "cache=none", j
    r = run("status", env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=
                               "unix:path=/nonexistent/bus"))
    assert r.returncode == 3, (r.returncode, r.stderr)


@unit_test()
def test_ramcryptd_docs_and_units():
    """The man pages are mandoc -Tlint clean; the units and the dbus files
    say what the daemon needs (Type=dbus, its bus name, the sandbox, the
    host unit's start/stop commands)."""
    pages = [REPO / "docs/man" / p for p in
             ("ramcryptd.8", "ramcryptctl.8", "ramcryptd.json.5")]
    r = subprocess.run(["mandoc", "-Tlint", *map(str, pages)],
                       capture_output=True, text=True)
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), \
        r.stdout + r.stderr
    svc = (REPO / "systemd/ramcryptd.service").read_text()
    for line in ("Type=dbus", "BusName=org.ramcrypt.RamCrypt1",
                 "ExecStart=/usr/lib/ramcrypt/ramcryptd",
                 "ProtectSystem=strict", "NoNewPrivileges=yes",
                 "RestrictAddressFamilies=AF_UNIX",
                 "RuntimeDirectoryPreserve=yes"):
        assert line in svc.splitlines(), line
    host = (REPO / "systemd/ramcrypt-host.service").read_text()
    for line in ("Type=oneshot", "RemainAfterExit=yes",
                 "ExecStart=/usr/bin/ramcryptctl setup-host",
                 "ExecStop=/usr/bin/ramcryptctl restore-host",
                 "WantedBy=multi-user.target"):
        assert line in host.splitlines(), line
    act = (REPO / "dbus/org.ramcrypt.RamCrypt1.service").read_text()
    assert "SystemdService=ramcryptd.service" in act
    if shutil.which("systemd-analyze"):
        for unit in ("ramcryptd.service", "ramcrypt-host.service"):
            r = subprocess.run(["systemd-analyze", "verify", "--man=no",
                                str(REPO / "systemd" / unit)],
                               capture_output=True, text=True)
            bad = [ln for ln in (r.stdout + r.stderr).splitlines()
                   if "Unknown key" in ln or "Unknown section" in ln
                   or "Invalid" in ln]
            assert not bad, bad


@unit_test()
def test_ramcryptd_smt_cores():
    """With SMT, CPUs= counts cores: a unit gets a VM core with its sibling
    (never shared with another unit), the crypto CPU of the domain, and
    AllowedCPUs= of both threads; the default roles keep siblings together."""
    with Bench(ncpus=8, smt=True) as b:
        b.start()
        setup_roles(b)
        assert b.mgr("HousekeepingCPUs") == [0, 4], b.mgr("HousekeepingCPUs")
        assert b.mgr("CryptoCPUs") == [1, 5]
        assert b.mgr("VMCPUs") == [2, 3, 6, 7]
        assert b.ctl("enroll", "vm.service").returncode == 0, b.log()
        assert b.uprop("vm.service", "CPUs") == [2, 6]
        assert b.uprop("vm.service", "CryptoCPU") in (1, 5)
        sp = [c for c in b.calls("SetUnitProperties")
              if c["args"][0] == "vm.service"]
        assert sp[-1]["args"][2] == [["AllowedCPUs", cpu_bytes([2, 6])]], sp
        assert b.ctl("enroll", "vm2.service").returncode == 0
        assert b.uprop("vm2.service", "CPUs") == [3, 7]
        err = enroll_refused(b, "vm3.service")
        assert "no free VM CPUs: 4 of 4 taken" in err, err
        b.stop()
