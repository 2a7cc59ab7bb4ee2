"""LUKS2 images made on the host without device-mapper: the header by stock
`cryptsetup luksFormat` on a file, the payload encrypted by an independent
AES-XTS (OpenSSL through python3-cryptography) exactly as dm-crypt's
aes-xts-plain64 would (IV = 512-byte sector number within the payload)."""
import io
import re
import subprocess

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# Fast keyslots for tests that only need to open the volume.
PBKDF_FAST = ("--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000")


def luks_format(img, passphrase, key, cipher="aes-xts-plain64", key_bits=256,
                sector_size=512, pbkdf=PBKDF_FAST, uuid=None):
    """Format the file img (its size stays) with this volume key; returns
    (LUKS UUID, data offset in bytes)."""
    extra = ["--uuid", uuid] if uuid else []
    kf = img.with_name(img.name + ".vk")
    kf.write_bytes(key)
    try:
        subprocess.run(
            ["cryptsetup", "luksFormat", "--type", "luks2", "--cipher",
             cipher, "--key-size", str(key_bits), *pbkdf, "--batch-mode",
             "--sector-size", str(sector_size), "--volume-key-file",
             str(kf), *extra, str(img), "-"],
            input=passphrase, check=True, capture_output=True)
    finally:
        kf.unlink()
    uuid = subprocess.run(["cryptsetup", "luksUUID", str(img)], check=True,
                          capture_output=True, text=True).stdout.strip()
    dump = subprocess.run(["cryptsetup", "luksDump", str(img)], check=True,
                          capture_output=True, text=True).stdout
    seg = dump.split("Data segments:", 1)[1]
    offset = int(re.search(r"offset:\s*(\d+) \[bytes\]", seg).group(1))
    return uuid, offset


def encrypt_payload(img, key, offset, sector_size, src):
    """Encrypt src (bytes or a binary file object) as the payload at the
    LUKS2 data offset of img."""
    if isinstance(src, (bytes, bytearray)):
        src = io.BytesIO(src)
    pos = 0
    with open(img, "r+b") as f:
        f.seek(offset)
        while True:
            chunk = src.read(4 << 20)
            if not chunk:
                break
            out = bytearray()
            for i in range(0, len(chunk), sector_size):
                iv = ((pos + i) // 512).to_bytes(16, "little")
                e = Cipher(algorithms.AES(key), modes.XTS(iv)).encryptor()
                out += e.update(chunk[i:i + sector_size]) + e.finalize()
            f.write(out)
            pos += len(chunk)
