"""Fuzz target: the source map (``cutlens.render.sourcemap`` with the renderer's markers).

Templates come from a grammar: lines of plain text, ``{{ expressions }}`` (some printing
newlines), ``{% if %}``/``{% else %}``, ``{% for %}``, ``{% macro %}`` definitions and calls
(local and ``{% import %}``-ed), ``{% include %}`` of generated partials, ``{% set %}`` (also
the block form), comments, ``{% raw %}`` and whitespace control (``-``) on any tag. Every
plain-text line and every expression carries a unique token such as ``[T12]``/``[E13]`` so
the test knows which template line must be behind a rendered line that starts with it.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st
from jinja2 import DictLoader, Environment, StrictUndefined

from cutlens import config as config_mod
from cutlens.render.renderer import RenderedUnit, Renderer, RenderFailure
from cutlens.template.loader import load

from fuzz_common import count

ROOT = "t.cu.jinja"
MACROS = "m.jinja"
TOKEN_RE = re.compile(r"\[([TE]\d+)\]")
FIRST_TOKEN_RE = re.compile(r"\s*\[([TE]\d+)\]")
_FILLERS = ["", " int x = 0;", " // note", " a < b && c > d", " { }", " #pragma unroll", " %",
            " # x", " }", " x{y}", " \u00e9\u4e2d", " \\", "\t;",
            # the private-use characters cutlens's source-map markers are made of
            " \ue0000,1,1\ue001", " \ue004", " \ue0059,9,9\ue003"]


@dataclass
class Case:
    """Generated template files and where each token is written: ``token -> (file, line)``
    (1-based); ``edited`` holds the same files with only literal text changed. A *weak* token
    is printed as part of a value (a filtered macro output, a ``{% filter %}`` block): its
    line may also map to the expression that printed the value."""

    files: dict[str, str]
    tokens: dict[str, tuple[str, int]]
    weak: set[str] = field(default_factory=set)
    edited: dict[str, str] = field(default_factory=dict)
    edited_tokens: dict[str, tuple[str, int]] = field(default_factory=dict)
    edited_weak: set[str] = field(default_factory=set)


@dataclass
class _Scope:
    """What a file can call and include."""

    includable: list[str]
    macros: list[str]  # printed as is: their text keeps its own lines
    value_macros: list[str]  # also filtered and compared: their tokens are weak
    caller_macros: list[str]  # macros that print {{ caller() }}: {% call %} targets
    imported: list[str]


class _Builder:
    """Writes one file line by line, filing every token at the line it lands on."""

    def __init__(self, draw: st.DrawFn, case: Case, counter: list[int], name: str,
                 scope: _Scope) -> None:
        self.draw, self.case, self.counter, self.name = draw, case, counter, name
        self.scope = scope
        self.lines: list[str] = []
        self.weak = 0  # > 0: inside a value (a value macro's body, a {% filter %} block)

    def token(self, kind: str = "T") -> str:
        self.counter[0] += 1
        tok = f"{kind}{self.counter[0]}"
        # the token lands on the line being written: the next one to be appended
        self.case.tokens[tok] = (self.name, len(self.lines) + 1)
        if self.weak:
            self.case.weak.add(tok)
        return f"[{tok}]"

    def pick(self, *options: str) -> str:
        return self.draw(st.sampled_from(options))

    def ws(self) -> str:
        return self.pick("", " ", "  ")

    def tag(self, body: str) -> str:
        return "{%" + self.pick("", "-", "") + " " + body + " " + self.pick("", "-", "") + "%}"

    def trail(self) -> str:
        """Text after a tag on its line (or nothing)."""
        return self.pick("", "", " ") if self.draw(st.integers(0, 3)) else self.token()

    def filt(self) -> str:
        """Maybe a filter on a macro's output (a value, not just text to print)."""
        return self.pick("", "", " | trim", " | indent(2)", " | length", " | upper",
                         ' | replace("a", "b")', " | first", " | wordcount", " | string",
                         ' ~ "!"', " | trim | indent(4, true)", " | center(30)")

    def text(self) -> None:
        indent = self.pick("", "  ", "\t", "    ")
        self.lines.append(indent + self.token() + self.pick(*_FILLERS))

    def expr(self, loop_var: str | None = None) -> None:
        sc = self.scope
        options = ["str", "lines", "int"]
        if sc.macros and not self.weak:
            options.append("macro")
        if sc.value_macros:
            options.append("value_macro")
        if sc.imported and not self.weak:
            options.append("imported")
        if loop_var:
            options.append("loop")
        kind = self.pick(*options)
        pre = self.pick("", "  ", "  int y = ", "x(")
        n = self.draw(st.integers(0, 9))
        if kind == "str":
            body = f'"{self.token("E")}"'
        elif kind == "lines":
            t = self.token("E")
            body = f'"{t}\\n{t}"' + self.pick("", ' ~ "\\n"')
        elif kind == "int":
            body = f"{self.draw(st.integers(0, 99))} + 1"
        elif kind == "macro":
            body = f"{self.pick(*sc.macros)}({n})" + self.pick("", ' ~ "!"', " if true else 0")
        elif kind == "value_macro":
            body = f"{self.pick(*sc.value_macros)}({n})" + self.filt()
        elif kind == "imported":
            body = f"m.{self.pick(*sc.imported)}({n})"
        else:
            body = str(loop_var)
        left, right = self.pick("{{", "{{-", "{{"), self.pick("}}", "-}}", "}}")
        post = self.pick("", ";", " ") if self.draw(st.integers(0, 2)) else " " + self.token()
        self.lines.append(f"{pre}{left}{self.ws()}{body}{self.ws()}{right}{post}")

    def block(self, depth: int, loop_var: str | None = None) -> None:
        """One statement (possibly a nested block)."""
        sc = self.scope
        kinds = ["text", "text", "expr", "blank", "comment", "set", "raw"]
        if depth < 2:
            kinds += ["if", "for", "filter"]
            if sc.caller_macros and not self.weak:
                kinds.append("call")
        if sc.includable and not self.weak:
            kinds.append("include")
        kind = self.pick(*kinds)
        if kind == "text":
            self.text()
        elif kind == "expr":
            self.expr(loop_var)
        elif kind == "blank":
            self.lines.append(self.pick("", "  "))
        elif kind == "comment":
            if self.draw(st.booleans()):
                self.lines.append("{#" + self.pick("", "-") + " note #}" + self.trail())
            else:
                self.lines.append("{# a comment")
                self.lines.append("   over lines #}" + self.trail())
        elif kind == "set":
            self.counter[0] += 1
            v = f"v{self.counter[0]}"
            if self.draw(st.booleans()):
                value = str(self.draw(st.integers(0, 9)))
                if sc.value_macros:
                    value = self.pick(value, f"{self.pick(*sc.value_macros)}(1)")
                self.lines.append(self.tag(f"set {v} = {value}") + self.trail())
            else:  # captured text is a value: its lines print where {{ v }} is
                inner = f"S{self.counter[0]} captured"
                if sc.value_macros:
                    inner += self.pick("", f"{{{{ {self.pick(*sc.value_macros)}(2) }}}}")
                self.lines.append(self.tag(f"set {v}") + inner + self.tag("endset")
                                  + self.trail())
            self.lines.append("  {{ " + v + self.pick("", " | trim", " | length") + " }}")
        elif kind == "raw":
            self.lines.append("{% raw %}{{ R }} {% if %}{% endraw %}" + self.trail())
        elif kind == "include":
            self.lines.append(self.tag(f'include "{self.pick(*sc.includable)}"')
                              + self.trail())
        elif kind == "filter":
            self.weak += 1
            self.lines.append(self.tag("filter " + self.pick("upper", "indent(2)", "trim",
                                                             'replace("x", "yy")', "center(9)"))
                              + self.trail())
            self.body(depth + 1, loop_var)
            self.weak -= 1
            self.lines.append(self.tag("endfilter") + self.trail())
        elif kind == "call":
            self.lines.append(self.tag(f"call {self.pick(*sc.caller_macros)}(1)") + self.trail())
            self.body(depth + 1, loop_var)
            self.lines.append(self.tag("endcall") + self.trail())
        elif kind == "if":
            conds = ["true", "false", "1 < 2", "0", "'x' in 'xy'"]
            if sc.value_macros:  # a macro's output as a value
                mac = self.pick(*sc.value_macros)
                conds += [f"{mac}(1) | trim", f'{mac}(2) == ""', f"{mac}(3) | length > 3",
                          f'{mac}(4).startswith("[")']
            cond = self.pick(*conds)
            self.lines.append(self.tag(f"if {cond}") + self.trail())
            self.body(depth + 1, loop_var)
            if self.draw(st.booleans()):
                self.lines.append(self.tag("else") + self.trail())
                self.body(depth + 1, loop_var)
            self.lines.append(self.tag("endif") + self.trail())
        else:  # for
            self.counter[0] += 1
            var = f"i{self.counter[0]}"
            self.lines.append(self.tag(f"for {var} in range({self.draw(st.integers(0, 3))})")
                              + self.trail())
            self.body(depth + 1, var)
            self.lines.append(self.tag("endfor") + self.trail())

    def body(self, depth: int, loop_var: str | None = None) -> None:
        for _ in range(self.draw(st.integers(1 if depth else 0, 6 if depth else 12))):
            self.block(depth, loop_var)

    def define_macros(self, names: list[str], value: bool = False) -> None:
        """Macros named ``names`` (value macros: called in value positions too)."""
        sc = self.scope
        for name in names:
            self.weak += value
            self.lines.append(self.tag(f"macro {name}(a)") + self.trail())
            saved = sc.macros, sc.value_macros, sc.caller_macros
            sc.macros, sc.value_macros, sc.caller_macros = [], [], []  # no recursion
            for _ in range(self.draw(st.integers(1, 4))):
                if self.draw(st.booleans()):
                    self.text()
                else:
                    self.lines.append(self.pick("", "  ", "f(") + "{{ a }}" + self.pick("", ";"))
                if self.draw(st.integers(0, 3)) == 0:
                    self.block(2)
            if not value and self.draw(st.integers(0, 2)) == 0:
                self.lines.append("{% if caller is defined %}" + self.pick("", "  ")
                                  + "{{ caller() }}{% endif %}" + self.trail())
                saved[2].append(name)
            sc.macros, sc.value_macros, sc.caller_macros = saved
            self.weak -= value
            self.lines.append(self.tag("endmacro") + self.trail())

    def source(self) -> str:
        return "\n".join(self.lines) + self.pick("\n", "", "\n\n")


