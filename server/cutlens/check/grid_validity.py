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
import logging
import os
import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cutlens.check.validity import Outcome, Pass, check_units
from cutlens.diagnostics import Diagnostic, Related
from cutlens.nvcc.options import compile_options
from cutlens.nvcc.toolchain import CompileOptions
from cutlens.render.renderer import RenderedUnit, Renderer, RenderFailure
from cutlens.template.model import Sample, Template, Variant
from cutlens.template.selection import Selection

CODE = "invalid-variant"

log = logging.getLogger("cutlens.validity")


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
        """A warning on the line of the first key to blame (the others' lines related) for
        each kind of failure, and a summary on the grid's line."""
        bad = self.invalid
        if not bad:
            return []
        t = self.template
        groups: dict[tuple[str, int, tuple[str, ...], str], list[VariantValidity]] = {}
        for r in bad:
            groups.setdefault((r.file, r.line, r.keys, r.reason), []).append(r)
        out = []
        for (file, line, keys, reason), rows in groups.items():
            if keys:
                points = dict.fromkeys(
                    ", ".join(_text(r.variant.values.get(k)) for k in keys) for r in rows)
                what = (f"with {keys[0]} = {'; '.join(points)}" if len(keys) == 1 else
                        f"with ({', '.join(keys)}) = {'; '.join(f'({p})' for p in points)}")
            else:
                continue  # no key to blame: the nvcc tier reports the error on its line
            related = [Related(*t.setting_line("variants", k), f"{k}: to blame too")
                       for k in keys[1:]]
            out.append(Diagnostic(file=file, line=line, severity="warning", source="cutlens",
                                  code=CODE, related=related,
                                  message=f"{len(rows)} variant(s) cannot compile {what}: "
                                  f"{reason}"))
        file, line = t.setting_line("variants")
        parts = [f"{len(rows)} with {', '.join(keys) or 'an error on line ' + str(line_)}"
                 f" ({reason})" for (_, line_, keys, reason), rows in groups.items()]
        out.append(Diagnostic(file=file, line=line, severity="warning", source="cutlens",
                              code=CODE, message=f"{len(bad)} of {len(self.rows)} variants "
                              f"cannot compile: {'; '.join(parts)}"))
        return out


def _text(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


def grid_validity(template: Template, renderer: Renderer, selection: Selection | None,
                  cache_dir: Path, jobs: int = 1, chunk: int | None = None) -> GridValidity:
    """Render one unit per (sample, build) of the selection and judge them."""
    pairs = (selection or Selection()).pairs(template)
    first: dict[tuple[str, str], RenderedUnit | RenderFailure] = {}
    for s, v in pairs:
        k = (s.name, _build(v))
        if k not in first:
            first[k] = renderer.render(template, s, v)
    units = [u for u in first.values() if isinstance(u, RenderedUnit)]
    return judge(template, pairs, units, cache_dir, jobs, chunk)


def judge(template: Template, pairs: Sequence[tuple[Sample, Variant]],
          units: Sequence[RenderedUnit], cache_dir: Path, jobs: int = 1,
          chunk: int | None = None,
          options_of: Callable[[RenderedUnit], CompileOptions] | None = None) -> GridValidity:
    """The verdict of each pair from the rendered ``units`` (one per build is enough: the
    variants of a build share its verdict), with the keys to blame."""
    gv = GridValidity(template)
    one: dict[tuple[str, str], RenderedUnit] = {}
    for u in units:
        one.setdefault((u.sample.name, _build(u.variant)), u)
    outcomes, gv.stats = check_units(
        list(one.values()), options_of or (lambda u: compile_options(template, u)),
        cache_dir, jobs, chunk)
    gv.outcomes = outcomes
    by_build = {(o.unit.sample.name, _build(o.unit.variant)): o for o in outcomes}
    blamed = _blame(template, outcomes)
    for s, v in pairs:
        o = by_build.get((s.name, _build(v)))
        if o is None:  # it did not render: the Jinja tier says why
            gv.rows.append(VariantValidity(s.name, v, None, "the variant does not render"))
            continue
        row = VariantValidity(s.name, v, o.verdict.valid)
        if o.verdict.valid is not True:
            row.reason = o.reason
            row.keys, row.file, row.line = blamed.get(id(o), ((), str(template.path), 0))
        gv.rows.append(row)
    return gv


def jobs_of(template: Template) -> int:
    """Front-end passes side by side: the project's ``jobs``, else one per core."""
    return template.config.jobs if template.config.jobs > 0 else (os.cpu_count() or 1)


def builds(units: Sequence[RenderedUnit]) -> int:
    """How many builds the units make (the validity pass is worth it from two)."""
    return len({(u.sample.name, _build(u.variant)) for u in units})


def _build(v: Variant) -> str:
    return v.build_name or f"#{v.index}"


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


def grid_warnings(template: Template, pairs: Sequence[tuple[Sample, Variant]],
                  units: Sequence[RenderedUnit], cache_dir: Path,
                  jobs: int = 1) -> tuple[list[Diagnostic], GridValidity | None]:
    """What ``check`` and the editor add: the key-line and grid-line warnings of a grid whose
    builds are partly invalid through its keys (none when every build fails, or no key is
    to blame: that is the template's or a sample's own error, which the nvcc tier reports),
    and the verdicts behind them. Nothing when the
    units make one build or the front end cannot run."""
    if builds(units) < 2:
        return [], None
    try:
        gv = judge(template, pairs, units, cache_dir, jobs)
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:  # no nvcc, no cudafe++
        log.info("validity pass skipped for %s: %s", template.path, e)
        return [], None
    if not any(r.valid for r in gv.rows) or not any(r.keys for r in gv.invalid):
        return [], gv  # nothing a key decides (a sample's own error): the nvcc tier's
    return gv.diagnostics(), gv
