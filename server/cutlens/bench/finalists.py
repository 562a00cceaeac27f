"""Honest winners: after a sweep, the finalists of each sample (its ``timing.finalists``
best rows by :mod:`cutlens.bench.best`) and the reference are timed again in interleaved
rounds (one ``rounds`` request per sample: each round times every one once, the order
rotating), so that they are compared in one GPU state rather than minutes apart.

Per finalist: ``ms`` the median over rounds, ``ms_interval`` a distribution-free interval
of that median (order statistics, :func:`median_interval`), ``vs_reference`` the median of
the per-round ratios ``reference ms / finalist ms`` (above 1: faster than the reference)
with its ``interval``; ``tie`` when that interval includes 1.0. The finalists' rows and the
reference are emitted again with the round's figures (the sweep's kept as ``sweep_ms``),
so the store, the lenses and the report show them; the report's ``finalists`` lists the
entries per sample, fastest first. Torch-free.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cutlens.bench.best import ranked
from cutlens.bench.protocol import TimingConfig, next_id

log = logging.getLogger(__name__)

#: Confidence of the intervals (of a median over rounds).
CONFIDENCE = 0.9
REFERENCE = "reference"


def median_interval(values: Sequence[float], confidence: float = CONFIDENCE
                    ) -> tuple[float, float]:
    """An interval holding the population median with at least ``confidence`` (order
    statistics: ``[x_(k), x_(n-1-k)]`` for the largest such k; ``[min, max]`` when n is
    small)."""
    xs = sorted(values)
    n = len(xs)
    if n == 0:
        raise ValueError("no values")
    k = 0
    while k + 1 < n - 1 - (k + 1):
        outside = 2 * sum(math.comb(n, i) for i in range(k + 2)) / 2 ** n
        if 1 - outside < confidence:
            break
        k += 1
    return xs[k], xs[n - 1 - k]


def pick(rows: Sequence[Mapping[str, Any]], k: int) -> dict[str, list[Mapping[str, Any]]]:
    """The ``k`` best rows of each sample (fastest first), by the best-row rule."""
    out: dict[str, list[Mapping[str, Any]]] = {}
    for r in ranked(rows):
        group = out.setdefault(str(r.get("sample") or ""), [])
        if len(group) < k:
            group.append(r)
    return out


def rounds_request(candidates: list[dict[str, Any]], reference: dict[str, Any] | None,
                   timing: TimingConfig, *, seed: int = 0, **context: Any) -> dict[str, Any]:
    """A ``rounds`` request (see :mod:`cutlens.bench.protocol`)."""
    n = max(1, timing.rounds)
    per = 3 * (timing.settle_max_ms + timing.warmup_ms + timing.rep_ms) / 1000
    return {"op": "rounds", "id": next_id(), "candidates": candidates,
            "reference": reference, "timing": timing.to_json(), "rounds": n, "seed": seed,
            "timeout_s": 60 + n * (len(candidates) + 1) * per, **context}


def entries(per_round: Mapping[str, Sequence[float]]) -> list[dict[str, Any]]:
    """Finalist entries from the rounds' times (the reference under :data:`REFERENCE`),
    fastest first."""
    ref = list(per_round.get(REFERENCE) or [])
    out = []
    for name, times in per_round.items():
        if name == REFERENCE or not times:
            continue
        e: dict[str, Any] = {"variant_name": name, "ms": statistics.median(times),
                             "ms_interval": list(median_interval(times)),
                             "rounds": len(times), "vs_reference": None, "interval": None,
                             "tie": None}
        ratios = [r / t for r, t in zip(ref, times, strict=False) if r and t]
        if ratios:
            lo, hi = median_interval(ratios)
            e.update(vs_reference=statistics.median(ratios), interval=[lo, hi],
                     tie=lo <= 1.0 <= hi)
        out.append(e)
    out.sort(key=lambda e: e["ms"])
    return out


def updated(row: Mapping[str, Any], ms: float, extra: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` with the round's latency (throughputs rescaled, the sweep's kept)."""
    new = dict(row)
    old = row.get("ms")
    new.update(ms=ms, sweep_ms=old, **extra)
    for key in ("tflops", "gbps"):
        if row.get(key) and old:
            new[key] = row[key] * old / ms
    return new


async def final_round(run: Callable[[dict[str, Any]], Any], rows: Sequence[Mapping[str, Any]],
                      requests: Mapping[tuple[str, str], Mapping[str, Any]],
                      baselines: Mapping[str, Mapping[str, Any]],
                      base_rows: Mapping[str, Mapping[str, Any]], timing: TimingConfig,
                      emit: Callable[[dict[str, Any]], None]) -> dict[str, list[dict[str, Any]]]:
    """Time each sample's finalists and reference in rounds (``run``: the runner's
    ``run``); emit their updated rows; the report's ``finalists``. ``requests``: the run
    request of each (sample, variant_name); ``baselines``: the baseline request and
    ``base_rows`` the sweep's reference row of each sample."""
    out: dict[str, list[dict[str, Any]]] = {}
    for sample, picks in pick(rows, max(0, timing.finalists)).items():
        cands = [{"name": r["variant_name"], "signature": req["signature"],
                  "bench": req["bench"]}
                 for r in picks if (req := requests.get((sample, r["variant_name"])))]
        if not cands:
            continue
        b = baselines.get(sample)
        ref = {"signature": b["signature"], "bench": b["bench"]} if b else None
        resp = await run(rounds_request(cands, ref, timing, sample=sample))
        if resp.get("error"):
            log.warning("finalists of %s: %s (the sweep's figures stand)", sample,
                        resp["error"])
            continue
        found = entries(resp.get("per_round") or {})
        states = resp.get("gpu_state") or {}
        by_name = {r["variant_name"]: r for r in picks}
        for e in found:
            info = {k: e[k] for k in ("ms_interval", "rounds", "vs_reference", "interval",
                                      "tie")}
            emit(updated(by_name[e["variant_name"]], e["ms"],
                         {"finalist": info, "gpu_state": states.get(e["variant_name"])}))
        ref_times = (resp.get("per_round") or {}).get(REFERENCE)
        if ref_times and sample in base_rows:
            emit(updated(base_rows[sample], statistics.median(ref_times),
                         {"finalist": {"ms_interval": list(median_interval(ref_times)),
                                       "rounds": len(ref_times)},
                          "gpu_state": states.get(REFERENCE)}))
        out[sample] = found
    return out
