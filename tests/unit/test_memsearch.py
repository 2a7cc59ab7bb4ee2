"""The attacker's tools find what is planted, where it is, and nothing else."""
import os
import subprocess
import tempfile
from pathlib import Path

from harness import memsearch
from harness.registry import unit_test

REPO = Path(__file__).resolve().parents[2]

SBOX = bytes.fromhex(
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
            t = bytes(SBOX[b] for b in t[1:] + t[:1])
            t = bytes([t[0] ^ rcon]) + t[1:]
            rcon = (rcon << 1) ^ (0x11b if rcon & 0x80 else 0)
        w.append(bytes(a ^ b for a, b in zip(w[i - 4], t)))
    return b"".join(w)


def _dump(parts, size=8 << 20):
    """A synthetic 'RAM dump': random bytes with parts planted at offsets."""
    data = bytearray(os.urandom(size))
    for off, blob in parts:
        data[off:off + len(blob)] = blob
    f = tempfile.NamedTemporaryFile(delete=False, suffix=".raw")
    f.write(data)
    f.close()
    return Path(f.name)


@unit_test()
def test_aes_schedule_matches_fips197():
    # FIPS-197 A.1: key 2b7e1516..., last round key d014f9a8c9ee2589e13f0cc8b6630ca6
    s = aes128_schedule(bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c"))
    assert s[-16:].hex() == "d014f9a8c9ee2589e13f0cc8b6630ca6", s[-16:].hex()


@unit_test()
def test_search_finds_planted_key():
    key = os.urandom(32)
    dump = _dump([(0x123440, aes128_schedule(key[:16])),
                  (0x400010, aes128_schedule(key[16:])),
                  (0x600003, key[:16]), (0x700005, key[16:][::-1])])
    try:
        res = memsearch.search_key(dump, key)
        assert res["aeskeyfind"] == ["K1", "K2"], res
        assert res["raw"]["K1"] == 2, res  # the plain copy + schedule head
        assert res["raw"]["K2-reversed"] == 1, res
        assert memsearch.find_bytes(dump, key[:16])[1] == [0x123440,
                                                            0x600003]
    finally:
        dump.unlink()


@unit_test()
def test_search_reports_nothing_when_clean():
    key = os.urandom(32)
    dump = _dump([(0x1000, aes128_schedule(os.urandom(16)))])
    try:
        res = memsearch.search_key(dump, key)
        assert not memsearch.key_found(res), res
    finally:
        dump.unlink()


@unit_test()
def test_canary_generator_matches_guest_program():
    subprocess.run(["make", "-s", "-C", str(REPO / "tests" / "guest")],
                   check=True)
    prog = REPO / "tests" / "guest" / "bin" / "canary"
    for set_id, idx in ((1, 0), (0xdeadbeef, 16383)):
        c = subprocess.run([str(prog), "--print", str(set_id), str(idx)],
                           capture_output=True, check=True).stdout
        assert c == memsearch.canary_page(set_id, idx), (set_id, idx)


@unit_test()
def test_canary_search_counts_intact_pages():
    pages = {i: memsearch.canary_page(7, i) for i in (0, 5, 9)}
    torn = bytearray(memsearch.canary_page(7, 3))
    torn[100] ^= 1
    dump = _dump([(0x10000, pages[0]), (0x31000, pages[5]),
                  (0x52000, pages[9]), (0x73000, bytes(torn)),
                  (0x94000, memsearch.canary_page(8, 1))])
    try:
        assert memsearch.find_canaries(dump, 7, 16) == {0, 5, 9}
        assert memsearch.find_canaries(dump, 7, 16, min_match=64) == \
            {0, 3, 5, 9}
        assert memsearch.find_canaries(dump, 7, 4) == {0}
    finally:
        dump.unlink()
