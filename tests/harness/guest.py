"""Guest-side steps many VM tests share."""
import os

LOAD_TRESOR = "modprobe tresor && modprobe algif_skcipher && modprobe xts && " \
              "modprobe aesni_intel"


def load_masked_key(vm, key):
    """Load `key` into tresor.ko without its bytes crossing the serial line
    or sitting in a guest file: the guest gets key^mask and mask, and
    rcprobe combines them in a locked buffer that it wipes."""
    mask = os.urandom(32)
    enc = bytes(a ^ b for a, b in zip(key, mask))
    out = vm.sh(f"rcprobe set-key-masked {enc.hex()} {mask.hex()}")
    assert out == "ok", f"SET_KEY: {out}"


def load_kvm(vm):
    vm.sh("""
if grep -qw svm /proc/cpuinfo; then modprobe kvm_amd;
elif grep -qw vmx /proc/cpuinfo; then modprobe kvm_intel;
else echo "no svm/vmx in the guest CPU"; exit 1; fi
test -c /dev/kvm
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
