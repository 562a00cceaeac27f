"""Which samples × variants a command covers: one type and one syntax for ``render``,
``check``, ``bench``, ``variants``, ``watch`` and the language server's commands, applied
before anything is rendered.

A selection is a list of items for the samples and one for the variants; their union is
selected, in the template's order. An item is

* ``all`` — every one (an empty list means the same);
* ``first`` or ``first:K`` — the first (K) in the template's order (variants: per sample);
* ``N`` — the variant with index N (as ``cutlens variants`` lists it: ``[N]``), the N-th
  sample (from 0);
* ``captured`` — the samples a template takes from a samples file (``samples_from``);
* a name — a sample's name, a variant's name or its slug (``128x256x64-cooperative``);
* a glob — ``*pingpong*``: every name it matches.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cutlens.template.model import Sample, Template, Variant

_FIRST_RE = re.compile(r"^first(?::(\d+))?$")

SYNTAX = ("all | first | first:K | N (index) | NAME | GLOB (e.g. '*pingpong*'); repeat or "
          "list several")


def _items(spec: str | Sequence[str] | None) -> list[str]:
    if spec is None:
        return []
    if isinstance(spec, str):
        return [spec]
    return [str(s) for s in spec]


def _is_glob(item: str) -> bool:
    return any(c in item for c in "*?[")


def pick(items: Sequence[str], things: Sequence[Any], names: Callable[[Any], tuple[str, ...]],
         index: Callable[[int, Any], int]) -> tuple[list[Any], list[str]]:
    """The ``things`` the items select (in order) and the items that matched nothing."""
    if not items or "all" in items:
        return list(things), []
    keep: set[int] = set()
    unmatched = []
    for item in items:
        m = _FIRST_RE.match(item)
        if m:
            hit = set(range(min(int(m.group(1) or 1), len(things))))
        elif _is_glob(item):
            hit = {i for i, t in enumerate(things)
                   if any(fnmatch.fnmatchcase(n, item) for n in names(t))}
        else:
            hit = {i for i, t in enumerate(things) if item in names(t)
                   or (item.isdigit() and index(i, t) == int(item))}
        if not hit:
            unmatched.append(item)
        keep |= hit
    return [t for i, t in enumerate(things) if i in keep], unmatched


@dataclass
class Selection:
    """Samples × variants to cover (``[]``: all)."""

    samples: list[str] | str = field(default_factory=list)
    variants: list[str] | str = field(default_factory=list)

    def __post_init__(self) -> None:
        self.samples = _items(self.samples)  # "first" is one item, not five letters
        self.variants = _items(self.variants)

    @property
    def everything(self) -> bool:
        return not self.samples and not self.variants

    def pick_samples(self, template: Template) -> tuple[list[Sample], list[str]]:
        return pick(self.samples, template.sample_list,
                    lambda s: (s.name, *((s.origin,) if s.origin else ())),
                    lambda i, s: i)

    def pick_variants(self, template: Template,
                      sample: Sample) -> tuple[list[Variant], list[str]]:
        return pick(self.variants, template.variants(sample),
                    lambda v: (v.name, v.slug), lambda i, v: v.index)

    def pairs(self, template: Template) -> list[tuple[Sample, Variant]]:
        """The selected (sample, variant) pairs of ``template``, in its order."""
        out = []
        for s in self.pick_samples(template)[0]:
            out += [(s, v) for v in self.pick_variants(template, s)[0]]
        return out

    def unmatched(self, template: Template) -> list[str]:
        """Items that select nothing in ``template`` (for a clear usage error)."""
        samples, missing = self.pick_samples(template)
        seen: set[str] = set(missing)
        var_missing: list[str] | None = None
        for s in samples:
            _, m = self.pick_variants(template, s)
            var_missing = m if var_missing is None else [x for x in var_missing if x in m]
        return [*missing, *[m for m in (var_missing or []) if m not in seen]]

    def describe(self) -> str:
        return (f"samples {', '.join(self.samples) or 'all'}; "
                f"variants {', '.join(self.variants) or 'all'}")
