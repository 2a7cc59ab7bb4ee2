"""The libvirt hook on the build machine (issue 17): `ramcryptctl
libvirt-hook` (ASan+UBSan) as libvirt runs it (argv DOMAIN OP SUBOP -, the
live domain XML on stdin) against ramcryptd (ASan+UBSan) on a private bus
and a fixture root, as in test_ramcryptd.py. What needs a real ramcryptfs
(the directory policy, the started check, the unit object) is
tests/vm/test_libvirt.py's; here: unmarked domains never touch the bus,
marked ones fail closed with one sentence naming what is wrong (the XML,
the marker's values, the RAM layout, the key, memory_backing_dir, the
caller), teardown never fails."""
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
        # session libvirt (hook as the user): not supported, said so
        os.chmod(b.tmp, 0o755)
        refused(b, domain_xml(), "qemu:///session", nobody=True)
        # the method itself is root's
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
