#!/usr/bin/python3
"""make demo: a throwaway ramcrypt-host, a protected VM and a simulated
cold-boot attack, side by side with a stock host.

Two Debian 12 hosts are built (cached) and booted in QEMU on this machine:

  stock          LUKS2 root opened by cryptsetup (dracut, systemd-cryptsetup),
                 the demo VM on ordinary anonymous RAM
  ramcrypt-host  `apt install ramcrypt-host` from the packages built from
                 this tree, TRESOR root (the key in the debug registers),
                 `systemctl enable ramcrypt-host`, the same VM unit marked
                 [X-RamCrypt] RamCrypt=yes

Both root passphrases are typed at the console prompt. The VM
(tests/guest/mbguest) keeps an AES-128-XTS key of its own in its RAM and
canary pages over all of it; it works (reads every page, pass after pass)
for WORK_SECS, then idles. The attacker dumps each host's whole RAM while
the VM works and while it idles and searches the dumps with aeskeyfind, for
the raw keys and for the canary pages (demo/report.py). The report goes to
build/demo/: report.txt, report.html, plaintext-pages.png.

Environment: KEEP=1 keeps the work directory (dumps, serial logs, disk
images); DEMO_OUT=DIR puts the report elsewhere.
"""
import argparse
import concurrent.futures
import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
import traceback
import types
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "demo"))

from harness import kernels, luks, memsearch, pkgroot  # noqa: E402
from harness.debroot import DebianSystem  # noqa: E402
from harness.ramcrypt_guest import mbguest_elf  # noqa: E402
from harness.vm import VM  # noqa: E402
import report  # noqa: E402

DEMO_VERSION = "1"      # bump to rebuild the cached host images
KERNEL = "6.1"          # bookworm's own kernel
HOST_MB = 1024          # each host's RAM (dumped whole)
HOST_CPUS = 4           # housekeeping, crypto and VM cores on ramcrypt-host
GUEST_MB = 32           # the demo VM's RAM: one ramcrypt region
WINDOW = "1M"           # the marked unit's plaintext window ...
WINDOW_PAGES = 256      # ... in pages
MAX_AGE = "2s"          # and its age bound
AGE_S = 2
WORK_SECS = 90          # the VM works this long, then idles
WORKING_DUMPS = (0.3, 0.55, 0.8)    # when, as fractions of WORK_SECS
IDLE_DUMPS = (AGE_S + 4, AGE_S + 14)  # seconds after the VM went idle
HDR_MB = 16
PROMPT = r"Please enter passphrase for disk"
MBGUEST = "/usr/local/lib/ramcrypt-demo/mbguest.elf"
QEMU = "/usr/bin/qemu-system-x86_64"
UNIT = "vm-demo.service"
AGENT = "/usr/local/lib/ramcrypt-test/agent.sh"
COMMON_PKGS = ["qemu-system-x86", "procps", "dbus"]


# -- progress ---------------------------------------------------------------
class Progress:
    """One line per step on stdout, with the time since the start; what a
    host is waiting for is repeated every 30 s while it waits. Everything
    else (the harness, apt, dracut) goes to the log file."""

    def __init__(self, out):
        self.out = out
        self.t0 = time.monotonic()
        self.lock = threading.Lock()
        self.waits = {}
        self.step_name = "starting"
        self._stop = threading.Event()
        threading.Thread(target=self._ticker, daemon=True).start()

    def clock(self):
        s = int(time.monotonic() - self.t0)
        return f"{s // 60:2d}:{s % 60:02d}"

    def say(self, msg):
        with self.lock:
            self.out.write(f"[demo {self.clock()}] {msg}\n")
            self.out.flush()
        sys.stderr.write(f"== {msg}\n")

    def step(self, n, total, name):
        self.step_name = f"step {n}/{total} ({name})"
        self.say(f"step {n}/{total}: {name}")

    @contextlib.contextmanager
    def waiting(self, who, what):
        with self.lock:
            self.waits[who] = (what, time.monotonic())
        try:
            yield
        finally:
            with self.lock:
                self.waits.pop(who, None)

    def _ticker(self):
        while not self._stop.wait(30):
            with self.lock:
                waits = list(self.waits.items())
            for who, (what, since) in waits:
                self.say(f"  {who}: waiting for {what} "
                         f"({time.monotonic() - since:.0f}s so far)")

    def stop(self):
        self._stop.set()


