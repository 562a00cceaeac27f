"""Runtime variant parameters (``[variants.runtime]``): declared keys render as the kernel's
scalar arguments, variants differing only in them render alike and share one build, each
variant's call signature carries its own values; and variant names stay short, one line and
safe for file names (the repros of issue 16, item 3, and the constants + [[variant]] bug)."""

from __future__ import annotations

import asyncio

import pytest

from cutlens.bench.template_sweep import build_groups
from cutlens.nvcc.options import MAX_TU_NAME, job_for
from cutlens.nvcc.pool import CompileOptions, Mode
from cutlens.render.hooks import HookError
from cutlens.render.renderer import RenderedUnit, RenderFailure
from cutlens.template.model import MAX_NAME, MAX_SLUG

from conftest import line_of

RUNTIME = """\
{#- cutlens
kind = "cuda"
[samples.s]
X = { dtype = "float32", size = ["n"] }
Y = { dtype = "float32", size = ["n"] }
hints = { n = 64 }
[variants]
unroll = [1, 2]
mult = [1, 3]
mode = ["plain", "shifted"]
[variants.runtime]
mult = "uint8_t"
mode = { type = "int", values = { plain = 0, shifted = 7 }, arg = "shift" }
-#}
extern "C" {
{{ kernel.def_kernel(inputs=[X], outputs=[Y], names_str="X, Y") }} {
  // unroll {{ unroll }}
  int64_t m = {{ mult }};
  int64_t s = {{ mode }};
  return 0;
}
}
"""


def _units(project, name: str = "t.cu.jinja") -> list[RenderedUnit]:
    t = project.load(name)
    assert t.errors == [], [d.message for d in t.errors]
    s = t.sample(None)
    out = []
    for v in t.variants(s):
        u = project.renderer.render(t, s, v)
        assert isinstance(u, RenderedUnit), getattr(u, "diagnostics", u)
        out.append(u)
    return out


# ------------------------------------------------------------------------- the model
def test_runtime_keys_are_variant_values_with_a_build_name(project):
    project.write("t.cu.jinja", RUNTIME)
    t = project.load("t.cu.jinja")
    assert list(t.runtime) == ["mult", "mode"]
    assert t.runtime["mode"].name == "shift" and t.runtime["mult"].ctype == "uint8_t"
    vs = t.variants(t.sample("s"))
    assert [v.name for v in vs][:3] == ["unroll=1 mult=1 plain", "unroll=1 mult=1 shifted",
                                        "unroll=1 mult=3 plain"]
    assert len(vs) == 8 and len({v.name for v in vs}) == 8
    for v in vs:  # a variant is still a variant: its values hold the runtime keys too
        assert v.runtime == ("mult", "mode") and set(v.values) == {"unroll", "mult", "mode"}
        assert v.build_name == f"unroll={v.values['unroll']}"
        assert v.build_values == {"unroll": v.values["unroll"]}
    assert vs[0].to_json()["runtime"] == ["mult", "mode"]


def test_variants_differing_only_in_runtime_keys_render_alike(project):
    project.write("t.cu.jinja", RUNTIME)
    units = _units(project)
    texts = {u.text for u in units}
    assert len(texts) == 2  # one per unroll value
    u = units[0]
    assert "int64_t m = mult;" in u.text and "int64_t s = shift;" in u.text
    sig_text = u.signature.text
    assert sig_text.endswith("(const float* X, float* Y, int64_t n, uint8_t mult, int shift, "
                             "size_t* workspace_size, uint8_t* workspace, cudaStream_t stream)")
    # the call signature records each variant's own values (C values of named ones)
    by_name = {u.variant.name: u for u in units}
    sig = by_name["unroll=2 mult=3 shifted"].signature.to_json({"n": 64}, [],
                                                                by_name["unroll=2 mult=3 shifted"]
                                                                .variant.values)
    scalars = [a for a in sig["args"] if a["kind"] == "scalar"]
    assert scalars == [
        {"name": "mult", "kind": "scalar", "ctype": "uint8_t", "value": 3, "key": "mult"},
        {"name": "shift", "kind": "scalar", "ctype": "int", "value": 7, "key": "mode"}]
    assert [a["name"] for a in sig["args"]] == ["X", "Y", "n", "mult", "shift"]


