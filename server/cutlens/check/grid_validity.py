"""A grid's invalid variants: one unit per build through :mod:`cutlens.check.validity`, each
invalid build blamed on the variant keys that made it so, on their lines.

A key is to blame for an invalid build when a valid build differs from it in that key alone
(``schedule = pingpong`` with ``scheduler = streamk``: cooperative stream-K and pingpong
persistent both compile). With no such neighbour (a grid too sparse to tell), the keys whose
names the failing template line uses. Variants that differ only in runtime keys share their
build's verdict. ``check``, ``bench``, ``variants --validity`` and the editor read it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cutlens.check.validity import Outcome, Pass, check_units
from cutlens.diagnostics import Diagnostic
from cutlens.nvcc.options import compile_options
from cutlens.render.renderer import RenderedUnit, Renderer, RenderFailure
from cutlens.template.model import Sample, Template, Variant
from cutlens.template.selection import Selection

CODE = "invalid-variant"


@dataclass
class VariantValidity:
    """One variant's verdict: ``valid`` None when the front end could not tell."""

    sample: str
    variant: Variant
    valid: bool | None
    reason: str = ""
    file: str = ""
    line: int = 0
    keys: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"sample": self.sample, **self.variant.to_json(),
                               "valid": self.valid}
        if self.valid is not True:
            out.update(reason=self.reason, file=self.file, line=self.line, keys=list(self.keys))
        return out


@dataclass
class GridValidity:
    """Every selected variant's verdict, and what finding them cost."""

    template: Template
    rows: list[VariantValidity] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    stats: Pass = field(default_factory=Pass)

    @property
    def invalid(self) -> list[VariantValidity]:
        return [r for r in self.rows if r.valid is False]

    def is_invalid(self, sample: Sample, variant: Variant) -> bool:
        return any(r.valid is False and r.sample == sample.name and r.variant is variant
                   for r in self.rows)

    def diagnostics(self) -> list[Diagnostic]:
        """A summary warning on the grid's line, and one on each blamed key's line."""
        bad = self.invalid
        if not bad:
            return []
        t = self.template
        groups: dict[tuple[str, int, str], list[VariantValidity]] = {}
        for r in bad:
            groups.setdefault((r.file, r.line, _cause(r)), []).append(r)
        out = []
        for (file, line, cause), rows in groups.items():
            names = ", ".join(dict.fromkeys(r.variant.build_name or r.variant.name
                                            for r in rows))
            out.append(Diagnostic(file=file, line=line, severity="warning", source="cutlens",
                                  code=CODE, message=f"{len(rows)} variant(s) cannot compile "
                                  f"with {cause}: {rows[0].reason} (builds: {names})"))
        file, line = t.setting_line("variants")
        parts = [f"{len(rows)} with {cause}" for (_, _, cause), rows in groups.items()]
        out.append(Diagnostic(file=file, line=line, severity="warning", source="cutlens",
                              code=CODE, message=f"{len(bad)} of {len(self.rows)} variants "
                              f"cannot compile: {'; '.join(parts)}"))
        return out


def _cause(r: VariantValidity) -> str:
    if not r.keys:
        return "this template line"
    return " and ".join(f"{k} = {_text(r.variant.values.get(k))}" for k in r.keys)


def _text(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


def grid_validity(template: Template, renderer: Renderer, selection: Selection | None,
                  cache_dir: Path, jobs: int = 1, chunk: int | None = None,
                  options_of: Callable[[RenderedUnit], Any] | None = None) -> GridValidity:
    """Render one unit per (sample, build), find each build's verdict, give it to the
    build's variants and blame the keys."""
    pairs = (selection or Selection()).pairs(template)
    gv = GridValidity(template)
    first: dict[tuple[str, str], RenderedUnit | RenderFailure] = {}
    for s, v in pairs:
        k = (s.name, v.build_name or f"#{v.index}")
        if k not in first:
            first[k] = renderer.render(template, s, v)
    units = [u for u in first.values() if isinstance(u, RenderedUnit)]
    outcomes, gv.stats = check_units(
        units, options_of or (lambda u: compile_options(template, u)), cache_dir, jobs, chunk)
    gv.outcomes = outcomes
    by_build = {(o.unit.sample.name, o.unit.variant.build_name or f"#{o.unit.variant.index}"): o
                for o in outcomes}
    blamed = _blame(template, outcomes)
    for s, v in pairs:
        o = by_build.get((s.name, v.build_name or f"#{v.index}"))
        if o is None:  # it did not render: the Jinja tier says why
            gv.rows.append(VariantValidity(s.name, v, None, "the variant does not render"))
            continue
        row = VariantValidity(s.name, v, o.verdict.valid)
        if o.verdict.valid is not True:
            row.reason = o.reason
            row.keys, row.file, row.line = blamed.get(id(o), ((), str(template.path), 0))
        gv.rows.append(row)
    return gv


def _blame(t: Template, outcomes: list[Outcome]) -> dict[int, tuple[tuple[str, ...], str, int]]:
    """Each invalid outcome's keys and the line of the first."""
    def values(o: Outcome) -> dict[str, str]:
        return {k: json.dumps(v, sort_keys=True) for k, v in o.unit.variant.build_values.items()}

    valid = {(o.unit.sample.name, tuple(sorted(values(o).items())))
             for o in outcomes if o.verdict.valid}
    out: dict[int, tuple[tuple[str, ...], str, int]] = {}
    for o in outcomes:
        if o.verdict.valid is not False:
            continue
        mine = values(o)
        keys = [k for k in mine if _has_valid_neighbour(o.unit.sample.name, mine, k, valid)]
        if not keys:
            keys = _named_on_error_line(o, mine)
        if keys:
            file, line = t.setting_line("variants", keys[0])
        else:
            d = next((d for d in o.diagnostics if d.severity == "error"), None)
            file, line = (d.file, d.line) if d else t.setting_line("variants")
        out[id(o)] = (tuple(keys), file, line)
    return out


def _has_valid_neighbour(sample: str, mine: dict[str, str], key: str,
                         valid: set[tuple[str, tuple[tuple[str, str], ...]]]) -> bool:
    for s, other in valid:
        if s != sample:
            continue
        theirs = dict(other)
        if theirs.keys() == mine.keys() and theirs[key] != mine[key] and all(
                theirs[k] == mine[k] for k in mine if k != key):
            return True
    return False


def _named_on_error_line(o: Outcome, mine: dict[str, str]) -> list[str]:
    """The keys the template line of the first error names."""
    d = next((d for d in o.diagnostics if d.severity == "error"), None)
    if d is None or not d.file or not d.line:
        return []
    try:
        text = Path(d.file).read_text().splitlines()[d.line - 1]
    except (OSError, IndexError):
        return []
    return [k for k in mine if re.search(rf"\b{re.escape(k)}\b", text)]
