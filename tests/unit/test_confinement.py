"""ramcryptd's CacheConfinement (issue 19, item 4) on fixture roots in the
kernel's file formats (Documentation/x86/resctrl.rst of Linux 6.1:
info/L3/{cbm_mask,min_cbm_bits,shareable_bits,num_closids,bit_usage},
<group>/{schemata,mode,cpus_list}; /sys/devices/system/cpu topology,
online, cache/index*/{level,id,size,shared_cpu_list}): the exclusive
resctrl group of a unit's VM CPUs and crypto CPU, the default group's ways
given back at release, the window capped to the partition with
CacheConfinement=required, SMT siblings offline, pm_qos_resume_latency_us,
the vfio-pci WBINVD warning; refusals: no CAT, resctrl not mounted, cdp,
an exclusive group that leaves no ways, a CPU in another group, no CLOSID,
an SMT sibling that is busy. The daemon runs under ASan+UBSan against a
private dbus-daemon and the fake systemd of test_ramcryptd.py."""
import json
import os
from pathlib import Path

from harness import registry
from harness.registry import unit_test

HERE = Path(__file__).resolve().parent


# test_ramcryptd.py's Bench and fixture builders
T = registry.test_helpers(HERE / "test_ramcryptd.py",
                          "rc_ramcryptd_helpers")
Bench, wfile, setup_roles, enroll_refused = (T.Bench, T.wfile, T.setup_roles,
                                             T.enroll_refused)


def add_cat(root, ncpus=4, ways=12, l3_kib=12288, min_bits=1,
            shareable="0", closids=16, default=None, mounted=True,
            cdp=False):
    """A CPU with L3 CAT: cat_l3 in cpuinfo flags, one L3 of l3_kib KiB
    (cache id 0) shared by all CPUs, resctrl mounted with ways ways."""
    flags = "fpu vme de pse msr aes avx2 rdt_a cat_l3 cdp_l3 cqm_llc"
    wfile(root / "proc/cpuinfo", "".join(
        f"processor\t: {i}\nvendor_id\t: GenuineIntel\nflags\t\t: {flags}\n"
        "\n" for i in range(ncpus)))
    cpu = root / "sys/devices/system/cpu"
    for i in range(ncpus):
        for idx, (lvl, typ, size, shared, cid) in enumerate((
                (1, "Data", "48K", f"{i}", i), (1, "Instruction", "32K",
                                                f"{i}", i),
                (2, "Unified", "1280K", f"{i}", i),
                (3, "Unified", f"{l3_kib}K", f"0-{ncpus - 1}", 0))):
            d = cpu / f"cpu{i}/cache/index{idx}"
            for k, v in {"level": lvl, "type": typ, "size": size,
                         "shared_cpu_list": shared, "id": cid,
                         "ways_of_associativity": ways}.items():
                wfile(d / k, f"{v}\n")
    if not mounted:
        return
    full = (1 << ways) - 1
    rs = root / "sys/fs/resctrl"
    res = "L3CODE" if cdp else "L3"
    wfile(rs / f"info/{res}/cbm_mask", f"{full:x}\n")
    wfile(rs / f"info/{res}/min_cbm_bits", f"{min_bits}\n")
    wfile(rs / f"info/{res}/shareable_bits", f"{shareable}\n")
    wfile(rs / f"info/{res}/num_closids", f"{closids}\n")
    wfile(rs / f"info/{res}/bit_usage", "0=" + "S" * ways + "\n")
    wfile(rs / "info/MB/min_bandwidth", "10\n")
    wfile(rs / "info/last_cmd_status", "ok\n")
    # the name right-aligned to the longest one (rdtgroup_schemata_show)
    w = (ways + 3) // 4
    dflt = full if default is None else default
    wfile(rs / "schemata", f"    L3:0={dflt:0{w}x}\n    MB:0=100\n")
    wfile(rs / "cpus_list", f"0-{ncpus - 1}\n")
    wfile(rs / "mode", "shareable\n")
    wfile(rs / "tasks", "1\n")


def add_group(root, name, l3, mode="shareable", cpus="", ways=12):
    g = root / "sys/fs/resctrl" / name
    w = (ways + 3) // 4
    wfile(g / "schemata", f"    L3:0={l3:0{w}x}\n    MB:0=100\n")
    wfile(g / "mode", mode + "\n")
    wfile(g / "cpus_list", cpus + "\n")
    wfile(g / "cpus", "0\n")
    wfile(g / "tasks", "")


def set_marker(b, unit, marker):
    wfile(Path(b.units[unit]["FragmentPath"]), "[Unit]\nDescription=t\n"
          "[Service]\nExecStart=/usr/bin/true\n[X-RamCrypt]\nRamCrypt=yes\n"
          + marker + "\n")


