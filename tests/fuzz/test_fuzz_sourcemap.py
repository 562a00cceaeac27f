"""Property tests (fuzzing) of the source map: random templates with includes, macros,
loops and whitespace control render exactly as Jinja renders them, every rendered line maps
to a real template line, and a line of plain text maps to the line where that text is."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given

from cutlens import config as config
from cutlens.render.renderer import Renderer, RenderFailure
from cutlens.template.loader import load

from fuzz_common import budget
from fuzz_sourcemap import ROOT, case_of, check_case, template_cases

pytestmark = pytest.mark.fuzz


@given(template_cases())
@budget(120)
def test_every_rendered_line_maps_to_its_template_line(case):
    check_case(case)


# Found: a macro's output used as a value still held the source-map markers, so cutlens
# rendered other C++ than Jinja does (docs/FUZZING.md).
MACRO = "{% macro m(a) %}  [T1] x\n{% if a %}\n{% endif %}[T2]\n{% endmacro %}"


@pytest.mark.parametrize("use", [
    "[{{ m(1) | trim }}]",  # leading blanks not trimmed (a marker came first)
    "{{ m(1) | length }}",  # the markers counted
    "{% set v = m(1) %}{{ v | length }}",
    "{% if m(0) == '  [T1] x\\n[T2]\\n' %}[T3] equal{% endif %}",  # never equal
    "{{ m(1) | indent(2) }}",  # a line holding only a marker was not blank
    "{{ m(1).startswith('  ') }}",
    "{% set v %}{{ m(1) }}{% endset %}{{ v | center(40) }}",
    "{% filter center(30) %}\n[T4] y\n{% endfilter %}",
    "{% filter indent(4) %}\n[T5] a\n{% if 1 %}\n{% endif %}\nb\n{% endfilter %}",
])
def test_regression_macro_output_as_a_value_renders_as_jinja_does(use: str):
    check_case(case_of({ROOT: f"{MACRO}\n{use}\n[T9] end\n"}, weak={"T1", "T2", "T4", "T5"}))


def test_printed_macro_output_keeps_its_own_lines():
    """Printed as is (alone, in ``~``, in an ``if``-``else`` branch), a macro's lines still
    map to the macro."""
    case = case_of({ROOT: f"{MACRO}\n{{{{ m(1) }}}}\n{{{{ 'a' ~ m(1) }}}}\n"
                          "{{ m(0) if 1 else 2 }}\n"})
    check_case(case)  # T1 and T2 are not weak here: their lines must map to the macro


@pytest.mark.parametrize("files", [
    {ROOT: "[T1] a\n[T2] b \ue0009,1,1\ue001\n"},  # found: IndexError from sourcemap.build
    {ROOT: "[T1] a \ue004 b\n"},  # a stray END marker vanished from the output
    {ROOT: '[T1]\n{% include "p1.jinja" %}\n', "p1.jinja": "[T2]\n\n[T3] \ue005\n"},
])
def test_regression_marker_characters_in_a_template_are_refused_on_their_line(files):
    case = case_of(files)
    check_case(case)  # reserved_refusal() checks the diagnostic's file and line
    with tempfile.TemporaryDirectory() as d:
        root = Path(d).resolve()
        (root / "cutlens.toml").write_text("")
        for name, text in files.items():
            (root / name).write_text(text)
        t = load(root / ROOT, config.load(root))
        s = t.sample(None)
        r = Renderer().render(t, s, t.variant(s, None))
        assert isinstance(r, RenderFailure)
        assert [d.code for d in r.diagnostics] == ["syntax"]


@pytest.mark.parametrize("source", [
    '{% filter center(9) %}\n{{"[E1]"}}\n{% endfilter %}',  # found by the long run
    '[T1]\n{{ "[E2]\\n " }}',  # the same with an expression: a blank last line, no newline
    "[T1]\n  ",
])
def test_regression_a_blank_last_line_without_newline_has_an_origin(source: str):
    check_case(case_of({ROOT: source}, weak={"E1"}))