def test_shared_builds_one_job_per_distinct_tu(project):
    project.write("t.cu.jinja", RUNTIME)
    units = _units(project)
    opts = CompileOptions(cutlass=False)
    groups = build_groups(units, opts)
    assert len(groups) == 2 and sorted(len(us) for _, us in groups) == [4, 4]
    for job, us in groups:
        assert {job_for(u, Mode.BUILD, opts).name for u in us} == {job.name}
        assert len({u.variant.values["unroll"] for u in us}) == 1
    assert groups[0][0].name == "t-s-unroll-1"


def test_header_names_the_runtime_arguments(project):
    project.write("t.cu.jinja", RUNTIME)
    u = _units(project)[3]
    assert u.header().splitlines()[1] == (
        "// Runtime arguments (passed when the kernel is called): mult = 3, "
        "shift = 7 (shifted).")


def test_def_kernel_runtime_order_and_name_clash(project):
    project.write("t.cu.jinja", RUNTIME.replace('names_str="X, Y")',
                                                'names_str="X, Y", runtime=["mode", "mult"])'))
    u = _units(project)[0]
    assert "int64_t n, int shift, uint8_t mult, size_t*" in u.signature.text
    project.write("bad.cu.jinja", RUNTIME.replace('names_str="X, Y")',
                                                  'names_str="X, Y", runtime=["mult"])'))
    t = project.load("bad.cu.jinja")
    r = project.renderer.render(t, t.sample("s"), t.variant(t.sample("s"), 0))
    assert isinstance(r, RenderFailure)
    assert "must list each runtime parameter once" in r.diagnostics[0].message
    project.write("clash.cu.jinja", RUNTIME.replace('arg = "shift"', 'arg = "n"'))
    t = project.load("clash.cu.jinja")
    r = project.renderer.render(t, t.sample("s"), t.variant(t.sample("s"), 0))
    assert isinstance(r, RenderFailure)
    assert "has the name of another argument" in r.diagnostics[0].message


def test_using_a_runtime_value_while_rendering_is_an_error_on_its_line(project):
    src = RUNTIME.replace("  int64_t s = {{ mode }};\n",
                          "{% if mode == 'plain' %}  int z;{% endif %}\n")
    project.write("t.cu.jinja", src)
    t = project.load("t.cu.jinja")
    r = project.renderer.render(t, t.sample("s"), t.variant(t.sample("s"), 0))
    assert isinstance(r, RenderFailure)
    d = r.diagnostics[0]
    assert d.line == line_of(src, "{% if mode == 'plain' %}")
    assert "'mode' is a runtime argument" in d.message and "{{ mode }}" in d.message
    # `is runtime` tells the two kinds apart
    project.write("u.cu.jinja", RUNTIME.replace(
        "  int64_t s = {{ mode }};\n",
        "  {{ 'R' if mode is runtime else 'C' }}{{ 'R' if unroll is runtime else 'C' }}\n"))
    assert "  RC\n" in _units(project, "u.cu.jinja")[0].text


@pytest.mark.parametrize(("runtime", "message"), [
    ('mult = "int128"', "type 'int128' is not one of"),
    ('mult = { type = "int", arg = "3x" }', "is not a C identifier"),
    ('mult = { type = "uint8_t", values = { a = 300 } }', "300 does not fit a uint8_t"),
    ('mode = "int"', "'plain' is not a number of C type int"),
    ('mode = { values = { plain = 0 } }', "'shifted' is not one of plain"),
    ('missing = "int"', "has no value for runtime key 'missing'"),
    ('mult = { type = "int", colour = 1 }', "unknown field(s) colour"),
])
def test_bad_runtime_tables_are_errors_on_their_line(project, runtime, message):
    src = RUNTIME.replace('mult = "uint8_t"\nmode = { type = "int", values = { plain = 0, '
                          'shifted = 7 }, arg = "shift" }', runtime)
    project.write("t.cu.jinja", src)
    t = project.load("t.cu.jinja")
    errs = [d for d in t.errors if message in d.message]
    assert errs, [d.message for d in t.errors]
    assert errs[0].line == line_of(src, runtime)