def rs(b, rel):
    """A resctrl file's text; of a schemata file its L3 line."""
    t = (b.root / "sys/fs/resctrl" / rel).read_text().strip()
    if rel.endswith("schemata"):
        return [ln.strip() for ln in t.splitlines() if "L3:" in ln][0]
    return t


def mgr_conf(b):
    return b.mgr("CacheConfinement"), b.mgr("CacheConfinementReason")


@unit_test()
def test_confinement_resctrl_group():
    """auto with a window that fits: an exclusive group ramcrypt-<unit> with
    the VM CPU and the crypto CPU, its ways taken from the default group,
    pm_qos n/a on both, Manager active; release gives everything back. A
    window larger than the free ways: auto enrolls unconfined with the
    reason, required caps WindowPages to the partition. A second unit whose
    crypto CPU is in the first unit's group is refused when required. A
    daemon restart takes the group over."""
    with Bench() as b:
        add_cat(b.root)
        b.start()
        st, why = mgr_conf(b)
        assert st == "available", (st, why)
        assert "L3 CAT through resctrl: 12 ways (cbm_mask fff), " \
            "min_cbm_bits 1, shareable_bits 0, 16 CLOSIDs" in why, why
        setup_roles(b)
        qos = b.root / "sys/devices/system/cpu/cpu2/power/" \
            "pm_qos_resume_latency_us"
        assert qos.read_text().strip() == "n/a"
        qos.write_text("0\n")  # someone lifted the limit after SetupHost

        r = b.ctl("enroll", "vm.service")   # Window=1M, auto
        assert r.returncode == 0, r.stderr + b.log()[-3000:]
        assert rs(b, "ramcrypt-vm.service/schemata") == "L3:0=800"
        assert rs(b, "ramcrypt-vm.service/mode") == "exclusive"
        assert rs(b, "ramcrypt-vm.service/cpus_list") == "1-2"
        assert rs(b, "schemata") == "L3:0=7ff"
        assert qos.read_text().strip() == "n/a"
        st, why = mgr_conf(b)
        assert st == "active", (st, why)
        assert "vm.service: exclusive resctrl group ramcrypt-vm.service: " \
            "1 L3 ways (800) of cache 0 (1024 KiB) for CPUs 1-2; SMT " \
            "siblings offline: none; no deep C-states" in why, why
        assert b.uprop("vm.service", "CacheConfinement") == "auto"
        assert b.uprop("vm.service", "WindowPages") == 256
        r = b.ctl("check")
        assert "Cache confinement: active (vm.service: exclusive" in \
            r.stdout, r.stdout

        # a restart takes the group over; release removes it
        b.stop()
        b.start()
        st, why = mgr_conf(b)
        assert st == "active" and "ramcrypt-vm.service" in why, (st, why)
        assert b.ctl("release", "vm.service").returncode == 0
        assert not (b.root / "sys/fs/resctrl/ramcrypt-vm.service").exists()
        assert rs(b, "schemata") == "L3:0=fff"
        assert mgr_conf(b)[0] == "available"

        # 64 MiB window (config default), 12 x 1 MiB ways: auto is not
        # confined and says why
        r = b.ctl("enroll", "vm2.service")
        assert r.returncode == 0, r.stderr
        assert b.uprop("vm2.service", "WindowPages") == 16384
        st, why = mgr_conf(b)
        assert st == "available" and "vm2.service: not confined: not " \
            "enough L3 ways: the window of 65536 KiB needs 64 ways of " \
            "cache 0 (1024 KiB each), 11 are free" in why, (st, why)
        assert not (b.root / "sys/fs/resctrl/ramcrypt-vm2.service").exists()
        assert rs(b, "schemata") == "L3:0=fff"
        assert b.ctl("release", "vm2.service").returncode == 0

        # required: the window is capped to the 11 ways it can have
        set_marker(b, "vm3.service", "CacheConfinement=required")
        r = b.ctl("enroll", "vm3.service")
        assert r.returncode == 0, r.stderr + b.log()[-3000:]
        assert b.uprop("vm3.service", "CacheConfinement") == "required"
        assert b.uprop("vm3.service", "WindowPages") == 11 * 256
        pol = b.root / "sys/kernel/config/ramcrypt/policies/vm3.service"
        assert (pol / "window_pages").read_text().strip() == "2816"
        assert rs(b, "ramcrypt-vm3.service/schemata") == "L3:0=ffe"
        assert rs(b, "schemata") == "L3:0=001"
        assert "window capped from 16384 to 2816 pages" in b.log()
        # the crypto CPU is in vm3's group: required refuses, auto enrolls
        set_marker(b, "vm.service", "Window=1M\nCacheConfinement=required")
        err = enroll_refused(b, "vm.service")
        assert "cache confinement required but unavailable: CPU 1 is " \
            "already in the exclusive group ramcrypt-vm3.service of " \
            "another unit" in err, err
        assert b.mgr("FreeVMCPUs") == [3], b.mgr("FreeVMCPUs")
        assert not (b.root / "sys/kernel/config/ramcrypt/policies/"
                    "vm.service").exists()
        assert b.ctl("release", "vm3.service").returncode == 0
        assert rs(b, "schemata") == "L3:0=fff"
        b.stop()


