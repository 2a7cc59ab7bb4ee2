"""Search RAM dumps for keys and canaries (the cold-boot attacker's tools)."""
import mmap
import re
import struct
import subprocess

from . import slowness

MASK64 = (1 << 64) - 1
CANARY_MAGIC = b"RCCANARY"
PAGE = 4096


def aeskeyfind(dump, timeout=600):
    """AES keys (hex strings) that aeskeyfind recovers from a dump; timeout
    is nominal, scaled by the run's slowness factor."""
    r = subprocess.run(["aeskeyfind", "-q", str(dump)], capture_output=True,
                       text=True, timeout=slowness.scaled(timeout))
    if r.returncode not in (0, 1):
        raise RuntimeError(f"aeskeyfind failed: {r.stderr.strip()}")
    return [ln.strip().lower() for ln in r.stdout.splitlines()
            if re.fullmatch(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{64}", ln.strip())]


def find_bytes(dump, needle, limit=64):
    """(count, first offsets) of a byte string in a dump."""
    if not needle:
        raise ValueError("empty needle")
    count, offsets = 0, []
    with open(dump, "rb") as f, \
            mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        pos = m.find(needle)
        while pos != -1:
            count += 1
            if len(offsets) < limit:
                offsets.append(pos)
            pos = m.find(needle, pos + 1)
    return count, offsets


def key_words(key):
    """The key as DR0..DR3 hold it: four little-endian u64 words."""
    return [int.from_bytes(key[i:i + 8], "little") for i in range(0, 32, 8)]


def key_needles(key):
    """The byte strings that betray an AES-128-XTS key in RAM: each 16-byte
    half, and each half byte-reversed (a register stored big-endian)."""
    assert len(key) == 32
    k1, k2 = key[:16], key[16:]
    return {"K1": k1, "K2": k2, "K1-reversed": k1[::-1],
            "K2-reversed": k2[::-1]}


def search_key(dump, key, schedules=None):
    """Everything an attacker finds of this XTS key in the dump.

    `schedules`: aeskeyfind's result for this dump, when several keys are
    searched in one dump (aeskeyfind is the slow part).
    Returns {"aeskeyfind": [matching halves], "raw": {needle: count}}."""
    halves = {key[:16].hex(): "K1", key[16:].hex(): "K2"}
    if schedules is None:
        schedules = aeskeyfind(dump)
    found = [halves[k] for k in schedules if k in halves]
    raw = {name: find_bytes(dump, n)[0]
           for name, n in key_needles(key).items()}
    return {"aeskeyfind": sorted(set(found)), "raw": raw}


def key_found(result):
    return bool(result["aeskeyfind"]) or any(result["raw"].values())


# -- what the tests plant: AES-128 key schedules (FIPS-197) -----------------
AES_SBOX = bytes.fromhex(
    "637c777bf26b6fc53001672bfed7ab76ca82c97dfa5947f0add4a2af9ca472c0"
    "b7fd9326363ff7cc34a5e5f171d8311504c723c31896059a071280e2eb27b275"
    "09832c1a1b6e5aa0523bd6b329e32f8453d100ed20fcb15b6acbbe394a4c58cf"
    "d0efaafb434d338545f9027f503c9fa851a3408f929d38f5bcb6da2110fff3d2"
    "cd0c13ec5f974417c4a77e3d645d197360814fdc222a908846eeb814de5e0bdb"
    "e0323a0a4906245cc2d3ac629195e479e7c8376d8dd54ea96c56f4ea657aae08"
    "ba78252e1ca6b4c6e8dd741f4bbd8b8a703eb5664803f60e613557b986c11d9e"
    "e1f8981169d98e949b1e87e9ce5528df8ca1890dbfe6426841992d0fb054bb16")


def aes128_schedule(key):
    """The 176-byte AES-128 key schedule (what the kernel keeps in RAM)."""
    w = [key[i:i + 4] for i in range(0, 16, 4)]
    rcon = 1
    for i in range(4, 44):
        t = w[i - 1]
        if i % 4 == 0:
            t = bytes(AES_SBOX[b] for b in t[1:] + t[:1])
            t = bytes([t[0] ^ rcon]) + t[1:]
            rcon = (rcon << 1) ^ (0x11b if rcon & 0x80 else 0)
        w.append(bytes(a ^ b for a, b in zip(w[i - 4], t)))
    return b"".join(w)


# -- canaries (same generator as tests/guest/canary.c) -----------------------
def _xorshift_stream(seed, nwords):
    x = seed & MASK64 or 1
    out = []
    for _ in range(nwords):
        x ^= x >> 12
        x ^= (x << 25) & MASK64
        x ^= x >> 27
        out.append((x * 0x2545F4914F6CDD1D) & MASK64)
    return out


def guest_aes_key(set_id):
    """The AES-128-XTS key (32 bytes) that tests/guest/mbguest keeps in its
    RAM with "aeskey", derived from its canary set as a guest's disk key
    would be from its passphrase: known to the attacker's tools only."""
    seed = (set_id * 0xD1B54A32D192ED03 + 0xAE5) & MASK64
    return struct.pack("<4Q", *_xorshift_stream(seed, 4))


def canary_page(set_id, index):
    """Page `index` of canary set `set_id`: magic, set id, index, then a
    pseudo-random body unique to (set_id, index)."""
    seed = (set_id * 0x9E3779B97F4A7C15 + index + 1) & MASK64
    head = CANARY_MAGIC + struct.pack("<QQ", set_id, index)
    body = struct.pack(f"<{(PAGE - 24) // 8}Q",
                       *_xorshift_stream(seed, (PAGE - 24) // 8))
    return head + body


def find_canaries(dump, set_id, count, min_match=PAGE):
    """Indices of canary pages of a set found in a dump with at least
    `min_match` leading bytes intact (default: the whole page)."""
    prefix = CANARY_MAGIC + struct.pack("<Q", set_id)
    found = set()
    cache = {}
    with open(dump, "rb") as f, \
            mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        pos = m.find(prefix)
        while pos != -1:
            idx = struct.unpack_from("<Q", m, pos + 16)[0] \
                if pos + 24 <= len(m) else None
            if idx is not None and idx < count and idx not in found:
                want = cache.get(idx) or canary_page(set_id, idx)
                if m[pos:pos + min_match] == want[:min_match]:
                    found.add(idx)
            pos = m.find(prefix, pos + 1)
    return found