def test_generator_variants_take_runtime_keys(project):
    project.write("gen.py", "def variants():\n"
                            "    return [{'tile': t, 'k': k} for t in (1, 2) for k in (4, 5)]\n")
    project.write("g.cu.jinja", """\
{#- cutlens
kind = "cuda"
[variants]
generator = "gen:variants"
[variants.runtime]
k = "int"
-#}
// tile {{ tile }} k {{ k }}
""")
    t = project.load("g.cu.jinja")
    vs = t.variants()
    assert [v.build_name for v in vs] == ["tile=1", "tile=1", "tile=2", "tile=2"]
    texts = [project.renderer.render(t, t.sample(None), v).text for v in vs]
    assert texts[0] == texts[1] != texts[2] and "k k" in texts[0]


# ------------------------------------------------------------------------- names (issue 16.3)
LONG_DECL = "".join(f"double extra_scalar_{i};\n" for i in range(12))


def test_constants_only_grid_is_one_variant_named_default(project):
    """Repro 3: a [variants] table of constants named its variant after every value (a
    300-byte, multi-line name: 'File name too long' when writing the build cache)."""
    project.write("cutlens.toml",
                  '[template."long.jinja"]\nkind = "cuda"\n[template."long.jinja".variants]\n'
                  f'params_decl = """{LONG_DECL}"""\nhead_dim = 128\n')
    project.write("long.jinja",
                  "struct Params {\n  {{ params_decl }}\n  int d = {{ head_dim }};\n};\n")
    t = project.load("long.jinja")
    assert t.errors == []
    [v] = t.variants()
    assert v.name == "default" and v.values["head_dim"] == 128
    u = project.renderer.render(t, t.sample(None), v)
    job = job_for(u, Mode.FULL, CompileOptions(cutlass=False))
    assert job.name == "long-default-default"


def test_long_and_multiline_names_are_one_short_line(project):
    decls = [LONG_DECL, LONG_DECL.replace("double", "float")]
    project.write("t.cu.jinja", "{#- cutlens\nkind = \"cuda\"\n[variants]\n"
                                f"decl = [\"\"\"{decls[0]}\"\"\", \"\"\"{decls[1]}\"\"\"]\n"
                                "-#}\nstruct S { {{ decl }} };\n")
    t = project.load("t.cu.jinja")
    vs = t.variants()
    assert len(vs) == 2 and vs[0].name != vs[1].name
    for v in vs:
        assert "\n" not in v.name and len(v.name) <= MAX_NAME
        assert len(v.slug.encode()) <= MAX_SLUG
        u = project.renderer.render(t, t.sample(None), v)
        head = u.header()
        assert head.count("\n") == 1 and head.startswith("// Rendered by cutlens")
        job = job_for(u, Mode.FULL, CompileOptions(cutlass=False))
        assert len(job.name) <= MAX_TU_NAME


def test_explicit_name_with_a_newline_stays_on_the_header_line(project):
    """Repro 3, second half: a name holding a newline ended the header comment early."""
    project.write("n.cu.jinja", '{#- cutlens\nkind = "cuda"\n[[variant]]\n'
                                'name = "int a;\\nint b; /* ends the comment */"\nx = 1\n-#}\n'
                                "struct S { int x = {{ x }}; };\n")
    t = project.load("n.cu.jinja")
    [v] = t.variants()
    assert v.name == "int a; int b; /* ends the comment */"
    u = project.renderer.render(t, t.sample(None), v)
    assert u.header().count("\n") == 1