@st.composite
def template_cases(draw: st.DrawFn) -> Case:
    """A root template, 0-3 partials it (and they) include, and maybe a macro library."""
    case = Case({}, {})
    counter = [0]
    n_partials = draw(st.integers(0, 3))
    partials = [f"p{k}.jinja" for k in range(1, n_partials + 1)]
    imported: list[str] = []
    if draw(st.booleans()):
        imported = [f"lib{k}" for k in range(draw(st.integers(1, 2)))]
        b = _Builder(draw, case, counter, MACROS, _Scope([], [], [], [], []))
        b.text()
        b.define_macros(imported)
        case.files[MACROS] = b.source()
    for idx, name in reversed(list(enumerate([ROOT, *partials]))):
        macros = [f"mac{idx}_{k}" for k in range(draw(st.integers(0, 2)))]
        value_macros = [f"vmac{idx}_{k}" for k in range(draw(st.integers(0, 2)))]
        b = _Builder(draw, case, counter, name,
                     _Scope(partials[idx:], [], [], [], imported))
        if imported:
            b.lines.append(b.tag(f'import "{MACROS}" as m') + b.trail())
        b.define_macros(macros)
        b.define_macros(value_macros, value=True)
        b.scope.macros, b.scope.value_macros = macros, value_macros
        b.body(0)
        case.files[name] = b.source()
    # the same files with only literal text changed (the renderer's fast path)
    shift = 100000
    for name, text in case.files.items():
        case.edited[name] = TOKEN_RE.sub(
            lambda m: f"[{m.group(1)[0]}{int(m.group(1)[1:]) + shift}]"
            if m.group(1)[0] == "T" else m.group(0), text).replace(" int x", " long xx")
    def moved(tok: str) -> str:
        return f"T{int(tok[1:]) + shift}" if tok[0] == "T" else tok

    case.edited_tokens = {moved(t): where for t, where in case.tokens.items()}
    case.edited_weak = {moved(t) for t in case.weak}
    return case


