"""The newc writer produces archives that GNU cpio reads back exactly."""
import stat
import subprocess
import tempfile
from pathlib import Path

from harness import initramfs
from harness.registry import unit_test


@unit_test()
def test_cpio_round_trip():
    c = initramfs.Cpio()
    c.file("etc/a.txt", b"alpha\n")
    c.file("usr/bin/tool", b"#!/bin/sh\necho hi\n", 0o755)
    c.symlink("bin/sh", "busybox")
    c.node("dev/console", stat.S_IFCHR, 5, 1)
    data = c.finish()
    assert len(data) % 512 == 0
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run(["cpio", "-idm", "--quiet"], input=data, cwd=d,
                           capture_output=True)
        assert r.returncode == 0, r.stderr
        root = Path(d)
        assert (root / "etc/a.txt").read_bytes() == b"alpha\n"
        mode = (root / "usr/bin/tool").stat().st_mode
        assert stat.S_IMODE(mode) == 0o755, oct(mode)
        assert (root / "bin/sh").is_symlink()
        assert str((root / "bin/sh").readlink()) == "busybox"
        st = (root / "dev/console").lstat()
        assert stat.S_ISCHR(st.st_mode), oct(st.st_mode)