@unit_test()
def test_confinement_foreign_groups():
    """Other resctrl groups: the unit's ways avoid an exclusive group (and
    bits bit_usage marks E); an exclusive group that leaves no way refuses
    a required unit (not enough ways); a CPU in another group; no free
    CLOSID; shareable_bits are never taken."""
    with Bench() as b:
        add_cat(b.root, default=0x0ff, shareable="1")
        add_group(b.root, "rt", 0xf00, mode="exclusive", cpus="3")
        wfile(b.root / "sys/fs/resctrl/info/L3/bit_usage",
              "0=EEEESSSSSSSX\n")
        b.start()
        setup_roles(b)
        r = b.ctl("enroll", "vm.service")
        assert r.returncode == 0, r.stderr
        # the highest free way below rt's, the default group keeps 07f
        assert rs(b, "ramcrypt-vm.service/schemata") == "L3:0=080"
        assert rs(b, "schemata") == "L3:0=07f"
        assert rs(b, "rt/schemata") == "L3:0=f00"
        assert b.ctl("release", "vm.service").returncode == 0
        assert rs(b, "schemata") == "L3:0=0ff"

        # the rt group takes all but the default group's last way
        add_group(b.root, "rt", 0xffe, mode="exclusive", cpus="")
        wfile(b.root / "sys/fs/resctrl/schemata", "    L3:0=001\n")
        wfile(b.root / "sys/fs/resctrl/info/L3/bit_usage",
              "0=EEEEEEEEEEEX\n")
        set_marker(b, "vm.service", "Window=1M\nCacheConfinement=required")
        err = enroll_refused(b, "vm.service")
        assert "cache confinement required but unavailable: not enough L3 "\
            "ways in cache 0: 0 free of 12 outside exclusive groups and " \
            "shareable_bits 1, 1 needed (min_cbm_bits 1)" in err, err
        assert not (b.root / "sys/fs/resctrl/ramcrypt-vm.service").exists()
        assert b.mgr("FreeVMCPUs") == [2, 3]

        # a shareable group that holds the crypto CPU
        add_group(b.root, "rt", 0x0f0, mode="shareable", cpus="1")
        wfile(b.root / "sys/fs/resctrl/schemata", "    L3:0=fff\n")
        wfile(b.root / "sys/fs/resctrl/info/L3/bit_usage",
              "0=SSSSSSSSSSSX\n")
        err = enroll_refused(b, "vm.service")
        assert "CPU 1 is already in resctrl group rt" in err, err

        # every CLOSID in use
        add_group(b.root, "rt", 0x0f0, mode="shareable", cpus="")
        wfile(b.root / "sys/fs/resctrl/info/L3/num_closids", "2\n")
        err = enroll_refused(b, "vm.service")
        assert "no free resctrl CLOSID: 2 groups use all 2" in err, err
        wfile(b.root / "sys/fs/resctrl/info/L3/num_closids", "16\n")
        # now it fits: above rt's shareable ways is not allowed either
        # (exclusive means no overlap with any group): 0x800
        r = b.ctl("enroll", "vm.service")
        assert r.returncode == 0, r.stderr + b.log()[-2000:]
        assert rs(b, "ramcrypt-vm.service/schemata") == "L3:0=800"
        assert b.ctl("release", "vm.service").returncode == 0
        b.stop()