# -- the host images ----------------------------------------------------------
def vm_argv(set_id, ramcrypt):
    """The demo VM: headless QEMU/KVM, GUEST_MB of RAM (on /dev/ramcrypt
    for the protected host, the form `ramcryptctl qemu-args` prints)."""
    argv = [QEMU, "-accel", "kvm", "-m", f"{GUEST_MB}M", "-smp", "1",
            "-nodefaults", "-display", "none", "-vga", "none", "-no-reboot",
            "-monitor", "none", "-serial", "stdio"]
    if ramcrypt:
        argv += ["-object", f"memory-backend-file,id=ram0,size={GUEST_MB}M,"
                 "mem-path=/dev/ramcrypt,share=on",
                 "-machine", "pc,memory-backend=ram0"]
    else:
        argv += ["-machine", "pc"]
    return argv + ["-L", "/usr/share/qemu", "-L", "/usr/share/seabios",
                   "-kernel", MBGUEST, "-append",
                   f"canary={set_id:#x} loop aeskey work={WORK_SECS}"]


def vm_unit(set_id, ramcrypt):
    cmd = " ".join(shlex.quote(a) for a in vm_argv(set_id, ramcrypt))
    text = ("[Unit]\nDescription=demo VM (secrets in its RAM)\n\n"
            f"[Service]\nExecStart={cmd}\n")
    if ramcrypt:
        text += ("\n[X-RamCrypt]\nRamCrypt=yes\n"
                 f"Window={WINDOW}\nMaxPlaintextAge={MAX_AGE}\nCPUs=1\n")
    return text


class StockSystem(DebianSystem):
    """Debian 12 with cryptsetup, dracut and QEMU: a stock LUKS2 host."""
    EXTRA_PKGS = tuple(["cryptsetup"] + COMMON_PKGS)
    LAYER_NAME = "demo-stock"


class ProtectedSystem(pkgroot.PackagedSystem):
    """The packages' root (pkgroot) plus QEMU."""
    LAYER_NAME = "demo-pkg"

    def __init__(self, release, generator, workdir):
        super().__init__(release, generator, workdir)
        self.EXTRA_PKGS = tuple(list(self.EXTRA_PKGS) + COMMON_PKGS)


def packaged_tree():
    """HEAD's top-level trees that the packages are built from (all but the
    tests, the demo and CI): a commit that only changes those reuses the
    cached ramcrypt-host image."""
    out = subprocess.run(["git", "-C", str(REPO), "ls-tree", "HEAD"],
                         capture_output=True, text=True, check=True).stdout
    return "".join(ln + "\n" for ln in out.splitlines()
                   if ln.split("\t")[-1] not in
                   ("tests", "demo", ".ci", ".gitignore"))


