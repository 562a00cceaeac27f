"""The one rule for "the best row": every table, lens, hover, results view and report asks
here. Torch-free.

A row is *ok* when it has a time, no error and was not found wrong (``verified`` is not
False). It *can be best* when it is ok and not unstable (``stable`` is not False: a timing
whose spread stayed above the threshold is never crowned, however fast its median). The
best row of a sample is its fastest row that can be best; the first one wins a tie.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

_Row = TypeVar("_Row", bound=Mapping[str, Any])


def is_ok(row: Mapping[str, Any]) -> bool:
    """Timed, no error, and not found wrong."""
    return row.get("ms") is not None and not row.get("error") and row.get("verified") is not False


def can_be_best(row: Mapping[str, Any]) -> bool:
    """Ok and not unstable."""
    return is_ok(row) and row.get("stable") is not False


def best_row(rows: Iterable[_Row]) -> _Row | None:
    """The best of one sample's ``rows``, or None. Where some were finalists (timed again in
    interleaved rounds: a ``finalist`` key), only they compete: their figures come from one
    GPU state, the others' from the sweep. The first of equal rows wins."""
    ok = [r for r in rows if can_be_best(r)]
    pool = [r for r in ok if r.get("finalist")] or ok
    return min(pool, key=lambda r: r["ms"]) if pool else None


def best_rows(rows: Iterable[_Row]) -> dict[str, _Row]:
    """The best row of each sample (keyed by sample name; ``""`` for none)."""
    groups: dict[str, list[_Row]] = {}
    for r in rows:
        groups.setdefault(str(r.get("sample") or ""), []).append(r)
    return {s: b for s, g in groups.items() if (b := best_row(g)) is not None}


def ranked(rows: Iterable[_Row]) -> list[_Row]:
    """Rows that can be best, fastest first (the finalists are the first few per sample)."""
    return sorted((r for r in rows if can_be_best(r)), key=lambda r: r["ms"])