@unit_test()
def test_confinement_host_refusals():
    """A host that cannot confine: no cat_l3 (QEMU's CPUs have none), CAT
    without resctrl mounted, resctrl mounted with cdp, L2 CAT too. required
    is refused with the reason, auto enrolls and the Manager reports none
    with the reason."""
    with Bench() as b:
        b.start()
        setup_roles(b)
        st, why = mgr_conf(b)
        assert st == "none" and why == "no L3 CAT on this CPU (no cat_l3 " \
            "in /proc/cpuinfo flags, CPUID 0x10)", (st, why)
        set_marker(b, "vm3.service", "CacheConfinement=required")
        err = enroll_refused(b, "vm3.service")
        assert err.endswith("cache confinement required but unavailable: "
                            "no L3 CAT on this CPU (no cat_l3 in "
                            "/proc/cpuinfo flags, CPUID 0x10)"), err
        r = b.ctl("enroll", "vm3.service")
        assert r.returncode == 1 and r.stderr.startswith(
            "Failed to enroll vm3.service: ") and "no L3 CAT" in r.stderr, \
            r.stderr
        r = b.ctl("enroll", "vm.service")   # auto
        assert r.returncode == 0, r.stderr
        assert b.uprop("vm.service", "CacheConfinement") == "auto"
        assert mgr_conf(b)[0] == "none"
        assert "vm.service: cache confinement none: no L3 CAT" in b.log()
        assert b.ctl("release", "vm.service").returncode == 0

        add_cat(b.root, mounted=False)
        st, why = mgr_conf(b)
        assert st == "none" and "resctrl is not mounted on /sys/fs/resctrl"\
            in why, why
        err = enroll_refused(b, "vm3.service")
        assert "resctrl is not mounted" in err, err

        add_cat(b.root, cdp=True)
        err = enroll_refused(b, "vm3.service")
        assert "resctrl is mounted with cdp" in err, err
        os.rename(b.root / "sys/fs/resctrl/info/L3CODE",
                  b.root / "sys/fs/resctrl/info/L3")
        wfile(b.root / "sys/fs/resctrl/info/L2/cbm_mask", "ff\n")
        err = enroll_refused(b, "vm3.service")
        assert "resctrl also allocates L2" in err, err
        assert b.call("ListUnits") == [[]]
        b.stop()


@unit_test()
def test_confinement_smt_and_wbinvd():
    """SMT: the crypto CPU's sibling goes offline for the unit and comes
    back at release; a sibling that is a housekeeping CPU is busy: required
    refused, auto not confined. A device bound to vfio-pci fails the
    wbinvd-sources host check and is named in the confinement reason."""
    with Bench(ncpus=8, smt=True) as b:
        add_cat(b.root, ncpus=8)
        vfio = b.root / "sys/bus/pci/drivers/vfio-pci"
        vfio.mkdir(parents=True)
        os.symlink("../../../../devices/pci0000:00/0000:00:03.0",
                   vfio / "0000:00:03.0")
        wfile(vfio / "new_id", "")
        b.start()
        setup_roles(b)
        ck = {c[0]: (c[1], c[2]) for c in b.mgr("HostChecks")}
        ok, detail = ck["wbinvd-sources"]
        assert ok is False and "1 device bound to vfio-pci (0000:00:03.0)" \
            in detail, detail
        r = b.ctl("check")
        assert r.returncode == 1 and "wbinvd-sources" in r.stdout, r.stdout
        r = b.ctl("enroll", "vm.service")
        assert r.returncode == 0, r.stderr + b.log()[-3000:]
        assert b.uprop("vm.service", "CPUs") == [2, 6]
        assert b.uprop("vm.service", "CryptoCPU") == 1
        cpu5 = b.root / "sys/devices/system/cpu/cpu5/online"
        assert cpu5.read_text().strip() == "0"
        assert rs(b, "ramcrypt-vm.service/cpus_list") == "1-2,6"
        st, why = mgr_conf(b)
        assert st == "active" and "SMT siblings offline: 5" in why and \
            "warning: 1 device bound to vfio-pci (0000:00:03.0)" in why, why
        assert "cache confinement can be defeated" in b.log()
        assert b.ctl("release", "vm.service").returncode == 0
        assert cpu5.read_text().strip() == "1"
        b.stop()

    roles = {"housekeeping_cpus": "0,4,5", "crypto_cpus": "1",
             "vm_cpus": "2-3,6-7", "verify_interval_ms": 200}
    with Bench(config=roles, ncpus=8, smt=True) as b:
        add_cat(b.root, ncpus=8)
        b.start()
        setup_roles(b)
        set_marker(b, "vm.service", "Window=1M\nCacheConfinement=required")
        err = enroll_refused(b, "vm.service")
        assert "cache confinement required but unavailable: SMT sibling 5 "\
            "of CPU 1 is busy: it is a housekeeping CPU" in err, err
        assert (b.root / "sys/devices/system/cpu/cpu5/online").read_text()\
            .strip() == "1"
        set_marker(b, "vm.service", "Window=1M")
        r = b.ctl("enroll", "vm.service")
        assert r.returncode == 0, r.stderr
        st, why = mgr_conf(b)
        assert st == "available" and "vm.service: not confined: SMT " \
            "sibling 5 of CPU 1 is busy" in why, why
        assert not (b.root / "sys/fs/resctrl/ramcrypt-vm.service").exists()
        assert json.loads(b.ctl("check", "--json").stdout)
        b.stop()
