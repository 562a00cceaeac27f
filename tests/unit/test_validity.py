"""Invalid variants before any full build, with the real nvcc on small CUDA units: a
``static_assert`` that depends on two grid keys, a third key that changes nothing the
assertion sees (so a batch instantiates the failing class once for two builds), the verdicts
checked against real full compiles, the keys blamed on their lines, the cache, units that
cannot be batched, and the consumers (``variants --validity``, ``check``, ``bench``)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cutlens.check import validity
from cutlens.check.batch import split
from cutlens.check.grid_validity import CODE, grid_validity
from cutlens.check.run import check_paths
from cutlens.nvcc.options import compile_options, job_for
from cutlens.nvcc.pool import Compiler, Mode
from cutlens.template.selection import Selection

from conftest import HAS_NVCC, REPO, line_of

pytestmark = [pytest.mark.nvcc, pytest.mark.skipif(not HAS_NVCC, reason="needs nvcc")]

GRID = """\
{#- cutlens
kind = "cuda"
[variants]
block = [32, 48, 64]
vec = [1, 2, 4]
tag = ["a", "b"]
-#}
#include <cuda_runtime.h>
template <int Block, int Vec>
struct Config {
  static_assert(Block % (16 * Vec) == 0, "Block must be a multiple of 16 * Vec");
  static constexpr int kItems = Block / Vec;
};
const char* kTag = "{{ tag }}";
__global__ void fill(int* y) { y[threadIdx.x] = Config<{{ block }}, {{ vec }}>::kItems; }
extern "C" int {{ cutlens.kernel_name }}(int* y) { fill<<<1, {{ block }}>>>(y); return 0; }
"""


def expected_valid(values: dict) -> bool:
    return values["block"] % (16 * values["vec"]) == 0


def judge(project, name: str = "t.cu.jinja", text: str = GRID, **kw):
    project.write(name, text)
    t = project.load(name)
    return t, grid_validity(t, project.renderer, Selection(variants="all"),
                            project.root / ".cache", jobs=2, **kw)


def test_verdicts_match_the_rule_and_blame_both_keys(project):
    t, gv = judge(project)
    assert len(gv.rows) == 18
    for r in gv.rows:
        assert r.valid is expected_valid(r.variant.values), r
    bad = gv.invalid
    assert len(bad) == 6
    # (32, 4): (32, 2) and (64, 4) compile, so both keys are to blame; block's line first
    for r in bad:
        assert r.keys == ("block", "vec")
        assert (r.file, r.line) == (str(t.path), line_of(GRID, "block = ["))
        assert r.reason == 'static assertion failed with "Block must be a multiple of 16 * Vec"'
    # tag="b" builds instantiate the same failing Config as tag="a": a second round finds them
    assert gv.stats.rounds >= 2
    assert {r.variant.values["tag"] for r in bad} == {"a", "b"}


def test_verdicts_agree_with_real_full_compiles(project, tmp_path):
    """Every build called invalid fails a real ``nvcc -c``; every valid one compiles."""
    src = GRID.replace("block = [32, 48, 64]", "block = [32, 64]").replace(
        'tag = ["a", "b"]', 'tag = ["a"]')
    t, gv = judge(project, text=src)
    compiler = Compiler(tmp_path / "build", jobs=2)
    for o in gv.outcomes:
        res = compiler.compile_sync(job_for(o.unit, Mode.FULL, compile_options(t, o.unit)))
        assert res.ok is bool(o.verdict.valid), (o.unit.variant.name, res.output)
        if not res.ok:  # the same error the front end named
            assert any("Block must be a multiple" in m.message for m in res.errors)
    assert sum(1 for o in gv.outcomes if o.verdict.valid is False) == 1


def test_a_key_alone_to_blame(project):
    _, gv = judge(project, text=GRID.replace("block = [32, 48, 64]", "block = 32"))
    assert [r.variant.values["vec"] for r in gv.invalid] == [4, 4]
    assert {r.keys for r in gv.invalid} == {("vec",)}
    assert {r.line for r in gv.invalid} == {line_of(GRID, "vec = [")}
    summary = gv.diagnostics()[-1]
    assert summary.line == line_of(GRID, "[variants]") and summary.code == CODE
    assert summary.message.startswith("2 of 6 variants cannot compile: 2 with vec ")


def test_cached_by_content(project):
    judge(project)
    _, again = judge(project)
    assert again.stats.runs == 0 and again.stats.cached_units == 18
    assert len(again.invalid) == 6
    assert all(r.reason.startswith("static assertion failed") for r in again.invalid)
    # an edit to the template: new content, a new pass
    _, edited = judge(project, text=GRID.replace("16 * Vec", "8 * Vec"))
    assert edited.stats.runs > 0
    assert len(edited.invalid) == 2  # (48, 4) only, twice


def test_batch_artifacts_and_unbatchable_units_run_alone(project):
    """Two units explicitly instantiating one class (an error only side by side), and a
    unit with an include under #if, are judged alone: valid."""
    src = GRID.replace("const char* kTag", "template struct Config<64, 1>;\nconst char* kTag")
    src = src.replace("#include <cuda_runtime.h>",
                      "#if {{ 1 if tag == 'a' else 0 }}\n#include <cstdint>\n#endif\n"
                      "#include <cuda_runtime.h>")
    _, gv = judge(project, text=src)
    assert gv.stats.alone_units >= 9  # tag=a (not batchable) + duplicate instantiations
    for r in gv.rows:
        assert r.valid is expected_valid(r.variant.values), r


def test_split_hoists_top_includes_only():
    part = split("// c\n#include <a.h>\n#include \"b.h\"\nint k_name() { return 1; }\n",
                 "k_name", "__1", REPO / "x.cu")
    assert part is not None and part.includes == ("#include <a.h>", '#include "b.h"')
    assert part.body.split("\n") == ["// c", "", "", "int k_name__1() { return 1; }", ""]
    assert split("#define X 1\n#include <a.h>\n", "k", "_", REPO / "x.cu") is None
    assert split("#ifdef A\n#include <a.h>\n#endif\n", "k", "_", REPO / "x.cu") is None


def test_front_end_missing_cudafe_is_an_unknown_verdict(project, monkeypatch):
    """A front end that fails without saying why leaves every verdict unknown, never
    'valid'."""
    from cutlens.nvcc.frontend import FrontEndRun

    def broken(options, path):
        return FrontEndRun(returncode=4, output="cudafe++: cannot execute", cpu_s=0.0,
                           wall_s=0.0)

    project.write("t.cu.jinja", GRID)
    t = project.load("t.cu.jinja")
    units = [project.render("t.cu.jinja", variant=i) for i in range(3)]
    outcomes, _ = validity.check_units(units, lambda u: compile_options(t, u),
                                       project.root / ".c", sides=[("host", broken, False)])
    assert [o.verdict.valid for o in outcomes] == [None, None, None]
    assert outcomes[0].reason == "cudafe++: cannot execute"


def cutlens(project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cutlens", *args], cwd=project.root,
                          capture_output=True, text=True, timeout=300)


def test_variants_validity_json(project):
    project.write("t.cu.jinja", GRID)
    out = cutlens(project, "variants", "t.cu.jinja", "--validity", "--format", "json",
                  "--jobs", "2")
    assert out.returncode == 1, out.stderr  # problems found
    doc = json.loads(out.stdout)
    rows = doc["variants"]
    assert len(rows) == 18 and doc["validity"]["invalid"] == 6
    for r in rows:
        assert r["valid"] is expected_valid(r["values"])
        if not r["valid"]:
            assert r["reason"].startswith("static assertion failed")
            assert (r["file"], r["line"]) == ("t.cu.jinja", line_of(GRID, "block = ["))
        else:
            assert "reason" not in r


def test_check_warns_on_the_key_line(project):
    project.write("t.cu.jinja", GRID)
    report = check_paths([project.root / "t.cu.jinja"], Selection(variants="all"), jobs=2,
                         mode="full-only")
    summary, warns = [d for d in report.diagnostics if d.code == CODE]  # sorted by line
    assert [summary.line, warns.line] == [line_of(GRID, "[variants]"), line_of(GRID, "block = [")]
    assert warns.message.startswith("6 variant(s) cannot compile with (block, vec) = "
                                       "(32, 4); (48, 2); (48, 4): static assertion")
    assert warns.related[0].line == line_of(GRID, "vec = [")
    assert summary.message.startswith("6 of 18 variants cannot compile")


def test_bench_build_only_skips_and_lists_invalid_variants(project):
    project.write("t.cu.jinja", GRID.replace('tag = ["a", "b"]', 'tag = "a"'))
    out = cutlens(project, "bench", "t.cu.jinja", "--build-only", "--variants", "all",
                  "--jobs", "2")
    lines = out.stdout.splitlines()
    skipped = [ln for ln in lines if ln.startswith("skip")]
    built = [ln for ln in lines if ln.startswith("ok")]
    assert len(skipped) == 3 and len(built) == 6, out.stdout + out.stderr
    assert all("static assertion failed" in ln and "not compiled" in ln for ln in skipped)
    assert out.returncode == 1
    # never compiled: the build cache holds the six valid builds' objects only
    objects = list((project.root / ".cutlens" / "build").rglob("*.o"))
    assert len(objects) == 6
