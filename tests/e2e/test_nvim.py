"""End to end with Neovim's built-in LSP client (headless): open a template with an error
and read the diagnostic back from Neovim."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import line_of

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600),
              pytest.mark.skipif(shutil.which("nvim") is None, reason="needs Neovim")]
SCRIPT = Path(__file__).with_name("nvim") / "diagnostics.lua"

TEMPLATE = """\
{#- cutlens
kind = "cuda"
[samples.a]
X = { dtype = "float32", size = [64] }
[variants]
block = [32, 64]
-#}
#include <cstdint>
__global__ void k(float* x) {
  x[threadIdx.x] = {{ blockk }};
}
"""


def run_nvim(tmp_path: Path, text: str, source: str, want: int = 1) -> dict:
    f = tmp_path / "t.cu.jinja"
    f.write_text(text)
    out = tmp_path / "diags.json"
    env = {**os.environ, "CUTLENS_PYTHON": sys.executable, "CUTLENS_OUT": str(out),
           "CUTLENS_WANT": str(want), "CUTLENS_WANT_SOURCE": source, "HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_STATE_HOME": str(tmp_path / "state")}
    subprocess.run(["nvim", "--headless", "-u", "NONE", "-i", "NONE", "-n", str(f),
                    "-c", f"luafile {SCRIPT}"], env=env, cwd=tmp_path, timeout=180,
                   check=True, capture_output=True)
    return json.loads(out.read_text())


def test_neovim_shows_the_jinja_error(tmp_path: Path):
    res = run_nvim(tmp_path, TEMPLATE, "cutlens-jinja")
    assert res["ok"], res
    d = res["diagnostics"][0]
    assert d["message"] == "'blockk' is undefined"
    assert d["source"] == "cutlens-jinja"
    assert d["lnum"] == line_of(TEMPLATE, "blockk") - 1
    assert d["col"] == TEMPLATE.splitlines()[d["lnum"]].index("blockk")


@pytest.mark.nvcc
def test_neovim_shows_the_nvcc_error(tmp_path: Path):
    text = TEMPLATE.replace("{{ blockk }}", "{{ block }} + undeclared_in_nvim")
    res = run_nvim(tmp_path, text, "cutlens-nvcc")
    assert res["ok"], res
    d = res["diagnostics"][0]
    assert d["message"] == 'identifier "undeclared_in_nvim" is undefined'
    assert d["source"] == "cutlens-nvcc"
    assert d["lnum"] == line_of(text, "undeclared_in_nvim") - 1
