"""The ciphertext ramcrypt.ko keeps of a page, computed on the host: the
documented memory tweak (module/ramcrypt_window.c), the load's salt, and
AES-128-XTS of a 4096-byte data unit, to find a region's ciphertext pages
in a RAM dump."""
import re

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from harness import memsearch

SALT_PARAM = "/sys/module/ramcrypt/parameters/tweak_salt"
MASK64 = (1 << 64) - 1


def tweak_salt(vm):
    """(low, high) of this load's tweak salt: 32 hex digits, the salt as a
    128-bit number, XORed into the tweak (two little-endian halves)."""
    out = vm.sh(f"cat {SALT_PARAM}").strip()
    assert re.fullmatch(r"[0-9a-f]{32}", out), f"{SALT_PARAM}: {out!r}"
    salt = int(out, 16)
    assert not salt >> 127, f"tweak salt sets bit 127: {out}"
    return salt & MASK64, salt >> 64


def memory_tweak(salt, region, index, version):
    """The documented memory tweak of a region page, salted."""
    low = (version & 0xffffffff) << 32 | index
    high = 1 << 63 | (version >> 32) << 40 | region
    return low ^ salt[0], high ^ salt[1]


def xts_page(key, plaintext, low, high):
    """AES-128-XTS of one 4096-byte data unit, tweak (low, high) as two
    little-endian 64-bit halves."""
    tweak = low.to_bytes(8, "little") + high.to_bytes(8, "little")
    enc = Cipher(algorithms.AES(key), modes.XTS(tweak)).encryptor()
    return enc.update(plaintext) + enc.finalize()


def page_set(dump):
    """Every page-aligned 4 KiB page of a dump (frames and ciphertext pages
    are whole pages)."""
    with open(dump, "rb") as f:
        data = f.read()
    return {data[o:o + 4096] for o in range(0, len(data), 4096)}


def page_heads(dump, n=64):
    """The first @n bytes of every page-aligned page of a dump."""
    with open(dump, "rb") as f:
        data = f.read()
    return {data[o:o + n] for o in range(0, len(data), 4096)}


def canary_ciphertext(key, salt, region, set_id, count, version, n=64):
    """The first @n bytes of the ciphertext of canary pages 0..count-1 of
    @set_id in @region at @version."""
    return [xts_page(key, memsearch.canary_page(set_id, i),
                     *memory_tweak(salt, region, i, version))[:n]
            for i in range(count)]


def canaries_encrypted(heads, key, salt, region, set_id, count, version):
    """How many of the canary pages' ciphertext at @version is in @heads."""
    return sum(h in heads for h in canary_ciphertext(
        key, salt, region, set_id, count, version))