class HostImage:
    """A host's disk, kernel, initramfs and secrets, cached by what goes
    into them (for ramcrypt-host: the packages' source tree)."""

    def __init__(self, name, release, workroot, progress):
        self.name = name
        self.release = release
        self.protected = name == "ramcrypt-host"
        self.progress = progress
        self.workroot = workroot

    def cache_key(self):
        parts = [DEMO_VERSION, self.name, self.release,
                 vm_unit(0, self.protected), mbguest_elf().read_bytes().hex()]
        if self.protected:
            parts.append(packaged_tree())
        h = hashlib.sha256()
        for p in parts:
            h.update(p.encode() + b"\0")
        return h.hexdigest()[:12]

    def get(self):
        d = kernels.cache_dir() / "demo"
        d.mkdir(exist_ok=True)
        out = d / f"{self.name}-{self.release}-{self.cache_key()}"
        if (out / "image.ok").exists():
            out.touch()
            self.progress.say(f"  {self.name}: image from the cache ({out})")
        else:
            kernels.prune_stale(d.glob(f"{self.name}-{self.release}-*"),
                                rmtree=True)
            tmp = d / f"{out.name}.{os.getpid()}.tmp"
            subprocess.run(["rm", "-rf", str(tmp)], check=True)
            tmp.mkdir()
            t0 = time.monotonic()
            self.build(tmp)
            (tmp / "image.ok").write_text("")
            tmp.rename(out)
            self.progress.say(f"  {self.name}: image built in "
                              f"{time.monotonic() - t0:.0f}s, cached")
        self.dir = out
        self.secrets = json.loads((out / "secrets.json").read_text())
        return self

    def build(self, out):
        p, name = self.progress, self.name
        work = self.workroot / f"build-{name}"
        work.mkdir(parents=True)
        key = os.urandom(32)
        secrets = {"key": key.hex(),
                   "passphrase": "demo-" + os.urandom(6).hex(),
                   "uuid": str(uuid.uuid4()),
                   "set_id": int.from_bytes(os.urandom(4), "little") | 1}
        if self.protected:
            s = ProtectedSystem(self.release, "dracut", work)
            mapper = "root"
        else:
            s = StockSystem(self.release, "dracut", work)
            mapper = f"luks-{secrets['uuid']}"
        secrets["root"] = f"/dev/mapper/{mapper}"
        p.say(f"  {name}: Debian 12 root (debootstrap and apt, cached "
              "layers)")
        with p.waiting(name, "the Debian root"):
            s.unpack()
        s.write("/etc/hostname", f"{name}\n")
        s.write("/etc/fstab", f"{secrets['root']} / ext4 "
                "errors=remount-ro 0 1\n")
        s.write("/etc/modules-load.d/demo-kvm.conf", "kvm_amd\nkvm_intel\n")
        s.write(MBGUEST, mbguest_elf().read_bytes())
        s.write(f"/etc/systemd/system/{UNIT}",
                vm_unit(secrets["set_id"], self.protected))
        if self.protected:
            s.write("/etc/tresortab", "# name device keyfile options\n"
                    f"root UUID={secrets['uuid']} none\n")
            p.say(f"  {name}: apt-get install ramcrypt-host (DKMS builds "
                  "the modules), systemctl enable ramcrypt-host")
            with p.waiting(name, "apt-get install ramcrypt-host"):
                s.install_project()
                s.sh("systemctl enable ramcrypt-host.service 2>&1")
        s.install_agent()
        p.say(f"  {name}: initramfs (dracut), LUKS2 root image")
        with p.waiting(name, "dracut and the LUKS2 image"):
            s.make_initramfs()
            size = int(subprocess.run(["du", "-sm", str(s.root)],
                                      capture_output=True, text=True,
                                      check=True).stdout.split()[0])
            payload = size + size // 3 + 256
            plain = work / "root.ext4"
            s.ext4_image(plain, payload)
            img = out / "root.img"
            with open(img, "wb") as f:
                f.truncate((HDR_MB + payload) << 20)
            _, offset = luks.luks_format(
                img, secrets["passphrase"].encode(), key, sector_size=4096,
                pbkdf=("--pbkdf", "argon2id", "--pbkdf-memory", "65536",
                       "--pbkdf-parallel", "1",
                       "--pbkdf-force-iterations", "4"),
                uuid=secrets["uuid"])
            with open(plain, "rb") as src:
                luks.encrypt_payload(img, key, offset, 4096, src)
            plain.unlink()
        shutil.copy(s.vmlinuz, out / "vmlinuz")
        shutil.copy(s.initrd, out / "initrd.img")
        (out / "secrets.json").write_text(json.dumps(secrets))
        subprocess.run(["rm", "-rf", str(work)], check=True)


