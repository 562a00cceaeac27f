"""``cutlens bench`` with runtime variant parameters, end to end on the CPU: nvcc builds each
distinct translation unit once, every variant of a build runs with its own argument values
(the kernel computes on the host, CPU workers call it), verifies against the reference, and
the report records the sweep (builds, compiled, cold, wall time, best against torch)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cutlens.results.store import ResultStore

pytestmark = pytest.mark.nvcc

TEMPLATE = """\
{#- cutlens
kind = "cuda"
[samples.vec]
X = { dtype = "float32", size = [64, 32] }
Y = { dtype = "float32", size = [64, 32] }
[variants]
unroll = [1, 2]
scale = [1, 2, 3]
offset = ["zero", "half"]
[variants.runtime]
scale = "int"
offset = { type = "double", values = { zero = 0.0, half = 0.5 } }
[bench]
reference = "Y = X * scale + {'zero': 0.0, 'half': 0.5}[offset]"
bytes = "2 * X.numel() * 4"
-#}
{{ template.header() }}
{{ template.globals() }}
extern "C" {
{{ kernel.def_kernel(inputs=[X], outputs=[Y], names_str="X, Y") }} {
  const int64_t rows = {{ kernel.size(X, 0) }}, cols = {{ kernel.size(X, 1) }};
  // the workspace depends on a runtime argument, as a stream-K decomposition's does
  if (workspace_size) { *workspace_size = 64 * {{ scale }}; return 0; }
  if (!workspace) return 2;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; c += {{ unroll }})
      for (int u = 0; u < {{ unroll }}; ++u)
        {{ kernel.ptr(Y) }}[r * cols + c + u] =
            float({{ scale }}) * {{ kernel.ptr(X) }}[r * cols + c + u] + float({{ offset }});
  return 0;
}
}
"""


def cutlens(root, *args):
    return subprocess.run([sys.executable, "-m", "cutlens", *args], capture_output=True,
                          text=True, cwd=root, timeout=600)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("runtime")
    (root / "cutlens.toml").write_text(
        '[bench]\ndevice = "cpu"\nwarmup_ms = 1\nrep_ms = 5\nmin_iters = 5\n'
        "max_iters = 50\nflush_bytes = 1048576\ntimeout_s = 120\n")
    (root / "v.cu.jinja").write_text(TEMPLATE)
    out = cutlens(root, "bench", "v.cu.jinja", "--format", "json")
    assert out.returncode == 0, out.stderr
    return root, json.loads(out.stdout)


def test_one_build_per_distinct_tu_each_variant_with_its_values(workspace):
    _root, rep = workspace
    rows = {r["variant_name"]: r for r in rep["results"]}
    assert len(rows) == 12
    for name, r in rows.items():
        assert r["verified"] is True and r["error"] is None, (name, r)
        assert r["workspace_bytes"] == 64 * r["variant"]["scale"]
    assert len({r["build"] for r in rows.values()}) == 2
    assert {r["variant"]["unroll"] for r in rows.values() if r["build"] ==
            rows["unroll=1 scale=3 half"]["build"]} == {1}
    assert (rep["builds"], rep["compiled"], rep["cold"], rep["variants"]) == (2, 2, True, 12)
    assert rep["sweep_wall_s"] > 0
    best = rep["best"]["vec"]
    assert best["variant_name"] in rows and best["torch_ms"] == rep["baseline"]["vec"]["ms"]
    assert best["vs_torch"] == pytest.approx(best["torch_ms"] / best["ms"])


def test_a_warm_sweep_compiles_nothing_and_stores_each_variant(workspace):
    root, _rep = workspace
    out = cutlens(root, "bench", "v.cu.jinja", "--format", "json", "--variants", "*half*")
    assert out.returncode == 0, out.stderr
    rep = json.loads(out.stdout)
    assert (rep["builds"], rep["compiled"], rep["cold"], rep["variants"]) == (2, 0, False, 6)
    names = {r["variant_name"] for r in ResultStore(root).history() if r["kind"] == "variant"}
    assert len(names) == 12  # the store keeps variants by name, as before


def test_build_only_and_render_name_the_shared_build(workspace):
    root, _rep = workspace
    out = cutlens(root, "bench", "v.cu.jinja", "--build-only")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2 and all("(cached)" in ln and "(6 variants)" in ln for ln in lines)
    assert lines[0].endswith("vec / unroll=1 (6 variants)")
    out = cutlens(root, "render", "v.cu.jinja", "--variant", "unroll=2 scale=3 half")
    assert out.returncode == 0, out.stderr
    head = out.stdout.splitlines()[:2]
    assert head[1] == ("// Runtime arguments (passed when the kernel is called): scale = 3, "
                       "offset = 0.5 (half).")
    assert "float(scale) * X[r * cols + c + u] + float(offset);" in out.stdout
