"""``examples/flashinfer/cutlens.toml``'s own commands, run as written in a shell (issue 26):
the ``CPATH`` line finds cuRAND's headers in the ``nvidia.cu13`` namespace package, and
``cutlens check`` then compiles what includes them. With a FlashInfer checkout
(``$CUTLENS_FLASHINFER``, v0.6.6 with 3rdparty/cutlass) the commands run on it too."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import HAS_NVCC, REPO

EXAMPLE = REPO / "examples" / "flashinfer" / "cutlens.toml"


def commands() -> list[str]:
    """The shell commands of the example's header (comment lines indented by three)."""
    out = []
    for line in EXAMPLE.read_text().splitlines():
        if not line.startswith("#"):
            break
        if line.startswith("#   ") and not line.startswith("#    "):
            out.append(line[4:].split("  #", 1)[0].strip())
    return out


def shell(script: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run ``script`` in bash with ``python`` and ``cutlens`` meaning this interpreter's, as
    on a fresh install of cutlens into it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, run in (("python", sys.executable), ("cutlens", f"{sys.executable} -m cutlens")):
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec {run} "$@"\n')
        shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "CPATH"}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=900)


def test_the_example_names_its_commands():
    cmds = commands()
    assert cmds[0].startswith("cp examples/flashinfer/cutlens.toml /path/to/flashinfer")
    assert cmds[1].startswith("export CPATH=$(python -c 'import nvidia.cu13")
    assert cmds[2:] == ["cutlens check /path/to/flashinfer/csrc/single_decode_kernel_inst.jinja",
                        "cutlens check /path/to/flashinfer/csrc/"]


@pytest.mark.nvcc
@pytest.mark.skipif(not HAS_NVCC, reason="needs nvcc")
def test_the_cpath_line_works_as_written(tmp_path: Path):
    """The line that raised TypeError (``nvidia.cu13.__file__`` is None): now it sets a
    CPATH under which curand_kernel.h is found, and a unit including it checks clean."""
    pytest.importorskip("nvidia.cu13")
    (tmp_path / "rand.cu.jinja").write_text(
        "#include <curand_kernel.h>\n"
        "__global__ void k(float* p) { curandState s; curand_init(1, 0, 0, &s);"
        " *p = curand_uniform(&s); }\n")
    script = (f"{commands()[1]}\necho \"CPATH=$CPATH\"\n"
              f"cutlens check {tmp_path / 'rand.cu.jinja'} --jobs 1\n")
    out = shell(script, tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    cpath = out.stdout.splitlines()[0].removeprefix("CPATH=").split(os.pathsep)
    assert any((Path(d) / "curand_kernel.h").is_file() for d in cpath), cpath
    assert "1 template(s), 0 error(s)" in out.stderr


@pytest.mark.nvcc
@pytest.mark.skipif(not HAS_NVCC or not os.environ.get("CUTLENS_FLASHINFER"),
                    reason="needs nvcc and $CUTLENS_FLASHINFER (a FlashInfer v0.6.6 checkout)")
def test_the_commands_work_on_a_flashinfer_checkout(tmp_path: Path):
    """cp, export CPATH, check the decode template: clean (the checkout is not written to:
    its csrc/ is copied beside links to include/ and 3rdparty/)."""
    pytest.importorskip("nvidia.cu13")
    checkout = Path(os.environ["CUTLENS_FLASHINFER"])
    fi = tmp_path / "flashinfer"
    shutil.copytree(checkout / "csrc", fi / "csrc")
    for name in ("include", "3rdparty"):
        (fi / name).symlink_to(checkout / name)
    script = "\n".join(commands()[:3]).replace("/path/to/flashinfer", str(fi))
    out = shell(script + " --jobs 1\n", tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 template(s), 0 error(s), 0 warning(s)" in out.stderr
