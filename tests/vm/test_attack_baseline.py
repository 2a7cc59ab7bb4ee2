"""The attack bench sees a leak: stock dm-crypt keys and process canaries.

Every later security test compares against this baseline: if these searches
did not find what is plainly in RAM, "no key found" would prove nothing."""
import os

from harness import memsearch
from harness.dmcrypt import open_stock
from harness.registry import vm_test


@vm_test()
def test_attack_baseline_dmcrypt(ctx):
    key = os.urandom(32)
    disk = ctx.disk("disk.img", 64)
    with ctx.boot(disks=[disk]) as vm:
        open_stock(vm, key)
        vm.sh("(while :; do dd if=/dev/urandom of=/dev/mapper/base bs=64k "
              "count=256 conv=fsync 2>/dev/null; done) > /dev/null 2>&1 &"
              " sleep 2")
        dump = vm.dump_ram(ctx.workdir / "dump.raw")
        schedules = memsearch.aeskeyfind(dump)
        res = memsearch.search_key(dump, key, schedules)
        ctx.note(f"stock dm-crypt: aeskeyfind={res['aeskeyfind']} "
                 f"raw={res['raw']}")
        assert res["aeskeyfind"] == ["K1", "K2"], \
            f"aeskeyfind missed the stock key: {res}"
        assert res["raw"]["K1"] > 0 and res["raw"]["K2"] > 0, \
            f"raw search missed a key half: {res}"
        # A key that was never used must not be "found".
        ghost = memsearch.search_key(dump, os.urandom(32), schedules)
        assert not memsearch.key_found(ghost), f"false positive: {ghost}"


@vm_test()
def test_attack_baseline_canary(ctx):
    set_id = int.from_bytes(os.urandom(4), "little") | 1
    with ctx.boot() as vm:
        vm.sh(f"canary {set_id} 1 > /tmp/canary.log 2>&1 & "
              "for i in $(seq 50); do grep -q ready /tmp/canary.log && break;"
              " sleep 0.1; done; grep -q ready /tmp/canary.log")
        dump = vm.dump_ram(ctx.workdir / "dump.raw")
        found = memsearch.find_canaries(dump, set_id, 1)
        ctx.note(f"canary pages found: {len(found)} of 1")
        assert found == {0}, "the process canary is not in the dump"
        assert not memsearch.find_canaries(dump, set_id + 2, 1), \
            "a canary that was never written was found"
