"""A software TPM 2.0 (swtpm, from tests/install-deps) for a test VM."""
import subprocess
import time


class SoftTPM:
    """swtpm on the host, for one VM: qemu_args attach it as a TPM TIS
    device. Its TPM2 state is the work dir's (created on first use): a
    later SoftTPM of the same test (the next boot) is the same TPM."""

    def __init__(self, ctx):
        self.state = ctx.workdir / "tpm-state"
        self.state.mkdir(exist_ok=True)
        self.sock = ctx.workdir / "swtpm.sock"
        self.sock.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            ["swtpm", "socket", "--tpm2", "--tpmstate",
             f"dir={self.state}", "--ctrl",
             f"type=unixio,path={self.sock}",
             "--log", f"file={ctx.workdir / 'swtpm.log'},level=1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while not self.sock.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("swtpm did not start: " +
                                   (ctx.workdir / "swtpm.log").read_text(
                                       errors="replace")[-500:]
                                   if (ctx.workdir / "swtpm.log").exists()
                                   else "no log")
            time.sleep(0.05)

    def qemu_args(self):
        return ["-chardev", f"socket,id=chrtpm,path={self.sock}",
                "-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
                "-device", "tpm-tis,tpmdev=tpm0"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
