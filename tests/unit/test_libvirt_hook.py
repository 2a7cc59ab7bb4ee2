"""The libvirt hook on the build machine (issue 17): `ramcryptctl
libvirt-hook` (ASan+UBSan) as libvirt runs it (argv DOMAIN OP SUBOP -, the
live domain XML on stdin) against ramcryptd (ASan+UBSan) on a private bus
and a fixture root, as in test_ramcryptd.py. What needs a real ramcryptfs
(the directory policy, the started check, the unit object) is
tests/vm/test_libvirt.py's; here: unmarked domains never touch the bus,
marked ones fail closed with one sentence naming what is wrong (the XML,
the marker's values, the RAM layout, the key, memory_backing_dir, the
caller), teardown never fails. A session libvirt's hook (run as the user,
here nobody) reaches ramcryptd only for a directory below
/run/ramcryptfs/session/<its uid>/ that it owns all the way down, with
marker values within the session limits."""
import os
from pathlib import Path

from harness import registry
from harness.registry import unit_test

HERE = Path(__file__).resolve().parent
NS = "urn:ramcrypt-host:libvirt:1"


# test_ramcryptd.py's Bench and fixture builders
T = registry.test_helpers(HERE / "test_ramcryptd.py",
                          "rc_ramcryptd_helpers")


def marker_xml(attrs="window='1200K'"):
    """The RamCrypt marker with these attributes."""
    return f"<ramcrypt:ramcrypt xmlns:ramcrypt='{NS}' {attrs}/>"


def domain_xml(marker=marker_xml(), backing="<source type='file'/>"
               "<access mode='shared'/>", extra="", name="rcvm", dom_id=1):
    mb = f"<memoryBacking>{backing}</memoryBacking>" if backing is not None \
        else ""
    md = f"<metadata>{marker}</metadata>" if marker else ""
    return (f"<domain type='kvm' id='{dom_id}'><name>{name}</name>"
            "<uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>"
            "<memory unit='KiB'>32768</memory>"
            f"{md}{mb}{extra}<devices><emulator>/usr/bin/qemu-system-x86_64"
            "</emulator></devices></domain>")


def hook(b, xml, op="prepare", env=None, nobody=False, dom="rcvm"):
    r = T.subprocess.run(
        (T.NOBODY if nobody else []) +
        [str(b.ctl_bin), "libvirt-hook", dom, op, "begin", "-"],
        input=xml, capture_output=True, text=True, timeout=60,
        env=env or b.env)
    assert "Sanitizer" not in r.stderr and "runtime error" not in r.stderr, \
        r.stderr
    return r


def refused(b, xml, needle, op="prepare", **kw):
    r = hook(b, xml, op=op, **kw)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1 and needle in lines[0], \
        (needle, r.returncode, r.stderr, b.log()[-2000:])
    return lines[0]


NOBODY_UID = 65534
SESSION = f"/run/ramcryptfs/session/{NOBODY_UID}"


