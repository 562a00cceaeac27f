"""Fuzz target: the front-matter parser (``cutlens.template.frontmatter``) and template loading.

Inputs are arbitrary text (with and without a ``{#- cutlens`` opening), TOML documents that
hypothesis generates and serializes itself (so the expected data and the line of every
table and key are known), mutations of those documents, and template settings (samples,
variants, ``[[variant]]`` lists) with hostile values.
"""

from __future__ import annotations

import math
import re
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from cutlens import config as config_mod
from cutlens.template import frontmatter
from cutlens.template.frontmatter import FrontMatter, FrontMatterError
from cutlens.template.loader import load

from fuzz_common import count

# --------------------------------------------------------------------------- TOML documents

_bare_key = st.from_regex(r"[A-Za-z0-9_-]{1,8}", fullmatch=True)
# TOML strings hold anything but quotes, backslashes and the control characters below (tab
# and U+0080-U+009F are fine, and so are U+2028/U+2029, which splitlines() would split at).
_TOML_CONTROLS = "".join(map(chr, [*range(0x09), *range(0x0A, 0x20), 0x7F]))
# Quoted keys: such characters, on one line, and never the comment's end ``#}`` (which ends
# the front matter wherever it appears).
_quoted_chars = st.characters(codec="utf-8", exclude_categories=("Cs",),
                              exclude_characters='"\\' + _TOML_CONTROLS)
_quoted_key = st.text(_quoted_chars, min_size=1, max_size=8).filter(lambda s: "#}" not in s)
keys = st.one_of(_bare_key, _quoted_key)

_strings = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_datetimes = st.sampled_from([
    datetime(1979, 5, 27, 7, 32), datetime(1979, 5, 27, 7, 32, 0, 999000),
    datetime(1979, 5, 27, 0, 32, tzinfo=timezone(timedelta(hours=-7))),
    date(2026, 11, 25), time(7, 32, 0)])
scalars = st.one_of(
    st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=True), st.booleans(),
    _strings, _datetimes)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(keys, inner, max_size=3)),
    max_leaves=6)


def _key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else f'"{k}"'


def _str(s: str) -> str:
    out = []
    for c in s:
        if c in '"\\':
            out.append("\\" + c)
        elif c in _TOML_CONTROLS:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def toml_value(v: Any) -> str:
    """A TOML literal for ``v`` (on one line; ``#}`` never appears in it)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _str(v).replace("#}", "#\\u007d")
    if isinstance(v, datetime | date | time):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    assert isinstance(v, dict)
    return "{ " + ", ".join(f"{_key(k)} = {toml_value(x)}" for k, x in v.items()) + " }"


@dataclass
class Doc:
    """A generated TOML document: its text, its data, and the expected line index
    (``(table, key)`` -> 0-based line in ``text``; ambiguous labels left out)."""

    text: str
    data: dict
    lines: dict[tuple[str, str | None], int] = field(default_factory=dict)
    variant_lines: list[int] = field(default_factory=list)


_tables = st.dictionaries(keys, st.dictionaries(keys, values, max_size=3), max_size=3)


@st.composite
def toml_docs(draw: st.DrawFn) -> Doc:
    """A TOML document of root keys, ``[tables]`` (some with dotted names) and ``[[variant]]``
    tables, laid out with blank lines, comments and odd spacing."""
    root = draw(st.dictionaries(keys, values, max_size=3))
    tables = {k: v for k, v in draw(_tables).items() if k not in root}
    variant_list = [] if "variant" in root or "variant" in tables else draw(
        st.lists(st.dictionaries(_bare_key, scalars, max_size=3), max_size=3))
    lines: list[str] = []
    labels: list[tuple[tuple[str, str | None], int]] = []
    shadows: list[tuple[tuple[str, str | None], int]] = []
    data: dict = {}

    def pad() -> str:
        return draw(st.sampled_from(["", " ", "  ", "\t"]))

    def comment() -> str:
        return draw(st.sampled_from(["", "", " # note", "  #", " # [x] = 1"]))

    def emit_keys(table: str, items: dict) -> None:
        for k, v in items.items():
            labels.append(((table, k), len(lines)))
            # the index also files a key's line as a table (for inline tables)
            shadows.append(((f"{table}.{k}".strip("."), None), len(lines)))
            lines.append(f"{pad()}{_key(k)}{pad()}={pad()}{toml_value(v)}{comment()}")
            if draw(st.integers(0, 5)) == 0:
                lines.append(draw(st.sampled_from(["", "# comment", "   "])))

    emit_keys("", root)
    data.update(root)
    prefix = draw(st.sampled_from(["", "samples", "template.x"]))
    if prefix.split(".")[0] in root:
        prefix = ""
    for name, items in tables.items():
        parts = [*prefix.split("."), name] if prefix else [name]
        header = ".".join(_key(p) for p in parts)
        table = ".".join(parts)
        labels.append(((table, None), len(lines)))
        lines.append(f"{pad()}[{pad()}{header}{pad()}]{comment()}")
        emit_keys(table, items)
        node = data
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = items
    doc_lines: list[int] = []
    for item in variant_list:
        doc_lines.append(len(lines))
        lines.append(f"{pad()}[[variant]]{comment()}")
        emit_keys("variant", item)
    if variant_list:
        data["variant"] = variant_list
    # a label that two places produce (e.g. "a.b" quoted and a.b dotted) is ambiguous
    seen: dict[tuple[str, str | None], int] = {}
    dup = set()
    for label, ln in sorted([*labels, *shadows], key=lambda x: x[1]):
        if label in seen:
            dup.add(label)
        seen.setdefault(label, ln)
    expected = dict(labels)
    index = {lab: ln for lab, ln in expected.items() if lab not in dup and lab[0] != "variant"}
    return Doc("\n".join(lines) + "\n", data, index, doc_lines)


def wrap(draw: st.DrawFn, toml: str, body: str = "") -> tuple[str, int]:
    """``toml`` as a template's front matter; returns the source and the 1-based line where
    the TOML text starts."""
    lead = draw(st.sampled_from(["", "\n", "  \n\n", " "]))
    opening = draw(st.sampled_from(["{#- cutlens", "{# cutlens", "{#-cutlens", "{#cutlens"]))
    close = draw(st.sampled_from(["-#}", "#}", "\n-#}", "\n#}"]))
    src = f"{lead}{opening}\n{toml}{close}\n{body}"
    return src, lead.count("\n") + 1


def same(a: Any, b: Any) -> bool:
    """Equality with nan == nan."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


