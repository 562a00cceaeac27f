"""The nvcc tier with a real nvcc: each test injects one error into a small template and
asserts the template line and message the diagnostic lands on."""

from __future__ import annotations

import asyncio

import pytest

from cutlens.check import formats
from cutlens.check.jinja_tier import jinja_check
from cutlens.check.nvcc_tier import nvcc_check
from cutlens.check.run import check_paths
from cutlens.nvcc.project import compile_pool
from cutlens.template.selection import Selection

from conftest import line_of

pytestmark = pytest.mark.nvcc

HEAD = """\
{#- cutlens
kind = "cuda"
[samples.f32]
X = { dtype = "float32", size = [1024] }
Y = { dtype = "float32", size = [1024] }
[variants]
block = [128, 256]
-#}
#include <cstdint>
"""
KERNEL = """\
__global__ void scale_kernel(const float* x, float* y, int64_t n) {
  int64_t i = blockIdx.x * (int64_t){{ block }} + threadIdx.x;
  if (i < n) y[i] = 2.0f * x[i];
}
"""


def run(project, src: str, name: str = "t.cu.jinja", **kw):
    project.write(name, src)
    report = check_paths([project.root / name], Selection(), **kw)
    return report.diagnostics


def errors(diags):
    return [d for d in diags if d.severity == "error"]


def one_error(diags):
    errs = errors(diags)
    assert len(errs) == 1, formats.text(diags)
    return errs[0]


def test_error_in_literal_text(project):
    src = HEAD + KERNEL + "int broken() { return undefined_thing; }\n"
    d = one_error(run(project, src))
    assert d.line == line_of(src, "undefined_thing")
    assert d.message == 'identifier "undefined_thing" is undefined'
    assert d.source == "nvcc" and not d.partial


def test_error_produced_by_an_expression(project):
    src = HEAD.replace("block = [128, 256]", 'block = [128, 256]\ninit = ["1 +"]') + \
        KERNEL + "int value = {{ init }};\n"
    d = one_error(run(project, src))
    assert d.line == line_of(src, "{{ init }}")
    assert d.message == "expected an expression"


def test_error_inside_a_macro_names_the_call_site(project):
    project.write("macros.cuh.jinja", "{% macro guard(n) %}\n"
                                      "  if ({{ n }} < 0) return undeclared_ptr;\n"
                                      "{% endmacro %}\n")
    src = HEAD + '{% import "macros.cuh.jinja" as m %}\n' + KERNEL + \
        "int check(int n) {\n{{ m.guard('n') }}\n  return 0;\n}\n"
    d = one_error(run(project, src))
    assert d.file.endswith("macros.cuh.jinja") and d.line == 2
    assert d.message == 'identifier "undeclared_ptr" is undefined'
    assert [(r.file.rsplit("/", 1)[-1], r.line, r.message) for r in d.related] == [
        ("t.cu.jinja", line_of(src, "m.guard"), "expanded from here")]


def test_error_in_an_included_template(project):
    project.write("part.cuh.jinja", "// helper\nstatic int helper() { return 1 }\n")
    src = HEAD + KERNEL + '{% include "part.cuh.jinja" %}\n'
    d = one_error(run(project, src))
    assert d.file.endswith("part.cuh.jinja") and d.line == 2
    assert d.message == 'expected a ";"'
    assert d.related[0].line == line_of(src, "{% include")
    assert d.related[0].message == "included from here"


def test_instantiation_error_inside_a_std_header(project):
    src = HEAD + KERNEL + ("#include <tuple>\n"
                           "template <int I> int pick() {\n"
                           "  std::tuple<int, float> t{1, 2.0f};\n"
                           "  return (int)std::get<I>(t);\n"
                           "}\n"
                           "int use() { return pick<{{ block // 64 }}>(); }\n")
    diags = errors(run(project, src))
    sa = [d for d in diags if "tuple index must be in range" in d.message]
    assert len(sa) == 1, formats.text(diags)
    d = sa[0]
    # lands on the template line inside pick() (the innermost frame in the rendered TU)
    assert d.line == line_of(src, "std::get<I>(t)")
    assert d.message == 'static assertion failed with "tuple index must be in range"'
    assert d.related[0].file.endswith("tuple") and d.related[0].message == "error reported here"
    assert any(r.line == line_of(src, "pick<{{") and "pick<I>() [with I=" in r.message
               for r in d.related)
    assert d.variants == ["block=128", "block=256"]


