"""Fuzz target: the nvcc output parser (``cutlens.nvcc.output``).

Inputs are arbitrary text, lines from a grammar of everything nvcc's tools print (with odd
line numbers, names and levels), and mutations of the captured nvcc 13.0 outputs in
``tests/fixtures/nvcc``: line splicing, deletion and duplication, byte flips, truncation,
huge line numbers, unicode, NULs, CRLF and ANSI colour codes.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from hypothesis import strategies as st

from cutlens.nvcc.output import CompilerMessage, Frame, parse, parse_resources

from fuzz_common import FIXTURES, count

TOOLS = {"edg", "cicc", "gcc", "ptxas", "nvlink", "nvcc", "fatbinary", "other"}
SEVERITIES = {"error", "warning", "info"}
#: The largest line an LSP position can hold (0-based line ``2**31 - 1`` is line ``2**31``;
#: keep one below so 1-based lines convert safely).
MAX_LINE = 2**31 - 1

#: (messages, errors, warnings, notes, chain frames, kernels with resources) per fixture,
#: checked by hand against the outputs (see tests/unit/test_nvcc_output.py for the details).
KNOWN_COUNTS: dict[str, tuple[int, int, int, int, int, int]] = {
    "chain_block": (1, 1, 0, 0, 2, 0),
    "chain_elided": (1, 1, 0, 0, 10, 0),
    "chain_header": (1, 1, 0, 0, 2, 0),
    "chain_single": (1, 1, 0, 0, 1, 0),
    "cute_chain": (3, 3, 0, 0, 20, 0),
    "device_calls_host": (2, 2, 0, 0, 0, 0),
    "device_calls_host_quick": (0, 0, 0, 0, 0, 0),
    "edg_command_line_error": (1, 1, 0, 0, 0, 0),
    "edg_error": (1, 1, 0, 0, 0, 0),
    "edg_multiline_message": (1, 1, 0, 0, 1, 0),
    "edg_notes": (1, 1, 0, 2, 0, 0),
    "edg_notes_chain": (1, 1, 0, 2, 1, 0),
    "edg_remark": (1, 0, 0, 0, 0, 1),
    "edg_warning": (1, 0, 1, 0, 0, 1),
    "gcc_asm_error": (1, 1, 0, 0, 0, 1),
    "gcc_error": (1, 1, 0, 0, 0, 1),
    "gcc_note_include": (1, 0, 1, 1, 1, 1),
    "gcc_required_from": (1, 1, 0, 0, 2, 0),
    "gcc_warning": (1, 0, 1, 0, 0, 1),
    "gemm_sm90_bad_alignment_quick": (1, 1, 0, 0, 1, 0),
    "gemm_sm90_full": (0, 0, 0, 0, 0, 1),
    "host_calls_device": (1, 1, 0, 0, 0, 0),
    "host_calls_device_quick": (0, 0, 0, 0, 0, 0),
    "line_directive": (1, 1, 0, 0, 1, 0),
    "missing_include": (1, 1, 0, 0, 0, 0),
    "nvcc_fatal": (1, 1, 0, 0, 0, 0),
    "nvlink_error": (1, 1, 0, 0, 0, 1),
    "ptxas_asm": (2, 2, 0, 0, 0, 0),
    "ptxas_smem": (1, 1, 0, 0, 0, 1),
    "ptxas_spill": (1, 0, 1, 0, 0, 2),
    "std_static_assert": (2, 2, 0, 0, 6, 0),
}


@cache
def fixtures() -> dict[str, str]:
    """The captured nvcc outputs by case name."""
    return {p.stem: p.read_text() for p in sorted(FIXTURES.glob("*.txt"))}


def counts(text: str) -> tuple[int, int, int, int, int, int]:
    msgs = parse(text, demangle_names=False)
    return (len(msgs), sum(m.severity == "error" for m in msgs),
            sum(m.severity == "warning" for m in msgs), sum(len(m.notes) for m in msgs),
            sum(len(m.chain) for m in msgs), len(parse_resources(text, demangle_names=False)))


# --------------------------------------------------------------------------- properties


def _check_frame(f: Frame) -> None:
    assert isinstance(f, Frame)
    assert f.file is None or (isinstance(f.file, str) and f.file), f
    assert isinstance(f.line, int) and 0 <= f.line <= MAX_LINE, f
    assert f.column is None or (isinstance(f.column, int) and 0 <= f.column <= MAX_LINE), f
    assert isinstance(f.text, str), f


def check_message(m: CompilerMessage) -> None:
    """The fields of one parsed message are sane."""
    assert m.tool in TOOLS, m.tool
    assert m.severity in SEVERITIES, m.severity
    assert m.line is None or (isinstance(m.line, int) and 1 <= m.line <= MAX_LINE), m.line
    assert m.column is None or (isinstance(m.column, int) and 0 <= m.column <= MAX_LINE), \
        m.column
    assert m.file is None or (isinstance(m.file, str) and m.file), m.file
    assert isinstance(m.message, str) and isinstance(m.raw, str) and m.raw
    assert m.code is None or isinstance(m.code, str)
    assert isinstance(m.elided_frames, int) and m.elided_frames >= 0
    assert m.elided_at is None or 0 <= m.elided_at <= len(m.chain)
    for f in m.chain:
        _check_frame(f)
    for n in m.notes:
        check_message(n)
        assert n.severity == "info"


def check_output(text: str, target: str = "nvcc_output") -> list[CompilerMessage]:
    """Parse ``text`` (messages and resources): never raises, every field is sane, every
    message survives a JSON round trip, and no two messages are the same."""
    count(target)
    msgs = parse(text, demangle_names=False)
    keys = [m.key() for m in msgs]
    assert len(keys) == len(set(keys)), "duplicate messages"
    for m in msgs:
        check_message(m)
        assert CompilerMessage.from_json(json.loads(json.dumps(m.to_json()))) == m
    for r in parse_resources(text, demangle_names=False):
        assert r.kernel and r.arch
        for v in (r.registers, r.barriers, r.smem_bytes, r.cmem_bytes, r.stack_bytes,
                  r.spill_stores, r.spill_loads):
            assert isinstance(v, int) and v >= 0
        assert r.compile_ms is None or r.compile_ms >= 0
    return msgs


# --------------------------------------------------------------------------- strategies

_word = st.text(st.characters(codec="utf-8", exclude_characters="\n"), max_size=12)
_ident = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
_files = st.one_of(
    st.sampled_from(["k.cu", "/usr/include/c++/13/tuple", "cutlass/gemm.h", "a b.cu",
                     "C:\\x\\y.cu", "t.cu.jinja", "(x).cu", "x:y.cu", "ü.cu", "/tmp/x.ptx"]),
    st.text(st.characters(codec="utf-8", exclude_characters="\n\r"), min_size=1, max_size=10))
#: Line numbers as printed: small, zero, LSP's limit, absurd, unicode digits.
line_numbers = st.one_of(
    st.integers(0, 2000).map(str),
    st.integers(MAX_LINE - 2, MAX_LINE + 2).map(str),
    st.integers(10**12, 10**40).map(str),
    st.integers(1, 6000).map(lambda n: "9" * n),
    st.sampled_from(["0", "00", "0007", "\u0663", "\uff11\uff12", "\u0969\u0967"]),
)
_levels = st.sampled_from(["error", "warning", "remark", "note", "catastrophic error",
                           "internal error", "fatal error", "Error", "Warning", "info",
                           "fatal", "command-line error", "Catastrophic error", "bogus"])
_codes = st.one_of(st.just(""), line_numbers.map(lambda n: f" #{n}"),
                   line_numbers.map(lambda n: f" #{n}-D"))
_kernel_names = st.one_of(
    st.sampled_from(["_Z5smallPi", "_Z5spillILi64EEvPKfPf", "_Z1kPi", "_Z", "k"]),
    st.text(st.characters(codec="utf-8", exclude_characters="'\n"), min_size=1,
            max_size=12).map(lambda s: "_Z" + s),
    _word.filter(lambda s: "'" not in s and s))
_floats = st.one_of(st.floats(0, 1e6).map(repr), st.sampled_from(
    ["1.2.3", ".", "..", "1.", "9" * 400, "1e5", "inf", "nan"]))
_arches = st.sampled_from(["sm_90a", "sm_80", "", "x'y"])


@st.composite
def nvcc_line(draw: st.DrawFn) -> str:
    """One line of the kind nvcc's tools print, with hostile details."""
    f, ln, col, n = draw(_files), draw(line_numbers), draw(line_numbers), draw(line_numbers)
    lvl, msg = draw(_levels), draw(_word)

    def pick(*options: str) -> str:
        return draw(st.sampled_from(options))

    forms: list[Any] = [
        lambda: f"{f}({ln}): {lvl}{draw(_codes)}: {msg}",
        lambda: f"{lvl.capitalize()}{draw(_codes)}: {msg}",
        lambda: "  " + msg,
        lambda: " " * draw(st.integers(0, 6)) + "^" + " " * draw(st.integers(0, 2)),
        lambda: f'          detected during instantiation of "{msg}" at line {ln}'
                + pick("", f" of {f}"),
        lambda: "          detected during:",
        lambda: f'            instantiation of "{msg}" at line {ln} of {f}',
        lambda: f"            [ {n} instantiation contexts not shown ]",
        lambda: f"{f}:{ln}:{col}: {lvl}: {msg}" + pick("", " [-Wcpp]", " [-fpermissive]"),
        lambda: f"{f}:{ln}: {lvl}: {msg}",
        lambda: f"{f}: In function \u2018{msg}\u2019:",
        lambda: f"{f}: In instantiation of \u2018{msg}\u2019:",
        lambda: f"In file included from {f}:{ln}:" + pick("", f"{col}:"),
        lambda: f"                 from {f}:{ln},",
        lambda: f"{f}:{ln}:{col}:   required from " + pick("here", f"\u2018{msg}\u2019"),
        lambda: f"  {ln} | {msg}",
        lambda: f"      | {msg}",
        lambda: f"{pick('cc1plus', 'collect2', '/usr/bin/ld', 'ld.gold', 'as')}: {lvl}: {msg}",
        lambda: f"/usr/bin/ld: {msg}",
        lambda: f"ptxas {f}, line {ln}; {lvl}   : {msg}",
        lambda: f"{pick('ptxas', 'nvlink', 'nvcc', 'fatbinary', 'cicc', 'cudafe++')} {lvl}   : "
                + pick(f"Entry function '{draw(_kernel_names)}' uses too much shared data",
                       f"Function '{draw(_kernel_names)}' x", msg,
                       f"Undefined reference to '{draw(_kernel_names)}' in '{f}'",
                       "Ptx assembly aborted due to errors"),
        lambda: f"ptxas info    : Compiling entry function '{draw(_kernel_names)}' for "
                f"'{draw(_arches)}'",
        lambda: f"ptxas info    : Function properties for {draw(_kernel_names)}",
        lambda: f"    {n} bytes stack frame, {ln} bytes spill stores, {col} bytes spill loads",
        lambda: f"ptxas info    : Used {n} registers, used {ln} barriers, {col} bytes smem, "
                f"{n} bytes cmem[0], {ln} bytes cmem[{col}]",
        lambda: f"ptxas info    : Compile time = {draw(_floats)} ms",
        lambda: pick("1 error detected in the compilation of \"x.cu\".",
                     "Remark: The warnings can be suppressed with \"-diag-suppress <n>\"",
                     "compilation terminated.", "x.s: Assembler messages:"),
        lambda: msg,
    ]
    return draw(st.sampled_from(forms))()


