"""The demo's report: what a cold-boot attacker finds in RAM dumps of a
stock host and of a ramcrypt-host, the verdicts, a side-by-side text
report, an HTML page and a PNG of plaintext guest pages over time.

Input per host: the dumps (path, label, phase "working" or "idle", time in
seconds since the VM started) and the secrets the attacker looks for: the
host's disk volume key (AES-128-XTS, 32 bytes), the guest's own AES key
(32 bytes) and the guest's canary set id with its page count. The search
is tests/harness/memsearch.py's (aeskeyfind, raw K1/K2 and reversed
halves, whole canary pages), the same the security tests use.
"""
import html
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from harness import memsearch  # noqa: E402


def search_dump(path, host_key, guest_key, set_id, pages):
    """Everything an attacker finds in one dump: {"host_key": n,
    "guest_key": n, "canaries": n, "aeskeyfind": [...]}; n counts
    aeskeyfind schedules of the key's halves plus raw copies."""
    schedules = memsearch.aeskeyfind(path)
    hk = memsearch.search_key(path, host_key, schedules)
    gk = memsearch.search_key(path, guest_key, schedules)
    return {
        "host_key": len(hk["aeskeyfind"]) + sum(hk["raw"].values()),
        "host_key_detail": hk,
        "guest_key": len(gk["aeskeyfind"]) + sum(gk["raw"].values()),
        "guest_key_detail": gk,
        "canaries": len(memsearch.find_canaries(path, set_id, pages)),
    }


def host_result(name, dumps, window_pages, pages, protected):
    """dumps: [(label, phase, secs, search_dump() result)]. The figures
    and verdicts of one host."""
    working = [d[3]["canaries"] for d in dumps if d[1] == "working"]
    idle = [d[3]["canaries"] for d in dumps if d[1] == "idle"]
    r = {
        "name": name, "protected": protected, "pages": pages,
        "window_pages": window_pages,
        "host_key": max((d[3]["host_key"] for d in dumps), default=0),
        "guest_key": max((d[3]["guest_key"] for d in dumps), default=0),
        "canaries_working": max(working, default=0),
        "canaries_idle": max(idle, default=0),
        "timeline": [(d[2], d[3]["canaries"], d[1]) for d in dumps],
    }
    r["verdicts"] = verdicts(r)
    return r


def verdicts(r):
    """{check: (ok, text)}: what the demo claims for this host. Protected:
    no key of either, canaries at most the window while working, none
    idle. Stock (the baseline, which proves the search sees a leak): both
    keys and the canaries found."""
    v = {}
    if r["protected"]:
        w = r["window_pages"]
        v["host disk key"] = (r["host_key"] == 0,
                              f"found {r['host_key']} times (want 0)")
        v["guest key"] = (r["guest_key"] == 0,
                          f"found {r['guest_key']} times (want 0)")
        v["canaries working"] = (
            r["canaries_working"] <= w,
            f"{r['canaries_working']} of {r['pages']} pages "
            f"(want <= window {w})")
        v["canaries idle"] = (r["canaries_idle"] == 0,
                              f"{r['canaries_idle']} pages (want 0)")
    else:
        v["host disk key"] = (r["host_key"] > 0,
                              f"found {r['host_key']} times (want > 0)")
        v["guest key"] = (r["guest_key"] > 0,
                          f"found {r['guest_key']} times (want > 0)")
        v["canaries working"] = (
            r["canaries_working"] > 0,
            f"{r['canaries_working']} of {r['pages']} pages (want > 0)")
        v["canaries idle"] = (r["canaries_idle"] > 0,
                              f"{r['canaries_idle']} pages (want > 0)")
    return v


def all_ok(results):
    return all(ok for r in results for ok, _ in r["verdicts"].values())


ROWS = (("host disk key found", "host_key"),
        ("guest AES key found", "guest_key"),
        ("guest canary pages, working", "canaries_working"),
        ("guest canary pages, idle", "canaries_idle"))


def render_text(stock, prot, extra=""):
    """The side-by-side report; extra: ramcryptctl/busctl output."""
    w = 30
    lines = [f"{'':{w}} {'stock host':>18} {'ramcrypt-host':>18}",
             f"{'':{w}} {'-' * 18:>18} {'-' * 18:>18}"]
    for label, key in ROWS:
        a, b = stock[key], prot[key]
        if key.startswith("canaries"):
            a, b = f"{a} / {stock['pages']}", f"{b} / {prot['pages']}"
        else:
            a, b = f"{a} times", f"{b} times"
        lines.append(f"{label:{w}} {a:>18} {b:>18}")
    lines.append(f"{'plaintext window (pages)':{w}} {'-':>18} "
                 f"{prot['window_pages']:>18}")
    lines.append("")
    for r in (stock, prot):
        for check, (ok, text) in r["verdicts"].items():
            lines.append(f"{'PASS' if ok else 'FAIL'} {r['name']}: "
                         f"{check}: {text}")
    lines.append("")
    lines.append("verdict: " + (
        "the protection works: the attacker finds the secrets on the stock "
        "host and none on the ramcrypt-host (beyond the window)"
        if all_ok([stock, prot]) else
        "FAILED: a figure is not what the protection promises (see FAIL "
        "lines)"))
    if extra:
        lines += ["", extra.rstrip()]
    return "\n".join(lines) + "\n"


def render_png(stock, prot, path, idle_at=None):
    """Plaintext guest pages in RAM over time for both hosts; idle_at: when
    the VM stops working (a vertical line)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for r, style in ((stock, "o-"), (prot, "s-")):
        tl = sorted(r["timeline"])
        ax.plot([t for t, _, _ in tl], [n for _, n, _ in tl], style,
                label=r["name"])
    ax.axhline(prot["window_pages"], linestyle="--", color="grey",
               label=f"window ({prot['window_pages']} pages)")
    ax.axhline(stock["pages"], linestyle=":", color="black",
               label=f"all guest pages ({stock['pages']})")
    if idle_at is not None:
        ax.axvline(idle_at, linestyle="-.", color="green",
                   label=f"the VM goes idle ({idle_at:.0f} s)")
    ax.set_xlabel("seconds since the VM wrote its secrets (RAM dumps while "
                  "it works, then while it idles)")
    ax.set_ylabel("guest canary pages in plaintext")
    ax.set_yscale("symlog", linthresh=1)
    ax.set_ylim(0, max(stock["pages"], prot["pages"], 1) * 3)
    ax.set_title("Guest pages a cold-boot attacker reads from host RAM")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def render_html(stock, prot, text, png=None):
    img = f'<img src="{html.escape(Path(png).name)}" alt="plot">' \
        if png else ""
    return ("<!doctype html><meta charset=utf-8><title>ramcrypt-host demo"
            "</title><h1>ramcrypt-host demo: a simulated cold-boot attack"
            f"</h1><pre>{html.escape(text)}</pre>{img}\n")
