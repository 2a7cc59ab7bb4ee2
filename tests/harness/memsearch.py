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
