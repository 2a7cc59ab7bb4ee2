"""One QEMU test guest: boot, run commands over the serial line, dump RAM."""
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from . import slowness

# Default limits in seconds, for an unloaded machine: every wait below is
# scaled by this run's slowness factor (harness/slowness.py).
BOOT_TIMEOUT = 120
RUN_TIMEOUT = 60
START_TIMEOUT = 90  # a command's @@BEGIN after it was sent
# Module parameters every test guest gets on its kernel command line (kmod
# and busybox modprobe apply "module.param=" from /proc/cmdline, also in an
# initramfs): QEMU TCG sets CPUID's hypervisor bit, under which tresor.ko
# refuses the key otherwise. bench_params=False boots without them.
BENCH_PARAMS = "tresor.allow_hypervisor=1"


class GuestError(Exception):
    """A guest failed, hung or answered wrongly; carries the serial tail."""


class Qmp:
    def __init__(self, path, timeout=30):
        deadline = time.monotonic() + slowness.scaled(timeout)
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise GuestError(f"QMP socket {path} never came up")
                time.sleep(0.05)
        self.file = self.sock.makefile("rwb", buffering=0)
        self._read()  # greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        line = self.file.readline()
        if not line:
            raise GuestError("QMP connection closed")
        return json.loads(line)

    def cmd(self, execute, **args):
        msg = {"execute": execute}
        if args:
            msg["arguments"] = args
        self.file.write(json.dumps(msg).encode() + b"\n")
        while True:
            r = self._read()
            if "return" in r:
                return r["return"]
            if "error" in r:
                raise GuestError(f"QMP {execute}: {r['error']}")
            # asynchronous events are ignored

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class VM:
    """A booted guest. Use as a context manager; see run() and dump_ram()."""

    def __init__(self, kernel, initrd, *, workdir, name, mem_mb=512, smp=2,
                 disks=(), extra_initrd=None, append="",
                 boot_timeout=BOOT_TIMEOUT, boot_timeout_from=None,
                 qemu_args=(), agent_tty="ttyS0",
                 console_append="console=ttyS0 panic=-1 loglevel=4 nokaslr",
                 mttcg=False, bench_params=True):
        """agent_tty: where the guest agent listens. "ttyS0" shares the
        console (busybox guests); "ttyS1" is a second serial port on a
        socket, so a full system's console (prompts, boot messages) stays
        apart from the command protocol: see wait_console()/type_console().

        boot_timeout (seconds, scaled by the run's slowness factor) counts
        from QEMU's start, or with boot_timeout_from from the first agent
        line containing that string (until then BOOT_TIMEOUT applies): a
        limit tied to an event rather than to the machine's speed."""
        self.kernel = kernel
        self.name = name
        self.mem_mb = mem_mb
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.serial_log = self.workdir / f"{name}.serial.log"
        self.boot_timeout = boot_timeout
        self.boot_timeout_from = boot_timeout_from
        self.boot_secs = None  # QEMU start to @@GUEST-READY, once booted
        # Set by the runner for the test initramfs with default options:
        # its boot time then updates the slowness factor.
        self.plain = False
        self._lines = []  # agent lines
        self._cond = threading.Condition()
        self._eof = False
        self._console = ""  # everything the console printed (ttyS0)
        self._agent_sock = None
        self._seq = 0
        self.qmp = None
        self.secrets = []  # strings never to appear in error messages

        initrd_path = Path(initrd)
        if extra_initrd:
            combo = self.workdir / f"{name}.initrd"
            combo.write_bytes(Path(initrd).read_bytes() + extra_initrd)
            initrd_path = combo
        # RAMCRYPT_VM_TMPDIR lets a caller find exactly its own QEMUs.
        self._sockdir = tempfile.mkdtemp(
            prefix="rcvm-", dir=os.environ.get("RAMCRYPT_VM_TMPDIR"))
        self.qmp_path = Path(self._sockdir) / "qmp.sock"
        # Single-threaded TCG: with one host thread per vCPU (MTTCG) a vCPU
        # intermittently executes the transient int3 of the kernel's text
        # patching after it was removed ("Oops: int3" in __schedule or
        # sched_clock_cpu on 6.12, even during boot). Round-robin vCPUs keep
        # cross-modifying code coherent; make check runs two kernels side by
        # side, so both host cores stay busy anyway.
        # mttcg=True (benchmarks only): one host thread per vCPU, so work
        # on another vCPU really runs in parallel; never with nested KVM.
        cmd = ["qemu-system-x86_64", "-accel",
               "tcg,thread=" + ("multi" if mttcg else "single"),
               "-cpu", "max",
               "-machine", "q35", "-smp", str(smp), "-m", f"{mem_mb}M",
               "-nodefaults", "-display", "none", "-no-reboot",
               "-serial", "stdio", "-monitor", "none",
               "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
               "-kernel", str(kernel.vmlinuz), "-initrd", str(initrd_path),
               "-append", " ".join(filter(None, (
                   console_append, BENCH_PARAMS if bench_params else "",
                   append)))]
        self.agent_path = Path(self._sockdir) / "agent.sock"
        if agent_tty == "ttyS1":
            cmd += ["-chardev", f"socket,id=agent,path={self.agent_path},"
                    "server=on,wait=off", "-serial", "chardev:agent"]
        elif agent_tty != "ttyS0":
            raise ValueError(f"agent_tty {agent_tty!r}: ttyS0 or ttyS1")
        for i, d in enumerate(disks):
            cmd += ["-drive", f"file={d},if=virtio,format=raw,cache=unsafe,"
                    f"id=disk{i}"]
        cmd += list(qemu_args)
        self._logf = open(self.serial_log, "wb")
        self._t_start = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self._readers = [threading.Thread(
            target=self._read_serial, daemon=True,
            args=(self.proc.stdout.read1, agent_tty == "ttyS0"))]
        if agent_tty == "ttyS1":
            self._agent_sock = self._connect_agent()
            self._readers.append(threading.Thread(
                target=self._read_serial, daemon=True,
                args=(self._agent_sock.recv, True)))
        for t in self._readers:
            t.start()

    def _connect_agent(self, timeout=30):
        deadline = time.monotonic() + slowness.scaled(timeout)
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(str(self.agent_path))
                return s
            except OSError:
                s.close()
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.kill()
                    raise GuestError("the agent serial socket never came up")
                time.sleep(0.05)

    # -- serial ---------------------------------------------------------
    def _read_serial(self, read, is_agent):
        buf = b""
        while True:
            try:
                chunk = read(65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            if not is_agent or self._agent_sock is None:
                self._logf.write(chunk)
                self._logf.flush()
                with self._cond:
                    self._console += chunk.replace(b"\r", b"").decode(
                        "utf-8", "replace")
                    self._cond.notify_all()
            if not is_agent:
                continue
            buf += chunk
            *lines, buf = buf.split(b"\n")
            with self._cond:
                for ln in lines:
                    self._lines.append(ln.replace(b"\r", b"")
                                       .decode("utf-8", "replace"))
                self._cond.notify_all()
        with self._cond:
            if buf:
                self._lines.append(buf.decode("utf-8", "replace"))
            self._eof = True
            self._cond.notify_all()

    def tail(self, n=40):
        try:
            text = self.serial_log.read_bytes().decode("utf-8", "replace")
        except OSError:
            return ""
        return self.redact("\n".join(text.replace("\r", "")
                                     .splitlines()[-n:]))

    def _wait_line(self, start, pred, timeout, what):
        """Index of the first line >= start matching pred, or GuestError.

        timeout is nominal: the limit is timeout x the slowness factor,
        re-read while waiting (a slow boot elsewhere may raise it)."""
        t0 = time.monotonic()
        i = start
        with self._cond:
            while True:
                while i < len(self._lines):
                    if pred(self._lines[i]):
                        return i
                    i += 1
                if self._eof:
                    raise GuestError(f"guest exited while waiting for {what}"
                                     f"\n--- serial tail ---\n{self.tail()}")
                limit = slowness.scaled(timeout)
                left = t0 + limit - time.monotonic()
                if left <= 0:
                    raise GuestError(self.redact(
                        f"timeout after {slowness.describe(timeout, limit)} "
                        f"waiting for {what}\n"
                        f"--- serial tail ---\n{self.tail()}"))
                self._cond.wait(min(left, 1.0))

    def console_mark(self):
        """Position in the console text, for wait_console(start=...)."""
        with self._cond:
            return len(self._console)

    def wait_console(self, pattern, timeout, start=0, what=None):
        """Wait until the console output from `start` on matches the regex
        (also an unterminated prompt line); return the match. timeout is
        nominal, scaled by the slowness factor."""
        rx = re.compile(pattern)
        t0 = time.monotonic()
        with self._cond:
            while True:
                m = rx.search(self._console, start)
                if m:
                    return m
                if self.proc.poll() is not None:
                    break
                limit = slowness.scaled(timeout)
                left = t0 + limit - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 1.0))
        state = "guest exited" if self.proc.poll() is not None else \
            f"timeout after {slowness.describe(timeout, limit)}"
        raise GuestError(self.redact(
            f"{state} waiting for {what or pattern!r} on the console\n"
            f"--- serial tail ---\n{self.tail()}"))

    def console_text(self, start=0):
        with self._cond:
            return self._console[start:]

    def type_console(self, text):
        """Type on the console (ttyS0 input); only with agent_tty=ttyS1."""
        if self._agent_sock is None:
            raise GuestError("type_console needs the agent on ttyS1")
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def type_serial1(self, text):
        """Raw input on ttyS1 (agent_tty="ttyS1"), for a shell the guest
        runs there before its agent starts: the boot tests' stand-in for
        an SSH session into the initramfs (dropbear-initramfs)."""
        if self._agent_sock is None:
            raise GuestError("type_serial1 needs the agent on ttyS1")
        self._agent_sock.sendall(text.encode())

    def wait_serial1(self, pattern, timeout, what):
        """The first ttyS1 line that matches pattern (re.search)."""
        i = self._wait_line(0, lambda ln: re.search(pattern, ln), timeout,
                            what)
        with self._cond:
            return self._lines[i]

    def serial1_text(self):
        """Every complete line ttyS1 printed so far."""
        with self._cond:
            return "\n".join(self._lines)

    def _agent_write(self, data):
        if self._agent_sock is not None:
            self._agent_sock.sendall(data)
        else:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def wait_ready(self):
        start, what = 0, "the guest to boot"
        mark = self.boot_timeout_from
        if mark:
            start = self._wait_line(0, lambda ln: mark in ln, BOOT_TIMEOUT,
                                    f"{mark!r} during boot") + 1
            what += f" (counted from {mark!r})"
        self._wait_line(start, lambda ln: ln.startswith("@@GUEST-READY"),
                        self.boot_timeout, what)
        self.boot_secs = time.monotonic() - self._t_start
        if self.plain:
            slowness.note_boot(getattr(self.kernel, "short", None),
                               self.boot_secs)
        self.qmp = Qmp(self.qmp_path)

    def run(self, script, timeout=RUN_TIMEOUT, check=False,
            timeout_from=None):
        """Run a shell script in the guest; return (rc, output).

        timeout (seconds, scaled by the run's slowness factor) counts from
        the command's start, or with timeout_from from its first output
        line containing that string (until then RUN_TIMEOUT applies)."""
        self._seq += 1
        cid = f"c{self._seq}"
        b64 = base64.b64encode(script.encode()).decode()
        with self._cond:
            start = len(self._lines)
        self._agent_write(f"@@CMD {cid} {b64}\n".encode())
        b = self._wait_line(start, lambda ln: ln == f"@@BEGIN {cid}",
                            START_TIMEOUT, f"command {cid} to start")
        what = f"command {cid} to finish: {script[:80]!r}"
        e, end = b, f"@@END {cid} "
        if timeout_from:
            e = self._wait_line(b + 1, lambda ln: timeout_from in ln or
                                ln.startswith(end), RUN_TIMEOUT,
                                f"{timeout_from!r} from command {cid}")
            what += f" (counted from {timeout_from!r})"
        if not self._lines[e].startswith(end):
            e = self._wait_line(e + 1, lambda ln: ln.startswith(end),
                                timeout, what)
        with self._cond:
            out = "\n".join(self._lines[b + 1:e])
            rc = int(self._lines[e].split()[2])
        if check and rc != 0:
            raise GuestError(self.redact(
                f"guest command failed (rc={rc}): "
                f"{script.strip()[:200]}\n--- output ---\n{out}"))
        return rc, out

    def redact(self, text):
        """Hide test key material (hex) from messages and logs."""
        for s in self.secrets:
            text = text.replace(s, "<redacted>")
        return text

    def sh(self, script, timeout=RUN_TIMEOUT, timeout_from=None):
        """Run a script that must succeed; return its output."""
        return self.run(script, timeout=timeout, check=True,
                        timeout_from=timeout_from)[1]

    # -- memory -------------------------------------------------------------
    def dump_ram(self, path):
        """Snapshot all guest RAM (pause, pmemsave from 0, resume)."""
        path = Path(path)
        if self.qmp is None:  # a guest dumped before its agent came up
            self.qmp = Qmp(self.qmp_path)
        self.qmp.cmd("stop")
        try:
            self.qmp.cmd("pmemsave", val=0, size=self.mem_mb << 20,
                         filename=str(path))
        finally:
            self.qmp.cmd("cont")
        if path.stat().st_size != self.mem_mb << 20:
            raise GuestError(f"RAM dump {path} is truncated")
        return path

    # -- life cycle ---------------------------------------------------------
    def poweroff(self, timeout=60):
        """Clean shutdown (sync, poweroff -f); waits for QEMU to exit."""
        try:
            self._agent_write(b"@@CMD off "
                              + base64.b64encode(b"sync; poweroff -f")
                              + b"\n")
        except OSError:
            pass
        limit = slowness.scaled(timeout)
        try:
            self.proc.wait(limit)
        except subprocess.TimeoutExpired:
            self.kill()
            raise GuestError(f"guest did not power off in "
                             f"{slowness.describe(timeout, limit)}\n"
                             f"--- serial tail ---\n{self.tail()}")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        self.kill()
        if self.qmp:
            self.qmp.close()
            self.qmp = None
        if self._agent_sock is not None:
            self._agent_sock.close()
        for t in self._readers:
            t.join(5)
        self._logf.close()
        shutil.rmtree(self._sockdir, ignore_errors=True)

    def __enter__(self):
        try:
            self.wait_ready()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
