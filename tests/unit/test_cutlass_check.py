"""Real CUTLASS compiles in CI: the shipped templates check clean (first sample × variant),
and a CollectiveBuilder configuration that trips a static_assert deep inside CUTLASS lands on
the template line that instantiates it, with the configuration's declarations as notes."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from cutlens.check.run import check_paths
from cutlens.template.selection import Selection

from conftest import REPO, line_of

#: Real CUTLASS 3.x units: ~45 s of nvcc each.
pytestmark = [pytest.mark.nvcc, pytest.mark.timeout(1200)]

BAD_GRID = """[variants]
tile = [[64, 128, 64]]          # cooperative needs tile M >= 128: a static_assert in CUTLASS
cluster = [[1, 1]]
schedule = ["cooperative"]
scheduler = ["persistent"]
swizzle = [1]
raster = "heuristic"
decomposition = "heuristic"

"""


def test_bad_collective_builder_config_lands_on_the_instantiating_line(tmp_path):
    src = (REPO / "templates" / "gemm_sm90.cu.jinja").read_text()
    src = src[:src.index("[variants]")] + BAD_GRID + src[src.index("[bench]"):]
    (tmp_path / "gemm_sm90.cu.jinja").write_text(src)
    shutil.copy(REPO / "templates" / "gemm_macros.cuh.jinja", tmp_path)
    report = check_paths([tmp_path / "gemm_sm90.cu.jinja"], Selection("first", "first"),
                         mode="quick")
    errors = [d for d in report.diagnostics if d.severity == "error"]
    assert len(errors) == 1, [d.message for d in errors]
    d = errors[0]
    assert d.message == ('static assertion failed with "Cooperative kernel requires Tile Size '
                         'to be greater than or equal to 128 along the M-dimension."')
    # the innermost frame of the instantiation chain that lies in the rendered TU
    assert d.file.endswith("gemm_sm90.cu.jinja")
    assert d.line == line_of(src, "gemm.initialize(args, workspace, stream)")
    notes = {(r.file.rsplit("/", 1)[-1], r.line, r.message) for r in d.related}
    assert ("gemm_sm90.cu.jinja", line_of(src, "using GemmKernel ="),
            "GemmKernel is declared here") in notes
    assert any(f == "sm90_gemm_tma_warpspecialized_cooperative.hpp" and m == "error reported here"
               for f, _, m in notes)
    assert not d.partial  # the only sample × variant checked


def test_shipped_templates_check_clean():
    """The README's main job, CI-sized: every template, its first sample × variant, through
    both nvcc passes (real CUTLASS 3.x and 2.x builds included)."""
    out = subprocess.run([sys.executable, "-m", "cutlens", "check", "templates/", "--samples",
                          "first", "--variants", "first", "--format", "json"],
                         capture_output=True, text=True, cwd=REPO, timeout=3600)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert '"errors": 0' in out.stdout
