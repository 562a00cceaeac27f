"""The Inductor bridge on torch's CPU build: a copy of the installed
``torch/_inductor/codegen/cutlass/gemm_template.py``, rendered by Inductor's own classes for
a bf16 4096³ GEMM; output equal to Inductor's own render; a Jinja syntax error, an undefined
name, a C++ typo and an error raised inside a CUTLASS (cute) header each on the exact line
of the copy; the clean copy checks clean for the configured op; a torch without the
internals the bridge needs is one clear error."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from cutlens import config
from cutlens.check.run import check_paths
from cutlens.template import drivers
from cutlens.template.selection import Selection

from conftest import start_lsp

#: Real CUTLASS units (~45 s of nvcc each) in the nvcc tests.
pytestmark = pytest.mark.timeout(1200)

torch = pytest.importorskip("torch")
pytest.importorskip("cutlass_library")

INSTALLED = Path(torch.__file__).parent / "_inductor" / "codegen" / "cutlass" / \
    "gemm_template.py"
OP = "128x128x64_1x2x1_0_tnn_align8_stream_k_warpspecialized_cooperative_epi_nosmem"
CONFIG = f"""\
arch = "sm_90a"
[inductor]
source = "gemm_template.py"
ops = ["{OP}"]
swizzles = [1, 2]
[inductor.samples.square]
X = {{ dtype = "bfloat16", size = [4096, 4096] }}
W = {{ dtype = "bfloat16", size = [4096, 4096], stride = [1, 4096] }}
Y = {{ dtype = "bfloat16", size = [4096, 4096] }}
"""


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    shutil.copy(INSTALLED, root / "gemm_template.py")
    (root / "cutlens.toml").write_text(CONFIG)
    return root


def edit(root: Path, old: str, new: str) -> int:
    """Replace the first ``old`` in the copy; the 1-based line of the change."""
    p = root / "gemm_template.py"
    text = p.read_text()
    assert old in text, old
    p.write_text(text.replace(old, new, 1))
    return text[:text.index(old)].count("\n") + 1


def check(root: Path, **kw) -> list:
    report = check_paths([root / "gemm_template.py"], Selection(), jobs=1, **kw)
    assert not report.config_problems, report.config_problems
    return report.diagnostics


def test_cases_render_as_inductor_renders_them(proj: Path):
    cfg = config.load(proj)
    [run] = drivers.run_drivers(cfg)
    assert run.errors == []
    assert [c.name for c in run.cases] == [f"cutlass3x_sm90_tensorop_gemm_bf16_bf16_f32_void_"
                                           f"bf16_{OP} swizzle={s}" for s in (1, 2)]
    ours = {c.name: c.source for c in run.cases}
    # Inductor's own classes, without cutlens watching jinja2, in a fresh process
    [spec] = drivers.specs(cfg)
    code = ("import json, sys\nfrom cutlens.inductor.driver import cases\n"
            "args = json.loads(sys.argv[1])\n"
            "print(json.dumps({c.name: c.source() for c in cases(**args)}))")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(spec.args)], cwd=proj,
                         capture_output=True, text=True, check=True)
    theirs = json.loads(out.stdout.strip().splitlines()[-1])
    assert ours == theirs
    c = run.cases[0]
    assert c.build == run.cases[1].build  # the swizzles share one build
    assert c.bench is not None and c.bench["function"].startswith("cutlass_")
    assert [a["name"] for a in c.bench["args"]][-4:] == ["X_offset", "W_offset", "Y_offset",
                                                         "swizzle"]
    assert {a["ctype"] for a in c.bench["args"] if a["name"] == "swizzle"} == {"uint8_t"}
    # every line maps into the copy: its template text, or the {{ }} that printed it
    files = {Path(fr[-1][0]).name for fr in c.lines}
    assert files == {"gemm_template.py"}, files


def test_a_moved_project_still_renders(proj: Path, tmp_path: Path):
    """Inductor asserts that the links it keeps in its cache dir lead to this CUTLASS root; a
    project moved after a render (its links lead to the old place) renders all the same."""
    [run] = drivers.run_drivers(config.load(proj))
    assert run.errors == [] and run.cases
    links = proj / ".cutlens" / "inductor" / "torchinductor" / "torch_cutlass"
    assert (links / "cutlass_library").is_symlink()
    moved = tmp_path / "moved"
    shutil.copytree(proj, moved, symlinks=True)
    shutil.rmtree(proj)
    [run] = drivers.run_drivers(config.load(moved))
    assert [(e.file, e.message) for e in run.errors] == []
    assert len(run.cases) == 2


def test_jinja_syntax_error_on_the_copys_line(proj: Path):
    line = edit(proj, "  {{dynamic_cluster}}\n", "  {{dynamic_cluster}}{% endfor %}\n")
    errs = [d for d in check(proj, nvcc=False) if d.severity == "error"]
    assert {(Path(d.file).name, d.line) for d in errs} == {("gemm_template.py", line)}, errs
    assert "syntax error" in errs[0].message


def test_undefined_name_on_the_copys_line(proj: Path):
    line = edit(proj, "  {{instance_type}} gemm_op;", "  {{instance_typ}} gemm_op;")
    errs = [d for d in check(proj, nvcc=False) if d.severity == "error"]
    assert {(Path(d.file).name, d.line) for d in errs} == {("gemm_template.py", line)}, errs
    assert "'instance_typ' is undefined" in errs[0].message


@pytest.mark.nvcc
def test_cpp_typo_and_an_error_inside_cute_land_on_the_copys_lines(proj: Path):
    typo = edit(proj, "  using coord_t = cutlass::gemm::GemmCoord::Index;\n",
                "  using coord_t = cutlass::gemm::GemmCoord::Indx;\n"
                "  (void)cute::get<3>(cute::make_shape(1, 2));\n")
    errs = [d for d in check(proj, mode="quick") if d.severity == "error"]
    lines = {(Path(d.file).name, d.line) for d in errs}
    assert lines == {("gemm_template.py", typo), ("gemm_template.py", typo + 1)}, \
        [(d.file, d.line, d.message) for d in errs]
    deep = [d for d in errs if d.line == typo + 1]
    assert any("Index out of range" in d.message for d in deep)
    assert any("cute/container/tuple.hpp" in r.file for d in deep for r in d.related)


@pytest.mark.nvcc
def test_the_clean_copy_checks_clean_for_the_configured_op(proj: Path):
    assert [d for d in check(proj) if d.severity == "error"] == []


def test_missing_internals_are_one_clear_error(proj: Path):
    (proj / "gemm_template.py").write_text('"""not Inductor\'s gemm_template."""\n')
    out = subprocess.run([sys.executable, "-m", "cutlens", "check", "gemm_template.py",
                          "--no-nvcc"], cwd=proj, capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    assert "CUTLASSGemmTemplate not found" in out.stdout, out.stdout


@pytest.fixture
async def client(lsp_server: LanguageClient, tmp_path: Path) -> LanguageClient:
    root = tmp_path / "proj"
    root.mkdir()
    shutil.copy(INSTALLED, root / "gemm_template.py")
    (root / "cutlens.toml").write_text(CONFIG)
    return await start_lsp(lsp_server, root, {"checkOn": "off"})


async def test_the_editor_checks_an_unsaved_edit_as_typed(client: LanguageClient):
    path = client.root / "gemm_template.py"  # type: ignore[attr-defined]
    text = path.read_text().replace("  {{instance_type}} gemm_op;",
                                    "  {{instance_typ}} gemm_op;", 1)
    line = next(i for i, ln in enumerate(text.splitlines()) if "{{instance_typ}}" in ln)
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(
        uri=path.as_uri(), language_id="python", version=1, text=text)))
    for _ in range(2400):
        if client.diagnostics.get(path.as_uri()):
            break
        await asyncio.sleep(0.05)
    diags = client.diagnostics[path.as_uri()]
    assert [(d.range.start.line, "'instance_typ' is undefined" in d.message) for d in diags] \
        == [(line, True)]
