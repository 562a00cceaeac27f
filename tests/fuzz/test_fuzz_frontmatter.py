"""Property tests (fuzzing) of the front-matter parser and of template loading: a result or a
clean error on a line of the text, never another exception; generated TOML round-trips with
every table and key indexed on its line."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from cutlens.template import frontmatter

from fuzz_common import budget
from fuzz_frontmatter import (
    check_document,
    check_parse,
    check_template,
    mutated_toml,
    settings_docs,
    settings_toml,
    toml_docs,
    wrap,
)

pytestmark = pytest.mark.fuzz

_openings = st.sampled_from(["", "{#- cutlens", "{# cutlens\n", " \n{#-cutlens ", "{#- cutlens\n"])


@given(_openings, st.text(), st.sampled_from(["", "-#}", "#}", "\n-#}\nbody {{ x }}"]))
@example("{#- cutlens", "'\r0", "-#}")  # found: the error's line was past the text's end
@budget(300)
def test_arbitrary_text(opening: str, text: str, close: str):
    check_parse(opening + text + close)


@given(toml_docs(), st.data())
@budget(300)
def test_generated_toml_round_trips_with_its_line_index(doc, data: st.DataObject):
    source, first = wrap(data.draw, doc.text, data.draw(st.sampled_from(["", "int x;\n"])))
    check_document(doc, source, first)


@given(toml_docs(), st.data())
@budget(300)
def test_mutated_toml(doc, data: st.DataObject):
    """(Found in CI: a U+2028 in a quoted key shifted the line index by one line.)"""
    source, _ = wrap(data.draw, data.draw(mutated_toml(doc.text)))
    check_parse(source)


@given(settings_docs, st.data())
@budget(150)
def test_template_settings_load_without_raising(settings: dict, data: st.DataObject):
    toml = settings_toml(settings)
    if data.draw(st.booleans()):
        toml = data.draw(mutated_toml(toml))
    source, _ = wrap(data.draw, toml, "{{ cutlens.kernel_name }}\n")
    check_template(source)


def test_regression_quoted_table_names_keep_their_lines():
    """Found: a table name quoted with a ``]`` in it was not indexed (its keys filed under
    the table before), and one starting or ending with the other quote lost that quote."""
    fm = frontmatter.parse('{#- cutlens\n["]"]\nx = 1\n["\'a"]\ny = 2\n-#}\n')
    assert fm.data == {"]": {"x": 1}, "'a": {"y": 2}}
    assert fm.lines == {("]", None): 2, ("]", "x"): 3, ("].x", None): 3,
                        ("'a", None): 4, ("'a", "y"): 5, ("'a.y", None): 5}


def test_regression_error_at_the_end_counts_lines_like_toml():
    """Found: an error "at the end of the document" was placed by ``splitlines()``, which
    also splits at ``\\r``: past the last line of the template."""
    try:
        frontmatter.parse("{#- cutlens'\r0-#}")
    except frontmatter.FrontMatterError as e:
        assert e.line == 1
    else:
        raise AssertionError("an unterminated string is an error")


def test_regression_line_separator_in_a_quoted_key():
    """U+2028 is no line end in TOML: the keys after it keep their lines."""
    check_parse('{#- cutlens\n"\u2028a" = 1\n[t]\nx = 2\n-#}\n')
