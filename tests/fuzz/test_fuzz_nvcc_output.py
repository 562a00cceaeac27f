"""Property tests (fuzzing) of the nvcc output parser: it never raises, every message it
returns is sane, and line ends and colour codes do not change what it finds."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from cutlens.nvcc import output as nvcc_output
from cutlens.nvcc.output import parse, parse_resources

from fuzz_common import budget, count
from fuzz_nvcc import (
    KNOWN_COUNTS,
    arbitrary_text,
    check_output,
    colorized,
    comparable,
    counts,
    fixtures,
    mutated_fixture,
    nvcc_text,
)

pytestmark = pytest.mark.fuzz


def test_unmutated_fixtures_give_the_known_counts():
    fx = fixtures()
    assert set(fx) == set(KNOWN_COUNTS)
    for case, text in fx.items():
        assert counts(text) == KNOWN_COUNTS[case], case
        check_output(text, "fixtures")


@given(arbitrary_text)
@budget(300)
def test_arbitrary_text(text: str):
    check_output(text)


# Crashes and insane fields the fuzzing found (minimized; docs/FUZZING.md).
LINE_ZERO = "k.cu(0): error: "
HUGE_LINE = "k.cu(" + "9" * 4301 + "): error: x"  # int() refuses more than 4300 digits
BAD_COMPILE_TIME = ("ptxas info    : Compiling entry function '_Z1kPi' for 'sm_90a'\n"
                    "ptxas info    : Compile time = 1.2.3 ms")
UNINDENTED_CARET = "k.cu(3): error: e\n    return x.value * 2;\n^"
FRAME_PAST_LSP = ('k.cu(3): error: e\n          detected during instantiation of "f" at line '
                  "1000000000000 of k.cu")


@given(nvcc_text)
@example(LINE_ZERO)
@example(HUGE_LINE)
@example(BAD_COMPILE_TIME)
@budget(400)
def test_grammar_of_nvcc_lines(text: str):
    check_output(text)


@given(mutated_fixture())
@example(UNINDENTED_CARET)
@example(FRAME_PAST_LSP)
@budget(500)
def test_mutated_real_outputs(text: str):
    check_output(text)


def test_regressions_have_the_expected_values():
    """What the parser makes of the minimized findings, field by field."""
    assert [(m.line, m.message) for m in parse(LINE_ZERO)] == [(None, "")]
    assert [(m.file, m.line) for m in parse(HUGE_LINE)] == [("k.cu", None)]
    [r] = parse_resources(BAD_COMPILE_TIME, demangle_names=False)
    assert r.compile_ms is None and r.mangled == "_Z1kPi"
    [m] = parse(UNINDENTED_CARET)
    assert (m.line, m.column, m.excerpt) == (3, 0, "  return x.value * 2;")
    [m] = parse(FRAME_PAST_LSP)
    assert [(f.file, f.line) for f in m.chain] == [("k.cu", 0)]


@given(st.one_of(mutated_fixture(), nvcc_text, st.sampled_from(sorted(fixtures().values()))),
       st.data())
@budget(200)
def test_crlf_and_colour_codes_change_nothing(text: str, data: st.DataObject):
    base = comparable(check_output(text))
    if "\r" not in text:
        assert comparable(parse(text.replace("\n", "\r\n"), demangle_names=False)) == base
    if "\x1b" not in text:
        colored = data.draw(colorized(text))
        assert comparable(parse(colored, demangle_names=False)) == base


_names = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_characters="'\n"), min_size=1, max_size=10)
    .map(lambda s: "_Z" + s),
    st.sampled_from(["_Z1kPi", "_Z5smallPi", "_Z\x00", "_Z-v", "_Z a", "_Z\r"]))


@given(st.lists(_names, min_size=1, max_size=4))
@example(["_Z\x00"])  # found: subprocess refuses a NUL in an argument (ValueError)
@budget(40, divisor=100)
def test_demangling_hostile_kernel_names(names: list[str]):
    """Kernel names go to c++filt on its command line: whatever nvcc prints, parse() keeps
    going, and a name no demangler understands stays as it was."""
    count("nvcc_output_demangle")
    text = "\n".join(f"ptxas error   : Entry function '{n}' uses too much shared data"
                     for n in names)
    msgs = parse(text)  # with demangling (a subprocess per batch)
    assert len(msgs) == len(set(names))
    out = nvcc_output.demangle(names)
    assert set(out) == set(names) and all(isinstance(v, str) and v for v in out.values())
