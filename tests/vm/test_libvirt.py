"""libvirt domains on ramcryptfs (issue 17; docs/libvirt-design.md §5).

The test host of tests/vm/test_host_e2e.py (a debootstrapped Debian 12
root, systemd as PID 1, the key unlocked by tresor-unlock from
/etc/tresortab, this project installed by `make install`) with Debian's
libvirt added (a cached debroot.layer()), libvirtd's system daemon
running, and qemu.conf's memory_backing_dir on a ramcryptfs mounted at
RAM_DIR before libvirtd starts (libvirtd makes <dir>/libvirt/qemu at its
start). The root has no apparmor package; qemu.conf names no security
driver but "none", so libvirt runs with its DAC driver only (the Debian
kernel's AppArmor LSM is active and libvirt-daemon-system ships
TEMPLATE.qemu, so libvirt would otherwise pick AppArmor and fail for want
of apparmor_parser).

The domain is tests/guest/mbguest as a libvirt `<kernel>` in canary mode
(32 MiB, 1 vCPU, type kvm on the host's nested KVM, RAM as a shared file
in the domain's memory directory, serial to a file, no disk, network, USB
or balloon). One boot runs the steps in order, each a function:
start_domain, check_ram_file, wait_serial_passes, check_dump,
destroy_domain; then marked domains of the system libvirtd
(marked_domain), of a user's session libvirtd (session_domain) and the
refusals (marked_domains_refused).
"""
import json
import re
import shlex
import time
from pathlib import Path

from harness import memsearch, registry, slowness
from harness.debroot import DebianSystem
from harness.registry import vm_test


_e2e = registry.test_helpers(Path(__file__).with_name("test_host_e2e.py"),
                              "rc_vm_test_host_e2e_shared")
E2E_PKGS, GUEST_MB, GUEST_PAGES_MIN = \
    _e2e.E2E_PKGS, _e2e.GUEST_MB, _e2e.GUEST_PAGES_MIN
MBGUEST, MODULE_WINDOW, QEMU = _e2e.MBGUEST, _e2e.MODULE_WINDOW, _e2e.QEMU
E2EHost, boot_host, check_dmesg = _e2e.E2EHost, _e2e.boot_host, \
    _e2e.check_dmesg
check_passes = _e2e.check_passes
dump_canaries, kv, load_kvm = _e2e.dump_canaries, _e2e.kv, _e2e.load_kvm
regions, write_guest_file = _e2e.regions, _e2e.write_guest_file

LIBVIRT_PKGS = E2E_PKGS + ["libvirt-daemon-system", "libvirt-clients"]
LIBVIRT_LAYER_VERSION = "1"
ROOT_MB = 1800          # the e2e root (1536) + libvirt's ~67 MB and room
RAM_DIR = "/run/ramcryptfs"
MOUNT_UNIT = "run-ramcryptfs.mount"   # systemd names it after RAM_DIR
QEMU_CONF = "/etc/libvirt/qemu.conf"
DOMAIN = "rcvm"
SERIAL = "/var/log/{name}.serial"     # a domain's serial log
QEMU_USER = "libvirt-qemu"
LIBVIRTD_DROPIN = "/systemd/system/libvirtd.service.d/ramcrypt.conf"
# kvm_amd at boot (TCG's -cpu max offers SVM only), so that libvirtd's
# first capabilities probe already sees a usable /dev/kvm (a probe without
# it is redone once /dev/kvm appears)
KVM_MODULES = "kvm_amd\n"


class LibvirtSystem(DebianSystem):
    """The e2e root plus libvirt's system daemon and virsh."""
    EXTRA_PKGS = tuple(LIBVIRT_PKGS)
    LAYER_NAME = "libvirt"
    LAYER_VERSION = LIBVIRT_LAYER_VERSION


class LibvirtHost(E2EHost):
    """E2EHost on LibvirtSystem: qemu.conf points memory_backing_dir at
    RAM_DIR (ramcryptfs, mounted there by the project's MOUNT_UNIT, which
    libvirtd's drop-in pulls in and orders first)."""
    SYSTEM = LibvirtSystem
    ROOT_MB = ROOT_MB

    def customize(self):
        s = self.system
        conf = s.root / QEMU_CONF.lstrip("/")
        text = conf.read_text()
        assert "\nmemory_backing_dir =" not in text, "qemu.conf has one"
        s.write(QEMU_CONF, text + "\n# ramcrypt-host test\n"
                f'memory_backing_dir = "{RAM_DIR}"\n'
                'security_driver = "none"\n')
        s.write("/etc/modules-load.d/ramcrypt-test-kvm.conf", KVM_MODULES)