nvcc_text = st.lists(st.one_of(nvcc_line(), _word, st.just("")), max_size=30).map("\n".join)
arbitrary_text = st.one_of(
    st.text(),
    st.text(st.characters(codec="utf-8"), max_size=400),
    st.binary(max_size=400).map(lambda b: b.decode("utf-8", "replace")),
)

_ANSI_CODES = ["\x1b[1m", "\x1b[0m", "\x1b[01;31m", "\x1b[K", "\x1b[m"]
_DIGITS = re.compile(r"\d+")


def _mutate(draw: st.DrawFn, text: str, others: list[str]) -> str:
    op = draw(st.integers(0, 13))
    lines = text.split("\n")
    i = draw(st.integers(0, len(lines)))
    if op == 0:  # splice lines of another output in
        other = draw(st.sampled_from(others)).split("\n")
        a = draw(st.integers(0, len(other)))
        b = draw(st.integers(a, len(other)))
        lines[i:i] = other[a:b]
    elif op == 1:  # delete a run of lines
        j = draw(st.integers(i, len(lines)))
        del lines[i:j]
    elif op == 2 and lines:  # duplicate or move a line
        k = draw(st.integers(0, len(lines) - 1))
        lines.insert(i, lines[k] if draw(st.booleans()) else lines.pop(k))
    elif op == 3:  # a generated line
        lines.insert(i, draw(nvcc_line()))
    elif op == 4:  # byte flips
        data = bytearray(text.encode("utf-8", "surrogatepass"))
        for _ in range(draw(st.integers(1, 8))):
            if data:
                k = draw(st.integers(0, len(data) - 1))
                data[k] ^= 1 << draw(st.integers(0, 7))
        return data.decode("utf-8", "replace")
    elif op == 5:  # truncate
        return text[:draw(st.integers(0, len(text)))]
    elif op == 6:  # a number becomes huge, zero or unicode
        spans = [m.span() for m in _DIGITS.finditer(text)]
        if spans:
            a, b = draw(st.sampled_from(spans))
            return text[:a] + draw(line_numbers) + text[b:]
    elif op == 7:  # unicode, NULs and control characters anywhere
        k = draw(st.integers(0, len(text)))
        junk = draw(st.one_of(st.text(max_size=6), st.sampled_from(
            ["\x00", "\u2028", "\x0c", "\ufeff", "\udcff", "\U0001d11e", "\r", "\t"])))
        return text[:k] + junk + text[k:]
    elif op == 8:  # CRLF line ends
        return text.replace("\n", "\r\n")
    elif op == 9:  # ANSI colour codes
        k = draw(st.integers(0, len(text)))
        return text[:k] + draw(st.sampled_from(_ANSI_CODES)) + text[k:]
    elif op == 10 and lines:  # re-indent a line (EDG and gcc lean on indentation)
        k = draw(st.integers(0, len(lines) - 1))
        lines[k] = " " * draw(st.integers(0, 12)) + lines[k].lstrip()
    elif op == 11 and lines:  # swap two lines
        a, b = (draw(st.integers(0, len(lines) - 1)) for _ in range(2))
        lines[a], lines[b] = lines[b], lines[a]
    elif op == 12 and lines:  # a very long line
        k = draw(st.integers(0, len(lines) - 1))
        lines[k] = lines[k] * draw(st.integers(2, 200))
    elif op == 13:  # repeat the whole output (cicc runs once per architecture)
        return text + text
    return "\n".join(lines)


@st.composite
def mutated_fixture(draw: st.DrawFn) -> str:
    """A captured nvcc output with 1-6 mutations applied."""
    fx = fixtures()
    texts = [t for t in fx.values() if t]
    text = fx[draw(st.sampled_from(sorted(fx)))]
    for _ in range(draw(st.integers(1, 6))):
        text = _mutate(draw, text, texts)
    return text


@st.composite
def colorized(draw: st.DrawFn, text: str) -> str:
    """``text`` with ANSI escape sequences inserted at random places (never inside one
    another, as a terminal-colouring compiler prints them)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), min_size=1, max_size=10)))
    out, prev = [], 0
    for k in cuts:
        out += [text[prev:k], draw(st.sampled_from(_ANSI_CODES))]
        prev = k
    return "".join([*out, text[prev:]])


def comparable(msgs: list[CompilerMessage]) -> list[dict[str, Any]]:
    return [m.to_json() for m in msgs]