# --------------------------------------------------------------------------- properties


def check_parse(source: str, target: str = "frontmatter") -> FrontMatter | FrontMatterError:
    """``frontmatter.parse``: a result or a :class:`FrontMatterError` on a line of the text
    (inside the comment when it is one), never another exception."""
    count(target)
    n_lines = source.count("\n") + 1
    try:
        fm = frontmatter.parse(source)
    except FrontMatterError as e:
        assert isinstance(e.line, int) and 1 <= e.line <= n_lines, (e.line, n_lines, e)
        assert isinstance(e.column, int) and e.column >= 0
        assert e.message and isinstance(e.message, str)
        _, start, end = _split_or_none(source)
        if end:  # a TOML error: inside the comment
            assert start <= e.line <= end, (start, e.line, end, e.message)
        return e
    assert isinstance(fm.data, dict)
    if fm.start_line:
        assert 1 <= fm.start_line <= fm.end_line <= n_lines
        for label, ln in fm.lines.items():
            assert fm.start_line <= ln <= fm.end_line, (label, ln)
        for ln in fm.variant_list_lines:
            assert fm.start_line <= ln <= fm.end_line
        assert fm.line_of("no such table") == fm.start_line
    else:
        assert fm.data == {} and not fm.lines
    return fm


def _split_or_none(source: str) -> tuple[str | None, int, int]:
    try:
        return frontmatter.split(source)
    except FrontMatterError:
        return None, 0, 0


def check_document(doc: Doc, source: str, first_line: int) -> None:
    """A generated document parses to its data, with every table and key on its line."""
    fm = check_parse(source, "frontmatter_toml")
    assert isinstance(fm, FrontMatter), fm
    assert same(fm.data, doc.data), (fm.data, doc.data)
    assert fm.start_line == first_line
    assert fm.variant_list_lines == [first_line + 1 + ln for ln in doc.variant_lines]
    for label, ln in doc.lines.items():
        assert fm.lines.get(label) == first_line + 1 + ln, (label, fm.lines.get(label), ln)


_ROOT: Path | None = None


def _workspace() -> Path:
    global _ROOT
    if _ROOT is None:
        _ROOT = Path(tempfile.mkdtemp(prefix="cutlens-fuzz-fm-"))
        (_ROOT / "cutlens.toml").write_text("")
    return _ROOT


