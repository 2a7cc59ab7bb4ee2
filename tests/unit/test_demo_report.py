"""make demo's report logic (demo/report.py) on synthetic RAM dumps of
known content, searched with the real tools (aeskeyfind, raw key search,
canary pages): a stock host's dumps hold both AES keys' schedules and the
guest's canary pages, the protected host's none (a few canaries within
the window while working); the verdicts must match that truth, and a
protected dump with a leak planted must turn a verdict to FAIL."""
import importlib.util
import os
import tempfile
from pathlib import Path

from harness import memsearch
from harness.registry import unit_test

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("demo_report",
                                               REPO / "demo" / "report.py")
report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(report)

PAGES = 64      # the guest's canary pages
WINDOW = 8      # the protected host's window


def xts_schedules(key):
    return memsearch.aes128_schedule(key[:16]) + bytes(64) + \
        memsearch.aes128_schedule(key[16:])


def make_dump(d, name, keys=(), canaries=(), set_id=0, size=8 << 20):
    """Random bytes; the keys' schedules and canary pages planted."""
    data = bytearray(os.urandom(size))
    off = 0x100040
    for k in keys:
        blob = xts_schedules(k)
        data[off:off + len(blob)] = blob
        off += 0x80000
    for n, i in enumerate(canaries):
        p = 0x400000 + n * 4096
        data[p:p + 4096] = memsearch.canary_page(set_id, i)
    path = Path(d) / name
    path.write_bytes(data)
    return path


def _run(d, prot_extra_keys=(), prot_working=range(5), prot_idle=()):
    hk, gk = os.urandom(32), os.urandom(32)
    set_id = int.from_bytes(os.urandom(4), "little") | 1
    res = {}
    for name, protected, specs in (
            ("stock", False, [("w1", "working", 10, (hk, gk), range(PAGES)),
                              ("w2", "working", 20, (hk, gk), range(PAGES)),
                              ("i1", "idle", 40, (hk, gk), range(PAGES))]),
            ("ramcrypt-host", True,
             [("w1", "working", 10, prot_extra_keys, prot_working),
              ("w2", "working", 20, (), range(3)),
              ("i1", "idle", 40, (), prot_idle)])):
        dumps = []
        for label, phase, t, keys, can in specs:
            p = make_dump(d, f"{name}-{label}.ram", keys, can, set_id)
            dumps.append((label, phase, t,
                          report.search_dump(p, hk, gk, set_id, PAGES)))
        res[name] = report.host_result(name, dumps, WINDOW, PAGES,
                                       protected)
    return res["stock"], res["ramcrypt-host"], hk, gk


@unit_test()
def test_demo_report_verdicts_on_known_dumps():
    with tempfile.TemporaryDirectory() as d:
        stock, prot, hk, gk = _run(d)
        # stock: aeskeyfind finds both halves of each key, raw search the
        # halves at the schedules' heads: 2 + 2 per key
        assert stock["host_key"] == 4 and stock["guest_key"] == 4, stock
        assert stock["canaries_working"] == PAGES == stock["canaries_idle"]
        assert prot["host_key"] == 0 and prot["guest_key"] == 0, prot
        assert prot["canaries_working"] == 5 and prot["canaries_idle"] == 0
        assert report.all_ok([stock, prot]), (stock["verdicts"],
                                              prot["verdicts"])
        text = report.render_text(stock, prot, "ramcryptctl status: ok")
        assert "verdict: the protection works" in text, text
        assert "FAIL" not in text, text
        row = next(ln for ln in text.splitlines()
                   if ln.startswith("host disk key found"))
        assert row.split()[-4:] == ["4", "times", "0", "times"], row
        assert "5 / 64" in text and "0 / 64" in text, text
        assert hk.hex() not in text and gk.hex() not in text
        png = report.render_png(stock, prot, Path(d) / "pages.png")
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        page = report.render_html(stock, prot, text, png)
        assert "pages.png" in page and "protection works" in page