def case_of(files: dict[str, str], weak: set[str] = frozenset()) -> Case:  # type: ignore[assignment]
    """A hand-written case: tokens filed where they are written (no literal-text edit)."""
    tokens = {m.group(1): (name, i)
              for name, text in files.items()
              for i, line in enumerate(text.split("\n"), start=1)
              for m in TOKEN_RE.finditer(line)}
    return Case(dict(files), tokens, set(weak), dict(files), dict(tokens), set(weak))


# --------------------------------------------------------------------------- properties


def plain_render(files: dict[str, str]) -> str:
    """What Jinja itself renders (no markers): the text cutlens must produce."""
    env = Environment(loader=DictLoader(files), undefined=StrictUndefined)
    return env.get_template(ROOT).render()


def check_unit(unit: RenderedUnit, root: Path, files: dict[str, str],
               tokens: dict[str, tuple[str, int]], weak: set[str], expected: str) -> None:
    """The text is Jinja's; every rendered line maps to a real line of a template file, and
    a line that starts with a token maps to the line where that token is written (a weak
    token: there or to the expression that printed it)."""
    text, smap = unit.text, unit.source_map
    assert text == expected
    n = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
    assert len(smap.lines) == n, (len(smap.lines), n)
    paths = {str((root / name).resolve()): name for name in files}
    src_lines = {name: src.split("\n") for name, src in files.items()}
    rendered = text.split("\n")
    for i in range(1, n + 1):
        frames = smap.frames(i)
        assert frames, f"rendered line {i} has no origin"
        for f in frames:
            assert f.file in paths, f
            lines = src_lines[paths[f.file]]
            assert 1 <= f.line <= len(lines), (f, len(lines))
            line = lines[f.line - 1]
            assert 0 <= f.column <= len(line), (f, line)
            if f.kind == "expr":  # {{ expression }} or {% filter %}
                assert line[f.column:].startswith(("{{", "{%")), (f, line)
            elif f.kind == "include":
                assert "include" in line[f.column:], (f, line)
            else:
                assert f.kind == "text", f
        m = FIRST_TOKEN_RE.match(rendered[i - 1])
        if m:
            o = smap.origin(i)
            assert o is not None
            tok = m.group(1)
            if (paths[o.file], o.line) != tokens[tok]:
                assert tok in weak and o.kind == "expr", (
                    i, rendered[i - 1], o, tokens[tok])


