"""Templates that live in Python (render drivers): the AITemplate-like fixture under
tests/fixtures/pyhost — module-level jinja2.Template constants in two modules, one template
rendered into another's ``{% set %}`` block, trim/lstrip_blocks, an escaped newline, a
dedented ``Environment.from_string`` with StrictUndefined, text Python assembles around a
render — checked in place: output byte-identical to plain jinja2's, every line mapped to its
``.py`` line, errors (Jinja, nvcc, the driver's own Python) on the exact ``.py`` line."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cutlens import config
from cutlens.check.run import check_paths
from cutlens.diagnostics import Diagnostic
from cutlens.template.drivers import run_drivers
from cutlens.template.loader import load
from cutlens.template.selection import Selection

FIXTURE = Path(__file__).parents[1] / "fixtures" / "pyhost"


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns(".cutlens", "__pycache__"))
    return root


def edit(root: Path, rel: str, old: str, new: str) -> int:
    """Replace ``old`` (once) in a fixture file; the 1-based line of the change."""
    p = root / rel
    text = p.read_text()
    assert text.count(old) == 1, old
    p.write_text(text.replace(old, new))
    return text[:text.index(old)].count("\n") + 1


def line_of(root: Path, rel: str, needle: str) -> int:
    lines = (root / rel).read_text().splitlines()
    hits = [i for i, ln in enumerate(lines, 1) if needle in ln]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


def cases(root: Path):
    cfg = config.load(root)
    [run] = run_drivers(cfg)
    return run


def plain_sources(root: Path) -> dict[str, str]:
    """The cases' text as the project's own code renders them, without cutlens."""
    code = ("import json, sys; sys.path.insert(0, '.'); from aitlike.driver import cases\n"
            "out = {}\nfor c in cases():\n"
            "    s = c['source']\n    out[c['name']] = s() if callable(s) else s\n"
            "print(json.dumps(out))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                         text=True, check=True, env=env)
    return json.loads(out.stdout)


def test_output_is_byte_identical_to_plain_jinja2(proj: Path):
    run = cases(proj)
    assert run.errors == []
    got = {c.name: c.source for c in run.cases}
    assert got == plain_sources(proj)
    assert sorted(got) == ["gemm_banner", "gemm_rcr_double", "gemm_rcr_float", "relu_scale"]


def test_every_line_maps_to_the_py_line_that_wrote_it(proj: Path):
    """A rendered line from template text is that text (whitespace aside) on its .py line;
    lines from expressions map to the line of the ``{{ }}`` that printed them."""
    run = cases(proj)
    checked = 0
    for c in run.cases:
        assert c.source is not None
        assert len(c.lines) == len(c.source.splitlines())
        for text, frames in zip(c.source.splitlines(), c.lines, strict=True):
            file, line, _, kind = frames[-1]
            assert file.endswith(".py"), (c.name, text, frames)
            py = Path(file).read_text().splitlines()[line - 1]
            if text.strip() and "{" not in py and kind == "text":
                assert text.strip() in py.strip() or py.strip() in text.strip(), \
                    (c.name, text, file, line, py)
                checked += 1
    assert checked > 50


def test_nesting_through_python_and_set_blocks(proj: Path):
    run = cases(proj)
    by = {c.name: c for c in run.cases}

    def origin(case: str, needle: str) -> tuple[str, int]:
        c = by[case]
        [i] = [k for k, ln in enumerate(c.source.splitlines()) if needle in ln]
        f = c.lines[i][-1]
        return Path(f[0]).name, f[1]

    gemm = "aitlike/backend/gemm.py"
    # EXEC_TEMPLATE's render, printed into SRC_TEMPLATE's {% set launch %} block
    assert origin("gemm_rcr_float", "<<<grid, block") == (
        "gemm.py", line_of(proj, gemm, "{{kernel}}<<<grid"))
    assert origin("gemm_rcr_float", "dim3 block(16, 16)") == (
        "gemm.py", line_of(proj, gemm, "dim3 block(16, 16)"))
    # HEADER_TEMPLATE rendered, stripped in Python, printed by SRC_TEMPLATE; the line after an
    # escaped newline sits one .py line lower than its template line
    common = "aitlike/backend/common.py"
    assert origin("gemm_rcr_float", "#include \"checks.cuh\"") == (
        "common.py", line_of(proj, common, '#include "checks.cuh"'))
    assert origin("gemm_rcr_float", "using index_t") == (
        "common.py", line_of(proj, common, "using index_t"))
    # a dedented Environment.from_string literal
    assert origin("relu_scale", "v = v * 2.f") == (
        "elementwise.py", line_of(proj, "aitlike/backend/elementwise.py", "v = {{ step }}"))
    # text the driver assembled: the banner maps to the driver's yield, the rest still in
    assert origin("gemm_banner", "generated by aitlike") == (
        "driver.py", line_of(proj, "aitlike/driver.py", 'yield {"name": "gemm_banner"'))
    assert origin("gemm_banner", "<<<grid, block") == (
        "gemm.py", line_of(proj, gemm, "{{kernel}}<<<grid"))


def test_a_module_checks_the_cases_whose_templates_it_holds(proj: Path):
    cfg = config.load(proj)
    ew = load(proj / "aitlike/backend/elementwise.py", cfg)
    assert [v.name for v in ew.variants(ew.sample_list[0])] == ["relu_scale"]
    common = load(proj / "aitlike/backend/common.py", cfg)
    assert sorted(v.name for s in common.sample_list for v in common.variants(s)) == [
        "gemm_banner", "gemm_rcr_double", "gemm_rcr_float"]
    driver = load(proj / "aitlike/driver.py", cfg)
    assert len(driver.cases) == 4
    unused = load(proj / "aitlike/__init__.py", cfg)
    assert not unused.hosts_templates


# -- errors on their .py line ----------------------------------------------------------------
def check(root: Path, path: str = ".", nvcc: bool = False) -> list[Diagnostic]:
    report = check_paths([root / path], Selection(), nvcc=nvcc, jobs=2)
    assert not report.config_problems, report.config_problems
    return report.diagnostics


def test_jinja_syntax_error_in_a_literal_at_import(proj: Path):
    line = edit(proj, "aitlike/backend/gemm.py", "{% endset %}", "{% endsett %}")
    [d] = [d for d in check(proj) if d.severity == "error"]
    assert (Path(d.file).name, d.line) == ("gemm.py", line)
    assert d.message.startswith("syntax error: Encountered unknown tag 'endsett'")


def test_undefined_names(proj: Path):
    # StrictUndefined (elementwise): an error on the line, for the case that rendered it
    line = edit(proj, "aitlike/backend/elementwise.py", "  v = {{ step }};",
                "  v = {{ stepp }};")
    diags = check(proj)
    [d] = [d for d in diags if d.severity == "error"]
    assert (Path(d.file).name, d.line) == ("elementwise.py", line)
    assert "'stepp' is undefined" in d.message
    # the default Undefined prints empty text: a warning on the line
    line = edit(proj, "aitlike/backend/gemm.py", "{{indent}}{{kernel}}<<<",
                "{{indent}}{{kernell}}<<<")
    warn = [d for d in check(proj) if d.severity == "warning"]
    assert [(Path(d.file).name, d.line) for d in warn] == [("gemm.py", line)]
    assert "'kernell' is undefined: printed as empty text" in warn[0].message


def test_one_undefined_name_printed_on_several_lines_is_one_warning(proj: Path):
    """The default Undefined: a name the render does not pass (``indent``, printed on two
    lines) is one warning on its first line, the other lines related."""
    edit(proj, "aitlike/backend/gemm.py", 'render(indent="  "', 'render(indentation="  "')
    text = (proj / "aitlike/backend/gemm.py").read_text()
    lines = [i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith("{{indent}}")]
    assert len(lines) == 2
    warn = [d for d in check(proj) if d.severity == "warning"]
    assert [(Path(d.file).name, d.line, d.message) for d in warn] == [
        ("gemm.py", lines[0], "'indent' is undefined: printed as empty text")]
    assert [(Path(r.file).name, r.line, r.message) for r in warn[0].related] == [
        ("gemm.py", lines[1], "also printed here")]


def test_exception_in_the_driver_lands_on_its_line(proj: Path):
    line = edit(proj, "aitlike/driver.py", '    banner = "// generated',
                '    banner = 1 / 0\n    banner = "// generated')
    errs = [d for d in check(proj) if d.severity == "error"]
    assert [(Path(d.file).name, d.line) for d in errs] == [("driver.py", line)]
    assert errs[0].message == "ZeroDivisionError: division by zero"


def test_a_case_source_callable_fails_alone(proj: Path):
    """An error making one case's text is that case's; the others are checked."""
    line = edit(proj, "aitlike/backend/gemm.py", '    kernel = f"{func_name}_kernel"',
                '    kernel = f"{func_name}_kernel"\n    assert dtype != "double", dtype')
    report = check_paths([proj], Selection(), nvcc=False)
    [d] = [d for d in report.diagnostics if d.severity == "error"]
    assert (Path(d.file).name, d.line, d.variants) == ("gemm.py", line + 1,
                                                       ["gemm_rcr_double"])
    assert d.message == "AssertionError: double"


@pytest.mark.parametrize("where,old,new,needle", [
    # a C++ typo in the outer template's literal text
    ("gemm.py", "  const int64_t j = blockIdx.x", "  const int64_t j = blockIdxx.x",
     "blockIdxx"),
    # in EXEC_TEMPLATE, rendered in Python and printed into SRC_TEMPLATE's {% set %} block
    ("gemm.py", "GEMM_CHECK(cudaGetLastError()", "GEMM_CHECK(cudaGetLastErorr()",
     "cudaGetLastErorr"),
    # in HEADER_TEMPLATE, after its escaped newline (rendered, .strip()-ed, printed)
    ("common.py", "using index_t = int64_t;", "using index_t = int64_tt;", "int64_tt"),
    # in the dedented from_string template
    ("elementwise.py", "if (i < n) y[i]", "if (i < nn) y[i]", "i < nn"),
], ids=["literal", "nested-set", "escaped-newline", "dedented"])
@pytest.mark.nvcc
def test_nvcc_errors_land_on_the_py_line(proj: Path, where: str, old: str, new: str,
                                         needle: str):
    rel = next(str(p.relative_to(proj)) for p in proj.rglob(where))
    line = edit(proj, rel, old, new)
    errs = [d for d in check(proj, nvcc=True) if d.severity == "error"]
    assert errs, "no error"
    assert {(Path(d.file).name, d.line) for d in errs} == {(where, line)}, \
        [(d.file, d.line, d.message) for d in errs]
    assert needle.split()[-1].strip("<>.") in errs[0].message or "undefined" in errs[0].message


@pytest.mark.nvcc
def test_error_inside_a_header_lands_on_the_instantiating_py_line(proj: Path):
    """A static_assert in aitlike/include/checks.cuh, reached through the instantiation
    chain from the template line that instantiates it with a bad type."""
    edit(proj, "aitlike/driver.py", "gemm.gen_function(name, dtype, dtype)",
         'gemm.gen_function(name, dtype, "int" if dtype == "double" else dtype)')
    errs = [d for d in check(proj, nvcc=True) if d.severity == "error"]
    [d] = errs
    assert (Path(d.file).name, d.line) == (
        "gemm.py", line_of(proj, "aitlike/backend/gemm.py", "checks::require_real"))
    assert "the accumulator must be a real" in d.message and d.variants == ["gemm_rcr_double"]
    assert any(r.file.endswith("checks.cuh") for r in d.related)


@pytest.mark.nvcc
def test_the_clean_fixture_compiles_clean(proj: Path):
    assert check(proj, nvcc=True) == []


# -- the command line ------------------------------------------------------------------------
def cutlens(root: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cutlens", *args], cwd=root,
                          capture_output=True, text=True, timeout=timeout)


def test_cli_check_variants_render(proj: Path):
    out = cutlens(proj, "variants", "aitlike/backend/elementwise.py")
    assert out.returncode == 0, out.stderr
    assert "1 case(s)" in out.stdout and "[0] relu_scale" in out.stdout
    out = cutlens(proj, "render", "aitlike/backend/gemm.py", "--case", "gemm_banner")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("// Rendered by cutlens from gemm.py, case 'gemm_banner' of "
                                 "driver 'aitlike.driver:cases'.\n// generated by aitlike")
    edit(proj, "aitlike/backend/elementwise.py", "  v = {{ step }};", "  v = {{ stepp }};")
    for fmt in ("json", "sarif"):
        out = cutlens(proj, "check", "aitlike/backend/elementwise.py", "--no-nvcc",
                      "--format", fmt)
        assert out.returncode == 1, out.stderr
        doc = json.loads(out.stdout)
        text = json.dumps(doc)
        assert "elementwise.py" in text and "'stepp' is undefined" in text
    out = cutlens(proj, "check", "aitlike/backend/gemm.py", "--no-nvcc")
    assert out.returncode == 0, out.stdout + out.stderr  # its cases don't use elementwise.py
    out = cutlens(proj, "check", "aitlike/__init__.py", "--no-nvcc")
    assert out.returncode == 2 and "no render driver uses a template of it" in out.stderr


# -- isolation -------------------------------------------------------------------------------
def test_a_hanging_driver_is_stopped_at_its_time_limit(proj: Path):
    (proj / "cutlens.toml").write_text(
        (proj / "cutlens.toml").read_text().replace("timeout_s = 60", "timeout_s = 2"))
    edit(proj, "aitlike/driver.py", "def cases():\n",
         "def cases():\n    import time\n    time.sleep(600)\n")
    [d] = check(proj)
    assert Path(d.file).name == "cutlens.toml" and d.line == line_of(proj, "cutlens.toml",
                                                                        "[[driver]]")
    assert "did not finish within 2 s and was stopped" in d.message


def test_a_crashing_driver_is_a_diagnostic(proj: Path):
    edit(proj, "aitlike/driver.py", "def cases():\n", "def cases():\n    import os\n"
         "    os._exit(7)\n")
    [d] = check(proj)
    assert Path(d.file).name == "cutlens.toml"
    assert "the driver worker crashed (exit status 7)" in d.message


def test_untrusted_runs_no_driver(proj: Path):
    edit(proj, "aitlike/driver.py", "def cases():\n",
         "def cases():\n    open('RAN', 'w').close()\n")
    out = cutlens(proj, "check", ".", "--no-exec")
    assert not (proj / "RAN").exists()
    assert "render driver 'aitlike.driver:cases'" in out.stdout + out.stderr
    out = cutlens(proj, "check", ".", "--no-nvcc")
    assert (proj / "RAN").exists(), out.stderr


def test_unsaved_text_is_what_the_driver_runs(proj: Path):
    cfg = config.load(proj)
    path = proj / "aitlike/backend/elementwise.py"
    text = path.read_text().replace("  v = {{ step }};", "  v = {{ step }} + 1.f;")
    t = load(path, cfg, text)
    src = t.cases["relu_scale"].source
    assert "v = v * 2.f + 1.f;" in src
    assert "v = v * 2.f;" in (path.read_text() and run_drivers(cfg)[0].cases[3].source)


# -- bench -------------------------------------------------------------------------------------
@pytest.mark.nvcc
def test_a_case_that_says_how_to_call_it_is_benchmarked(proj: Path):
    pytest.importorskip("torch")
    out = cutlens(proj, "bench", "aitlike/driver.py", "--case", "relu_scale", "--format",
                  "json", timeout=600)
    assert out.returncode == 0, out.stderr
    [r] = json.loads(out.stdout)["results"]
    assert r["variant_name"] == "relu_scale" and r["verified"] is True and r["ms"] > 0
    assert re.match(r"cpu", json.loads(out.stdout)["gpu"])