def unit_times(vm, unit):
    """A unit's state and monotonic timestamps (µs), as integers where
    they are numbers."""
    props = ("ActiveState", "SubState", "Result",
             "InactiveExitTimestampMonotonic",
             "ActiveEnterTimestampMonotonic", "ExecMainPID")
    out = vm.sh(f"systemctl show -p {','.join(props)} {unit}")
    return {k: int(v) if v.isdigit() else v for k, v in kv(out).items()}


def boot_libvirt_host(ctx, host):
    """Boot; check ramcryptfs is on RAM_DIR, mounted before libvirtd
    started, and libvirtd made its memory directory there and owns it to
    the qemu user. Returns (vm, facts)."""
    vm, f = boot_host(ctx, host)
    load_kvm(vm)     # kvm_amd is loaded at boot: a no-op, or it fails
    mnt = unit_times(vm, MOUNT_UNIT)
    lv = unit_times(vm, "libvirtd.service")
    # libvirtd probes QEMU's capabilities at their first use, not at its
    # start: the first virsh that needs them pays for it
    t0 = time.monotonic()
    vm.sh("virsh -c qemu:///system capabilities > /tmp/caps.xml",
          timeout=900)
    f["caps_secs"] = f"{time.monotonic() - t0:.1f}"
    fs = kv(vm.sh(f"""
echo "fstype=$(findmnt -n -o FSTYPE {RAM_DIR})"
echo "qemu_dir=$(stat -c '%U:%G %a' {RAM_DIR}/libvirt/qemu)"
echo "unit_file=$(systemctl show -P FragmentPath {MOUNT_UNIT})"
echo "dropins=$(systemctl show -P DropInPaths libvirtd.service)"
echo "after=$(systemctl show -P After libvirtd.service | tr ' ' '\\n' | grep -x {MOUNT_UNIT})"
echo "kvm=$(stat -c '%G %a' /dev/kvm)"
echo "libvirt=$(libvirtd --version)"
echo "secmodel=$(sed -n '/<secmodel>/,/<\\/secmodel>/s/.*<model>\\(.*\\)<\\/model>.*/\\1/p' /tmp/caps.xml | tr '\\n' ' ')"
echo "kvm_caps=$(grep -c "domain type='kvm'" /tmp/caps.xml)"
""", timeout=600))
    f.update(fs)
    start = lv["ActiveEnterTimestampMonotonic"] - \
        lv["InactiveExitTimestampMonotonic"]
    f["libvirtd_secs"] = f"{start / 1e6:.1f}"
    ctx.note(f"booted {f['kernel']} in {f['boot_secs']}s; {f['libvirt']}; "
             f"libvirtd.service start {f['libvirtd_secs']}s, first virsh "
             f"capabilities (QEMU probe) {f['caps_secs']}s; "
             f"{RAM_DIR} by {fs['unit_file']}; "
             f"secmodel {fs['secmodel'].strip() or '-'}")
    assert mnt["ActiveState"] == "active", mnt
    assert lv["ActiveState"] == "active", lv
    assert fs["fstype"] == "ramcryptfs", fs
    assert fs["unit_file"].endswith(f"lib/systemd/system/{MOUNT_UNIT}"), fs
    assert any(p.endswith(LIBVIRTD_DROPIN) for p in fs["dropins"].split()) \
        and fs["after"] == MOUNT_UNIT, fs
    assert mnt["ActiveEnterTimestampMonotonic"] <= \
        lv["InactiveExitTimestampMonotonic"], \
        f"libvirtd started before {RAM_DIR} was mounted: {mnt} {lv}"
    assert fs["qemu_dir"].startswith(f"{QEMU_USER}:"), fs
    assert int(fs["kvm_caps"]) >= 1, f"libvirt sees no KVM: {fs}"
    return vm, f