RESERVED_RE = re.compile("[\ue000-\ue005]")


def reserved_refusal(unit: RenderedUnit | RenderFailure, root: Path,
                     files: dict[str, str]) -> bool:
    """True when the render was refused because a template holds a character reserved for
    the source-map markers; then the diagnostic must be on the line of the first one."""
    if not isinstance(unit, RenderFailure):
        return False
    [d] = unit.diagnostics
    assert "is reserved" in d.message, d
    name = Path(d.file).name
    m = RESERVED_RE.search(files[name])
    assert m is not None, d
    assert d.line == files[name].count("\n", 0, m.start()) + 1, (d, m)
    return True


def check_case(case: Case, target: str = "sourcemap") -> None:
    """Render the case (then its literal-text edit, through the renderer's fast path) and
    check both source maps."""
    count(target)
    with tempfile.TemporaryDirectory(prefix="cutlens-fuzz-sm-") as d:
        root = Path(d).resolve()
        (root / "cutlens.toml").write_text("")
        for name, text in case.files.items():
            (root / name).write_text(text)
        cfg = config_mod.load(root)
        overlays: dict[str, str] = {}
        renderer = Renderer(overlays)
        t = load(root / ROOT, cfg)
        s = t.sample(None)
        unit = renderer.render(t, s, t.variant(s, None))
        try:
            expected = plain_render(case.files)
        except Exception:  # Jinja itself refuses: so must cutlens (with a diagnostic)
            assert isinstance(unit, RenderFailure) and unit.diagnostics
            return
        if reserved_refusal(unit, root, case.files):
            return
        assert isinstance(unit, RenderedUnit), unit.diagnostics
        check_unit(unit, root, case.files, case.tokens, case.weak, expected)
        # an edit of literal text only: re-lexed, literal strings swapped, no recompile
        for name, text in case.edited.items():
            overlays[str(root / name)] = text
        t2 = load(root / ROOT, cfg, case.edited[ROOT])
        unit2 = renderer.render(t2, s, t2.variant(s, None))
        assert not reserved_refusal(unit2, root, case.edited)
        assert isinstance(unit2, RenderedUnit), unit2.diagnostics
        check_unit(unit2, root, case.edited, case.edited_tokens, case.edited_weak,
                   plain_render(case.edited))