# -- one host's run -----------------------------------------------------------
class HostRun:
    """Boot a host image, unlock its root at the prompt, run the VM, take
    the attacker's dumps (kept on disk for the report step)."""

    def __init__(self, image, workdir, progress, search):
        self.image = image
        self.name = image.name
        self.workdir = workdir
        self.progress = progress
        self.search = search    # search(run, path, label, phase, secs)
        self.dumps = []         # (path, label, phase, secs since written)
        self.extra = ""
        self.facts = {}
        self.vm = None
        self.error = None

    def say(self, msg):
        self.progress.say(f"  {self.name}: {msg}")

    def sh(self, script, timeout=300):
        return self.vm.sh(script, timeout=timeout)

    def run(self):
        try:
            self._run()
        except BaseException as e:  # reported by the main thread
            self.error = e
            sys.stderr.write(f"{self.name}: {traceback.format_exc()}\n")

    def _run(self):
        im, sec = self.image, self.image.secrets
        kernel = types.SimpleNamespace(vmlinuz=im.dir / "vmlinuz",
                                       short=KERNEL)
        append = f"root={sec['root']} rw nowatchdog " \
            "rcupdate.rcu_cpu_stall_suppress=1 " \
            "sysctl.kernel.hung_task_timeout_secs=0"
        if not im.protected:
            append += f" rd.luks.uuid={sec['uuid']}"
        self.say("booting (QEMU, TCG, " f"{HOST_CPUS} CPUs, {HOST_MB} MiB)")
        self.vm = VM(kernel, im.dir / "initrd.img", workdir=self.workdir,
                     name=self.name, mem_mb=HOST_MB, smp=HOST_CPUS,
                     disks=[im.dir / "root.img"], append=append,
                     boot_timeout=1200, agent_tty="ttyS1",
                     qemu_args=["-snapshot"],
                     bench_params=im.protected)
        self.vm.secrets += [sec["key"], sec["passphrase"]]
        with self.progress.waiting(self.name, "the passphrase prompt"):
            self.vm.wait_console(PROMPT, 1200, what="the passphrase prompt")
        time.sleep(2)   # typed a moment after the prompt, as a person would
        self.say("typing the passphrase at the prompt")
        self.vm.type_console(sec["passphrase"] + "\n")
        with self.progress.waiting(self.name, "the booted system"):
            self.vm.wait_ready()
            self.sh("systemctl is-system-running --wait >/dev/null 2>&1 "
                    "|| true", timeout=900)
        f = dict(ln.split("=", 1) for ln in self.sh("""
echo "root=$(dmsetup table $(basename $(findmnt -n -o SOURCE /)) | awk '{print $4}')"
echo "kernel=$(uname -r)"
echo "key_loaded=$(cat /sys/kernel/tresor/key_loaded 2>/dev/null || echo -)"
echo "failed=$(systemctl list-units --failed --plain --no-legend | cut -d' ' -f1 | tr '\\n' ' ')"
""").splitlines() if "=" in ln)
        self.facts.update(f)
        self.say(f"booted {f['kernel']}: root cipher {f['root']}"
                 + (f", TRESOR key loaded={f['key_loaded']}"
                    if im.protected else ""))
        if im.protected:
            with self.progress.waiting(self.name, "ramcrypt-host roles"):
                self.sh("systemctl is-active ramcrypt-host.service || "
                        "systemctl start ramcrypt-host.service")
        self.say(f"systemctl start {UNIT}")
        t_start = time.monotonic()
        self.sh(f"systemctl start {UNIT}", timeout=600)
        with self.progress.waiting(self.name, "the VM to write its secrets"):
            self._wait_journal("canary written", 900)
        t_written = time.monotonic()
        self.say(f"VM wrote its key and canaries "
                 f"({t_written - t_start:.0f}s after its start); working "
                 f"for {WORK_SECS}s")
        for n, frac in enumerate(WORKING_DUMPS, 1):
            self._sleep_until(t_written + frac * WORK_SECS)
            self._dump(f"working-{n}", "working", t_written)
            if n == 2 and im.protected:
                self.extra = self.sh(f"""
echo '$ ramcryptctl status'; ramcryptctl status
echo; echo '$ ramcryptctl unit {UNIT}'; ramcryptctl unit {UNIT}
echo; echo '$ busctl tree org.ramcrypt.RamCrypt1'
busctl --system --no-pager tree org.ramcrypt.RamCrypt1
""")
        with self.progress.waiting(self.name, "the VM to go idle"):
            line = self._wait_journal("idle after", WORK_SECS * 3 + 300)
        t_idle = time.monotonic()
        self.say(f"VM idle ({line.strip()})")
        for n, after in enumerate(IDLE_DUMPS, 1):
            self._sleep_until(t_idle + after)
            self._dump(f"idle-{n}", "idle", t_written)
        self.facts["journal"] = self.sh(
            f"journalctl -q --no-pager -o cat -u {UNIT} | tr -d '\\r' "
            "| grep -v 'canary pass=' | tail -n 20")
        self.sh(f"systemctl stop {UNIT}", timeout=300)
        self.vm.poweroff(timeout=300)

    def _sleep_until(self, t):
        while time.monotonic() < t:
            time.sleep(min(1.0, t - time.monotonic()))

    def _wait_journal(self, text, timeout):
        deadline = time.monotonic() + timeout
        while True:
            out = self.sh(f"journalctl -q --no-pager -o cat -u {UNIT} "
                          f"| grep -m1 '{text}' || true; systemctl "
                          f"is-active {UNIT} || true").splitlines()
            if len(out) > 1 and text in out[0]:
                return out[0]
            if out and out[-1] not in ("active", "activating"):
                raise RuntimeError(
                    f"{UNIT} is {out[-1]}:\n" + self.sh(
                        f"systemctl status --no-pager -l {UNIT} || true; "
                        f"journalctl -q --no-pager -u {UNIT} -u ramcryptd "
                        "| tail -n 30"))
            if time.monotonic() > deadline:
                raise RuntimeError(f"no '{text}' from {UNIT} within "
                                   f"{timeout}s")
            time.sleep(1)

    def _dump(self, label, phase, t0):
        path = self.workdir / f"{self.name}-{label}.ram"
        secs = time.monotonic() - t0
        self.vm.dump_ram(path)
        self.dumps.append((path, label, phase, secs))
        self.say(f"RAM dump '{label}' at {secs:.0f}s ({phase})")
        self.search(self, path, label, phase, secs)


