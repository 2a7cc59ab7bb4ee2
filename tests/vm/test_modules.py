"""tresor.ko and ramcrypt.ko load, show status, refuse what they lack, unload."""
from harness.registry import vm_test

# An ioctl number neither module knows: magic 0xD5, nr 0x7f, _IOR 64 bytes.
UNKNOWN_IOCTL = hex((2 << 30) | (64 << 16) | (0xD5 << 8) | 0x7f)
TRESOR_SET_KEY = hex((1 << 30) | (40 << 16) | (0xD5 << 8) | 0x00)


def sysfs_status(vm):
    """/sys/kernel/tresor/* and ramcrypt's region count as a dict."""
    out = vm.sh("cd /sys/kernel/tresor && for f in key_loaded nr_holders "
                "nr_valid_holders holders valid_holders check_failures; do "
                "echo \"$f=$(cat $f)\"; done; "
                "echo \"regions=$(ls /sys/kernel/ramcrypt/regions | wc -l)\"")
    return dict(ln.split("=", 1) for ln in out.split("\n"))


@vm_test()
def test_modules_load_unload(ctx):
    with ctx.boot() as vm:
        vm.sh("modprobe tresor && modprobe ramcrypt")
        out = vm.sh("stat -c '%F %a' /dev/tresor /dev/ramcrypt")
        assert out.split("\n") == ["character special file 600",
                                   "character special file 660"], out
        assert sysfs_status(vm) == {
            "key_loaded": "0", "nr_holders": "0", "nr_valid_holders": "0",
            "holders": "", "valid_holders": "", "check_failures": "0",
            "regions": "0"}, sysfs_status(vm)

        st = vm.sh("rcprobe tresor-status")
        assert "abi=1 key_loaded=0 holders=0 valid_holders=0" in st, st

        for dev in ("/dev/tresor", "/dev/ramcrypt"):
            r = vm.sh(f"rcprobe ioctl {dev} {UNKNOWN_IOCTL}")
            assert r == "errno=ENOTTY", f"{dev} unknown ioctl: {r}"
        r = vm.sh("rcprobe --as-user 65534 tresor-status")
        assert r == "open=EACCES", f"unprivileged open of /dev/tresor: {r}"

        vm.sh("rmmod ramcrypt && rmmod tresor")
        out = vm.sh("ls -d /dev/tresor /dev/ramcrypt /sys/kernel/tresor "
                    "/sys/kernel/ramcrypt 2>&1 || true; lsmod")
        assert out.count("No such file or directory") == 4, out
        assert "tresor" not in out.split("No such file")[-1], out
        dmesg = vm.sh("dmesg")
        for bad in ("WARNING:", "BUG:", "Oops", "Call Trace"):
            assert bad not in dmesg, f"kernel log has {bad}:\n{dmesg[-3000:]}"