def test_constants_plus_variant_tables_make_no_extra_variant(project):
    """Repro 13: [variants] constants + [[variant]] tables produced a variant of the
    constants alone, which then failed to render."""
    project.write("t.cu.jinja", """\
{#- cutlens
kind = "cuda"
[variants]
head_dim = 128
[[variant]]
dtype = "half"
[[variant]]
dtype = "float"
-#}
template <int D, class T> __global__ void k(T* p) { p[threadIdx.x] = T(D); }
template __global__ void k<{{ head_dim }}, {{ dtype }}>({{ dtype }}*);
""")
    t = project.load("t.cu.jinja")
    vs = t.variants()
    assert [(v.name, v.values) for v in vs] == [
        ("half", {"head_dim": 128, "dtype": "half"}),
        ("float", {"head_dim": 128, "dtype": "float"})]
    for v in vs:
        assert isinstance(project.renderer.render(t, t.sample(None), v), RenderedUnit)


def test_grid_plus_variant_tables_keep_both(project):
    project.write("t.cu.jinja", '{#- cutlens\nkind = "cuda"\n[variants]\na = [1, 2]\nc = 0\n'
                                '[[variant]]\na = 9\n-#}\n// {{ a }} {{ c }}\n')
    vs = project.load("t.cu.jinja").variants()
    assert [(v.name, v.values) for v in vs] == [
        ("a=1", {"c": 0, "a": 1}), ("a=2", {"c": 0, "a": 2}), ("a=9", {"c": 0, "a": 9})]


def test_signature_without_the_runtime_value_is_a_hook_error(project):
    project.write("t.cu.jinja", RUNTIME)
    u = _units(project)[0]
    with pytest.raises(HookError, match="lacks key 'mult'"):
        u.signature.to_json({"n": 64}, [], {"mode": "plain"})


def test_bench_worker_passes_each_variants_values(lib):
    """The fake kernel takes a uint8_t and a double after its size: each request's values
    reach the call and the workspace query (its size depends on them), and verify."""
    torch = pytest.importorskip("torch")
    del torch
    from cutlens.bench.protocol import run_request
    from cutlens.bench.worker import Worker

    from conftest import fakelib

    w = Worker("cpu")
    for mult, add in ((1, 0.0), (3, -1.5), (200, 2.25)):
        req = run_request(fakelib.scale_signature(lib, mult, add),
                          {"reference": "Y = X * mult + add"}, timing=fakelib.FAST_TIMING)
        r = w.handle(req)
        assert r["error"] is None and r["verified"] is True, r
        assert r["workspace_bytes"] == 16 * mult
    r = w.handle(run_request(fakelib.scale_signature(lib, 0, 1.0), {},
                             timing=fakelib.FAST_TIMING))
    assert r["error"] == "returned 8"


def test_runner_sweep_of_runtime_variants_on_one_library(lib):
    """Requests that share one library but not their values, through worker processes."""
    pytest.importorskip("torch")
    from cutlens.bench.protocol import run_request
    from cutlens.bench.runner import Runner

    from conftest import fakelib

    async def go() -> list[dict]:
        async with Runner(device="cpu", workers=2, timeout_s=60) as runner:
            reqs = [run_request(fakelib.scale_signature(lib, m, 0.5),
                                {"reference": "Y = X * mult + add"},
                                timing=fakelib.FAST_TIMING, variant_name=f"mult={m}")
                    for m in (1, 2, 4, 8)]
            return [r async for r in runner.sweep(reqs)]

    results = asyncio.run(go())
    assert sorted(r["variant_name"] for r in results) == [f"mult={m}" for m in (1, 2, 4, 8)]
    assert all(r["verified"] is True and r["error"] is None for r in results)
    assert sorted(r["workspace_bytes"] for r in results) == [16, 32, 64, 128]


def test_variants_command_counts_the_builds(project):
    import subprocess
    import sys

    project.write("t.cu.jinja", RUNTIME)
    out = subprocess.run([sys.executable, "-m", "cutlens", "variants", "t.cu.jinja"],
                         capture_output=True, text=True, cwd=project.root, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "8 variant(s), 2 build(s) (mult, mode passed at run time)" in out.stdout