# -- main -----------------------------------------------------------------------
def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.parse_args(argv)
    if os.geteuid() != 0:
        print("make demo: needs root (debootstrap, chroot, QEMU); "
              "see README.md", file=sys.stderr)
        return 2
    out_dir = Path(os.environ.get("DEMO_OUT", REPO / "build" / "demo"))
    out_dir.mkdir(parents=True, exist_ok=True)
    logfile = out_dir / "demo.log"
    keep = os.environ.get("KEEP") == "1"
    stdout = sys.stdout
    sys.stderr = open(logfile, "w", buffering=1)
    p = Progress(stdout)
    os.environ.setdefault("RAMCRYPT_TEST_SLOWNESS", "1")
    work = kernels.cache_dir() / "demo" / f"work-{os.getpid()}"
    work.mkdir(parents=True)
    runs = []
    total = 5
    try:
        p.step(1, total, "the kernel and the packages")
        with p.waiting("demo", f"Debian's {KERNEL} kernel"):
            release = next(r for r in kernels.resolve_kernels()
                           if r.startswith(KERNEL + "."))
        with p.waiting("demo", "dpkg-buildpackage"):
            debs = pkgroot.build_debs()
        p.say("  " + ", ".join(d.name for d in debs.values()))

        p.step(2, total, "the host images (cached after the first run)")
        images = [HostImage(n, release, work, p)
                  for n in ("stock", "ramcrypt-host")]
        errors = []

        def get(im):
            try:
                im.get()
            except BaseException as e:
                errors.append((im.name, e))
                sys.stderr.write(traceback.format_exc())
        threads = [threading.Thread(target=get, args=(im,)) for im in images]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise RuntimeError(f"{errors[0][0]} image: {errors[0][1]}")

        p.step(3, total, "boot both hosts, start the VM, dump RAM while it "
               "works and while it idles; the attacker searches each dump "
               "(aeskeyfind, raw keys, canary pages)")
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
        searches = []

        def search(run, path, label, phase, secs):
            sec = run.image.secrets

            def job():
                res = report.search_dump(
                    path, bytes.fromhex(sec["key"]),
                    memsearch.guest_aes_key(sec["set_id"]), sec["set_id"],
                    1 << 20)
                if not keep:
                    path.unlink()
                p.say(f"  {run.name}: dump '{label}': host key "
                      f"{res['host_key']}, guest key {res['guest_key']}, "
                      f"canary pages {res['canaries']}")
                return (label, phase, secs, res)
            searches.append((run.name, pool.submit(job)))

        runs = [HostRun(im, work, p, search) for im in images]
        threads = [threading.Thread(target=r.run) for r in runs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for r in runs:
            if r.error:
                raise RuntimeError(f"{r.name}: {r.error}")

        p.step(4, total, "the rest of the searches")
        found = {r.name: [] for r in runs}
        with p.waiting("demo", "the searches of the dumps"):
            for name, fut in searches:
                found[name].append(fut.result())
        pool.shutdown()
        results = {r.name: report.host_result(
            r.name, found[r.name], WINDOW_PAGES, guest_pages(r),
            r.image.protected) for r in runs}

        p.step(5, total, "the report")
        stock, prot = results["stock"], results["ramcrypt-host"]
        prot_run = next(r for r in runs if r.image.protected)
        notes = note_text(runs)
        text = report.render_text(stock, prot, notes + prot_run.extra)
        png = report.render_png(stock, prot, out_dir / "plaintext-pages.png",
                                idle_at=WORK_SECS)
        (out_dir / "report.txt").write_text(text)
        (out_dir / "report.html").write_text(
            report.render_html(stock, prot, text, png))
        stdout.write("\n" + text + "\n")
        p.say(f"report: {out_dir / 'report.txt'}, {out_dir / 'report.html'};"
              f" picture: {png}")
        return 0 if report.all_ok([stock, prot]) else 1
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt):
            p.say("interrupted")
        else:
            sys.stderr.write(traceback.format_exc())
            p.say(f"FAILED in {p.step_name}: {str(e).splitlines()[0]}")
        p.say(f"log: {logfile}"
              + (f"; serial logs in {work}" if keep else ""))
        return 1
    finally:
        p.stop()
        for r in runs:
            if r.vm:
                r.vm.close()
        if keep:
            p.say(f"KEEP=1: work files kept in {work}")
        else:
            subprocess.run(["rm", "-rf", str(work)])


