"""The attacker's tools find what is planted, where it is, and nothing else."""
import os
import subprocess
import tempfile
from pathlib import Path

from harness import memsearch
from harness.registry import unit_test

REPO = Path(__file__).resolve().parents[2]

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
    s = memsearch.aes128_schedule(bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c"))
    assert s[-16:].hex() == "d014f9a8c9ee2589e13f0cc8b6630ca6", s[-16:].hex()


@unit_test()
def test_search_finds_planted_key():
    key = os.urandom(32)
    dump = _dump([(0x123440, memsearch.aes128_schedule(key[:16])),
                  (0x400010, memsearch.aes128_schedule(key[16:])),
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
    dump = _dump([(0x1000, memsearch.aes128_schedule(os.urandom(16)))])
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