def domain_xml(name, set_id, metadata="", serial=None):
    """docs/libvirt-design.md §5's domain: mbguest in canary mode, RAM a
    shared file in the domain's memory directory. metadata: the inside of
    <metadata> (the ramcrypt marker), empty for an unmarked domain;
    serial: its serial log (default SERIAL)."""
    meta = f"<metadata>{metadata}</metadata>" if metadata else ""
    return f"""\
<domain type='kvm'>
  <name>{name}</name>
  {meta}
  <memory unit='MiB'>{GUEST_MB}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{MBGUEST}</kernel>
    <cmdline>canary={set_id:#x} loop</cmdline>
  </os>
  <memoryBacking>
    <source type='file'/>
    <access mode='shared'/>
  </memoryBacking>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>{QEMU}</emulator>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
    <serial type='file'>
      <source path='{serial or SERIAL.format(name=name)}'/>
    </serial>
  </devices>
</domain>
"""


def libvirt_logs(vm, name):
    """What explains a failed start: libvirtd's journal and the domain's
    QEMU log."""
    return vm.run(f"journalctl -q --no-pager -o cat -u libvirtd "
                  f"| tail -30; echo ---; "
                  f"tail -30 /var/log/libvirt/qemu/{name}.log")[1]


def start_domain(ctx, vm, xml, name=DOMAIN):
    """virsh define + virsh start (timed); the running domain's id, QEMU
    pid and memory directory."""
    write_guest_file(vm, f"/tmp/{name}.xml", xml)
    t0 = time.monotonic()
    rc, out = vm.run(f"virsh -c qemu:///system define /tmp/{name}.xml 2>&1",
                     timeout=600)
    t1 = time.monotonic()
    assert rc == 0, f"virsh define: {out}\n{libvirt_logs(vm, name)}"
    rc, out = vm.run(f"virsh -c qemu:///system start {name} 2>&1",
                     timeout=900)
    t2 = time.monotonic()
    assert rc == 0, f"virsh start: {out}\n{libvirt_logs(vm, name)}"
    d = kv(vm.sh(f"""
echo "state=$(virsh -c qemu:///system domstate {name})"
echo "id=$(virsh -c qemu:///system domid {name})"
echo "pid=$(cat /run/libvirt/qemu/{name}.pid)"
"""))
    dom = {"name": name, "id": int(d["id"]), "pid": int(d["pid"]),
           "define_secs": t1 - t0, "start_secs": t2 - t1}
    dom["dir"] = f"{RAM_DIR}/libvirt/qemu/{dom['id']}-{name[:20]}"
    exe = vm.sh(f"readlink /proc/{dom['pid']}/exe").strip()
    ctx.note(f"virsh define {dom['define_secs']:.1f}s, virsh start "
             f"{dom['start_secs']:.1f}s: {name} id {dom['id']}, QEMU pid "
             f"{dom['pid']}, {d['state']}")
    assert d["state"] == "running", d
    assert exe == QEMU, exe
    return dom


def ram_files(vm, dom):
    """{file name: (owner, size)} of the domain's memory directory."""
    out = vm.sh(f"cd {dom['dir']} && for f in *; do [ -e \"$f\" ] && "
                "stat -c '%n=%U %s' \"$f\"; done; true")
    return {k: (v.split()[0], int(v.split()[1]))
            for k, v in kv(out).items()}


def check_ram_file(ctx, vm, dom, source="default"):
    """The domain's RAM is one file in its memory directory, owned by the
    qemu user, and that file is the one ramcrypt region, made by its QEMU
    with the policy from `source`. Returns (region id, region)."""
    files = ram_files(vm, dom)
    reg = regions(vm)
    ctx.note(f"{dom['dir']}: {files}; regions {reg}")
    assert list(files) == ["pc.ram"], files
    owner, size = files["pc.ram"]
    assert owner == QEMU_USER and size == GUEST_MB << 20, files
    assert len(reg) == 1, reg
    rid, r = next(iter(reg.items()))
    assert r["size"] == GUEST_MB << 20 and r["pid"] == dom["pid"], r
    assert r["policy_source"] == source, r
    # a frame faulted in while the stats waited for the region's lock made
    # the age wrap around (-4 ms read as 4294967292)
    assert r["oldest_plaintext_age_ms"] < 60000, r
    cg = vm.sh(f"cut -d: -f3 /proc/{dom['pid']}/cgroup").strip()
    assert r["cgroup"] == cg and "machine-qemu" in cg, (r, cg)
    return rid, r


