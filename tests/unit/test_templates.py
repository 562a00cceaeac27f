"""The shipped templates (templates/): every sample × variant renders clean, the rendered code
follows the sample nodes (layouts, dtypes, bias), the variant grids keep CUTLASS's rules, the
op-list generator filters like Inductor's, and the plain-CUDA templates (plus gemm_sm80's
device front end) compile with the real nvcc."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cutlens import config as config
from cutlens.check.jinja_tier import jinja_check
from cutlens.nvcc import toolchain as nv
from cutlens.render.renderer import RenderedUnit, Renderer
from cutlens.template.discovery import discover, load_template
from cutlens.template.ir import make_node
from cutlens.template.model import Sample, Template, Variant

from conftest import REPO


def with_sample(t: Template, sample: Sample) -> Template:
    """``t`` with one more sample, its variants expanded for it (as the loader expands
    a template's own samples)."""
    from dataclasses import replace

    from cutlens.template.variants import expand_variants

    new = replace(t, samples=[*t.samples, sample], variant_table=dict(t.variant_table))
    new.variant_table[sample.name] = expand_variants(new, sample)
    return new

TEMPLATES = REPO / "templates"
SHIPPED = ["gemm_sm90.cu.jinja", "gemm_sm90_generated.cu.jinja", "gemm_sm80.cu.jinja",
           "bias_act.cu.jinja", "softmax.cu.jinja", "copy.cu.jinja"]
CUDA_TEMPLATES = ["bias_act.cu.jinja", "softmax.cu.jinja", "copy.cu.jinja"]

sys.path.insert(0, str(TEMPLATES))
import gemm_sm90_ops  # noqa: E402

#: Real CUTLASS units (~45 s of nvcc each) in the nvcc tests.
pytestmark = pytest.mark.timeout(1200)


def _load(name: str) -> Template:
    return load_template(TEMPLATES / name, config.load(config.find_root(TEMPLATES)))


def _render(t: Template, sample: Sample | str | None = None, variant=None) -> RenderedUnit:
    s = sample if isinstance(sample, Sample) else t.sample(sample)
    if s.name not in t.variant_table:  # a what-if sample made by the test
        t = with_sample(t, s)
    u = Renderer().render(t, s, t.variant(s, variant))
    assert isinstance(u, RenderedUnit), getattr(u, "diagnostics", u)
    assert u.warnings == []
    return u


def _with_nodes(t: Template, base: str, name: str, **nodes: dict | None) -> Sample:
    """A copy of sample ``base`` with some nodes replaced (``None``: absent)."""
    s = t.sample(base)
    new = Sample(name, nodes=dict(s.nodes), hints=dict(s.hints), vars=dict(s.vars))
    for k, spec in nodes.items():
        new.nodes[k] = None if spec is None else make_node(k, spec)
    return new


def _line(text: str, prefix: str) -> str:
    return next(ln.strip() for ln in text.splitlines() if ln.strip().startswith(prefix))


# ------------------------------------------------------------------------- every template
def test_discovery_finds_the_shipped_templates_and_partials():
    found = discover([TEMPLATES], config.load(config.find_root(TEMPLATES)))
    assert sorted(p.name for p in found.templates) == sorted(SHIPPED)
    assert sorted(p.name for p in found.partials) == ["cuda_macros.cuh.jinja",
                                                      "gemm_macros.cuh.jinja"]


@pytest.mark.parametrize("name", SHIPPED)
def test_every_sample_and_variant_renders_clean(name):
    t = _load(name)
    assert t.errors == []
    jc = jinja_check(t, Renderer())
    assert jc.diagnostics == [], [d.message for d in jc.diagnostics][:5]
    assert jc.failures == []
    pairs = sum(len(t.variants(s)) for s in t.samples)
    assert len(jc.units) == pairs > 0
    for u in jc.units:
        assert "#error" not in u.text, (u.sample.name, u.variant.name)
        assert u.signature is not None and u.signature.kernel_name == t.kernel_name
        assert 'extern "C"' in u.text
    assert t.bench.reference and (t.bench.flops or t.bench.bytes)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_sample_has_variants(name):
    t = _load(name)
    for s in t.samples:
        assert t.variants(s), s.name


# ------------------------------------------------------------------------- gemm_sm90
def test_gemm_sm90_grid_size_and_first_variant():
    t = _load("gemm_sm90.cu.jinja")
    assert [s.name for s in t.samples] == ["square", "large", "skinny", "dynamic", "bias"]
    for s in t.samples:
        vs = t.variants(s)
        assert 40 <= len(vs) <= 64  # issue 18: at least 40 points...
        assert len({v.build_name for v in vs}) <= 15  # ...from one wave of builds on 16 cores
        assert vs[0].name == "128x128x64 1x1 cooperative persistent swizzle=1"


def test_gemm_sm90_grid_keeps_cutlass_rules():
    t = _load("gemm_sm90.cu.jinja")
    vs = t.variants(t.sample("square"))
    for v in vs:
        tile, sched, scheduler = v.values["tile"], v.values["schedule"], v.values["scheduler"]
        if sched == "cooperative":
            assert tile[0] >= 128  # static_assert in the cooperative kernel
        else:
            assert tile[0] * tile[1] <= 128 * 128  # one warpgroup's accumulators
            assert scheduler != "streamk"  # static_assert in the pingpong kernel
    kinds = {(v.values["schedule"], v.values["scheduler"]) for v in vs}
    assert kinds == {("cooperative", "persistent"), ("cooperative", "streamk"),
                     ("pingpong", "persistent")}
    assert {tuple(v.values["cluster"]) for v in vs} == {(1, 1), (2, 1), (1, 2)}
    assert {v.values["swizzle"] for v in vs} == {1, 2, 4, 8}
    forced = [v for v in vs if v.values["decomposition"] == "streamk"]
    assert forced and all(v.values["scheduler"] == "streamk" for v in forced)
    assert all(v.name.split()[3] == "streamk-forced" for v in forced)
    split = [v for v in vs if v.values["decomposition"] == "splitk"]
    assert split and all(v.values["splits"] == 2 and v.values["scheduler"] == "streamk"
                         and v.name.split()[3] == "streamk-splitk2" for v in split)
    assert all(v.values["splits"] == 1 for v in vs if v not in split)
    assert len(vs) == 53 and len({v.build_name for v in vs}) == 13
    tuned = [v for v in vs if v.values["epilogue_tile"] != "auto"]
    assert len(tuned) == 7 and all(v.name.endswith(" along_m epi=128x64") for v in tuned)
    assert len({v.name for v in vs}) == len(vs)
    # swizzle, raster order and decomposition are the tile scheduler's: runtime parameters
    assert all(v.runtime == ("swizzle", "raster", "decomposition", "splits") for v in vs)
    assert {v.values["raster"] for v in vs} == {"heuristic", "along_m", "along_n"}


def test_gemm_sm90_epilogue_keys_render():
    t = _load("gemm_sm90.cu.jinja")
    tuned = _render(t, "square", "256x128x64 1x2 cooperative persistent swizzle=4 along_m "
                    "epi=128x64").text
    assert "    Shape<_128, _64>,\n    ElementAccumulator, ElementCompute," in tuned
    assert "args.scheduler.raster_order = static_cast<decltype(args.scheduler.raster_order)>" \
           "(raster);" in tuned
    assert "EpilogueTileAuto" not in tuned
    plain = _render(t, "square").text
    assert "cutlass::epilogue::collective::EpilogueTileAuto,\n" in plain
    assert "using EpilogueSchedule = cutlass::epilogue::TmaWarpSpecializedCooperative;" in plain
    grid = t.settings["variants"]
    nosmem = Renderer().render(t, t.sample("square"), Variant(
        name="nosmem", index=0, values={**t.variant(t.sample("square"), 0).values,
                                        "epilogue": "nosmem"}))
    assert "using EpilogueSchedule = cutlass::epilogue::NoSmemWarpSpecialized;" in nosmem.text
    assert grid["epilogue"] == "tma"

def test_gemm_sm90_layout_tags_follow_strides():
    t = _load("gemm_sm90.cu.jinja")
    tn = _render(t, "square").text  # W stride [1, K]: column-major K x N
    assert _line(tn, "using LayoutA") == "using LayoutA = cutlass::layout::RowMajor;"
    assert _line(tn, "using LayoutB") == "using LayoutB = cutlass::layout::ColumnMajor;"
    assert "{ 4096L /* stride_w_rows */, cute::Int<1>{} /* stride_w_cols */" in tn

    w_row = {"dtype": "bfloat16", "size": [4096, 4096]}
    tt = _render(t, _with_nodes(t, "square", "w_row", W=w_row)).text
    assert _line(tt, "using LayoutB") == "using LayoutB = cutlass::layout::RowMajor;"
    assert "{ cute::Int<1>{} /* stride_w_rows */, 4096L /* stride_w_cols */" in tt

    x_col = {"dtype": "bfloat16", "size": [4096, 4096], "stride": [1, 4096]}
    nt = _render(t, _with_nodes(t, "square", "x_col", X=x_col)).text
    assert _line(nt, "using LayoutA") == "using LayoutA = cutlass::layout::ColumnMajor;"
    assert "{ cute::Int<1>{} /* stride_x_rows */, 4096L /* stride_x_cols */" in nt


def test_gemm_sm90_dtypes_schedules_and_signature():
    t = _load("gemm_sm90.cu.jinja")
    u = _render(t, "square")
    assert _line(u.text, "using ElementA") == "using ElementA = cutlass::bfloat16_t;"
    assert _line(u.text, "using ElementD") == "using ElementD = cutlass::bfloat16_t;"
    assert "using KernelSchedule = cutlass::gemm::KernelTmaWarpSpecializedCooperative;" in u.text
    assert "using TileScheduler = cutlass::gemm::PersistentScheduler;" in u.text
    assert "int cutlens_gemm_sm90(const bfloat16* X, const bfloat16* W, bfloat16* Y, " \
           "int swizzle, int raster, int decomposition, int splits, " \
           "size_t* workspace_size, uint8_t* workspace, cudaStream_t stream)" in u.text
    # the workspace query comes before the null checks (its pointers may be null)
    assert u.text.index("*workspace_size = Gemm::get_workspace_size") < u.text.index(
        'throw std::runtime_error("input X is null')
    assert "return kCannotImplement;" in u.text

    d = _render(t, "dynamic")
    assert _line(d.text, "using ElementA") == "using ElementA = cutlass::half_t;"
    assert "const half* X, const half* W, half* Y, int64_t M, int swizzle, int raster, " \
           "int decomposition, int splits, size_t* workspace_size" in d.text
    # locals never shadow a size argument (`const int64_t M = M;` would read itself)
    assert "const int64_t problem_m = M;" in d.text
    assert _line(d.text, "using LayoutB") == "using LayoutB = cutlass::layout::RowMajor;"

    pp = _render(t, "square", "128x128x64 2x1 pingpong persistent swizzle=8").text
    assert "cutlass::gemm::KernelTmaWarpSpecializedPingpong;" in pp
    assert "using EpilogueSchedule = cutlass::epilogue::TmaWarpSpecialized;" in pp
    assert "using ClusterShape = Shape<_2, _1, _1>;" in pp
    assert "args.scheduler.max_swizzle_size = swizzle;" in pp
    assert "decomposition_mode" not in pp  # the persistent scheduler has none
    assert pp == _render(t, "square", "128x128x64 2x1 pingpong persistent swizzle=1").text
    sk = _render(t, "square", "128x256x64 2x1 cooperative streamk swizzle=1").text
    assert "using TileScheduler = cutlass::gemm::StreamKScheduler;" in sk
    assert "args.scheduler.decomposition_mode = static_cast<decltype(" \
           "args.scheduler.decomposition_mode)>(decomposition);" in sk
    assert "args.scheduler.splits = splits;" in sk
    assert sk == _render(t, "square", "128x256x64 2x1 cooperative streamk-splitk2 swizzle=1").text


def test_gemm_sm90_runtime_values_are_cutlass_enums():
    """The C values passed for raster and decomposition are CUTLASS's enum values
    (cutlass/gemm/kernel/tile_scheduler_detail.hpp: RasterOrderOptions, DecompositionMode)."""
    t = _load("gemm_sm90.cu.jinja")
    hdr = Path(nv.cutlass_include_dirs()[0]) / "cutlass/gemm/kernel/tile_scheduler_detail.hpp" \
        if nv.cutlass_include_dirs() else None
    if hdr is None or not hdr.is_file():
        pytest.skip("no CUTLASS headers")
    text = hdr.read_text()

    def enum(name: str) -> list[str]:
        body = re.search(rf"enum class {name} {{(.*?)}};", text, re.S).group(1)
        body = re.sub(r"//.*", "", body)
        return [e.strip() for e in body.split(",") if e.strip()]

    raster = dict(t.runtime["raster"].values)
    order = enum("RasterOrderOptions")
    assert {k: order[v] for k, v in raster.items()} == {
        "heuristic": "Heuristic", "along_m": "AlongM", "along_n": "AlongN"}
    decomp = dict(t.runtime["decomposition"].values)
    modes = enum("DecompositionMode")
    assert {k: modes[v] for k, v in decomp.items()} == {
        "heuristic": "Heuristic", "dataparallel": "DataParallel", "splitk": "SplitK",
        "streamk": "StreamK"}
    u = _render(t, "square", "256x128x64 1x2 cooperative persistent swizzle=4 along_m epi=128x64")
    sig = u.signature.to_json(u.sample.hints, [], u.variant.values)
    assert [(a["name"], a["value"]) for a in sig["args"] if a["kind"] == "scalar"] == [
        ("swizzle", 4), ("raster", 1), ("decomposition", 0), ("splits", 1)]


def test_gemm_sm90_bias_epilogue():
    t = _load("gemm_sm90.cu.jinja")
    plain = _render(t, "square").text
    assert "fusion::LinearCombination<" in plain and "bias_ptr" not in plain
    b = _render(t, "bias").text
    assert "fusion::LinCombPerColBias<" in b
    assert "args.epilogue.thread.bias_ptr = (cutlass::bfloat16_t*)(Bias);" in b
    assert "const bfloat16* Bias, bfloat16* Y" in b


def test_gemm_operand_checks_become_errors():
    t = _load("gemm_sm90.cu.jinja")
    bad_ld = {"dtype": "bfloat16", "size": [4096, 4000], "stride": [4004, 1]}
    u = _render(t, _with_nodes(t, "square", "bad_ld", X=bad_ld))
    assert "#error \"X's leading stride 4004 is not a multiple of 8" in u.text
    fp32 = {"dtype": "float32", "size": [4096, 4096]}
    u = _render(t, _with_nodes(t, "square", "fp32", X=fp32))
    assert '#error "X is torch.float32' in u.text


def test_gemm_sm90_generated_extends_the_template_with_op_names():
    t = _load("gemm_sm90_generated.cu.jinja")
    u = _render(t, "square")
    assert u.variant.name == "128x128x64 1x2 cooperative persistent swizzle=1"
    assert "// from CUTLASS op cutlass3x_sm90_tensorop_gemm_bf16_bf16_f32_" in u.text
    assert "using ClusterShape = Shape<_1, _2, _1>;" in u.text
    # the kernel's lines map to gemm_sm90.cu.jinja, whose text it is
    o = u.source_map.origin(u.text[:u.text.index("using TileShape")].count("\n") + 1)
    assert o is not None and o.file.endswith("gemm_sm90.cu.jinja")


# ------------------------------------------------------------------------- the generator
def _nodes(dtype="bfloat16", w_stride=(1, 4096), m=4096):
    x = make_node("X", {"dtype": dtype, "size": [m, 4096]})
    w = make_node("W", {"dtype": dtype, "size": [4096, 4096], "stride": list(w_stride)})
    y = make_node("Y", {"dtype": dtype, "size": [m, 4096]})
    return x, w, y


def test_generator_filters_by_dtype_and_layout():
    ops = gemm_sm90_ops.load_ops()
    x, w, y = _nodes()
    tn = gemm_sm90_ops.filter_ops(ops, x, w, y)
    assert tn and all(op["A"] == op["B"] == op["D"] == "bf16" and op["acc"] == "f32"
                      for op in tn)
    assert {(op["layout_A"], op["layout_B"]) for op in tn} == {("RowMajor", "ColumnMajor")}
    assert all(gemm_sm90_ops.acc_registers(op) <= 128 for op in tn)

    x, w, y = _nodes(w_stride=(4096, 1))
    tt = gemm_sm90_ops.filter_ops(ops, x, w, y)
    assert tt and {(op["layout_A"], op["layout_B"]) for op in tt} == {("RowMajor", "RowMajor")}
    names_tn = {v["op"] for v in gemm_sm90_ops.variants(1, *_nodes())}
    names_tt = {v["op"] for v in gemm_sm90_ops.variants(1, *_nodes(w_stride=(4096, 1)))}
    assert names_tn and names_tt and not names_tn & names_tt

    # TMA wants 16-byte alignment: a leading dimension of 4100 elements allows only 8 bytes
    x4 = make_node("X", {"dtype": "bfloat16", "size": [4096, 4100]})
    w4 = make_node("W", {"dtype": "bfloat16", "size": [4100, 4096], "stride": [1, 4100]})
    assert gemm_sm90_ops.filter_ops(ops, x4, w4, _nodes()[2]) == []
    assert all(op["align_A"] == op["align_B"] == 8 for op in tn)

    fp16 = gemm_sm90_ops.filter_ops(ops, *_nodes("float16"))
    assert fp16 and all(op["A"] == "f16" for op in fp16)
    assert gemm_sm90_ops.filter_ops(ops, *_nodes("float32")) == []


def test_generator_variants_map_onto_the_template_keys():
    vs = gemm_sm90_ops.variants(1, *_nodes(), swizzles=[1, 8])
    assert len(vs) == len({v["name"] for v in vs})
    assert vs[0]["scheduler"] == "persistent"
    grid = _load("gemm_sm90.cu.jinja").settings["variants"]
    for v in vs:
        assert v["schedule"] in grid["schedule"] and v["scheduler"] in grid["scheduler"]
        assert len(v["tile"]) == 3 and len(v["cluster"]) == 2
        if v["scheduler"] == "streamk":
            assert v["schedule"] == "cooperative" and v["swizzle"] == 1
    assert gemm_sm90_ops.variants(1, *_nodes(), swizzles=[1, 8], limit=3) == vs[:3]
    assert gemm_sm90_ops.variants(1, *_nodes(), schedules=["pingpong"]) == [
        v for v in gemm_sm90_ops.variants(1, *_nodes()) if v["schedule"] == "pingpong"]
    assert gemm_sm90_ops.variants(None) == []


def test_generator_drops_stream_k_for_symbolic_shapes():
    x = make_node("X", {"dtype": "float16", "size": ["M", 4096]})
    w = make_node("W", {"dtype": "float16", "size": [4096, 4096]})
    y = make_node("Y", {"dtype": "float16", "size": ["M", 4096]})
    vs = gemm_sm90_ops.variants(1, x, w, y)
    assert vs and all(v["scheduler"] == "persistent" for v in vs)


def test_generator_cache_is_fast():
    path = gemm_sm90_ops.CACHE_FILE
    if not path.is_file():
        pytest.skip("no op cache (it is built on first use)")
    import json
    key = json.loads(path.read_text())["key"]
    if key != gemm_sm90_ops._cache_key(gemm_sm90_ops.CUDA_VERSION):
        pytest.skip(f"op cache {key} is for another cutlass_library")
    code = ("import time, sys; sys.path.insert(0, sys.argv[1]); t = time.monotonic(); "
            "import gemm_sm90_ops as g; n = len(g.load_ops()); "
            "print(n, time.monotonic() - t)")
    out = subprocess.run([sys.executable, "-c", code, str(TEMPLATES)], capture_output=True,
                         text=True, check=True).stdout.split()
    assert int(out[0]) > 100 and float(out[1]) < 1.0


# ------------------------------------------------------------------------- gemm_sm80
def test_gemm_sm80_grid_and_leading_dimensions():
    t = _load("gemm_sm80.cu.jinja")
    assert t.settings["compile"]["arch"] == "sm_80"
    vs = t.variants(t.sample("square"))
    assert vs[0].name == "128x128x32 64x64 stages=3 swizzle=1"
    for v in vs:
        tb, warp, stages = v.values["tb"], v.values["warp"], v.values["stages"]
        assert tb[0] % warp[0] == 0 and tb[1] % warp[1] == 0
        assert (tb[0] // warp[0]) * (tb[1] // warp[1]) in (4, 8)
        assert stages * (tb[0] + tb[1]) * tb[2] * 2 <= 160 * 1024
    u = _render(t, "square").text
    assert "cutlass::gemm::GemmShape<128, 128, 32>," in u
    assert "cutlass::gemm::GemmShape<64, 64, 32>," in u
    assert "ElementB, cutlass::layout::ColumnMajor," in u
    assert "4096L,  // ldb" in u and "0,  // ldc" in u
    assert "ScaleType::OnlyAlphaScaling" in u and "{1.0f, 0.0f},  // alpha, beta" in u
    b = _render(t, "bias").text
    assert "ScaleType::Default" in b and "{1.0f, 1.0f},  // alpha, beta" in b
    assert "(cutlass::bfloat16_t*)(Bias)," in b and "0,  // ldc" in b
    assert "ElementB, cutlass::layout::RowMajor," in b


# ------------------------------------------------------------------------- plain CUDA
def test_bias_act_activations_and_vector_width():
    t = _load("bias_act.cu.jinja")
    vs = t.variants(t.sample("large"))
    assert len(vs) == 31 and vs[0].name == "vec=8 block=256 unroll=1"
    # 1024 threads leave 64 registers each: 4 x 16-byte loads of X and Bias would spill
    assert "vec=8 block=1024 unroll=4" not in {v.name for v in vs}
    u = _render(t, "large").text
    assert "using T = bfloat16;" in u and "tanhf(" in u and "constexpr int kVec = 8;" in u
    assert "constexpr int64_t kStaticCols = 8192;" in u
    for act, needle in (("relu", "fmaxf(x, 0.0f)"), ("silu", "__expf(-x)")):
        s = _with_nodes(t, "large", f"act_{act}")
        s.vars["act"] = act
        assert needle in _render(t, s).text
    d = _render(t, "dynamic").text
    assert "using T = half;" in d and "constexpr int64_t kStaticCols = 4096;" in d
    assert "int64_t M, size_t* workspace_size" in d
    # a row length the vector width does not divide drops those variants
    odd = {"dtype": "bfloat16", "size": [64, 8196]}
    s = _with_nodes(t, "large", "odd", X=odd, Y=odd, Bias={"dtype": "bfloat16", "size": [8196]})
    assert {v.values["vec"] for v in with_sample(t, s).variants(s)} == {4, 2, 1}


def test_softmax_registers_and_mapping():
    t = _load("softmax.cu.jinja")
    for s in t.samples:
        n = int(s.nodes["X"].get_size()[-1])
        for v in t.variants(s):
            group = v.values["block"] if v.values["mapping"] == "block_per_row" else 32
            assert n % (group * v.values["vec"]) == 0 and n // group <= 64
    narrow = {v.values["mapping"] for v in t.variants(t.sample("narrow"))}
    assert narrow == {"block_per_row", "warp_per_row"}
    u = _render(t, "large").text
    assert "constexpr int kPacks = int(kCols / (kGroup * kVec));" in u
    assert "constexpr int kGroup = 256;" in u
    assert "__launch_bounds__(kBlock, 4)" in u  # 16 floats a thread: 64 registers fit
    # 32 floats a thread in blocks of 128: promise fewer blocks so they need not spill
    u = _render(t, "large", "block_per_row block=128 vec=8").text
    assert "__launch_bounds__(kBlock, 7)" in u
    # one block per SM: the plain bound
    u = _render(t, "wide", "block_per_row block=512 vec=8").text
    assert "__launch_bounds__(kBlock)\n" in u


def test_contiguity_is_checked():
    t = _load("copy.cu.jinja")
    strided = {"dtype": "bfloat16", "size": [16384, 8192], "stride": [8200, 1]}
    u = _render(t, _with_nodes(t, "large", "strided", X=strided))
    assert '#error "X must be contiguous (row-major)' in u.text


# ------------------------------------------------------------------------- nvcc
def _compile(unit: RenderedUnit, tmp_path: Path, flags: list[str]) -> tuple[int, str, float]:
    src = tmp_path / f"{unit.template.name.split('.')[0]}.cu"
    src.write_text(unit.text)
    cmd = [nv.find_nvcc(), *flags, str(src)]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=600,
                       check=False)
    return p.returncode, p.stdout + p.stderr, time.monotonic() - t0


@pytest.mark.nvcc
@pytest.mark.parametrize("name", CUDA_TEMPLATES)
def test_plain_cuda_first_variant_compiles(name, tmp_path):
    t = _load(name)
    u = _render(t)
    flags = [*nv.common_flags(nv.CompileOptions(arch="sm_90a", cutlass=False)),
             "-c", "-O3", "-Xptxas", "-warn-spills", "-o", str(tmp_path / "k.o")]
    rc, out, _ = _compile(u, tmp_path, flags)
    assert rc == 0, out[-3000:]
    assert "spill" not in out, out[-3000:]


@pytest.mark.nvcc
def test_gemm_sm80_first_variant_device_front_end(tmp_path):
    t = _load("gemm_sm80.cu.jinja")
    u = _render(t)
    opts = nv.CompileOptions(arch=t.settings["compile"]["arch"])
    if not nv.cutlass_include_dirs():
        pytest.skip("no CUTLASS headers (nvidia-cutlass wheel)")
    flags = [*nv.common_flags(opts), "-ptx", "-fdevice-syntax-only", "-o", "/dev/null"]
    rc, out, _ = _compile(u, tmp_path, flags)
    assert rc == 0, out[-3000:]
    assert not re.search(r"\berror\b", out), out[-3000:]
