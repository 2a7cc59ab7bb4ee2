"""Guest-side steps many VM tests share."""
import os

from .memsearch import key_words

LOAD_TRESOR = "modprobe tresor && modprobe algif_skcipher && modprobe xts && " \
              "modprobe aesni_intel"


def masked_key_args(key):
    """"E M" for guest tools: the key XOR a fresh mask, and the mask."""
    mask = os.urandom(32)
    enc = bytes(a ^ b for a, b in zip(key, mask))
    return f"{enc.hex()} {mask.hex()}"


def load_masked_key(vm, key, livepatch=True):
    """Load `key` into tresor.ko without its bytes crossing the serial line
    or sitting in a guest file: the guest gets key^mask and mask, and
    rcprobe combines them in a locked buffer that it wipes. tresor.ko
    refuses a key before the tresor_showregs livepatch is active: it is
    loaded first unless livepatch=False."""
    if livepatch:
        load_showregs_livepatch(vm)
    # Never echo the key: its hex forms, as halves and as the DR0-DR3
    # words an oops dump prints, are redacted from every message.
    vm.secrets += [key.hex(), key[:16].hex(), key[16:].hex()] + \
        [f"{w:016x}" for w in key_words(key)]
    out = vm.sh(f"rcprobe set-key-masked {masked_key_args(key)}")
    assert out == "ok", f"SET_KEY: {out}"


def load_kvm(vm):
    """Load KVM and keep one idle VM (a vCPU without in-kernel irqchip that
    never runs) alive for the guest's lifetime. Creating or destroying the
    first/last VM flips static keys (preempt notifiers in __schedule,
    kvm_has_noapic_vcpu), i.e. patches kernel text with int3; under QEMU's
    multi-threaded TCG another vCPU intermittently traps on that transient
    int3 ("Oops: int3" in __schedule, seen on 6.12). With the idle VM held,
    test VMs coming and going never flip them."""
    vm.sh("""
if grep -qw svm /proc/cpuinfo; then modprobe kvm_amd;
elif grep -qw vmx /proc/cpuinfo; then modprobe kvm_intel;
else echo "no svm/vmx in the guest CPU"; exit 1; fi
test -c /dev/kvm
if ! pidof vmm-hold >/dev/null; then
  ln -sf /usr/bin/vmm /tmp/vmm-hold
  setsid /tmp/vmm-hold --mem-size 0x20000 hold > /tmp/vmm-hold.log 2>&1 &
  for i in $(seq 100); do grep -q holding /tmp/vmm-hold.log && break; sleep 0.1; done
  grep -q holding /tmp/vmm-hold.log
fi
""")


LIVEPATCH = "/sys/kernel/livepatch/tresor_showregs"


def load_showregs_livepatch(vm):
    """Load the __show_regs livepatch and wait until every task runs the
    patched function (transition 0), as a host must before loading a key."""
    vm.sh(f"""
modprobe tresor_showregs
i=0
until [ "$(cat {LIVEPATCH}/transition)" = 0 ]; do
  i=$((i + 1))
  [ $i -lt 120 ] || {{ echo "livepatch transition stuck"; exit 1; }}
  sleep 0.5
done
test "$(cat {LIVEPATCH}/enabled)" = 1
""", timeout=90)