def wait_serial_passes(vm, passes, timeout, name=DOMAIN,
                       pages_min=GUEST_PAGES_MIN, path=None):
    """Wait for mbguest's pass `passes` in domain `name`'s serial log (a
    file, default SERIAL); it must have written all its canaries and
    report no mismatch. Returns (set id, pages, last pass, log)."""
    path = path or SERIAL.format(name=name)
    out = vm.run(f"""
t=0
until grep -q 'canary pass={passes} ok' {path}; do
    grep -q 'canary pass=[0-9]* FAIL' {path} && break
    t=$((t + 2)); [ $t -ge {slowness.secs(timeout)} ] && break
    sleep 2
done
tr -d '\\r' < {path}
""", timeout=timeout + 120)[1]
    return check_passes(out, path, passes, timeout, pages_min)


def check_dump(ctx, vm, host, rid, what):
    """A host RAM dump with the guest running: its canary pages in
    plaintext are no more than the region's window, and the host key is
    not in it (the data disk's key file is: it is a file on the plain
    root, in the page cache). Returns the number found."""
    before = regions(vm)[rid]
    found, res, _, secs = dump_canaries(ctx, vm, host, what)
    after = regions(vm)[rid]
    window = after["window_pages"]
    ctx.note(f"RAM dump ({secs:.0f}s): {len(found)} guest pages in "
             f"plaintext (window {window}, region plaintext_pages "
             f"{before['plaintext_pages']} before, "
             f"{after['plaintext_pages']} after); key: schedules "
             f"{res['aeskeyfind'] or 'none'}, raw {sum(res['raw'].values())}")
    assert before["window_pages"] == window, (before, after)
    assert after["plaintext_pages"] <= window, after
    assert 0 < len(found) <= window, len(found)
    assert not memsearch.key_found(res), res
    return len(found)


def destroy_domain(ctx, vm, host, dom, dump=True, by_ramcryptd=False):
    """virsh destroy (or, by_ramcryptd, ramcryptd stopping the domain's
    scope itself): QEMU gone, its memory directory and region gone, (with
    dump) no guest page left in a RAM dump."""
    t0 = time.monotonic()
    if not by_ramcryptd:
        vm.sh(f"virsh -c qemu:///system destroy {shlex.quote(dom['name'])}",
              timeout=300)
    secs = time.monotonic() - t0
    left = kv(vm.sh(f"""
for i in $(seq 300); do kill -0 {dom['pid']} 2>/dev/null || break; sleep 0.2; done
for i in $(seq 100); do [ -e {dom['dir']} ] || break; sleep 0.2; done
echo "alive=$(kill -0 {dom['pid']} 2>/dev/null && echo yes || echo no)"
echo "state=$(virsh -c qemu:///system domstate {dom['name']})"
echo "dir=$(test -e {dom['dir']} && echo yes || echo no)"
"""))
    reg = regions(vm)
    found = dump_canaries(ctx, vm, host, f"{dom['name']}-destroyed",
                          keys=False)[0] if dump else []
    ctx.note(f"virsh destroy {secs:.1f}s: {left}, regions {reg}, "
             f"{len(found)} guest pages in a RAM dump")
    assert left == {"alive": "no", "state": "shut off", "dir": "no"}, left
    assert not reg, reg
    assert not found, len(found)


NS = "urn:ramcrypt-host:libvirt:1"
MARKED = "rcvm-marked"
MARKED_WINDOW = 300            # pages: 1200K, not the module's default
MARKER = (f"<ramcrypt:ramcrypt xmlns:ramcrypt='{NS}' window='1200K' "
          "max-plaintext-age='250ms'/>")
BUS = "org.ramcrypt.RamCrypt1"
HOOK = "/etc/libvirt/hooks/qemu.d/50-ramcrypt"


def scope_of(dom):
    """machined's scope of a system domain (libvirt's machine name
    qemu-<id>-<name>, escaped as a unit name)."""
    machine = f"qemu-{dom['id']}-{dom['name']}"
    return "machine-" + machine.replace("-", "\\x2d") + ".scope"


