"""The one real CUTLASS case (the only compile-heavy test of the validity pass): a
gemm_sm90 grid with CUTLASS's own invalid combinations, cooperative with a tile M of 64 and
pingpong with stream-K (``static_assert``s in the kernels), found by one front-end pass,
blamed on the right keys, and checked against real ``nvcc -c`` compiles of one invalid and
one valid build."""

from __future__ import annotations

import shutil

import pytest

from cutlens.check.grid_validity import grid_validity
from cutlens.nvcc.options import compile_options, job_for
from cutlens.nvcc.pool import Compiler, Mode
from cutlens.nvcc.toolchain import cutlass_include_dirs
from cutlens.render.renderer import Renderer
from cutlens.template.selection import Selection

from conftest import HAS_NVCC, REPO, line_of

pytestmark = [pytest.mark.nvcc, pytest.mark.skipif(not HAS_NVCC, reason="needs nvcc"),
              pytest.mark.skipif(not cutlass_include_dirs(), reason="needs nvidia-cutlass")]

GRID = """[variants]
tile = [[64, 128, 64], [128, 128, 64]]
cluster = [[1, 1]]
schedule = ["cooperative", "pingpong"]
scheduler = ["persistent", "streamk"]
swizzle = 1
raster = "heuristic"
decomposition = "heuristic"
splits = 1
name = "{{ tile[0] }} {{ schedule }} {{ scheduler }}"

[variants.runtime]
swizzle = "int"
raster = { type = "int", values = { heuristic = 0, along_m = 1, along_n = 2 } }
"""
GRID += ('decomposition = { type = "int", values = { heuristic = 0, dataparallel = 1, '
         'splitk = 2, streamk = 3 } }\nsplits = "int"\n\n')


def test_cutlass_sm90_grid(project, tmp_path):
    src = (REPO / "templates" / "gemm_sm90.cu.jinja").read_text()
    src = src[:src.index("[variants]")] + GRID + src[src.index("# The tiles here"):]
    project.write("gemm.cu.jinja", src)
    shutil.copy(REPO / "templates" / "gemm_macros.cuh.jinja", project.root)
    t = project.load("gemm.cu.jinja")
    assert not t.errors, t.errors
    gv = grid_validity(t, Renderer(), Selection(samples="first", variants="all"),
                       project.root / ".cache", jobs=1)
    verdicts = {r.variant.name: r for r in gv.rows}
    assert {n for n, r in verdicts.items() if r.valid is not True} == {
        "64 cooperative persistent", "64 cooperative streamk", "64 pingpong streamk",
        "128 pingpong streamk"}, {n: r.reason for n, r in verdicts.items()}
    pp_sk = verdicts["128 pingpong streamk"]
    assert pp_sk.keys == ("schedule", "scheduler")
    assert pp_sk.line == line_of(src, "schedule = [")
    assert "Ping-pong kernel does not currently support stream-K" in pp_sk.reason
    coop64 = verdicts["64 cooperative persistent"]
    assert coop64.keys == ("tile", "schedule") and coop64.line == line_of(src, "tile = [")
    assert verdicts["64 cooperative streamk"].keys == ("tile",)
    assert verdicts["64 pingpong streamk"].keys == ("scheduler",)
    assert gv.stats.alone_units == 0  # every build judged in a batch
    assert set(gv.stats.side_cpu_s) == {"host", "device"}
    # the real compiles: the invalid build fails with the same assertion; a valid one builds
    compiler = Compiler(tmp_path / "build", jobs=1)
    units = {o.unit.variant.name: o.unit for o in gv.outcomes}
    for name, ok in (("128 pingpong streamk", False), ("128 cooperative persistent", True)):
        u = units[name]
        res = compiler.compile_sync(job_for(u, Mode.FULL, compile_options(t, u)))
        assert res.ok is ok, (name, res.output[-2000:])
        if not ok:
            assert any("stream-K" in m.message for m in res.errors)
