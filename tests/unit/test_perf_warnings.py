"""ptxas's performance warnings (Potential Performance Loss, spills, stack frames) on the
template line of the variant key that caused them: recorded ptxas output parsed, the key
found among the compiled variants, its line in a grid, a ``[[variant]]`` entry and the
variant's own line; and a real nvcc check of ``tests/fixtures/perf/wgmma_serialized.cu.jinja``
(a serialized wgmma and a spilling kernel) in JSON and SARIF."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cutlens import config as config_mod
from cutlens.check import perf
from cutlens.diagnostics import Diagnostic
from cutlens.nvcc import output
from cutlens.nvcc.messages import KernelResources
from cutlens.nvcc.pool import CompileResult, Mode
from cutlens.render.renderer import RenderedUnit, Renderer
from cutlens.template.loader import load

FIX = Path(__file__).parents[1] / "fixtures" / "perf"
SERVER = Path(__file__).resolve().parents[2] / "server"


def test_potential_performance_loss_is_a_warning_with_its_code():
    msgs = output.parse((FIX / "ptxas_perf.txt").read_text())
    by_code = {m.code: m for m in msgs}
    assert set(by_code) == {"C7511", "spill"}  # C7519/C7517 (injected waits) stay info
    m = by_code["C7511"]
    assert m.severity == "warning" and m.tool == "ptxas"
    assert m.message.startswith("Potential Performance Loss: wgmma.mma_async instructions "
                                "are serialized due to insufficient register resources")
    assert m.kernel == "k(float*, unsigned long long, unsigned long long, int)"
    # the resource usage after the warning is still read
    res = output.parse_resources((FIX / "ptxas_perf.txt").read_text())
    assert [(r.registers, r.stack_bytes) for r in res] == [(30, 0), (32, 472)]


LIST_TEMPLATE = """\
{#- cutlens
kind = "cuda"
[[variant]]
name = "wide"
tile = 256
stages = 4

[[variant]]
name = "narrow"
stages = 4
tile = 64
-#}
__global__ void k(float* y) { y[threadIdx.x] = {{ tile }} + {{ stages }}; }
"""


def _template(tmp_path: Path, text: str):
    path = tmp_path / "t.cu.jinja"
    path.write_text(text)
    cfg = config_mod.load(tmp_path)
    return load(path, cfg, text)


def _unit_diag(t, u: RenderedUnit, code: str, line: int) -> Diagnostic:
    return Diagnostic(file=str(t.path), line=line, message=f"ptxas says {code}",
                      severity="warning", source="ptxas", code=code,
                      samples=[u.sample.name], variants=[u.variant.name])


def test_the_key_that_separates_warned_variants(tmp_path):
    t = _template(tmp_path, LIST_TEMPLATE)
    units = [Renderer().render(t, s, v) for s, v in t.pairs()]
    wide, narrow = units
    d = _unit_diag(t, wide, "spill", 13)
    other = Diagnostic(file=str(t.path), line=13, message="not a perf warning",
                       severity="warning", source="nvcc", samples=["default"],
                       variants=["wide"])
    perf.attribute(t, [(wide, [d, other]), (narrow, [])])
    assert (d.line, d.column) == (5, 0)  # `tile = 256` in the first [[variant]]
    assert d.message.endswith("(variant key tile = 256)")
    assert d.related[0].line == 13 and "for the kernel here" in d.related[0].message
    assert other.line == 13
    # the key in the second entry is on its own line there
    d2 = _unit_diag(t, narrow, "C7511", 13)
    perf.attribute(t, [(wide, []), (narrow, [d2])])
    assert d2.line == 11 and "tile = 64" in d2.message
    # the same code about two kernels: each kernel's variants on their own
    e = Diagnostic(file=str(t.path), line=13, message="spills in function 'a(int)'",
                   severity="warning", source="ptxas", code="spill", samples=["default"],
                   variants=["wide"])
    f = Diagnostic(file=str(t.path), line=13, message="spills in function 'b(int)'",
                   severity="warning", source="ptxas", code="spill", samples=["default"],
                   variants=["narrow"])
    perf.attribute(t, [(wide, [e]), (narrow, [f])])
    assert (e.line, f.line) == (5, 11)  # each on its own variant's tile key
    # every variant warns: no key separates them, each on its own [[variant]] line
    a, b = _unit_diag(t, wide, "stack", 13), _unit_diag(t, narrow, "stack", 13)
    perf.attribute(t, [(wide, [a]), (narrow, [b])])
    assert (a.line, b.line) == (3, 8) and "variant key" not in a.message


def test_cause_keys_on_a_grid(tmp_path):
    t = _template(tmp_path, """\
{#- cutlens
kind = "cuda"
[variants]
tile = [64, 128]
unroll = [1, 2]
-#}
__global__ void k(float* y) { y[0] = {{ tile }} * {{ unroll }}; }
""")
    vs = t.variants()
    warned = [v for v in vs if v.values["tile"] == 128]
    clean = [v for v in vs if v.values["tile"] == 64]
    assert perf.cause_keys(warned, clean) == ["tile"]
    assert perf.cause_keys(warned, []) == []
    assert perf.key_line(t, warned[0], "tile") == (str(t.path), 4)
    assert perf.key_line(t, warned[0], "unroll") == (str(t.path), 5)
    assert perf.key_line(t, warned[0], None) == (str(t.path), 3)


def test_stack_frame_from_resource_usage(tmp_path):
    t = _template(tmp_path, LIST_TEMPLATE)
    s, v = t.pairs()[0]
    u = Renderer().render(t, s, v)
    res = CompileResult(mode=Mode.FULL, ok=True, returncode=0, messages=[], resources=[
        KernelResources(kernel="k(float*)", mangled="_Z1kPf", arch="sm_90a", registers=20,
                        barriers=0, smem_bytes=0, cmem_bytes=0, stack_bytes=64,
                        spill_stores=0, spill_loads=0),
        KernelResources(kernel="j(float*)", mangled="_Z1jPf", arch="sm_90a", registers=32,
                        barriers=0, smem_bytes=0, cmem_bytes=0, stack_bytes=96,
                        spill_stores=8, spill_loads=8)],
        output="", source_path="", companion_paths={}, artifact=None, duration_s=0.0,
        cached=False)
    found = perf.resource_diagnostics(u, res, [])
    assert [(d.code, d.severity, d.source) for d in found] == [
        ("stack", "warning", "ptxas"), ("spill", "warning", "ptxas")]
    assert "64 bytes stack frame (local memory) in function 'k(float*)'" in found[0].message
    assert perf.resource_diagnostics(u, res, [], suppress=("stack", "spill")) == []


@pytest.mark.nvcc
def test_check_json_puts_ptxas_perf_warnings_on_the_key_lines(tmp_path):
    src = (FIX / "wgmma_serialized.cu.jinja").read_text()
    (tmp_path / "w.cu.jinja").write_text(src)
    lines = src.splitlines()
    touch = next(i for i, ln in enumerate(lines, 1) if ln.startswith("touch_accumulator ="))
    regs = next(i for i, ln in enumerate(lines, 1) if ln.startswith("max_regs ="))
    env = {**os.environ, "PYTHONPATH": str(SERVER)}
    r = subprocess.run([sys.executable, "-m", "cutlens", "check", "w.cu.jinja", "--jobs", "1",
                        "--format", "json"], capture_output=True, text=True, cwd=tmp_path,
                       env=env, timeout=600)
    assert r.returncode == 0, r.stderr  # warnings only
    diags = json.loads(r.stdout)["diagnostics"]
    by_code = {d["code"]: d for d in diags}
    wgmma = by_code["C7511"]
    assert wgmma["line"] == touch and wgmma["severity"] == "warning"
    assert "wgmma.mma_async instructions are serialized" in wgmma["message"]
    assert sorted(wgmma["variants"]) == ["touch_accumulator max_regs=255",
                                         "touch_accumulator max_regs=32"]
    kernel_line = next(i for i, ln in enumerate(lines, 1) if "void mma_kernel" in ln)
    assert wgmma["related"][0]["line"] == kernel_line
    spill = by_code["spill"]
    assert spill["line"] == regs and "heavy_kernel" in spill["message"]
    assert sorted(spill["variants"]) == ["no-touch_accumulator max_regs=32",
                                         "touch_accumulator max_regs=32"]
    sarif = subprocess.run([sys.executable, "-m", "cutlens", "check", "w.cu.jinja", "--jobs",
                            "1", "--format", "sarif"], capture_output=True, text=True,
                           cwd=tmp_path, env=env, timeout=600)
    results = json.loads(sarif.stdout)["runs"][0]["results"]
    located = {(x["ruleId"], x["locations"][0]["physicalLocation"]["region"]["startLine"])
               for x in results}
    assert {("ptxas/C7511", touch), ("ptxas/spill", regs)} <= located


def test_inlay_hints_on_the_grid_key_that_changes_registers(tmp_path):
    from cutlens.lsp.hints import inlay_hints

    src = (FIX / "wgmma_serialized.cu.jinja").read_text()
    t = _template(tmp_path, src)
    checks = [{"sample": "default", "variant_name": v.name, "smem": 0,
               "regs": 32 if v.values["max_regs"] == 32 else 90,
               "spills": 1680 if v.values["max_regs"] == 32 else 0} for v in t.variants()]
    hints = {h.position.line + 1: h.label for h in inlay_hints(t, src, checks, None)}
    lines = src.splitlines()
    regs = next(i for i, ln in enumerate(lines, 1) if ln.startswith("max_regs ="))
    grid = next(i for i, ln in enumerate(lines, 1) if ln.startswith("[variants]"))
    assert hints[regs] == "regs 255→90 · 32→32 (spills)"
    assert hints[grid].startswith("regs 32–90")
    assert len(hints) == 2  # touch_accumulator changes nothing: no hint on its line
