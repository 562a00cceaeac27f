"""Fidelity round three (issue 26), on the FlashInfer-shaped stand-in with real nvcc: the
``use_fp16_qk_reduction`` regression and three misses, each on the exact line and only there,
in every ``--mode`` (the quick pass, the full pass alone, and both)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import HAS_NVCC, line_of

pytestmark = [pytest.mark.nvcc, pytest.mark.skipif(not HAS_NVCC, reason="needs nvcc")]
STAND_IN = Path(__file__).parents[1] / "fixtures" / "flashinfer_like"
INST = "csrc/decode_kernel_inst.jinja"
CONFIG = "csrc/decode_customize_config.jinja"
MODES = ["quick", "full-only", "full"]


@pytest.fixture
def stand_in(tmp_path: Path) -> Path:
    root = tmp_path / "fi"
    shutil.copytree(STAND_IN, root)
    return root


def edit(root: Path, name: str, old: str, new: str) -> tuple[str, int]:
    """Replace ``old`` (once) in ``name``; the edited file and line."""
    path = root / name
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))
    return str(path), line_of(path.read_text(), new.split("\n")[0])


def errors_in(root: Path, mode: str) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "cutlens", "check", INST, "--format", "json",
                          "--jobs", "1", "--mode", mode], capture_output=True, text=True,
                         cwd=root, timeout=600)
    assert out.returncode == 1, out.stdout + out.stderr
    return [d for d in json.loads(out.stdout)["diagnostics"] if d["severity"] == "error"]


def assert_only_on(root: Path, mode: str, file: str, line: int) -> list[dict]:
    errs = errors_in(root, mode)
    where = {(str(root / d["file"]) if not Path(d["file"]).is_absolute() else d["file"],
              d["line"]) for d in errs}
    assert errs and where == {(file, line)}, json.dumps(errs, indent=1)[:4000]
    return errs


@pytest.mark.parametrize("mode", MODES)
def test_a_flag_argument_edited_to_true_lands_on_its_line(stand_in: Path, mode: str):
    """The regression: ``{{ use_fp16_qk_reduction }}`` edited to ``true`` (FlashInfer's FA2
    prefill). The class-level static_assert (both passes) names
    ``FP16_QK_REDUCTION_SUPPORTED``: the statement's ``USE_FP16_QK_REDUCTION`` argument.
    The device-only one binds ``DTypeQKAccum=__half`` — the ``half`` that ``{{ dtype_o }}``
    renders on the next line is a coincidence, not the cause. Every mode: that line only."""
    text = (stand_in / "cutlens.toml").read_text()
    (stand_in / "cutlens.toml").write_text(
        text.replace('dtype_q = "nv_bfloat16"', 'dtype_q = "half"')
            .replace('dtype_o = "nv_bfloat16"', 'dtype_o = "half"'))
    file, line = edit(stand_in, INST, "{{ use_fp16_qk_reduction }}, {{ variant_name }}",
                      "true, {{ variant_name }}")
    errs = assert_only_on(stand_in, mode, file, line)
    assert all("FP16_QK_REDUCTION_SUPPORTED" in d["message"] for d in errs)
    if mode == "full-only":  # host code: the class's assertion alone
        assert len(errs) == 1


@pytest.mark.parametrize("mode", MODES)
def test_a_lone_statement_level_error_goes_to_the_argument_line(stand_in: Path, mode: str):
    """Miss 1: HEAD_DIM 2048 gives one static_assert deep in the header about ``num_bits``
    (derived, named nowhere in the statement), reported at the statement's first line with
    no other error to follow: the line of the template arguments."""
    file, line = edit(stand_in, INST, "{{ head_dim_qk }}, {{ pos", "{{ head_dim_qk * 16 }}, {{ pos")
    (d,) = assert_only_on(stand_in, mode, file, line)
    assert d["message"] == 'static assertion failed with "num_bits must be 128 or 256"'
    first = line_of((stand_in / INST).read_text(), "template cudaError_t")
    assert (Path(d["related"][0]["file"]).name, d["related"][0]["line"],
            d["related"][0]["message"]) == (Path(INST).name, first,
                                            "reported at the statement's first line")


@pytest.mark.parametrize("mode", MODES)
def test_a_wrong_type_in_the_companion_lands_on_its_declaration(stand_in: Path, mode: str):
    """Miss 2: ``using DTypeQ = float;`` in the companion fails deep in the header
    (``rowsum`` wants 16-bit types): the companion line that declared it, not the
    kernel-inst statement."""
    file, line = edit(stand_in, CONFIG, "using DTypeQ = {{ dtype_q }};", "using DTypeQ = float;")
    errs = assert_only_on(stand_in, mode, file, line)
    assert any(d["message"] == 'static assertion failed with "DType must be 16bit floating '
               'data type"' for d in errs)


@pytest.mark.parametrize("mode", MODES)
def test_an_error_in_a_set_block_lands_on_the_blocks_line(stand_in: Path, mode: str):
    """Miss 3: the explicit instantiation captured by ``{% set %}`` and printed below, a
    typo inside: the block's line (as through a render driver), not the printing line."""
    path = stand_in / INST
    text = path.read_text()
    start, end = text.index("template cudaError_t"), text.index("\n};")
    path.write_text(text[:start] + "{% set inst %}\n" + text[start:end] + "\n{% endset %}\n"
                    "{{ inst }}" + text[end:])
    file, line = edit(stand_in, INST, "cudaStream_t stream);", "cudaStrem_t stream);")
    errs = assert_only_on(stand_in, mode, file, line)
    d = next(d for d in errs if d["message"] == 'identifier "cudaStrem_t" is undefined')
    printing = line_of(path.read_text(), "{{ inst }}")
    assert (d["related"][0]["line"], d["related"][0]["message"]) == (printing,
                                                                      "expanded from here")


def test_quick_pass_warnings_are_counted_when_the_full_pass_fails(tmp_path: Path):
    """A device-only warning (the quick pass) beside a host-only error (the full pass stops
    in cudafe++): printed early and counted in the summary and the JSON."""
    src = ("#ifdef __CUDA_ARCH__\n"
           "__device__ int device_only() { int never_used; return 0; }\n"
           "#endif\n#ifndef __CUDA_ARCH__\n"
           'static_assert(sizeof(int) == 3, "host-only static_assert");\n'
           "#endif\n__global__ void k(int* p) { *p = 1; }\n")
    (tmp_path / "t.cu.jinja").write_text(src)
    out = subprocess.run([sys.executable, "-m", "cutlens", "check", "t.cu.jinja", "--jobs",
                          "1", "--format", "json"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=600)
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    assert doc["summary"]["errors"] == 1 and doc["summary"]["warnings"] == 1, doc
    warn = next(d for d in doc["diagnostics"] if d["severity"] == "warning")
    assert warn["line"] == line_of(src, "never_used") and "never_used" in warn["message"]
    text = subprocess.run([sys.executable, "-m", "cutlens", "check", "t.cu.jinja", "--jobs",
                           "1"], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert "1 error(s), 1 warning(s)" in text.stderr
    assert text.stdout.count(": warning: ") == 1  # shown once, not once early and again
