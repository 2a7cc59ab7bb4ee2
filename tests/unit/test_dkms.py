"""module/dkms.conf builds every module the way DKMS would run it."""
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness import kernels
from harness.registry import Skip, unit_test

REPO = Path(__file__).resolve().parents[2]


def _conf():
    conf = {}
    text = (REPO / "module" / "dkms.conf").read_text()
    for m in re.finditer(r'^([A-Z_]+(?:\[\d+\])?)="([^"]*)"', text, re.M):
        conf[m.group(1)] = m.group(2)
    return conf


@unit_test()
def test_dkms_conf_builds_every_module():
    conf = _conf()
    assert conf["PACKAGE_NAME"] == "ramcrypt-host", conf
    built = {conf[k] for k in conf if k.startswith("BUILT_MODULE_NAME")}
    assert built == {"tresor", "ramcrypt", "tresor_showregs"}, built
    rel = kernels.resolve_kernels()[0]
    ksrc = Path("/lib/modules") / rel / "build"
    if not (ksrc / "Makefile").exists():
        raise Skip(f"no headers for {rel}")
    with tempfile.TemporaryDirectory() as tree:
        build = Path(tree) / conf["PACKAGE_NAME"] / conf["PACKAGE_VERSION"] \
            / "build"
        shutil.copytree(REPO / "module", build)
        cmd = conf["MAKE[0]"].replace("${kernel_source_dir}", str(ksrc)) \
            .replace("${dkms_tree}", tree) \
            .replace("${PACKAGE_NAME}", conf["PACKAGE_NAME"]) \
            .replace("${PACKAGE_VERSION}", conf["PACKAGE_VERSION"])
        assert "${" not in cmd, cmd
        r = subprocess.run(cmd, shell=True, capture_output=True, text=True)
        assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
        for name in built:
            assert (build / f"{name}.ko").exists(), f"{name}.ko not built"