def test_static_assert_only_in_some_variants(project):
    src = HEAD + KERNEL + 'static_assert({{ block }} <= 128, "block too big");\n'
    d = one_error(run(project, src))
    assert d.line == line_of(src, "static_assert")
    assert d.message == 'static assertion failed with "block too big"'
    assert d.variants == ["block=256"] and d.partial
    assert "[f32/block=256]" in formats.text([d])


def test_error_only_for_one_sample(project):
    src = HEAD.replace("[variants]", '[samples.f16]\nX = { dtype = "float16", size = [1024] }\n'
                                      'Y = { dtype = "float16", size = [1024] }\n[variants]')
    src += KERNEL + "{{ template.header() }}\n" \
        'static_assert(sizeof({{ kernel.dtype(X) }}) == 4, "needs fp32");\n'
    src = src.replace('kind = "cuda"', 'kind = "cuda"', 1)
    d = one_error(run(project, src))
    assert d.line == line_of(src, "needs fp32")
    assert d.samples == ["f16"] and d.partial


def test_missing_include(project):
    src = HEAD + '#include "no_such_header.cuh"\n' + KERNEL
    d = one_error(run(project, src))
    assert d.line == line_of(src, "no_such_header")
    assert "no_such_header.cuh" in d.message and "No such file" in d.message


def test_ptxas_error_lands_on_the_kernel(project):
    src = HEAD.replace("block = [128, 256]", "block = [128]\nsmem = [300000]") + \
        "__global__ void big_kernel(float* x) {\n" \
        "  __shared__ char buf[{{ smem }}];\n" \
        "  buf[threadIdx.x] = 1;\n  x[threadIdx.x] = buf[threadIdx.x ^ 1];\n}\n"
    d = one_error(run(project, src))
    assert d.source == "ptxas"
    assert d.line == line_of(src, "__global__ void big_kernel")
    assert d.message.startswith("Entry function 'big_kernel(float*)' uses too much shared data")


def test_nvcc_timeout_is_a_diagnostic(project):
    project.write("cutlens.toml", "compile_timeout_s = 0.05\n")
    src = HEAD + KERNEL
    diags = errors(run(project, src))
    assert diags, "a timeout must be reported"
    assert all("timed out" in d.message for d in diags)
    assert diags[0].line == 1 and diags[0].file.endswith("t.cu.jinja")


def test_unchanged_recheck_runs_no_nvcc(project):
    src = HEAD + KERNEL
    project.write("t.cu.jinja", src)
    t = project.load("t.cu.jinja")
    compiler = compile_pool(t.config)

    async def go():
        jc = jinja_check(t, project.renderer)
        return await nvcc_check(jc, compiler)

    first = asyncio.run(go())
    runs = compiler.stats.nvcc_runs
    assert runs == 4  # 2 variants x (quick, full)
    second = asyncio.run(go())
    assert compiler.stats.nvcc_runs == runs
    assert compiler.stats.cache_hits >= 4
    assert first.diagnostics() == second.diagnostics()
    assert errors(first.diagnostics()) == []


def test_two_projects_each_compile_into_their_own_cache(tmp_path):
    """``cutlens check projA projB``: B's units go to B's build cache under B's config,
    not into A's (the first project's) as they once did."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "cutlens.toml").write_text("cutlass = false\njobs = 1\n")
        (tmp_path / name / "t.cu.jinja").write_text(HEAD + KERNEL)
    report = check_paths([tmp_path / "a", tmp_path / "b"], Selection(variants=["first"]),
                         mode="quick")
    assert report.errors == 0, formats.text(report.diagnostics)
    for name in ("a", "b"):
        records = list((tmp_path / name / ".cutlens" / "build").rglob("quick.json"))
        assert records, f"nothing compiled into {name}'s build cache"
