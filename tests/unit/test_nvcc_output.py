"""The nvcc output parser, on captured nvcc 13.0 output (tests/fixtures/nvcc) and live."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

from cutlens.nvcc import output as nvcc_output
from cutlens.nvcc.output import CompilerMessage, Frame, KernelResources, parse, parse_resources

FIX = Path(__file__).parents[1] / "fixtures" / "nvcc"
MANIFEST = json.loads((FIX / "manifest.json").read_text())
HAS_DEMANGLER = bool(shutil.which("cu++filt") or shutil.which("c++filt"))


def load(case: str) -> str:
    return (FIX / f"{case}.txt").read_text()


def only(msgs: list[CompilerMessage]) -> CompilerMessage:
    assert len(msgs) == 1, [m.message for m in msgs]
    return msgs[0]


# --------------------------------------------------------------------------- EDG


def test_edg_error():
    m = only(parse(load("edg_error")))
    assert (m.tool, m.severity, m.file, m.line) == ("edg", "error", "edg_error.cu", 4)
    assert m.message == 'identifier "undefined_name" is undefined'
    assert m.code is None and m.chain == []
    assert m.column == 12 and m.excerpt == "  out[0] = undefined_name + 1;"
    assert m.raw.splitlines()[0].startswith("edg_error.cu(4): error:")
    assert "^" in m.raw  # the source and caret lines stay in raw, not in message


def test_edg_warning_has_code_and_drops_the_suppress_remark():
    m = only(parse(load("edg_warning")))
    assert (m.severity, m.code, m.line) == ("warning", "177-D", 2)
    assert m.message == 'variable "unused" was declared but never referenced'


def test_edg_remark_is_info_and_deduplicated():
    text = load("edg_remark")
    assert text.count("remark #177-D") == 2  # cudafe++ and cicc both print it
    m = only(parse(text))
    assert (m.severity, m.level, m.code, m.line) == ("info", "remark", "177-D", 4)


def test_edg_notes_attach_to_their_error_and_continuation_joins_message():
    m = only(parse(load("edg_notes")))
    assert m.message == ('no instance of overloaded function "f" matches the argument list\n'
                         "argument types are: (int)")
    assert [(n.line, n.code, n.severity) for n in m.notes] == [
        (2, "3322-D", "info"), (1, "3322-D", "info")]
    assert "note #3322-D" in m.raw


def test_edg_chain_after_candidate_notes_belongs_to_the_error():
    """EDG prints the chain once, after the notes: it is the error's, not the last note's
    (issue 16, item 6: the error lost its chain and landed on template line 1)."""
    m = only(parse(load("edg_notes_chain")))
    assert (m.file, m.line) == ("edg_notes_chain.h", 5)
    assert m.chain == [Frame("edg_notes_chain.cu", 5,
                             'instantiation of "int rank3(const T &) [with T=Ax]"')]
    assert [(n.line, n.code, n.chain) for n in m.notes] == [(4, "3327-D", []),
                                                            (3, "3327-D", [])]


def test_edg_message_with_a_newline_inside():
    m = only(parse(load("edg_multiline_message")))
    assert m.message == 'static assertion failed with "Should meet TMA alignment requirement\n"'
    assert m.excerpt.startswith("  static_assert(Align % 8 == 0")
    assert m.chain == [Frame("edg_multiline_message.cu", 8,
                             'instantiation of class "Builder<Align> [with Align=3]"')]


def test_edg_command_line_error_has_no_file():
    m = only(parse(load("edg_command_line_error")))
    assert (m.tool, m.severity, m.file, m.line) == ("edg", "error", None, None)
    assert m.message == "invalid option: --bogus=1"


# --------------------------------------------------------------------------- chains


def test_chain_single_line_form_resolves_omitted_file():
    m = only(parse(load("chain_single")))
    assert (m.file, m.line) == ("chain_single.cu", 3)
    assert m.chain == [Frame("chain_single.cu", 6, 'instantiation of "void k(T *) [with T=int]"')]


def test_chain_block_form_innermost_first():
    m = only(parse(load("chain_block")))
    assert [(f.file, f.line) for f in m.chain] == [("chain_block.cu", 8), ("chain_block.cu", 11)]
    assert m.chain[0].text == 'instantiation of "T twice(T) [with T=int]"'


def test_chain_through_a_header():
    m = only(parse(load("chain_header")))
    assert (m.file, m.line) == ("chain_header.cu", 5)
    # " of chain_header.cu" is omitted by nvcc for the second frame: same file as the error.
    assert [(f.file, f.line) for f in m.chain] == [("chain_header.h", 5), ("chain_header.cu", 8)]


def test_chain_elided_contexts():
    m = only(parse(load("chain_elided")))
    assert m.elided_frames == 12
    assert len(m.chain) == 10
    assert m.elided_at == 5  # the contexts not shown sit between chain[4] and chain[5]
    assert m.chain[4].text.endswith('[with N=4, T=int]"')
    assert m.chain[5].text.endswith('[with N=17, T=int]"')
    assert (m.chain[-1].line, m.chain[-1].text) == (15, 'instantiation of "void k<N>(int *) '
                                                        '[with N=20]"')


def test_static_assert_in_std_header():
    msgs = parse(load("std_static_assert"))
    assert len(msgs) == 2
    m = msgs[0]
    assert m.file.endswith("/tuple") and m.file.startswith("/")
    assert m.message == 'static assertion failed with "tuple index must be in range"'
    assert [(Path(f.file).name, f.line) for f in m.chain] == [
        ("utility.h", 135), ("std_static_assert.cu", 5), ("std_static_assert.cu", 9)]
    assert m.chain[1].text.startswith('instantiation of type "std::tuple_element_t<5UL')


def test_cute_header_chain_reaches_the_tu():
    msgs = parse(load("cute_chain"))
    assert len(msgs) == 3
    first = msgs[0]
    assert first.file.endswith("cute/stride.hpp") and first.line == 116
    assert first.chain[-2:] == [
        Frame("cute_chain.cu", 10, first.chain[-2].text),
        Frame("cute_chain.cu", 13, 'instantiation of "void tile_fill<T,M,N>(T *) '
                                   '[with T=float, M=8, N=4]"')]
    # "at line 117" without " of FILE" in the second error means the error's own file.
    assert msgs[1].chain[0].file == msgs[1].file and msgs[1].chain[0].line == 117


def test_line_directive_locations_follow_it():
    m = only(parse(load("line_directive")))
    assert (m.file, m.line) == ("templates/gemm.cu.j2", 42)
    assert m.chain == [Frame("line_directive.cu", 9, 'instantiation of "void k(T *) '
                                                     '[with T=int]"')]


# --------------------------------------------------------------------------- cicc, gcc


def test_kernel_calling_host_function_is_cicc_without_source_line():
    msgs = parse(load("device_calls_host"))
    assert [(m.tool, m.line) for m in msgs] == [("cicc", 3), ("cicc", 3)]
    assert msgs[0].message.startswith('calling a __host__ function("host_only(int)")')
    assert msgs[0].column is None and msgs[0].excerpt is None


def test_host_calling_device_function_is_front_end_error():
    m = only(parse(load("host_calls_device")))
    assert (m.tool, m.file, m.line, m.column) == ("edg", "host_calls_device.cu", 2, 27)
    assert m.message.startswith('calling a __device__ function("dev(int)") from a __host__')


def test_quick_mode_misses_kernel_calling_host():
    assert MANIFEST["cases"]["device_calls_host_quick"]["returncode"] == 0
    assert parse(load("device_calls_host_quick")) == []


def test_gcc_error_with_function_context():
    m = only(parse(load("gcc_error")))
    assert (m.tool, m.severity, m.file, m.line, m.column) == ("gcc", "error", "gcc_error.cu",
                                                              4, 15)
    assert "declared with attribute error: do not call host_forbidden" in m.message
    assert m.raw.splitlines()[0].startswith("gcc_error.cu: In function")
    assert m.excerpt == "  host_forbidden();"


def test_gcc_warning_printed_twice_is_reported_once():
    text = load("gcc_warning")
    assert text.count("warning: #warning") == 2
    m = only(parse(text))
    assert (m.severity, m.code, m.line, m.column) == ("warning", "-Wcpp", 1, 2)
    assert m.message == '#warning "this is a preprocessor warning"'


def test_gcc_note_with_its_own_include_context_leaves_nothing_over():
    """A note printed with its own "In file included from" lines takes them: no phantom
    error made of left-over context (issue 16, item 1; nvcc exits 0 here)."""
    m = only(parse(load("gcc_note_include")))
    assert (m.severity, m.file, m.line, m.message) == ("warning", "gcc_note_b.h", 2,
                                                       '"X" redefined')
    assert m.chain == [Frame("gcc_note_include.cu", 2, "in file included from")]
    (n,) = m.notes
    assert (n.file, n.line, n.message) == ("gcc_note_a.h", 1,
                                           "this is the location of the previous definition")
    assert n.chain == [Frame("gcc_note_b.h", 1, "in file included from")]
    assert "In file included from gcc_note_b.h:1:" in m.raw


def test_gcc_required_from_chain():
    m = only(parse(load("gcc_required_from")))
    assert (m.file, m.line, m.column) == ("gcc_required_from.cpp", 3, 12)
    assert [(f.line, f.column) for f in m.chain] == [(8, 19), (11, 26)]
    assert m.chain[0].text.startswith("instantiation of ‘int get_value(const T&)")
    assert m.chain[1].text.startswith("instantiation of ‘int twice(const T&)")


def test_assembler_error_on_host_asm():
    m = only(parse(load("gcc_asm_error")))
    assert (m.tool, m.severity, m.file, m.line) == ("gcc", "error", "gcc_asm_error.cu", 2)
    assert m.message.startswith("no such instruction")
    assert "Assembler messages" not in m.message


def test_missing_include_is_fatal_error():
    m = only(parse(load("missing_include")))
    assert (m.tool, m.severity, m.level) == ("gcc", "error", "fatal error")
    assert (m.file, m.line, m.column) == ("missing_include.cu", 2, 10)
    assert m.message == "does_not_exist.h: No such file or directory"


# --------------------------------------------------------------------------- ptxas, nvlink, nvcc


def test_ptxas_too_much_shared_data():
    m = only(parse(load("ptxas_smem")))
    assert (m.tool, m.severity, m.file) == ("ptxas", "error", None)
    assert "uses too much shared data" in m.message
    if HAS_DEMANGLER:
        assert m.kernel == "too_much_smem(char*)"
    [r] = parse_resources(load("ptxas_smem"))
    assert (r.smem_bytes, r.registers, r.barriers, r.arch) == (300000, 10, 1, "sm_90a")


def test_ptxas_spill_warning_and_resources():
    text = load("ptxas_spill")
    m = only(parse(text))
    assert (m.tool, m.severity, m.code) == ("ptxas", "warning", "spill")  # diag_suppress
    assert m.message.startswith("Registers are spilled to local memory")
    res = {r.mangled: r for r in parse_resources(text)}
    spill = res["_Z5spillILi64EEvPKfPf"]
    assert (spill.registers, spill.stack_bytes, spill.spill_stores, spill.spill_loads) == (
        64, 16, 16, 16)
    assert res["_Z5smallPi"].registers == 8 and res["_Z5smallPi"].spill_stores == 0
    if HAS_DEMANGLER:
        assert m.kernel == spill.kernel == "void spill<64>(float const*, float*)"


def test_ptxas_error_in_ptx_file_and_aborted_line_dropped():
    msgs = parse(load("ptxas_asm"))
    assert [m.message for m in msgs] == ["Arguments mismatch for instruction 'mov'",
                                         "Unknown symbol '%not_a_register'"]
    assert all(m.file.endswith("_ptxas_asm.ptx") and m.line == 26 for m in msgs)


def test_nvlink_undefined_reference():
    m = only(parse(load("nvlink_error")))
    assert (m.tool, m.severity) == ("nvlink", "error")
    assert m.message.startswith("Undefined reference to '_Z20not_defined_anywherei'")
    if HAS_DEMANGLER:
        assert m.kernel == "not_defined_anywhere(int)"


def test_nvcc_fatal():
    m = only(parse(load("nvcc_fatal")))
    assert (m.tool, m.severity, m.level) == ("nvcc", "error", "fatal")
    assert m.message == "Unknown option '--bogus-flag'"


def test_unknown_lines_become_one_other_message_per_run():
    msgs = parse("something odd happened\nand continued\n\nwarning-ish text: warning\n")
    assert [(m.tool, m.severity, m.message) for m in msgs] == [
        ("other", "error", "something odd happened\nand continued"),
        ("other", "warning", "warning-ish text: warning")]
    assert msgs[0].raw == "something odd happened\nand continued"


def test_every_fixture_parses_and_failures_have_an_error():
    missing = [c for c in MANIFEST["cases"] if not (FIX / f"{c}.txt").exists()]
    assert missing == [], "fixtures in manifest.json but not on disk (capture.py writes them)"
    for case, info in MANIFEST["cases"].items():
        msgs = parse(load(case))
        if info["returncode"] not in (0, None):
            assert any(m.severity == "error" for m in msgs), case
        for m in msgs:
            assert m.raw and m.message, case
            for f in m.chain:
                assert f.file and f.line > 0, (case, f)


def test_message_json_round_trip():
    for case in ("edg_notes", "cute_chain", "ptxas_spill", "gcc_required_from"):
        for m in parse(load(case)):
            assert CompilerMessage.from_json(json.loads(json.dumps(m.to_json()))) == m
    for r in parse_resources(load("ptxas_spill")):
        assert KernelResources.from_json(json.loads(json.dumps(r.to_json()))) == r


def test_cutlass_gemm_resources():
    res = parse_resources(load("gemm_sm90_full"))
    assert res, "the CUTLASS GEMM has an entry function"
    k = res[0]
    assert k.arch == "sm_90a" and k.registers > 100 and k.spill_stores == 0


def test_cutlass_builder_static_assert_chain():
    msgs = parse(load("gemm_sm90_bad_alignment_quick"))
    first = msgs[0]
    assert first.severity == "error" and "cutlass/" in first.file
    assert any(f.file.endswith("gemm_sm90.cu") for f in first.chain)


# --------------------------------------------------------------------------- live nvcc

_spec = importlib.util.spec_from_file_location("nvcc_capture", FIX / "capture.py")
capture = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("nvcc_capture", capture)
_spec.loader.exec_module(capture)

_TMPNAME = re.compile(r"tmpxft_[0-9a-f]+_[0-9a-f]+-\d+")


def _normalized(msgs: list[CompilerMessage]) -> list[tuple]:
    return [(m.tool, m.severity, m.file and _TMPNAME.sub("T", m.file), m.line, m.column,
             _TMPNAME.sub("T", m.message), m.code, m.chain, m.elided_frames) for m in msgs]


@pytest.mark.nvcc
@pytest.mark.parametrize("case", ["edg_error", "chain_block", "chain_header", "gcc_error",
                                  "ptxas_spill", "nvlink_error", "line_directive"])
def test_live_nvcc_matches_fixture(case, tmp_path):
    """The installed nvcc still prints what the fixtures hold (keeps the parser honest)."""
    nvcc = capture.nv.find_nvcc()
    c = capture.CASES[case]
    opts = capture.CompileOptions(cutlass=c.cutlass, extra_flags=c.extra)
    flags = capture.nv.mode_flags(c.mode, opts)
    if c.link:
        flags = [f for f in flags if f != "-c"]
    cmd = [nvcc, *flags, c.source or f"{case}.cu", "-o",
           str(tmp_path / "out")]
    res = capture.run(cmd, cwd=FIX, timeout_s=60)
    assert res.returncode == MANIFEST["cases"][case]["returncode"]
    assert _normalized(parse(res.output)) == _normalized(parse(load(case)))
    assert [(r.mangled, r.registers, r.spill_stores) for r in parse_resources(res.output)] == [
        (r.mangled, r.registers, r.spill_stores) for r in parse_resources(load(case))]


def test_demangle_batch_and_passthrough():
    if not HAS_DEMANGLER:
        pytest.skip("no c++filt")
    got = nvcc_output.demangle(["_Z1kPi", "not_mangled"])
    assert got == {"_Z1kPi": "k(int*)", "not_mangled": "not_mangled"}
