"""Shape-generic builds: samples whose units differ only in sizes render one text (the sizes
become size arguments of the kernel), unless the template uses a size while rendering; the
bench sweep then builds each distinct unit once and still verifies every sample (real nvcc,
CPU bench workers)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cutlens.bench.template_sweep import SweepPlan, SweepStats, build_groups, sweep
from cutlens.check.jinja_tier import jinja_check
from cutlens.nvcc.options import job_for, unit_id
from cutlens.nvcc.pool import CompileOptions, Mode
from cutlens.render.renderer import RenderedUnit
from cutlens.render.shapes import render_shape_generic
from cutlens.template.selection import Selection
from cutlens.template.shapes import generic_samples

from conftest import HAS_NVCC, line_of

ROOT = Path(__file__).parents[2]

#: Three GEMM shapes (M = N = K in two, M apart in the third) and a host-side "kernel":
#: Y = X @ W (W read as K x N, column-major, like the shipped gemm_sm90's samples).
GEMM = """\
{#- cutlens
kind = "cuda"
[samples.square]
X = { dtype = "float32", size = [16, 16] }
W = { dtype = "float32", size = [16, 16], stride = [1, 16] }
Y = { dtype = "float32", size = [16, 16] }
[samples.large]
X = { dtype = "float32", size = [32, 32] }
W = { dtype = "float32", size = [32, 32], stride = [1, 32] }
Y = { dtype = "float32", size = [32, 32] }
[samples.skinny]
X = { dtype = "float32", size = [8, 16] }
W = { dtype = "float32", size = [16, 16], stride = [1, 16] }
Y = { dtype = "float32", size = [8, 16] }
[variants]
unroll = [1, 2]
[bench]
reference = "Y = X @ W"
-#}
{{ template.header() }}
{{ template.globals() }}
// {{ X.describe() }}
extern "C" {
{{ kernel.def_kernel(inputs=[X, W], outputs=[Y], names_str="X, W, Y") }} {
  const int64_t m = {{ kernel.size(X, 0) }}, k = {{ kernel.size(X, 1) }};
  const int64_t n = {{ kernel.size(W, 1) }};
  const int64_t ldw = {{ kernel.stride(W, 1) }};
  if (workspace_size) { *workspace_size = 0; return 0; }
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; j += {{ unroll }})
      for (int u = 0; u < {{ unroll }}; ++u) {
        float acc = 0.f;
        for (int64_t p = 0; p < k; ++p)
          acc += {{ kernel.ptr(X) }}[i * k + p] * {{ kernel.ptr(W) }}[(j + u) * ldw + p];
        {{ kernel.ptr(Y) }}[i * n + j + u] = acc;
      }
  return 0;
}
}
"""


def _units(project, text: str, generic: bool = True) -> list[RenderedUnit]:
    project.write("t.cu.jinja", text)
    t = project.load("t.cu.jinja")
    jc = jinja_check(t, project.renderer, Selection(), shape_generic=generic)
    assert not jc.failures, [f.diagnostics for f in jc.failures]
    return jc.units


def test_generic_samples_share_dimensions_equal_in_every_sample(project):
    project.write("t.cu.jinja", GEMM)
    t = project.load("t.cu.jinja")
    gen = generic_samples(t)
    sq, sk = gen["square"], gen["skinny"]
    # M differs in skinny, N = K everywhere: two symbols, the same in each sample
    assert [str(d) for d in sq.nodes["X"].get_size()] == ["s0", "s1"]
    assert [str(d) for d in sk.nodes["W"].get_size()] == ["s1", "s1"]
    assert [str(d) for d in sk.nodes["W"].get_stride()] == ["1", "s1"]  # column-major
    assert sk.hints == {"s0": 8, "s1": 16} and gen["large"].hints == {"s0": 32, "s1": 32}
    assert sq.nodes["X"].concrete(sq.hints)["size"] == [16, 16]


def test_extent_one_and_padded_strides_stay_literal(project):
    project.write("t.cu.jinja", GEMM.replace(
        'Y = { dtype = "float32", size = [8, 16] }',
        'Y = { dtype = "float32", size = [8, 16], stride = [20, 1] }').replace(
        'X = { dtype = "float32", size = [32, 32] }',
        'X = { dtype = "float32", size = [1, 32] }'))
    gen = generic_samples(project.load("t.cu.jinja"))
    assert [str(d) for d in gen["skinny"].nodes["Y"].get_stride()] == ["20", "1"]
    assert str(gen["large"].nodes["X"].get_size()[0]) == "1"


def test_three_shapes_render_one_unit_per_variant_with_size_arguments(project):
    units = _units(project, GEMM)
    assert {u.shapes for u in units} == {"generic"}
    assert len({u.text for u in units}) == 2  # one per unroll, not 6
    u = next(u for u in units if u.sample.name == "skinny")
    assert u.signature is not None
    assert u.signature.text.startswith(
        "PT_EXPORT int cutlens_t(const float* X, const float* W, float* Y, int64_t ks0, "
        "int64_t ks1,")
    assert "const int64_t m = ks0, k = ks1;" in u.text and "// float32[s0, s1]" in u.text
    # the call signature passes the sample's own sizes: the buffers are the static ones
    sig = u.signature.to_json(u.sample.hints, [], u.variant.values)
    sizes = {a["name"]: a["value"] for a in sig["args"] if a["kind"] == "size"}
    assert sizes == {"ks0": 8, "ks1": 16}
    static = next(s for s in _units(project, GEMM, generic=False)
                  if s.sample.name == "skinny" and s.variant.name == u.variant.name)
    assert static.signature is not None
    static_sig = static.signature.to_json(static.sample.hints, [], static.variant.values)
    assert [a for a in sig["args"] if a["kind"] != "size"] == static_sig["args"]
    # the build groups: one job per variant, named without a sample
    opts = CompileOptions(cutlass=False)
    groups = build_groups(units, opts)
    assert len(groups) == 2 and sorted(len(us) for _, us in groups) == [3, 3]
    assert {job.name for job, _ in groups} == {"t-shapes-unroll-1", "t-shapes-unroll-2"}
    assert len(build_groups(_units(project, GEMM, generic=False), opts)) == 6


ALL = {"square", "large", "skinny"}


@pytest.mark.parametrize("use, line_text, why, static", [
    ("{% if X.get_size()[0] > 10 %}// big{% endif %}", "{% if X.get_size()",
     "fails with run-time sizes", ALL),
    ("// rows {{ X.get_size()[0] }}", "// rows", "renders differently", ALL),
    # a hook's text compared: only the sample where the comparison holds renders otherwise
    ("{% if kernel.size(X, 0) == '16L' %}// sixteen{% endif %}", "{% if kernel.size",
     "renders differently", {"square"}),
    ("// {{ kernel.size(X, 0)[:2] }}", "// {{ kernel.size(X, 0)[:2]", "renders differently",
     ALL),
    ("using Rows = Int<{{ kernel.size(X, 0) }}>;", "using Rows", "needs a constant", ALL),
])
def test_a_size_used_while_rendering_stays_compile_time(project, use, line_text, why, static):
    text = GEMM.replace("// {{ X.describe() }}", use)
    units = _units(project, text)
    line = line_of(text, line_text)
    assert {u.sample.name for u in units if u.shapes == "static"} == static
    for u in units:
        if u.shapes == "static":
            assert f"t.cu.jinja:{line} " in u.static_sizes and why in u.static_sizes, \
                u.static_sizes
    # the static units are exactly the plain render, named per sample
    plain = {(u.sample.name, u.variant.name): u.text for u in _units(project, text, False)}
    assert {(u.sample.name, u.variant.name): u.text for u in units
            if u.shapes == "static"} == {k: v for k, v in plain.items() if k[0] in static}
    groups = build_groups(units, CompileOptions(cutlass=False))
    assert len(groups) == 2 * len(static) + (2 if static != ALL else 0)


def test_shipped_templates_render_as_before_where_they_use_sizes(project):
    """softmax and bias_act use their sizes while rendering: their units stay the static
    ones; gemm_sm90's three shapes share one unit per build."""
    from cutlens import config
    from cutlens.render.renderer import Renderer
    from cutlens.template.loader import load

    cfg = config.load(ROOT)
    r = Renderer()
    for name in ("softmax", "bias_act"):
        t = load(ROOT / "templates" / f"{name}.cu.jinja", cfg)
        s = t.samples[0]
        for v in t.variant_table[s.name][:3]:
            u = render_shape_generic(r, t, s, v)
            assert isinstance(u, RenderedUnit) and u.shapes == "static", name
            plain = r.render(t, s, v)
            assert isinstance(plain, RenderedUnit) and u.text == plain.text
    t = load(ROOT / "templates" / "gemm_sm90.cu.jinja", cfg)
    sel = Selection(["square", "large", "skinny"], [])
    jc = jinja_check(t, r, sel, shape_generic=True)
    assert len(jc.units) == 159 and not jc.failures
    groups = build_groups(jc.units, CompileOptions())
    assert len(groups) == 13
    assert all({u.sample.name for u in us} == {"square", "large", "skinny"} for _, us in groups)