def bus_units(vm):
    """ramcryptctl units --json, as {unit: properties}."""
    return {u["Unit"]: u for u in json.loads(vm.sh("ramcryptctl units --json"))}


def start_refused(ctx, vm, xml, name, needle):
    """virsh start of a marked domain that must not run: exit 1, libvirt's
    "Hook script execution failed" with our one sentence, the domain shut
    off, no region made. Returns the message."""
    write_guest_file(vm, f"/tmp/{name}.xml", xml)
    vm.sh(f"virsh -c qemu:///system define /tmp/{name}.xml", timeout=600)
    rc, out = vm.run(f"virsh -c qemu:///system start {name} 2>&1",
                     timeout=900)
    state = vm.sh(f"virsh -c qemu:///system domstate {name}").strip()
    reg = regions(vm)
    vm.sh(f"virsh -c qemu:///system undefine {name}")
    msg = " ".join(out.split())
    ctx.note(f"refused {name}: {msg[:400]}")
    assert rc == 1 and "Hook script execution failed" in out and \
        needle in out, (needle, rc, out, libvirt_logs(vm, name))
    assert state == "shut off" and not reg, (state, reg)
    return msg


def marked_domain(ctx, vm, host):
    """Acceptance 3: a domain marked in its metadata is enrolled by the
    hook before QEMU runs (its RAM file is a region whose policy came from
    the directory: the window was in force from the first fault), is a
    unit object on the bus named after its machine scope, keeps its
    plaintext within its window, survives a restart of ramcryptd, is
    checked running as services are (guest RAM added over QMP outside
    ramcryptfs: ramcryptd stops it), and is released when it stops."""
    since = vm.sh("date +%s").strip()
    dom = start_domain(ctx, vm, domain_xml(MARKED, host.set_id, MARKER),
                       name=MARKED)
    rid, reg = check_ram_file(ctx, vm, dom, source="directory")
    assert reg["window_pages"] == MARKED_WINDOW and \
        reg["max_plaintext_age_ms"] == 250, reg
    scope = scope_of(dom)
    tree = vm.sh(f"busctl tree --list {BUS}")
    units = bus_units(vm)
    status = vm.run(f"systemctl is-active '{scope}'")[1].strip()
    ctx.note(f"bus: {sorted(units)}; {scope} is {status}")
    assert list(units) == [scope], (units, tree)
    u = units[scope]
    want = {"Kind": "libvirt-domain", "Domain": MARKED, "State": "protected",
            "WindowPages": MARKED_WINDOW, "MaxPlaintextAgeMs": 250,
            "Regions": 1, "RegionBytes": GUEST_MB << 20,
            "MemoryDirectory": dom["dir"]}
    assert {k: u[k] for k in want} == want, u
    assert u["Path"] in tree.split(), (u["Path"], tree)
    assert status == "active", status
    set_id, pages, _, _ = wait_serial_passes(vm, 2, 900, name=MARKED)
    assert set_id == host.set_id
    check_dump(ctx, vm, host, rid, f"{MARKED}-running")
    # a restarted ramcryptd lists the domain again (its state file)
    vm.sh("systemctl restart ramcryptd")
    again = bus_units(vm)
    assert list(again) == [scope] and again[scope]["State"] == "protected", \
        again
    log = vm.sh(f"journalctl -q --no-pager -o cat -u ramcryptd "
                f"--since=@{since}")
    for line in (f"Enrolled libvirt domain {MARKED} as {scope}",
                 f"{scope}: protected: {GUEST_MB} MiB of guest RAM",
                 f"Rediscovered libvirt domain {MARKED}"):
        assert line in log, f"{line!r} not in ramcryptd's log:\n{log}"
    # ramcryptd checks the running QEMU as it checks services: it finds
    # it (MainPID) and its RAM on ramcryptfs ...
    pid = vm.sh(f"for i in $(seq 50); do p=$(busctl get-property {BUS} "
                f"{u['Path']} org.ramcrypt.RamCrypt1.Unit MainPID | "
                f"cut -d' ' -f2); [ \"$p\" = {dom['pid']} ] && break; "
                f"sleep 0.2; done; echo $p")
    assert pid == str(dom["pid"]), (pid, dom["pid"])
    # ... and guest RAM added at runtime outside it (QMP object_add of a
    # memory-backend-ram: anonymous memory, no hook runs) makes it stop
    # the domain's scope
    vm.sh(f"virsh -c qemu:///system qemu-monitor-command {MARKED} --hmp "
          f"'object_add memory-backend-ram,id=hot0,size=256M'")
    destroy_domain(ctx, vm, host, dom, by_ramcryptd=True)
    log = vm.sh(f"journalctl -q --no-pager -o cat -u ramcryptd "
                f"--since=@{since}")
    for line in (f"{scope} (libvirt domain {MARKED}) is UNPROTECTED: "
                 f"process {dom['pid']} has an anonymous block of 256.0 MiB",
                 f"Stopping {scope}: a marked domain never runs "
                 f"unprotected"):
        assert line in log, f"{line!r} not in ramcryptd's log:\n{log}"
    assert bus_units(vm) == {}, "the domain is still on the bus"
    assert not vm.sh("ls /run/ramcrypt/ | grep '^libvirt-' || true").strip()