def guest_pages(run):
    """The VM's canary page count, from its 'canary written' line."""
    m = re.search(r"canary written set=0x[0-9a-f]+ start=0x[0-9a-f]+ "
                  r"pages=(\d+)", run.facts.get("journal", ""))
    if not m:
        raise RuntimeError(f"{run.name}: the VM never said how many pages "
                           "it wrote")
    return int(m[1])


def note_text(runs):
    lines = ["How the figures were made:",
             f"  each host: Debian 12, kernel {runs[0].facts.get('kernel')},"
             f" {HOST_CPUS} CPUs, {HOST_MB} MiB, root passphrase typed at "
             "the prompt",
             f"  the VM: {GUEST_MB} MiB, an AES-128-XTS key of its own set up"
             " at boot (no disk I/O afterwards), canary pages over all its"
             f" RAM, read pass after pass for {WORK_SECS}s, then idle",
             f"  ramcrypt-host's VM unit: Window={WINDOW} ({WINDOW_PAGES} "
             f"pages), MaxPlaintextAge={MAX_AGE}",
             "  dumps: the whole host RAM (QMP pmemsave), searched with "
             "aeskeyfind, the raw key halves and whole canary pages",
             "  this machine emulates the hosts (QEMU TCG): the ramcrypt-host"
             " runs with tresor.allow_hypervisor=1; on a real host there is"
             " no hypervisor to save the debug registers, and TCG has no "
             "caches, so the window is in RAM here (cache confinement: "
             "none)", ""]
    for r in runs:
        lines.append(f"{r.name}: root on {r.facts.get('root')}")
    return "\n".join(lines) + "\n\n"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
