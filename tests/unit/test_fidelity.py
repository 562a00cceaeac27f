"""Third-party templates (issue 16): FlashInfer's pattern — templates that cannot carry front
matter, configured only through ``cutlens.toml``, companions, plain variable names — renders
byte for byte like jinja2, checks clean, and every error lands on its template line. Each
test is one of the issue's repros (``/work/research/ext/repros``) made a regression test;
the nvcc ones compile a few small CUDA units with a real nvcc."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import jinja2
import pytest

from cutlens import config
from cutlens.check import formats
from cutlens.check.nvcc_tier import modes_for
from cutlens.check.run import check_paths
from cutlens.nvcc import toolchain as nv
from cutlens.nvcc.options import compile_options
from cutlens.nvcc.pool import Mode
from cutlens.render.renderer import RenderedUnit
from cutlens.template.discovery import load_template
from cutlens.template.selection import Selection

from conftest import line_of

#: Real CUTLASS units (~45 s of nvcc each) in the nvcc tests.
pytestmark = pytest.mark.timeout(1200)

STAND_IN = Path(__file__).parents[1] / "fixtures" / "flashinfer_like"
INST = "csrc/decode_kernel_inst.jinja"
CONFIG = "csrc/decode_customize_config.jinja"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cutlens", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


def errors(diags):
    return [d for d in diags if d.severity == "error"]


@pytest.fixture
def stand_in(tmp_path: Path) -> Path:
    """A copy of the FlashInfer-shaped project (its build cache stays in the copy)."""
    root = tmp_path / "fi"
    shutil.copytree(STAND_IN, root)
    return root


def table_values(root: Path) -> dict:
    data = tomllib.loads((root / "cutlens.toml").read_text())
    return dict(data["template"][INST]["variants"])


def set_variants(root: Path, variants: list[dict]) -> None:
    """Replace the per-template constants with ``[[variant]]`` tables (one unit each)."""
    text = (root / "cutlens.toml").read_text()
    head = text[:text.index(f'[template."{INST}".variants]')]
    out = [head]
    for v in variants:
        out.append(f'[[template."{INST}".variant]]\n')
        out += [f"{k} = {json.dumps(val)}\n" for k, val in v.items()]
    (root / "cutlens.toml").write_text("".join(out))


# --------------------------------------------------------------------------- render


def test_render_is_jinja2s_byte_for_byte(stand_in: Path):
    """Item 12: the unit and its companion are exactly what ``jinja2.Template(text).render()``
    (FlashInfer's, AITemplate's and Inductor's renderer) gives: no final newline added."""
    t = load_template(stand_in / INST)
    assert t.errors == []
    s = t.sample(None)
    u = t_render(t, s)
    values = {k: v for k, v in table_values(stand_in).items() if k != "name"}
    for path, text in ((stand_in / INST, u.text),
                       (stand_in / CONFIG, u.companions["decode_config.inc"].text)):
        want = jinja2.Template(path.read_text()).render(**values)
        assert text == want
        assert not text.endswith("\n") and path.read_text().endswith("\n")


def t_render(t, s) -> RenderedUnit:
    from cutlens.render.renderer import Renderer

    u = Renderer().render(t, s, t.variant(s, None))
    assert isinstance(u, RenderedUnit), getattr(u, "diagnostics", u)
    return u


def test_users_variables_named_like_cutlens_names_win(project):
    """Item 2: FlashInfer's ``variant_name`` (and a ``kernel_name``, ``sample_name``) mean
    what the settings say; cutlens's own values are ``cutlens.*``."""
    project.write("cutlens.toml", """
[template."t.jinja"]
kind = "cuda"
kernel_name = "my_symbol"
[template."t.jinja".variants]
name = "v0"
variant_name = "DefaultAttention<false, false, false, false>"
kernel_name = "my_kernel"
sample_name = "my_sample"
""")
    project.write("t.jinja", "using AttentionVariant = {{ variant_name }};\n"
                             "// {{ kernel_name }} {{ sample_name }}\n"
                             "// {{ cutlens.kernel_name }} {{ cutlens.sample_name }} "
                             "{{ cutlens.variant_name }} {{ cutlens.variant_index }} "
                             "{{ cutlens.template_name }}\n")
    u = project.render("t.jinja")
    assert u.text.splitlines() == [
        "using AttentionVariant = DefaultAttention<false, false, false, false>;",
        "// my_kernel my_sample",
        "// my_symbol default v0 0 t.jinja"]


def test_a_variable_named_kernel_is_an_error_naming_both(project):
    """Item 2: ``kernel``/``template`` are the emulated Inductor API (and ``cutlens`` is
    cutlens's own): a variable of that name is an error on its config line naming both."""
    project.write("cutlens.toml", """
[template."t.jinja"]
kind = "cuda"
[template."t.jinja".variants]
kernel = "my_kernel_value"
""")
    project.write("t.jinja", "// {{ kernel }}\n")
    report = check_paths([project.root / "t.jinja"], nvcc=False)
    (d,) = errors(report.diagnostics)
    assert d.file.endswith("cutlens.toml") and d.line == 4
    assert d.code == "reserved-name"
    assert "variant key 'kernel' clashes with cutlens's 'kernel'" in d.message
    assert "Inductor kernel API" in d.message


def test_cutlens_old_plain_names_say_where_they_went(project):
    project.write("t.cu.jinja", '{#- cutlens\nkind = "cuda"\n-#}\n// {{ kernel_name }}\n')
    report = check_paths([project.root / "t.cu.jinja"], nvcc=False)
    (d,) = errors(report.diagnostics)
    assert d.line == 4
    assert d.message == ("'kernel_name' is undefined (cutlens's own value is "
                         "cutlens.kernel_name)")


# --------------------------------------------------------------------------- discovery


def test_a_template_named_by_a_table_is_checked_whatever_its_name(tmp_path: Path):
    """Item 5: FlashInfer's ``*.jinja`` match none of the default globs; a table naming the
    file makes it a template (``check .`` finds it)."""
    (tmp_path / "cutlens.toml").write_text(
        '[template."kernel_inst.jinja"]\nkind = "cuda"\n'
        '[template."kernel_inst.jinja".variants]\ndtype = "float"\n')
    (tmp_path / "kernel_inst.jinja").write_text("__global__ void k({{ dtype }}* p) {}\n")
    out = cli("check", ".", "--no-nvcc", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "1 template(s), 0 error(s)" in out.stderr


def test_a_table_naming_no_file_is_an_error_on_its_line(tmp_path: Path):
    (tmp_path / "cutlens.toml").write_text(
        '# the table\'s path has a typo\n[template."kernal.cu.jinja"]\nkind = "cuda"\n')
    (tmp_path / "kernel.cu.jinja").write_text("int x;\n")
    out = cli("check", ".", "--no-nvcc", cwd=tmp_path)
    assert out.returncode == 2
    assert ("cutlens.toml:2:1: error: [template.'kernal.cu.jinja']: no file 'kernal.cu.jinja' "
            "(did you mean 'kernel.cu.jinja'?)") in out.stderr


def test_a_check_that_matches_nothing_exits_2(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("no templates here\n")
    out = cli("check", ".", "--no-nvcc", cwd=tmp_path)
    assert out.returncode == 2
    assert "cutlens check: no template to check under ." in out.stderr
    assert "front matter" in out.stderr  # says what a template is


def test_a_companion_checked_alone_is_checked_through_its_owner(stand_in: Path):
    """Item 9: the companion has no variables of its own; checked alone it renders through
    the template that names it (which includes its *output* name), with no false
    "undefined"."""
    report = check_paths([stand_in / CONFIG], nvcc=False)
    assert [t.path.name for t in report.templates] == ["decode_kernel_inst.jinja"]
    assert report.diagnostics == []
    out = cli("check", str(stand_in / CONFIG), "--no-nvcc", cwd=stand_in)
    assert out.returncode == 0 and "1 template(s), 0 error(s)" in out.stderr, out.stderr


def test_a_companion_opened_alone_in_the_editor_gets_no_false_error(stand_in: Path):
    """Item 9, the language server: the companion is a partial, checked through its owner."""
    from cutlens.lsp.headless import collect

    diags, n = asyncio.run(collect([stand_in / CONFIG], no_exec=True))
    assert n == 1
    assert [d for d in diags if d.severity == "error"] == [], formats.text(diags)


# --------------------------------------------------------------------------- compile options


def test_compile_options_keep_cutlass_dirs_and_defines_apart(project):
    """Item 11: ``[compile] cutlass_defines`` per template; ``cutlass_include_dirs`` does not
    drop the defines; ``cutlass = false`` drops only cutlens's defaults; the template's
    folder is an include dir (item 7); system dirs and EDG suppressions reach nvcc."""
    inc = project.root / "cutlass_inc"
    (inc / "cutlass").mkdir(parents=True)
    (inc / "cutlass" / "cutlass.h").write_text("")
    (project.root / "sys").mkdir()
    project.write("cutlens.toml", f"""
cutlass_include_dirs = ["{inc}"]
system_include_dirs = ["sys"]
diag_suppress = ["3357-D"]
[template."kernels/a.jinja"]
variants = {{ v = 1 }}
[template."kernels/a.jinja".compile]
cutlass_defines = ["CUTE_SM90_EXTENDED_MMA_SHAPES_ENABLED"]
diag_suppress = ["spill", "-Wdeprecated-declarations"]
[template."kernels/b.jinja"]
compile = {{ cutlass = false }}
variants = {{ v = 1 }}
[template."kernels/c.jinja"]
variants = {{ v = 1 }}
""")
    for n in "abc":
        project.write(f"kernels/{n}.jinja", "int x = {{ v }};\n")
    cfg = config.load(project.root)
    assert cfg.problems == []
    a, b, c = (compile_options(load_template(project.root / f"kernels/{n}.jinja", cfg))
               for n in "abc")
    fa, fb, fc = (nv.mode_flags(Mode.FULL, o) for o in (a, b, c))
    assert [f for f in fa if f.startswith("-D")] == ["-DCUTE_SM90_EXTENDED_MMA_SHAPES_ENABLED"]
    assert [f for f in fc if f.startswith("-D")] == [f"-D{d}" for d in nv.CUTLASS_DEFINES]
    assert not [f for f in fb if f.startswith("-D")]  # cutlass = false: no Inductor defines
    for flags in (fa, fb, fc):  # ... but the CUTLASS dirs the user set stay
        assert f"-I{inc}" in flags
        assert not any("cutlass_library" in f for f in flags)  # not the wheel's
        assert f"-Xcompiler=-iquote,{project.root / 'kernels'}" in flags
        i = flags.index("-isystem")
        assert flags[i + 1] == str(project.root / "sys")
        assert "--diag-suppress=3357" in flags
    assert a.diag_suppress == ("3357-D", "spill", "-Wdeprecated-declarations")


def test_editing_a_header_beside_the_template_changes_the_compile(project):
    """Item 7: the template's folder is searched for quoted includes; the build cache must
    see a header there change (and only a header: editing a neighbouring template must not
    recompile this one)."""
    project.write("k/t.cu.jinja", '{#- cutlens\nkind = "cuda"\n-#}\n#include "h.cuh"\n')
    project.write("k/h.cuh", "#pragma once\n")
    project.write("k/other.cu.jinja", "// v1\n")

    def options():
        return compile_options(project.load("k/t.cu.jinja"))

    first = options()
    assert first.template_headers_stamp and nv.common_flags(first) == nv.common_flags(options())
    project.write("k/other.cu.jinja", "// v2, longer\n")
    assert nv.common_flags(options()) == nv.common_flags(first)
    project.write("k/h.cuh", "#pragma once\n#define NEW 1\n")
    assert nv.common_flags(options()) != nv.common_flags(first)


def test_full_only_mode_runs_the_full_pass_alone():
    assert modes_for("full-only") == (Mode.FULL,)
    assert modes_for("full") == (Mode.QUICK, Mode.FULL)
    assert modes_for("quick") == (Mode.QUICK,)


# --------------------------------------------------------------------------- nvcc


@pytest.mark.nvcc
@pytest.mark.parametrize("mode", ["full", "full-only"])
def test_flashinfer_shaped_project_checks_clean(stand_in: Path, mode: str):
    """Done-when 2, on the stand-in: configured only through cutlens.toml (companion,
    ``variant_name``, ``*.jinja`` names, -isystem dirs), ``check csrc/`` is clean."""
    out = cli("check", "csrc/", "--jobs", "1", "--mode", mode, cwd=stand_in)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout == "" and "1 template(s), 0 error(s), 0 warning(s)" in out.stderr


@pytest.mark.nvcc
def test_flashinfer_shaped_errors_land_on_their_lines(stand_in: Path):
    """Items 8 and 9: an error deep in a header instantiated from the 3-line explicit
    instantiation lands on the line whose ``{{ expr }}`` rendered the offending argument;
    a bad type in the companion lands on the companion's line."""
    base = {k: v for k, v in table_values(stand_in).items() if k != "name"}
    set_variants(stand_in, [
        {"name": "wrong-out", **base, "dtype_o": "float"},
        {"name": "bad-head-dim", **base, "head_dim_qk": 100},
        {"name": "typo-q", **base, "dtype_q": "nv_bfloat17"},
        {"name": "int-pos-mode", **base, "pos_encoding_mode": "128"},
        {"name": "int-q", **base, "dtype_q": "int"},
        {"name": "odd-mma", **base, "head_dim_qk": 112},
    ])
    report = check_paths([stand_in / INST], jobs=1)
    inst = (stand_in / INST).read_text()
    comp = (stand_in / CONFIG).read_text()
    got = {d.variants[0]: d for d in errors(report.diagnostics)}
    assert set(got) == {"wrong-out", "bad-head-dim", "typo-q", "int-pos-mode", "int-q",
                        "odd-mma"}, formats.text(report.diagnostics)

    d = got["wrong-out"]  # static_assert(sizeof(DTypeO) == 2) deep in decode.cuh
    assert (Path(d.file).name, d.line) == ("decode_kernel_inst.jinja",
                                           line_of(inst, "{{ dtype_o }}* tmp"))
    assert d.message == 'static assertion failed with "DTypeO must be a 16-bit type"'
    notes = [(Path(r.file).name, r.line, r.message) for r in d.related]
    assert notes[0][0] == "decode.cuh" and notes[0][2] == "error reported here"
    assert ("decode_kernel_inst.jinja", line_of(inst, "template cudaError_t")) in [
        n[:2] for n in notes]  # the statement's first line, as EDG names it
    assert ("decode_customize_config.jinja", line_of(comp, "struct Params"),
            "Params is declared here") in notes  # declarations in the companion too

    d = got["bad-head-dim"]  # static_assert(HEAD_DIM % 16 == 0)
    assert (Path(d.file).name, d.line) == ("decode_kernel_inst.jinja",
                                           line_of(inst, "{{ head_dim_qk }}, {{"))
    assert d.message == 'static assertion failed with "HEAD_DIM must be a multiple of 16"'

    d = got["typo-q"]
    assert (Path(d.file).name, d.line) == ("decode_customize_config.jinja",
                                           line_of(comp, "using DTypeQ"))
    assert d.message == 'identifier "nv_bfloat17" is undefined'

    # EDG: "no instance of function template matches the specified type", at the statement's
    # first line; the argument that does not fit the declaration is an int for an enum class
    d = got["int-pos-mode"]
    assert (Path(d.file).name, d.line) == ("decode_kernel_inst.jinja",
                                           line_of(inst, "{{ pos_encoding_mode }}"))
    assert d.message.startswith('no instance of function template "fi::DecodeDispatched"')
    assert ("decode.cuh", "fi::DecodeDispatched is declared here") in [
        (Path(r.file).name, r.message) for r in d.related]

    # ptxas: vec_t<int>::load is declared, never defined: the line that chose int
    d = got["int-q"]
    assert (Path(d.file).name, d.line) == ("decode_customize_config.jinja",
                                           line_of(comp, "using DTypeQ"))
    assert "Unresolved extern function 'fi::vec_t<int>::load(int const*)'" in d.message

    # a constant derived from a parameter (NUM_MMA_D_QK from HEAD_DIM_QK)
    d = got["odd-mma"]
    assert (Path(d.file).name, d.line) == ("decode_kernel_inst.jinja",
                                           line_of(inst, "{{ head_dim_qk }}, {{"))
    assert d.message == 'static assertion failed with "NUM_MMA_D_QK must be even"'
    assert len(errors(report.diagnostics)) == 6


@pytest.mark.nvcc
@pytest.mark.parametrize("old,new,edited,quoted", [
    # an enumerator that does not exist: EDG adds "invalid explicit instantiation
    # declaration", at the statement's first line
    ("{{ pos_encoding_mode }},", "{{ pos_encoding_mode }}_x,", "{{ pos_encoding_mode }}_x",
     '"kNone_x"'),
    # an undefined type in the parameter list: "no instance of function template ...
    # matches", at the statement's first line
    ("{{ dtype_o }}* tmp,", "{{ dtype_o }}* tmp, Foo_x* q,", "Foo_x", '"Foo_x"'),
])
def test_a_statement_error_joins_the_line_the_user_edited(stand_in: Path, old: str,
                                                          new: str, edited: str, quoted: str):
    """FlashInfer's explicit instantiations put their arguments on later lines: an error
    EDG reports for the whole statement on its first line goes to the edited argument line
    (with the first line as related information), beside the error naming the argument."""
    path = stand_in / INST
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    inst = path.read_text()
    report = check_paths([path], jobs=1)
    errs = errors(report.diagnostics)
    assert len(errs) == 2, formats.text(report.diagnostics)
    assert {(Path(d.file).name, d.line) for d in errs} == {
        ("decode_kernel_inst.jinja", line_of(inst, edited))}, formats.text(errs)
    assert any(quoted in d.message for d in errs)
    moved = next(d for d in errs if quoted not in d.message)
    assert moved.message.startswith(("invalid explicit instantiation",
                                     "no instance of function template"))
    assert (Path(moved.related[0].file).name, moved.related[0].line,
            moved.related[0].message) == ("decode_kernel_inst.jinja",
                                          line_of(inst, "template cudaError_t"),
                                          "reported at the statement's first line")


def check_one(project, name: str, text: str, **kw):
    project.write(name, text)
    return check_paths([project.root / name], Selection(), jobs=1, **kw).diagnostics


@pytest.mark.nvcc
@pytest.mark.nvcc
def test_gcc_note_with_its_own_include_context_is_no_error(project):
    """Item 1: the redefinition warning on the #include line, its note related; nvcc exits
    0 and so does the check (no phantom "error: In file included from")."""
    project.write("inc/a.h", "#define X 1\n")
    project.write("inc/b.h", '#include "a.h"\n#define X 2\n')
    src = ('{#- cutlens\nkind = "cuda"\n[compile]\ninclude_dirs = ["inc"]\n-#}\n'
           '#include "b.h"\n__global__ void k(int* p) { *p = X; }\n')
    diags = check_one(project, "t.cu.jinja", src)
    assert [(d.severity, d.line, d.message) for d in diags] == [
        ("warning", line_of(src, '#include "b.h"'), '"X" redefined')]
    assert [(Path(r.file).name, r.line, r.message) for r in diags[0].related] == [
        ("b.h", 2, "warning reported here"),
        ("a.h", 1, "this is the location of the previous definition")]


@pytest.mark.nvcc
@pytest.mark.nvcc
def test_errors_only_the_quick_pass_finds_are_counted_everywhere(project):
    """Item 4: a device-only error (quick pass) and a host-only static_assert (full pass,
    which stops in cudafe++ and never compiles the device code): both in the report, the
    JSON, SARIF and GitHub outputs."""
    src = ('{#- cutlens\nkind = "cuda"\n-#}\n'
           "#ifdef __CUDA_ARCH__\n"
           "__device__ int device_only() { return undeclared_device_name; }\n"
           "#endif\n#ifndef __CUDA_ARCH__\n"
           'static_assert(sizeof(int) == 3, "host-only static_assert");\n'
           "#endif\n__global__ void k(int* p) { *p = 1; }\n")
    diags = check_one(project, "t.cu.jinja", src)
    want = [(line_of(src, "undeclared_device_name"),
             'identifier "undeclared_device_name" is undefined'),
            (line_of(src, "host-only"), 'static assertion failed with "host-only static_assert"')]
    assert sorted((d.line, d.message) for d in errors(diags)) == want
    doc = json.loads(formats.to_json(diags, 1))
    assert doc["summary"]["errors"] == 2 and len(doc["diagnostics"]) == 2
    assert len(json.loads(formats.sarif(diags))["runs"][0]["results"]) == 2
    assert formats.github(diags).count("::error ") == 2
    out = cli("check", "t.cu.jinja", "--jobs", "1", cwd=project.root)
    assert out.returncode == 1 and "2 error(s)" in out.stderr


@pytest.mark.nvcc
@pytest.mark.nvcc
def test_an_error_with_candidate_notes_keeps_its_chain(project):
    """Item 6: EDG prints the chain after the candidate notes; the error lands on the
    template line that instantiates ``rank3``, the candidates related."""
    project.write("inc/getter.h",
                  "#pragma once\nstruct Ax {};\ntemplate <int I, class T> int get(T* t);\n"
                  "template <int I, class T, int N> int get(T (&t)[N]);\n"
                  "template <class T> int rank3(T const& t) { return get<3>(t); }\n")
    project.write("cutlens.toml", '[template."t.cu.jinja"]\nkind = "cuda"\n'
                                  'compile = { include_dirs = ["inc"] }\n'
                                  'variants = { arg = "Ax{}" }\n')
    src = '#include "getter.h"\n\n// line 1 is not it\nint use() {\n  return rank3({{ arg }});\n}\n'
    (d,) = errors(check_one(project, "t.cu.jinja", src))
    assert d.line == line_of(src, "rank3({{ arg }})")
    assert d.message.startswith('no instance of overloaded function "get" matches')
    notes = [(Path(r.file).name, r.line, r.message) for r in d.related]
    assert notes[0] == ("getter.h", 5, "error reported here")
    assert ("getter.h", 4, 'candidate function template "get<I,T,N>(T (&)[N])" failed '
            "deduction") in notes


@pytest.mark.nvcc
@pytest.mark.nvcc
def test_a_header_beside_the_template_is_found(project):
    """Item 7: ``#include "helpers.cuh"`` next to the template compiles, as it would beside
    the rendered file."""
    project.write("kernels/helpers.cuh", "#pragma once\n"
                                         "__device__ inline int twice(int x) { return 2 * x; }\n")
    src = ('{#- cutlens\nkind = "cuda"\n-#}\n#include "helpers.cuh"\n'
           "__global__ void k(int* p) { *p = twice({{ 21 }}); }\n")
    assert check_one(project, "kernels/t.cu.jinja", src) == []


HEAVY = """\
#pragma once
#include <cuda_runtime.h>
[[deprecated("use new_api")]] inline int old_api() { return 1; }
inline int helper() { return old_api(); }

template <int N>
__global__ void heavy(const float* p, float* out) {
  float r[N];
#pragma unroll
  for (int i = 0; i < N; ++i) r[i] = p[i * blockDim.x + threadIdx.x];
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int j = 0; j < N; ++j) s += r[i] * r[(i * 7 + j) % N] / (r[j] + 1.f);
  out[threadIdx.x] = s;
}
template <int N>
cudaError_t launch(const float* p, float* out, cudaStream_t stream) {
  heavy<N><<<1, 128, 0, stream>>>(p, out);
  return cudaGetLastError();
}
"""
HEAVY_INST = ("// a header with no chain into the unit\n#include <cstdint>\n"
              '#include "lib.cuh"\n\n'
              "template cudaError_t launch<{{ n }}>(const float*, float*, cudaStream_t);\n")


@pytest.mark.nvcc
@pytest.mark.nvcc
def test_header_messages_without_a_chain_land_on_the_include_line(project):
    """Item 10: a deprecation warning in plain header code and ptxas's spill warning for
    the header's kernel land on the ``#include`` bringing the header in (the header
    location related); the spill of nvcc's own division helper is left out."""
    project.write("inc/lib.cuh", HEAVY)
    project.write("cutlens.toml", '[template."a.cu.jinja"]\nkind = "cuda"\n'
                                  'compile = { include_dirs = ["inc"], '
                                  'extra_flags = ["-maxrregcount=24"] }\n'
                                  'variants = { n = 16 }\n')
    diags = check_one(project, "a.cu.jinja", HEAVY_INST)
    inc_line = line_of(HEAVY_INST, '"lib.cuh"')
    assert sorted((d.line, d.source, d.code) for d in diags) == [
        (inc_line, "nvcc", "-Wdeprecated-declarations"), (inc_line, "ptxas", "spill")]
    dep = next(d for d in diags if d.source == "nvcc")
    assert dep.message == "‘int old_api()’ is deprecated: use new_api"
    assert [(Path(r.file).name, r.line, r.message) for r in dep.related] == [
        ("lib.cuh", 4, "warning reported here"), ("lib.cuh", 3, "declared here")]
    spill = next(d for d in diags if d.source == "ptxas")
    assert "heavy<16>" in spill.message
    assert [(Path(r.file).name, r.line, r.message) for r in spill.related] == [
        ("lib.cuh", 7, "heavy is defined here")]
    assert not any("__cuda_" in d.message for d in diags)

    # diag_suppress by the codes shown; system_include_dirs (-isystem) hides the header's
    # compiler warnings as FlashInfer's build does
    project.write("cutlens.toml", '[template."a.cu.jinja"]\nkind = "cuda"\n'
                                  'compile = { system_include_dirs = ["inc"], '
                                  'extra_flags = ["-maxrregcount=24"], '
                                  'diag_suppress = ["spill"] }\n'
                                  'variants = { n = 16 }\n')
    assert check_one(project, "a.cu.jinja", HEAVY_INST) == []


# --------------------------------------------------------------------------- mapping helpers


def test_chain_bindings_and_argument_text():
    from cutlens.nvcc.statements import bindings, normalize, offending_values

    chain = ['instantiation of class "Checker<HEAD_DIM, Variant, DTypeO> [with HEAD_DIM=128, '
             'Variant=DefaultAttention<false, true>, DTypeO=float]"',
             'instantiation of "cudaError_t Run<HEAD_DIM,Variant,DTypeO>(DTypeO *) [with '
             'HEAD_DIM=128U, Variant=DefaultAttention<false, true>, DTypeO=float]"']
    bound = bindings(chain)
    assert bound[:3] == [("HEAD_DIM", "128"), ("Variant", "DefaultAttention<false, true>"),
                         ("DTypeO", "float")]
    said = 'static_assert(sizeof(DTypeO) == 2, "DTypeO must be a 16-bit type");'
    assert offending_values(bound, said) == ["float"]
    assert normalize("flashinfer::DefaultAttention<false, true>") == normalize(
        "DefaultAttention<false,true>")
    assert normalize("128U") == "128" and normalize("__nv_bfloat16") == "nv_bfloat16"


def test_statement_range_skips_comments_strings_and_directives():
    from cutlens.nvcc.statements import statement_range

    text = ('#include "a.h"  // x; y\n'
            'int a = 1;\n'
            'template cudaError_t Run<\n'
            '    128, /* ; */ V,\n'
            '    float>(\n'
            '    float* tmp, const char* s = ";");\n'
            'int b;\n')
    start, end = statement_range(text, text.index("template"))
    assert text[start:end].strip().startswith("template cudaError_t Run<")
    assert text[start:end].rstrip().endswith('";");')
    assert statement_range(text, text.index("int a"))[1] == text.index("\ntemplate")


def test_include_graph_names_the_rendered_line_that_brings_a_header_in(tmp_path: Path):
    from cutlens.nvcc.includes import IncludeGraph

    inc, build = tmp_path / "inc", tmp_path / "build"
    (inc / "fi").mkdir(parents=True)
    build.mkdir()
    (inc / "fi" / "decode.cuh").write_text('#pragma once\n#include "utils.cuh"\n')
    (inc / "fi" / "utils.cuh").write_text("#pragma once\n#include <cuda_runtime.h>\n")
    (inc / "fi" / "math.cuh").write_text("#pragma once\n")
    (tmp_path / "helpers.cuh").write_text("#pragma once\n")  # beside the template
    tu, comp = str(build / "t.cu"), str(build / "config.inc")
    rendered = {tu: '// unit\n#include <fi/decode.cuh>\n#include "config.inc"\n'
                    '#include "helpers.cuh"\n',
                comp: "#pragma once\n#include <fi/math.cuh>\n#include <fi/utils.cuh>\n"}
    g = IncludeGraph(rendered, tu, ["nvcc", "-I", "/nonexistent", "-isystem", str(inc),
                                    f"-Xcompiler=-iquote,{tmp_path}"])
    assert g.include_line(str(tmp_path / "helpers.cuh")) == (tu, 4)
    assert g.include_line(str(inc / "fi" / "decode.cuh")) == (tu, 2)
    assert g.include_line(str(inc / "fi" / "utils.cuh")) == (tu, 2)  # first reached there
    assert g.include_line(str(inc / "fi" / "math.cuh")) == (comp, 2)  # through the companion
    assert g.include_line(str(tmp_path / "elsewhere.h")) is None


def test_a_message_naming_a_first_line_token_stays_there():
    """A statement-level error moves off a statement's first line only when it names
    nothing written there."""
    from cutlens.nvcc.statements import names_the_line

    first = "template cudaError_t DecodeDispatchd<"
    assert names_the_line('identifier "DecodeDispatchd" is undefined', first)
    assert not names_the_line("invalid explicit instantiation declaration", first)
    assert not names_the_line('static assertion failed with "a template must be"', first)
    assert not names_the_line('no instance of function template "fi::DecodeDispatchd" '
                              "matches the specified type", first)