SESSION_USER = "rctester"
SESSION_DOMAIN = "rc-sess"
# within the session limits (by default ramcryptd's window 64M, 100 ms)
SESSION_MARKER = (f"<ramcrypt:ramcrypt xmlns:ramcrypt='{NS}' window='1200K' "
                  "max-plaintext-age='80ms'/>")


def session_domain(ctx, vm, host):
    """A user's session libvirtd (qemu:///session, as Whonix-KVM uses it):
    lingering makes the user's directory on ramcryptfs (the
    user-runtime-dir@ drop-in); the hook runs as the user; a marked domain
    whose RAM is not in that directory, or whose marker is looser than the
    session limits, does not start; one in it is enrolled (its region's
    policy from the directory), listed under libvirt's session machine
    name, rediscovered by a restarted ramcryptd and released at destroy."""
    user = SESSION_USER
    uid = int(vm.sh(f"useradd -m -G kvm {user} && id -u {user}").strip())
    sdir = f"{RAM_DIR}/session/{uid}"
    home = f"/home/{user}"
    t0 = time.monotonic()
    st = kv(vm.sh(f"""
loginctl enable-linger {user}
for i in $(seq 300); do [ -d {sdir} ] && break; sleep 0.1; done
echo "user=$(systemctl is-active user@{uid}.service)"
echo "dir=$(stat -c '%u %a' {sdir})"
echo "dropins=$(systemctl show -P DropInPaths user-runtime-dir@{uid}.service)"
""", timeout=120))
    ctx.note(f"enable-linger {user} (uid {uid}): {st}, "
             f"{time.monotonic() - t0:.1f}s")
    assert st["dir"] == f"{uid} 700", st
    assert "user-runtime-dir@.service.d/ramcrypt.conf" in st["dropins"], st

    def virsh(args, check=True, timeout=900):
        env = (f"HOME={home} USER={user} LOGNAME={user} "
               f"XDG_RUNTIME_DIR=/run/user/{uid} PATH=/usr/bin:/bin")
        cmd = (f"runuser -u {user} -- env -i {env} "
               f"virsh -c qemu:///session {args} 2>&1")
        rc, out = vm.run(cmd, timeout=timeout)
        assert rc == 0 or not check, f"virsh {args}: {out}"
        return rc, out

    def start_refused(xml, needle):
        write_guest_file(vm, f"/tmp/{SESSION_DOMAIN}.xml", xml)
        virsh(f"define /tmp/{SESSION_DOMAIN}.xml")
        rc, out = virsh(f"start {SESSION_DOMAIN}", check=False)
        state = virsh(f"domstate {SESSION_DOMAIN}")[1].strip()
        virsh(f"undefine {SESSION_DOMAIN}")
        msg = " ".join(out.split())
        ctx.note(f"session: refused: {msg[-300:]}")
        assert rc == 1 and "Hook script execution failed" in out and \
            needle in out, (needle, rc, out)
        assert state == "shut off" and not regions(vm), state

    serial = f"{home}/{SESSION_DOMAIN}.serial"
    xml = domain_xml(SESSION_DOMAIN, host.set_id, SESSION_MARKER,
                     serial=serial)
    # no ~/.config/libvirt/qemu.conf: libvirt's default, in the home
    t0 = time.monotonic()
    start_refused(xml, f"its RAM would be in {home}/.config/libvirt/qemu/"
                  f"ram, not in your directory {sdir}")
    ctx.note(f"session: first define + start (QEMU probe as {user}) "
             f"{time.monotonic() - t0:.1f}s")
    # the documented qemu.conf; the session libvirtd reads it at its start
    conf = f"{home}/.config/libvirt/qemu.conf"   # made by its first run
    write_guest_file(vm, conf, f'memory_backing_dir = "{sdir}"\n')
    vm.sh(f"""
chown {user}: {conf}
pid=$(cat /run/user/{uid}/libvirt/libvirtd.pid)
kill $pid
for i in $(seq 100); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
! kill -0 $pid 2>/dev/null
""")
    # a marker looser than the session limits
    start_refused(domain_xml(SESSION_DOMAIN, host.set_id, MARKER,
                             serial=serial),
                  "max-plaintext-age='250ms' is longer than this host allows "
                  "domains of a session libvirt (100ms")
    since = vm.sh("date +%s").strip()
    write_guest_file(vm, f"/tmp/{SESSION_DOMAIN}.xml", xml)
    virsh(f"define /tmp/{SESSION_DOMAIN}.xml")
    t0 = time.monotonic()
    virsh(f"start {SESSION_DOMAIN}")
    secs = time.monotonic() - t0
    dom_id = int(virsh(f"domid {SESSION_DOMAIN}")[1].strip())
    dom = {"name": SESSION_DOMAIN, "id": dom_id,
           "dir": f"{sdir}/libvirt/qemu/{dom_id}-{SESSION_DOMAIN}"}
    files = ram_files(vm, dom)
    reg = regions(vm)
    ctx.note(f"session: virsh start {secs:.1f}s: id {dom_id}; {dom['dir']}: "
             f"{files}; regions {reg}")
    assert list(files) == ["pc.ram"] and \
        files["pc.ram"] == (user, GUEST_MB << 20), files
    assert len(reg) == 1, reg
    rid, r = next(iter(reg.items()))
    want = {"policy_source": "directory", "window_pages": MARKED_WINDOW,
            "max_plaintext_age_ms": 80, "size": GUEST_MB << 20}
    assert {k: r[k] for k in want} == want, r
    assert vm.sh(f"stat -c %u /proc/{r['pid']}").strip() == str(uid), r
    machine = f"qemu-{user}-{dom_id}-{SESSION_DOMAIN}"
    tree = vm.sh(f"busctl tree --list {BUS}")
    units = bus_units(vm)
    ctx.note(f"session: bus: {sorted(units)}")
    assert list(units) == [machine], (units, tree)
    u = units[machine]
    want = {"Kind": "libvirt-domain", "Domain": SESSION_DOMAIN,
            "State": "protected", "WindowPages": MARKED_WINDOW,
            "MaxPlaintextAgeMs": 80, "Regions": 1,
            "RegionBytes": GUEST_MB << 20, "MemoryDirectory": dom["dir"],
            "Scope": "", "DomainURI": "qemu:///session"}
    assert {k: u[k] for k in want} == want, u
    assert u["Path"] in tree.split(), (u["Path"], tree)
    wait_serial_passes(vm, 1, 900, name=SESSION_DOMAIN, path=serial)
    vm.sh("systemctl restart ramcryptd")
    again = bus_units(vm)
    assert list(again) == [machine] and \
        again[machine]["State"] == "protected", again
    log = vm.sh(f"journalctl -q --no-pager -o cat -u ramcryptd "
                f"--since=@{since}")
    for line in (f"Enrolled libvirt domain {SESSION_DOMAIN} of the session "
                 f"libvirt of uid {uid} as {machine}",
                 f"{machine}: protected: {GUEST_MB} MiB of guest RAM",
                 f"Rediscovered libvirt domain {SESSION_DOMAIN}"):
        assert line in log, f"{line!r} not in ramcryptd's log:\n{log}"
    virsh(f"destroy {SESSION_DOMAIN}", timeout=300)
    left = kv(vm.sh(f"""
for i in $(seq 100); do kill -0 {r['pid']} 2>/dev/null || break; sleep 0.2; done
echo "alive=$(kill -0 {r['pid']} 2>/dev/null && echo yes || echo no)"
echo "dir=$(test -e {dom['dir']} && echo yes || echo no)"
echo "state=$(ls /run/ramcrypt/ | grep -c '^libvirt-' || true)"
"""))
    ctx.note(f"session: virsh destroy: {left}")
    assert left == {"alive": "no", "dir": "no", "state": "0"}, left
    assert not regions(vm) and bus_units(vm) == {}