def session_cases(b):
    """The hook of nobody's session libvirtd: its qemu.conf (read by the
    hook as nobody, from $XDG_CONFIG_HOME) must put the RAM in nobody's own
    directory; every directory down to the domain's must be nobody's and
    no symlink; marker values within the session limits."""
    cfg = b.tmp / "xdg"
    env = dict(b.env, XDG_CONFIG_HOME=str(cfg), HOME="/nonexistent")

    def s_refused(xml, needle, op="prepare"):
        return refused(b, xml, needle, op=op, env=env, nobody=True)

    def conf(value):
        T.wfile(cfg / "libvirt/qemu.conf",
                f'memory_backing_dir = "{value}"\n' if value else "")

    # no qemu.conf: libvirt's session default, in the home directory
    conf(None)
    line = s_refused(domain_xml(), f"its RAM would be in {cfg}/libvirt/qemu/"
                     f"ram, not in your directory {SESSION}")
    assert f'set memory_backing_dir = "{SESSION}" in {cfg}/libvirt/qemu.conf' \
        in line, line
    # another user's directory, or a way out of one's own
    for other in ("/run/ramcryptfs/session/1234", f"{SESSION}/../1234",
                  f"{SESSION}x", "/etc", "/run/ramcryptfs"):
        conf(other)
        s_refused(domain_xml(), "not in your directory", op="start")
    conf(SESSION)
    T.wfile(cfg / "libvirt/qemu.conf",
            f'memory_backing_dir = {SESSION}\n')
    s_refused(domain_xml(), f"{cfg}/libvirt/qemu.conf: memory_backing_dir "
              "is not a quoted string")
    conf(SESSION)
    # the limits: the session's are the host's defaults (64M, 100 ms)
    s_refused(domain_xml(marker=marker_xml("window='128M'")),
              "window='131072K' is larger than this host allows domains of "
              "a session libvirt (65536K: libvirt_session_max_window in")
    s_refused(domain_xml(marker=marker_xml("max-plaintext-age='1s'")),
              "max-plaintext-age='1000ms' is longer than this host allows")
    s_refused(domain_xml(marker=marker_xml("cpus='1'")),
              "does not assign VM cores to libvirt domains yet")
    s_refused(domain_xml(marker=marker_xml("cache-confinement='required'")),
              "does not confine libvirt domains yet")
    # within the limits: the directory is checked next
    s_refused(domain_xml(), f"your directory {SESSION} does not exist: it "
              "is made when your user manager starts")
    top = b.root / SESSION.lstrip("/")
    dom = top / "libvirt/qemu/1-rcvm"
    dom.mkdir(parents=True)
    # owned by root (not made by the user-runtime-dir@ drop-in)
    for op in ("prepare", "start"):
        s_refused(domain_xml(), f"{SESSION} is owned by uid 0, not by you "
                  f"(uid {NOBODY_UID})", op=op)
    for d in (top, top / "libvirt", top / "libvirt/qemu", dom):
        os.chown(d, NOBODY_UID, NOBODY_UID)
    # nobody's own, all the way down: authorized; only the file system
    # (a plain directory here, ramcryptfs on a host) is left to refuse
    s_refused(domain_xml(), f"{SESSION} is not on ramcryptfs")
    s_refused(domain_xml(), f"{SESSION}/libvirt/qemu/1-rcvm is not on "
              "ramcryptfs", op="start")
    # a directory in it owned by someone else, or a symlink
    os.chown(dom, 1234, 1234)
    s_refused(domain_xml(), f"{SESSION}/libvirt/qemu/1-rcvm is not owned "
              "by you", op="start")
    dom.rmdir()
    (b.root / "elsewhere").mkdir()
    os.chown(b.root / "elsewhere", NOBODY_UID, NOBODY_UID)
    dom.symlink_to(b.root / "elsewhere")
    s_refused(domain_xml(), "1-rcvm: not a directory (a symlink?)",
              op="start")
    dom.unlink()
    # a looser window once the admin allows it
    b.config.write_text('{"libvirt_session_max_window": "256M", '
                        '"libvirt_session_max_plaintext_age_ms": 1000}')
    assert b.call("Reload") is None
    s_refused(domain_xml(marker=marker_xml("window='128M' "
                                           "max-plaintext-age='1s'")),
              "is not on ramcryptfs")
    b.config.write_text('{"libvirt_session_max_window": "1G3"}')
    r = b.call("Reload", check=False)
    assert r.returncode != 0 and "key 'libvirt_session_max_window': not " \
        "a window size" in r.stderr, r.stderr
    # teardown of a domain never enrolled; the system's method stays root's
    for op in ("stopped", "release"):
        r = hook(b, domain_xml(), op=op, env=env, nobody=True)
        assert r.returncode == 0 and not r.stderr, (op, r.stderr)
    # a session hook without the user's qemu.conf readable
    os.chmod(cfg / "libvirt", 0o700)
    s_refused(domain_xml(), f"{cfg}/libvirt/qemu.conf cannot be read: "
              "Permission denied")
    os.chmod(cfg / "libvirt", 0o755)
    assert "Refusing to start libvirt domain rcvm of the session libvirt " \
        f"of uid {NOBODY_UID}: window=" in b.log(), b.log()[-3000:]


