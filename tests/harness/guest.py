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