def marked_domains_refused(ctx, vm, host):
    """Acceptance 3, fail closed: a marked domain whose RAM would not be
    encrypted, or that ramcryptd cannot enroll, does not start."""
    xml = domain_xml("rc-anon", host.set_id, MARKER)
    xml = re.sub(r"<memoryBacking>.*?</memoryBacking>", "", xml, flags=re.S)
    start_refused(ctx, vm, xml, "rc-anon", "its RAM is anonymous memory")
    xml = domain_xml("rc-memfd", host.set_id, MARKER).replace(
        "<source type='file'/>", "<source type='memfd'/>")
    start_refused(ctx, vm, xml, "rc-memfd",
                  "<source type='memfd'/> is plaintext RAM")
    # ramcryptd down and not activatable
    vm.sh("systemctl stop ramcryptd && systemctl mask --runtime ramcryptd")
    try:
        start_refused(ctx, vm, domain_xml("rc-nod", host.set_id, MARKER),
                      "rc-nod", "ramcryptd cannot be reached")
        # an unmarked domain does not need ramcryptd
        dom = start_domain(ctx, vm, domain_xml("rc-plain", host.set_id),
                           name="rc-plain")
        check_ram_file(ctx, vm, dom, source="default")
        destroy_domain(ctx, vm, host, dom, dump=False)
    finally:
        vm.sh("systemctl unmask --runtime ramcryptd && "
              "systemctl start ramcryptd")
    # libvirt's RAM off ramcryptfs (its default directory)
    vm.sh(f"sed -i 's|^memory_backing_dir = .*|# &|' {QEMU_CONF} && "
          "systemctl restart libvirtd", timeout=300)
    start_refused(ctx, vm, domain_xml("rc-disk", host.set_id, MARKER),
                  "rc-disk", "/var/lib/libvirt/qemu/ram, which is not on "
                  "ramcryptfs")