def test_variants_json_gives_each_variant_its_unit(project):
    project.write("t.cu.jinja", GEMM)
    out = subprocess.run([sys.executable, "-m", "cutlens", "variants", "t.cu.jinja",
                          "--format", "json"], cwd=project.root, capture_output=True,
                         text=True, env={"PYTHONPATH": str(ROOT / "server"), "PATH": "/usr/bin"})
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    units = {(s["name"], v["name"]): v["unit"] for s in doc["samples"] for v in s["variants"]}
    assert len(units) == 6 and len(set(units.values())) == 2
    assert units[("square", "unroll=1")] == units[("skinny", "unroll=1")]
    v = doc["samples"][0]["variants"][0]
    assert v["shapes"] == "generic" and "static_sizes" not in v
    # the id is the bench sweep's build group of the same unit
    t = project.load("t.cu.jinja")
    jc = jinja_check(t, project.renderer, Selection(), shape_generic=True)
    u = jc.units[0]
    from cutlens.nvcc.options import compile_options
    assert units[(u.sample.name, u.variant.name)] == unit_id(
        job_for(u, Mode.BUILD, compile_options(t, u)))


@pytest.mark.nvcc
@pytest.mark.skipif(not HAS_NVCC, reason="needs nvcc")
async def test_sweep_builds_once_per_variant_and_verifies_every_sample(project, tmp_path):
    pytest.importorskip("torch")  # the bench workers import it
    from cutlens.bench.executor import ExecutorConfig
    from cutlens.bench.launch import open_executor
    from cutlens.results.store import ResultStore

    project.write("t.cu.jinja", GEMM)
    t = project.load("t.cu.jinja")
    rows: dict[bool, list[dict]] = {}
    stats: dict[bool, SweepStats] = {}
    async with open_executor(ExecutorConfig(device="cpu", gpus=["0"]),
                             tmp_path / "build") as ex:
        for generic in (True, False):
            stats[generic] = SweepStats()
            rows[generic] = await sweep(SweepPlan(t, shape_generic=generic, baseline=False),
                                        project.renderer, ex.compiler, ex.runner,
                                        ResultStore(project.root), stats=stats[generic])
    assert stats[True].builds == 2 and stats[True].compiled == 2
    assert stats[False].builds == 6 and stats[False].compiled == 6
    for generic in (True, False):
        got = {(r["sample"], r["variant_name"]): r for r in rows[generic]}
        assert len(got) == 6
        for r in got.values():
            assert r["error"] is None and r["verified"] is True, r
            assert r["compile"]["phases"]["cicc"] > 0
    shared = {r["build"] for r in rows[True]}
    assert len(shared) == 2
    assert {r["compile"]["shapes"] for r in rows[True]} == {"generic"}


