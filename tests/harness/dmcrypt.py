"""dm-crypt mappings in the guest, and decrypting their images on the host."""
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

PERF = "--perf-no_read_workqueue --perf-no_write_workqueue"


def open_tresor(vm, dev, name, spec="capi:xts(tresor)-plain64", ss=512,
                perf=False):
    """A plain dm-crypt mapping on xts(tresor) (32-zero-byte placeholder).
    perf: no read/write workqueues, so the crypto runs on the issuing CPU."""
    vm.sh(f"""
modprobe dm_crypt
head -c 32 /dev/zero > /tmp/zero.key
DM_DISABLE_UDEV=1 cryptsetup open --type plain --cipher '{spec}' \
  --key-size 256 --key-file /tmp/zero.key --sector-size {ss} \
  {PERF if perf else ""} {dev} {name}
dmsetup mknodes {name}
test -b /dev/mapper/{name}
""")


def open_stock(vm, key, name="base", dev="/dev/vda"):
    """A stock aes-xts-plain64 mapping (key in RAM: the attack baseline)."""
    vm.secrets.append(key.hex())
    vm.sh(f"""
modprobe dm_crypt && modprobe xts && modprobe aesni_intel
sectors=$(blockdev --getsz {dev})
dmsetup create {name} --table "0 $sectors crypt aes-xts-plain64 {key.hex()} 0 {dev} 0"
dmsetup mknodes {name}
test -b /dev/mapper/{name}
""")


def xts_decrypt_image(path, key, sector_size):
    """Decrypt a dm-crypt plain64 image with OpenSSL's AES-128-XTS (through
    python3-cryptography): the IV of a sector is its 512-byte sector number,
    as dm-crypt does without iv_large_sectors."""
    data = open(path, "rb").read()
    out = bytearray(len(data))
    for off in range(0, len(data), sector_size):
        iv = (off // 512).to_bytes(16, "little")
        d = Cipher(algorithms.AES(key), modes.XTS(iv)).decryptor()
        out[off:off + sector_size] = d.update(data[off:off + sector_size]) \
            + d.finalize()
    return bytes(out)