@vm_test(name="libvirt-domains", timeout=3600, kernels=["6.1", "6.12"],
         est=700)
def test_libvirt_domains(ctx):
    """libvirt domains on ramcryptfs (docs/libvirt-design.md §5): an
    unmarked domain's RAM file is a region with the module's defaults and
    the window bounds its plaintext; a marked one is enrolled by the hook
    before QEMU runs, listed on the bus, bounded by its own window and
    released at destroy; marked domains that cannot be protected do not
    start."""
    host = LibvirtHost(ctx)
    host.build()
    ctx.note(f"image build {host.build_secs:.0f}s")
    vm, f = boot_libvirt_host(ctx, host)

    # --- an unmarked domain ------------------------------------------------
    dom = start_domain(ctx, vm, domain_xml(DOMAIN, host.set_id))
    rid, reg = check_ram_file(ctx, vm, dom, source="default")
    assert reg["window_pages"] == MODULE_WINDOW, reg
    t0 = time.monotonic()
    set_id, pages, passes, _ = wait_serial_passes(vm, 2, 900)
    ctx.note(f"mbguest: {pages} canary pages, pass {passes} "
             f"{time.monotonic() - t0:.0f}s after the start")
    assert set_id == host.set_id, (set_id, host.set_id)
    reg = regions(vm)[rid]
    assert reg["faults"] >= pages and reg["crypto_errors"] == 0, reg
    check_dump(ctx, vm, host, rid, f"{DOMAIN}-unmarked")
    assert bus_units(vm) == {}, "an unmarked domain is on the bus"
    destroy_domain(ctx, vm, host, dom, dump=False)

    # --- marked domains ----------------------------------------------------
    assert vm.sh(f"stat -c %a {HOOK}").strip() == "755"
    marked_domain(ctx, vm, host)
    session_domain(ctx, vm, host)
    marked_domains_refused(ctx, vm, host)

    check_dmesg(vm)
    vm.poweroff(timeout=300)
