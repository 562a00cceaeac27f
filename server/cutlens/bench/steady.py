"""Steady-state measurement: what a sweep must do so that its figure is the one a sustained
``triton.testing.do_bench`` run reads on the same GPU.

Why a sweep's figures read low before (issue 22, H100): a build is timed right after nvcc
finished, on a GPU that sat idle through the compile. Boost clocks are highest then; a
long GEMM at 8192³ pulls the card into its power limit within a few hundred milliseconds
and the SM clock drops (1980 -> ~1600 MHz), so a 25 ms warm-up plus 100 ms of timed calls
measures the boost, not the state that every later call (and do_bench run in a loop, or a
model) sees. The CUTLASS GEMM measurement guide asks for warm-up until the clocks are
steady and for recording them; Nsight Python marks a measurement stable when its relative
spread is below 2 %. Here:

* :func:`settle` runs the call (each after its L2 flush, as timed) in windows of
  ``settle_window_ms`` for at least ``settle_min_ms`` (a power limit engages within a few
  hundred milliseconds of a heavy kernel's start: two early windows agree *before* the
  drop), then until the last window's per-call time agrees within ``settle_pct`` with the
  window half-way through (no drift over the second half), at most ``settle_max_ms``;
* :func:`measure` settles, times (:func:`cutlens.bench.timing.bench`) and, while the spread
  is above ``stable_pct``, settles and times again (``remeasure`` more times), keeping the
  timing of lowest spread; ``stable`` says whether that one is within the threshold.

Device-neutral (a :class:`~cutlens.bench.timing.Clock`); no torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cutlens.bench.protocol import TimingConfig
from cutlens.bench.timing import Clock, Timing, bench


@dataclass
class Settled:
    """What :func:`settle` did: milliseconds spent, per-call time of each window, and
    whether two windows agreed before the limit."""

    ms: float
    windows: list[float]
    steady: bool


def agree(a: float, b: float, pct: float) -> bool:
    """``a`` and ``b`` differ by at most ``pct`` percent of the smaller."""
    lo = min(a, b)
    return lo > 0 and 100.0 * abs(a - b) / lo <= pct


def settle(fn: Callable[[], None], clock: Clock, cfg: TimingConfig,
           flush: Callable[[], None] | None = None) -> Settled:
    """Run ``fn`` in windows until its per-call time is steady (see the module)."""
    flush = flush if cfg.flush_l2 else None
    windows: list[float] = []
    spent = 0.0
    calls = 1
    while True:
        clock.reserve(2)
        start = clock.mark()
        for _ in range(calls):
            if flush is not None:
                flush()
            fn()
        end = clock.mark()
        clock.sync()
        took = clock.elapsed_ms(start, end)
        spent += took
        per_call = took / calls
        windows.append(per_call)
        steady = (len(windows) >= 2 and spent >= max(cfg.warmup_ms, cfg.settle_min_ms)
                  and agree(windows[-1], windows[len(windows) // 2], cfg.settle_pct))
        if steady or spent >= cfg.settle_max_ms:
            return Settled(ms=spent, windows=windows, steady=steady)
        calls = max(1, min(100_000, int(cfg.settle_window_ms / max(per_call, 1e-6))))


@dataclass
class Measured:
    """A timing with its steadiness: ``stable`` None where not judged."""

    timing: Timing
    stable: bool | None
    attempts: int
    settle_ms: float
    state: dict[str, Any] | None = None


def measure(fn: Callable[[], None], clock: Clock, cfg: TimingConfig,
            flush: Callable[[], None] | None = None, *, steady: bool = True,
            probe: Callable[[], dict[str, Any] | None] | None = None) -> Measured:
    """Settle (when ``steady``), time as do_bench does, and re-measure an unstable timing.
    ``probe`` reads the device's state while the timed calls run (NVML); ``steady=False``
    (the CPU) times once and judges nothing."""
    if not steady:
        return Measured(bench(fn, clock, cfg, flush), None, 1, 0.0)
    best: Measured | None = None
    settled = 0.0
    state: list[dict[str, Any] | None] = []

    def read() -> None:
        state.append(probe() if probe is not None else None)

    for attempt in range(1, max(0, cfg.remeasure) + 2):
        settled += settle(fn, clock, cfg, flush).ms
        timing = bench(fn, clock, cfg, flush, probe=read if probe is not None else None)
        m = Measured(timing, timing.spread_pct <= cfg.stable_pct, attempt, settled,
                     state[-1] if state else None)
        if best is None or timing.spread_pct < best.timing.spread_pct:
            best = m
        if m.stable:
            best = m
            break
    assert best is not None
    best.attempts = attempt
    best.settle_ms = settled
    return best