def check_template(source: str, target: str = "template_load") -> None:
    """``template.load`` never raises on bad content: problems are diagnostics on lines of
    the template, and the sample × variant pairs can be listed."""
    count(target)
    root = _workspace()
    cfg = config_mod.load(root)
    path = root / "t.cu.jinja"
    t = load(path, cfg, source)
    t.pairs()
    n_lines = source.count("\n") + 1
    for d in t.errors:
        assert d.file == str(path.resolve()), d
        assert 1 <= d.line <= n_lines, (d.line, n_lines, d.message)
        assert d.message


# --------------------------------------------------------------------------- strategies

_dims = st.one_of(st.integers(-3, 5000), st.integers(), st.sampled_from(
    ["M", "N", "2*M", "M+", "", "__import__('os')", "s0", "1e3", "M**99999"]), st.booleans(),
    st.floats(), st.lists(st.integers(), max_size=2))
_dtypes = st.one_of(st.sampled_from(["float16", "bfloat16", "float32", "float8_e4m3fn",
                                     "int8", "torch.float16", "half", ""]), _strings)
_nodes = st.one_of(
    st.fixed_dictionaries({"dtype": _dtypes, "size": st.lists(_dims, max_size=4)},
                          optional={"stride": st.lists(_dims, max_size=4), "offset": _dims,
                                    "device": _strings, "bogus": scalars}),
    st.just(False), scalars)
_samples = st.dictionaries(_bare_key, st.dictionaries(
    st.one_of(st.sampled_from(["X", "W", "Y", "hints", "vars"]), _bare_key),
    st.one_of(_nodes, st.dictionaries(st.sampled_from(["M", "N"]), st.integers()))),
    max_size=3)
_variants = st.dictionaries(
    st.one_of(st.sampled_from(["tile", "block", "schedule", "skip_if", "name"]), _bare_key),
    st.one_of(st.lists(scalars, max_size=3), scalars,
              st.sampled_from(["tile[0] > 64", "block ==", "X.size(0) > 1", "1/0",
                               "{{ block }}-{{ tile }}", "[", "schedule.upper()"])),
    max_size=4)
settings_docs = st.fixed_dictionaries({}, optional={
    "kind": st.one_of(st.sampled_from(["cuda", "cutlass"]), scalars),
    "kernel_name": st.one_of(_strings, scalars),
    "samples": st.one_of(_samples, scalars),
    "variants": st.one_of(_variants, scalars),
    "variant": st.one_of(st.lists(st.dictionaries(_bare_key, scalars, max_size=3),
                                  max_size=3), scalars),
    "bench": st.one_of(st.dictionaries(st.sampled_from(["reference", "flops", "atol",
                                                        "baseline", "x"]), scalars), scalars),
    "companions": st.one_of(st.dictionaries(_bare_key, _strings, max_size=2), scalars),
    "compile": st.one_of(st.dictionaries(st.sampled_from(["arch", "std", "defines"]),
                                         values), scalars),
})


def settings_toml(settings: dict) -> str:
    """Settings as TOML (root keys first, then a table per dict)."""
    root = {k: v for k, v in settings.items() if not isinstance(v, dict)}
    out = [f"{_key(k)} = {toml_value(v)}" for k, v in root.items()]
    for k, v in settings.items():
        if isinstance(v, dict):
            out.append(f"[{_key(k)}]")
            out += [f"{_key(kk)} = {toml_value(vv)}" for kk, vv in v.items()]
    return "\n".join(out) + "\n"


_toml_junk = st.sampled_from([
    "[", "]", "[[", "]]", "=", '"', "'", '"""', "'''", "#", "\n", "\r\n", "\r", "\\", "{", "}",
    ",", ".", "a.b", "[samples.x]", "[[variant]]", "x = 1", "x = ", "= 1", "\x00", "\u2028",
    "\x0c", "\ufeff", "#}", "-#}", "{#", "1979-05-27T07:32:00Z", "inf", "nan", "0x", "1_000",
    "\t"])


@st.composite
def mutated_toml(draw: st.DrawFn, text: str) -> str:
    """``text`` with TOML syntax and hostile characters spliced in or cut out."""
    for _ in range(draw(st.integers(1, 5))):
        k = draw(st.integers(0, len(text)))
        if draw(st.booleans()):
            text = text[:k] + draw(st.one_of(_toml_junk, st.text(max_size=4))) + text[k:]
        else:
            text = text[:k] + text[draw(st.integers(k, len(text))):]
    return text