@unit_test()
def test_ramcryptctl_libvirt_hook():
    with T.Bench() as b:
        nobus = dict(b.env, DBUS_SYSTEM_BUS_ADDRESS="unix:path=/nonexistent")
        # an unmarked domain: exit 0, silent, the bus never asked
        for op in ("prepare", "start", "started", "stopped", "release"):
            r = hook(b, domain_xml(marker=""), op=op, env=nobus)
            assert r.returncode == 0 and not r.stderr, (op, r.stderr)
        # a marked one with ramcryptd unreachable: refused (fail closed),
        # but its teardown never fails
        refused(b, domain_xml(), "ramcryptd cannot be reached", env=nobus)
        for op in ("stopped", "release"):
            r = hook(b, domain_xml(), op=op, env=nobus)
            assert r.returncode == 0, r.stderr
        r = T.subprocess.run([str(b.ctl_bin), "libvirt-hook", "x"],
                             capture_output=True, text=True)
        assert r.returncode == 2 and "four arguments" in r.stderr, r.stderr

        b.start()
        os.chmod(b.tmp, 0o755)
        # session libvirt (the hook as the user)
        session_cases(b)
        # the system's method itself is root's
        r = b.call("LibvirtHook", "ssss", "rcvm", "prepare", "begin",
                   domain_xml(), nobody=True, check=False)
        assert r.returncode != 0 and "Access denied" in r.stderr, r.stderr

        # the XML and the marker
        refused(b, "<domain><name>rcvm</name>" + f"<x xmlns:r='{NS}'/>",
                "not well-formed")
        refused(b, "<!DOCTYPE domain [<!ENTITY x 'y'>]>" + domain_xml(),
                "DOCTYPE")
        refused(b, domain_xml(name="other"), "the XML is of domain 'other'")
        refused(b, domain_xml(marker=marker_xml("windwo='64M'")),
                "unknown attribute 'windwo'")
        refused(b, domain_xml(marker=marker_xml("window='banana'")),
                "<ramcrypt:ramcrypt window='banana'>:")
        refused(b, domain_xml(marker=marker_xml("max-plaintext-age='2h'")),
                "out of range (1ms to 1h)")
        refused(b, domain_xml(marker=f"<r:vault xmlns:r='{NS}'/>"),
                "unknown element <vault>")
        refused(b, domain_xml(marker=marker_xml("cpus='2'")),
                "does not assign VM cores to libvirt domains yet")
        refused(b, domain_xml(marker=marker_xml("cache-confinement='required'")),
                "does not confine libvirt domains yet")
        # the RAM layout: every way guest RAM stays plaintext
        refused(b, domain_xml(backing=None), "its RAM is anonymous memory")
        refused(b, domain_xml(backing="<source type='file'/>"),
                "mapped private")
        refused(b, domain_xml(backing="<source type='memfd'/>"
                              "<access mode='shared'/>"),
                "<source type='memfd'/> is plaintext RAM")
        refused(b, domain_xml(backing="<hugepages/><source type='file'/>"
                              "<access mode='shared'/>"), "hugetlbfs")
        refused(b, domain_xml(extra="<cpu><numa><cell id='0' cpus='0' "
                              "memory='32' unit='MiB' memAccess='private'/>"
                              "</numa></cpu>"), "memAccess='private'")
        # every NUMA cell shared stands for the domain-wide <access>
        numa = ("<cpu><numa><cell id='0' cpus='0' memory='32' unit='MiB' "
                "memAccess='shared'/></numa></cpu>")
        r = refused(b, domain_xml(backing="<source type='file'/>",
                                  extra=numa), "memory_backing_dir")
        refused(b, domain_xml().replace(
            "</devices>", "<memory model='nvdimm'><source><path>/x</path>"
            "</source></memory></devices>"), "<memory model='nvdimm'>")
        refused(b, domain_xml().replace("32768", "32x"), "is not a size")
        # VFIO pins all guest RAM: a host device, or a hostdev interface
        refused(b, domain_xml().replace(
            "</devices>", "<hostdev mode='subsystem' type='pci' managed="
            "'yes'><source><address domain='0' bus='1' slot='0' function="
            "'0'/></source></hostdev></devices>"),
            "<hostdev> assigns a host device, and VFIO pins all guest RAM")
        refused(b, domain_xml().replace(
            "</devices>", "<interface type='hostdev'><source><address "
            "type='pci' domain='0' bus='2' slot='0' function='0'/></source>"
            "</interface></devices>"), "<interface> assigns a host device")
        # QEMU options of its own could add an anonymous RAM backend
        refused(b, domain_xml(extra="<qemu:commandline xmlns:qemu='http://"
                              "libvirt.org/schemas/domain/qemu/1.0'><qemu:arg"
                              " value='-object'/></qemu:commandline>"),
                "<qemu:commandline> passes QEMU options")
        refused(b, domain_xml(name="a/b"), "control character", dom="a/b")

        # memory_backing_dir: libvirt's default, then a plain directory
        line = refused(b, domain_xml(), "/var/lib/libvirt/qemu/ram")
        assert "set memory_backing_dir to a ramcryptfs mount" in line, line
        # as libvirt's virconf: the first assignment counts
        T.wfile(b.root / "etc/libvirt/qemu.conf",
                "# memory_backing_dir = \"/nowhere\"\n"
                "memory_backing_dir = \"/run/ramcryptfs\"\n"
                "memory_backing_dir = \"/elsewhere\"\n")
        (b.root / "run/ramcryptfs/libvirt/qemu").mkdir(parents=True)
        refused(b, domain_xml(), "/run/ramcryptfs/libvirt/qemu, which is "
                "not on ramcryptfs")
        refused(b, domain_xml(), "not on ramcryptfs", op="start")
        T.wfile(b.root / "etc/libvirt/qemu.conf",
                "memory_backing_dir = /run/ramcryptfs\n")
        refused(b, domain_xml(), "memory_backing_dir is not a quoted string")
        # no key: refused before anything else of the host
        T.wfile(b.root / "etc/libvirt/qemu.conf", "")
        T.wfile(b.root / "sys/kernel/tresor/key_loaded", "0\n")
        refused(b, domain_xml(), "no key is loaded")
        refused(b, domain_xml(), "not supported", op="migrate")
        # not started at all: the started backstop refuses
        T.wfile(b.root / "sys/kernel/tresor/key_loaded", "1\n")
        refused(b, domain_xml(), "was not enrolled at its start",
                op="started")
        # teardown of a domain never enrolled, restore/attach: fine
        for op in ("stopped", "release", "restore", "attach"):
            r = hook(b, domain_xml(), op=op)
            assert r.returncode == 0 and not r.stderr, (op, r.stderr)
        # unmarked through the daemon: nothing to do, nothing listed
        assert b.call("LibvirtHook", "ssss", "rcvm", "start", "begin",
                      domain_xml(marker="")) is None
        assert b.call("ListUnits") == [[]], b.call("ListUnits")
        # the hook script without ramcryptctl (ramcrypt-host removed, its
        # configuration file kept): marked domains refused, others alone
        assert not Path("/usr/bin/ramcryptctl").exists()
        script = str(T.REPO / "etc/libvirt/hooks/qemu.d/50-ramcrypt")
        for xml, op, rc, needle in (
                (domain_xml(), "prepare", 1, "ramcrypt-host is not installed"),
                (domain_xml(), "release", 0, ""),
                (domain_xml(marker=""), "prepare", 0, "")):
            r = T.subprocess.run([script, "rcvm", op, "begin", "-"],
                                 input=xml, capture_output=True, text=True)
            assert r.returncode == rc and needle in r.stderr and \
                (needle or not r.stderr), (op, r.returncode, r.stderr)
        log = b.log()
        assert "Refusing to start libvirt domain rcvm: its RAM is " \
            "anonymous memory" in log, log[-3000:]