@pytest.mark.nvcc
@pytest.mark.skipif(not HAS_NVCC, reason="needs nvcc")
def test_bench_cli_static_sizes_flag_and_compile_report(tmp_path):
    pytest.importorskip("torch")
    (tmp_path / "cutlens.toml").write_text(
        '[bench]\ndevice = "cpu"\nwarmup_ms = 1\nrep_ms = 5\nmin_iters = 5\n'
        "max_iters = 50\nflush_bytes = 1048576\ntimeout_s = 120\n")
    (tmp_path / "t.cu.jinja").write_text(GEMM)

    def bench(*args: str) -> dict:
        out = subprocess.run([sys.executable, "-m", "cutlens", "bench", "t.cu.jinja",
                              "--format", "json", "--no-baseline", *args], cwd=tmp_path,
                             capture_output=True, text=True, timeout=600,
                             env={"PYTHONPATH": str(ROOT / "server"), "PATH": "/usr/bin:"
                                  "/usr/local/bin:/usr/local/cuda/bin"})
        assert out.returncode == 0, out.stderr
        assert "dominates" in out.stderr  # the compile summary, beside the JSON
        return json.loads(out.stdout)

    generic, static = bench(), bench("--static-sizes")
    assert (generic["builds"], generic["compiled"]) == (2, 2)
    assert (static["builds"], static["compiled"]) == (6, 6)
    for rep in (generic, static):
        assert len(rep["results"]) == 6
        assert all(r["verified"] is True for r in rep["results"])
        c = rep["results"][0]["compile"]
        assert c["phases"]["cicc"] > 0 and "top_instantiations" in c
        summary = rep["compile_summary"]
        assert summary["builds"] == rep["builds"]
        assert summary["phases"] and summary["dominant_phase"] in summary["phases"]
    assert {r["compile"]["shapes"] for r in generic["results"]} == {"generic"}
    assert "shapes" not in static["results"][0]["compile"]
    assert {(r["sample"], r["variant_name"]) for r in generic["results"]} == {
        (r["sample"], r["variant_name"]) for r in static["results"]}


def test_static_sizes_config_key_keeps_the_sizes_compiled_in(project):
    project.write("t.cu.jinja", GEMM.replace('reference = "Y = X @ W"',
                                             'reference = "Y = X @ W"\nstatic_sizes = true'))
    t = project.load("t.cu.jinja")
    assert not t.errors and t.bench.static_sizes is True
    assert "static_sizes" not in t.bench.to_json()  # not the bench worker's business
    units, failures = SweepPlan(t).units(project.renderer)
    assert not failures and {u.shapes for u in units} == {""}
    assert len(build_groups(units, CompileOptions(cutlass=False))) == 6