@unit_test()
def test_demo_report_fails_on_a_leak():
    """The protected host's verdicts turn FAIL on planted host and guest
    key schedules, on more canaries than the window while working and on
    an idle canary: the report cannot call a leaking host protected."""
    with tempfile.TemporaryDirectory() as d:
        hk, gk = os.urandom(32), os.urandom(32)
        set_id = 5
        hosts = {}
        for name, protected, working, idle in (
                ("stock", False, range(PAGES), range(PAGES)),
                ("ramcrypt-host", True, range(WINDOW + 1), range(1))):
            dumps = []
            for label, phase, t, can in (("w", "working", 10, working),
                                         ("i", "idle", 30, idle)):
                p = make_dump(d, f"{name}-{label}.ram", (hk, gk), can,
                              set_id)
                dumps.append((label, phase, t, report.search_dump(
                    p, hk, gk, set_id, PAGES)))
            hosts[name] = report.host_result(name, dumps, WINDOW, PAGES,
                                             protected)
        v = hosts["ramcrypt-host"]["verdicts"]
        assert not v["host disk key"][0] and not v["guest key"][0], v
        assert not v["canaries working"][0], v
        assert not v["canaries idle"][0], v
        assert all(ok for ok, _ in hosts["stock"]["verdicts"].values())
        assert not report.all_ok(list(hosts.values()))
        text = report.render_text(hosts["stock"], hosts["ramcrypt-host"])
        assert "verdict: FAILED" in text and "FAIL ramcrypt-host" in text


@unit_test(timeout=300)
def test_demo_guest_secrets_are_what_the_report_searches():
    """The demo VM itself (tests/guest/mbguest "aeskey work=S", under QEMU
    TCG here): its RAM holds the AES key that memsearch.guest_aes_key()
    derives (aeskeyfind recovers both halves) and every canary page the
    report counts, and it goes idle when its work time is up. So the
    protected host's zeros in `make demo` mean the secrets were not in the
    host's RAM, not that the search looked for the wrong bytes."""
    import re
    import subprocess
    import time
    from harness.vm import Qmp
    d = REPO / "tests" / "guest" / "mbguest"
    subprocess.run(["make", "-s", "-C", str(d)], check=True)
    set_id = int.from_bytes(os.urandom(4), "little") | 1
    with tempfile.TemporaryDirectory() as t:
        qmp_path = Path(t) / "qmp.sock"
        proc = subprocess.Popen(
            ["qemu-system-x86_64", "-accel", "tcg", "-m", "32M",
             "-nodefaults", "-display", "none", "-no-reboot",
             "-monitor", "none", "-serial", "stdio", "-machine", "pc",
             "-qmp", f"unix:{qmp_path},server=on,wait=off",
             "-kernel", str(d / "bin" / "mbguest.elf"), "-append",
             f"canary={set_id:#x} loop aeskey work=2"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            lines = []
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                ln = proc.stdout.readline()
                if not ln:
                    break
                lines.append(ln.strip())
                if "idle after" in ln:
                    break
            out = "\n".join(lines)
            assert re.search(r"idle after 2 s in pass=\d+", out), out
            m = re.search(r"canary written set=0x[0-9a-f]+ start=0x[0-9a-f]+"
                          r" pages=(\d+)", out)
            assert m, out
            pages = int(m[1])
            dump = Path(t) / "guest.ram"
            qmp = Qmp(qmp_path)
            qmp.cmd("stop")
            qmp.cmd("pmemsave", val=0, size=32 << 20, filename=str(dump))
            qmp.close()
        finally:
            proc.kill()
            proc.wait()
        gk = memsearch.guest_aes_key(set_id)
        res = report.search_dump(dump, os.urandom(32), gk, set_id, pages)
        assert res["guest_key_detail"]["aeskeyfind"] == ["K1", "K2"], res
        assert res["guest_key"] >= 2 and res["host_key"] == 0, res
        assert res["canaries"] == pages > 6000, res
