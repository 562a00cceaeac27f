"""Which argument of an explicit instantiation does not match the function template.

EDG says only ``no instance of function template "ns::F" matches the specified type``, at
the statement's first line. FlashInfer-style kernel-inst templates spread one explicit
instantiation over several lines, one group of arguments each, so the line that matters is
the argument's. It is found by reading the template's declaration (in the headers the unit
reaches) and checking what can be checked without a compiler: a value where a type is
declared, a type or a literal of another kind where a value is (an ``int`` for an
``enum class``, ``MaskMode::kNone`` for a ``bool``), and then each function parameter's type
(declared types with the template arguments substituted and the unit's aliases followed,
``typename Params::DTypeO*`` -> ``nv_bfloat16*``) against the one written. Anything it
cannot decide counts as a match: the answer is then EDG's line.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cutlens.nvcc.statements import normalize, split_top

NO_MATCH_RE = re.compile(r'no instance of function template "(?P<name>[^"]+)" matches the '
                         r"specified type")
_INT_RE = re.compile(r"^[-+]?\d+[uUlL]*$")
_ENUMERATOR_RE = re.compile(r"^(?:[A-Za-z_]\w*::)*(?P<enum>[A-Za-z_]\w*)::[A-Za-z_]\w*$")
_ENUM_DECL_RE = re.compile(r"\benum\s+(?P<scoped>class\s+|struct\s+)?(?P<name>[A-Za-z_]\w*)"
                           r"\s*(?::[^{;]*)?\{")
_COMMENT_RE = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_BUILTIN_TYPES = {"void", "bool", "char", "short", "int", "long", "float", "double", "half",
                  "nv_bfloat16", "nv_half", "int8_t", "uint8_t", "int16_t", "uint16_t",
                  "int32_t", "uint32_t", "int64_t", "uint64_t", "size_t"}
_INTEGRAL = {"bool", "char", "short", "int", "long", "unsigned", "signed", "int8_t", "uint8_t",
             "int16_t", "uint16_t", "int32_t", "uint32_t", "int64_t", "uint64_t", "size_t",
             "std::size_t"}


@dataclass
class Arg:
    """One written argument: its text (comments dropped) and offset in the statement."""

    text: str
    offset: int


def _balanced(text: str, i: int, open_: str, close: str) -> int | None:
    """Index just after the bracket closing the one at ``text[i]`` (nested ``()<>[]{}``)."""
    depth = 0
    pairs = {"(": ")", "<": ">", "[": "]", "{": "}"}
    stack: list[str] = []
    for j in range(i, len(text)):
        ch = text[j]
        if ch in pairs:
            stack.append(pairs[ch])
            depth += 1
        elif stack and ch == stack[-1]:
            stack.pop()
            depth -= 1
            if depth == 0:
                return j + 1 if ch == close and text[i] == open_ else None
    return None


def _args(text: str, start: int, end: int) -> list[Arg]:
    """The comma-separated items of ``text[start:end]`` (top level), with offsets."""
    out: list[Arg] = []
    depth, begin = 0, start
    for j in range(start, end + 1):
        ch = text[j] if j < end else ","
        if ch in "<([{":
            depth += 1
        elif ch in ">)]}":
            depth = max(depth - 1, 0)
        elif ch == "," and depth == 0:
            raw = text[begin:j]
            clean = _COMMENT_RE.sub(" ", raw)
            skip = re.match(r"\s*(?:/\*.*?\*/\s*)*", raw, re.S)
            lead = skip.end() if skip else 0
            if clean.strip():
                out.append(Arg(" ".join(clean.split()), begin + lead))
            begin = j + 1
    return out


def written(text: str, start: int, end: int, name: str) -> tuple[list[Arg], list[Arg]] | None:
    """The template and function arguments of the explicit instantiation of ``name`` in
    ``text[start:end]``."""
    base = name.rsplit("::", 1)[-1]
    m = re.search(rf"\b{re.escape(base)}\s*<", text[start:end])
    if m is None:
        return None
    lt = start + m.end() - 1
    gt = _balanced(text, lt, "<", ">")
    if gt is None or gt > end:
        return None
    paren = text.find("(", gt)
    if paren < 0 or paren >= end or text[gt:paren].strip():
        return None
    close = _balanced(text, paren, "(", ")")
    if close is None or close > end:
        return None
    return _args(text, lt + 1, gt - 1), _args(text, paren + 1, close - 1)


@functools.lru_cache(maxsize=2048)
def _read(path: str, _mtime: int) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _text(path: str) -> str:
    try:
        return _read(path, os.stat(path).st_mtime_ns)
    except OSError:
        return ""


@dataclass
class Declaration:
    """A function template's declaration: where, its template and function parameters,
    and the enums its headers declare (name -> scoped)."""

    file: str
    line: int
    tparams: list[str]
    params: list[str]
    enums: dict[str, bool]


def declaration(headers: Iterable[str], name: str, n_args: int) -> Declaration | None:
    """The first declaration of function template ``name`` that takes ``n_args`` template
    arguments in ``headers``."""
    base = name.rsplit("::", 1)[-1]
    enums: dict[str, bool] = {}
    found = None
    pat = re.compile(rf"\b{re.escape(base)}\s*\(")
    for path in headers:
        text = _text(path)
        if not text:
            continue
        for em in _ENUM_DECL_RE.finditer(text):
            enums.setdefault(em["name"], bool(em["scoped"]))
        if found is not None:
            continue
        for m in pat.finditer(text):
            head = text.rfind("template", max(0, m.start() - 2000), m.start())
            if head < 0:
                continue
            lt = text.find("<", head)
            gt = _balanced(text, lt, "<", ">") if lt >= 0 else None
            if gt is None or gt > m.start() or re.search(r"[;{}]", text[gt:m.start()]):
                continue
            close = _balanced(text, m.end() - 1, "(", ")")
            if close is None:
                continue
            tparams = split_top(_COMMENT_RE.sub(" ", text[lt + 1:gt - 1]))
            params = split_top(_COMMENT_RE.sub(" ", text[m.end():close - 1]))
            required = sum("=" not in p for p in tparams)
            if required <= n_args <= len(tparams) or any("..." in p for p in tparams):
                found = (path, text.count("\n", 0, m.start()) + 1, tparams, params)
                break
    if found is None:
        return None
    return Declaration(*found, enums=enums)


def _kind(arg: str, enums: dict[str, bool]) -> tuple[str, str]:
    """What a written template argument is: ``int``, ``bool``, ``enum`` (with its enum),
    ``type`` or ``unknown`` (a name: a constant or a type)."""
    a = arg.strip()
    if _INT_RE.match(a):
        return "int", ""
    if a in ("true", "false"):
        return "bool", ""
    m = _ENUMERATOR_RE.match(a)
    if m and m["enum"] in enums:
        return "enum", m["enum"]
    if "<" in a or a.rsplit("::", 1)[-1] in _BUILTIN_TYPES or a.endswith(("*", "&")):
        return "type", ""
    return "unknown", ""


def _param_name(decl: str) -> str | None:
    """``HEAD_DIM`` of ``uint32_t HEAD_DIM = 64``; ``T`` of ``typename T``."""
    d = decl.split("=", 1)[0].strip()
    m = re.search(r"([A-Za-z_]\w*)\s*$", d)
    return m.group(1) if m else None


def _template_mismatch(tparam: str, arg: str, enums: dict[str, bool]) -> bool:
    p = tparam.split("=", 1)[0].strip()
    if "..." in p or p.startswith("template"):
        return False
    kind, enum = _kind(arg, enums)
    if re.match(r"^(?:typename|class)\b", p):
        return kind in ("int", "bool", "enum")
    ptype = " ".join(p.split()[:-1])  # the declared type of a value parameter
    ptype_base = ptype.replace("const", "").strip().rsplit("::", 1)[-1]
    if kind == "type":
        return True
    if ptype_base in enums:
        return kind in ("int", "bool") or (kind == "enum" and enum != ptype_base)
    if ptype in _INTEGRAL or ptype_base in _INTEGRAL:
        return kind == "enum" and enums.get(enum, False)
    return False


def _type_of(param: str) -> str:
    """The type of a function parameter declaration (its name and default dropped)."""
    p = param.split("=", 1)[0].strip()
    m = re.match(r"^(?P<type>.*?[\w>\]*&\s])\s*(?P<name>[A-Za-z_]\w*)$", p)
    if m and m["type"].strip() and m["type"].strip() not in ("const", "typename"):
        return m["type"].strip()
    return p


def _forms(t: str, aliases: Callable[[str], list[str]]) -> set[str] | None:
    """Spellings of a type: as written and through the unit's aliases, normalized; None when
    it names a member of something the unit does not spell out (undecidable)."""
    t = re.sub(r"\b(?:typename|const|volatile|struct|class)\b", " ", t)
    suffix = "".join(re.findall(r"[*&]", t))
    core = re.sub(r"[*&]", " ", t).strip()
    resolved = aliases(core) if re.fullmatch(r"[\w:]+", core) else []
    if "::" in core and not resolved and core.rsplit("::", 1)[-1] not in _BUILTIN_TYPES:
        return None
    return {normalize(core) + suffix, *(normalize(a) + suffix for a in resolved)}


def mismatch(text: str, start: int, end: int, name: str, headers: Iterable[str],
             aliases: Callable[[str], list[str]]) -> tuple[int, Declaration] | None:
    """Offset (in ``text``) of the first argument of the explicit instantiation of ``name``
    in ``text[start:end]`` that does not fit the declaration, and the declaration; None when
    none is found."""
    got = written(text, start, end, name)
    if got is None:
        return None
    targs, fargs = got
    decl = declaration(headers, name, len(targs))
    if decl is None:
        return None
    for tp, a in zip(decl.tparams, targs, strict=False):
        if _template_mismatch(tp, a.text, decl.enums):
            return a.offset, decl
    subst = {n: a.text for tp, a in zip(decl.tparams, targs, strict=False)
             if (n := _param_name(tp)) is not None}
    if len(decl.params) != len(fargs):
        return None
    for dp, a in zip(decl.params, fargs, strict=True):
        declared = re.sub(r"\b[A-Za-z_]\w*\b",
                          lambda m: subst.get(m.group(0), m.group(0)), _type_of(dp))
        want, have = _forms(declared, aliases), _forms(_type_of(a.text), aliases)
        if want is not None and have is not None and not want & have:
            return a.offset, decl
    return None
