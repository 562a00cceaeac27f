"""Timing loop of Triton's ``do_bench`` (triton 3.x ``triton.testing.do_bench`` with
``return_mode="median"``), step for step, so that a figure from ``cutlens bench`` is the
figure a user gets from ``do_bench`` for the same call:

1. one call, synchronize;
2. estimate the per-call time from ``ESTIMATE_CALLS`` calls, *each after an L2 flush*,
   between one pair of marks: the estimate includes the flush, as do_bench's does;
3. warm-up calls ``int(warmup_ms / estimate)`` and timed calls ``int(rep_ms / estimate)``
   (at least 1, and within ``min_iters`` / ``max_iters``);
4. the timed calls' marks are made before the warm-up (do_bench creates its events there);
5. warm-up calls without flushes, then, with no synchronization in between, the timed calls:
   flush, mark, call, mark;
6. one synchronization; the median of the per-call times (and their min, max, spread).

Before this module followed do_bench to the letter it estimated from the calls alone (the
flush between marks left out) and synchronized between warm-up and timed calls; with its
inputs drawn from U(-1, 1) rather than a normal distribution (:mod:`cutlens.bench.marshal`)
its medians read about 4 % below do_bench's on an H200 (issue 18).

The loop is device-neutral: a :class:`Clock` supplies the timestamps (CUDA events on the
current stream, or ``time.perf_counter_ns`` on the CPU) and ``flush`` evicts the cache. The
worker uses the same loop for both devices; only the clock and the flush buffer differ.
This module imports torch only inside :class:`CudaClock` (given the module).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cutlens.bench.protocol import TimingConfig

#: Calls used to estimate the per-call time before choosing the iteration counts.
ESTIMATE_CALLS = 5


class Clock(Protocol):
    """Timestamps for the timing loop."""

    def reserve(self, n: int) -> None:
        """Prepare ``n`` marks ahead, outside the timed region."""

    def mark(self) -> Any:
        """Record a timestamp after all work issued so far (asynchronously on a GPU)."""

    def elapsed_ms(self, start: Any, end: Any) -> float:
        """Milliseconds between two marks; valid after :meth:`sync`."""

    def sync(self) -> None:
        """Wait for all issued work."""


class CpuClock:
    """Host wall clock; work is synchronous, so :meth:`sync` does nothing."""

    def reserve(self, n: int) -> None:
        pass

    def mark(self) -> int:
        return time.perf_counter_ns()

    def elapsed_ms(self, start: int, end: int) -> float:
        return (end - start) / 1e6

    def sync(self) -> None:
        pass


class CudaClock:
    """CUDA events recorded on the current stream (``torch`` is passed in). Events are
    created ahead by :meth:`reserve`, so a mark costs only the record."""

    def __init__(self, torch: Any) -> None:
        self._torch = torch
        self._pool: list[Any] = []

    def reserve(self, n: int) -> None:
        Event = self._torch.cuda.Event
        self._pool.extend(Event(enable_timing=True) for _ in range(max(0, n - len(self._pool))))

    def mark(self) -> Any:
        ev = self._pool.pop() if self._pool else self._torch.cuda.Event(enable_timing=True)
        ev.record()
        return ev

    def elapsed_ms(self, start: Any, end: Any) -> float:
        return float(start.elapsed_time(end))

    def sync(self) -> None:
        self._torch.cuda.synchronize()


@dataclass
class Timing:
    """Statistics of the timed calls, in milliseconds."""

    ms: float
    ms_min: float
    ms_max: float
    spread_pct: float
    iters: int
    times: list[float]

    def to_json(self) -> dict[str, Any]:
        return {"ms": self.ms, "ms_min": self.ms_min, "ms_max": self.ms_max,
                "spread_pct": self.spread_pct, "iters": self.iters}


def summarize(times: list[float]) -> Timing:
    """Median, min, max and the interquartile spread (% of the median) of ``times``."""
    if not times:
        raise ValueError("no timed calls")
    med = statistics.median(times)
    if len(times) >= 2:
        q1, _, q3 = statistics.quantiles(times, n=4, method="inclusive")
    else:
        q1 = q3 = times[0]
    spread = 100.0 * (q3 - q1) / med if med > 0 else 0.0
    return Timing(ms=med, ms_min=min(times), ms_max=max(times), spread_pct=spread,
                  iters=len(times), times=list(times))


def iteration_counts(estimate_ms: float, cfg: TimingConfig) -> tuple[int, int]:
    """(warm-up calls, timed calls) for calls estimated at ``estimate_ms`` each (flush
    included): do_bench's ``int(warmup / estimate)`` and ``int(rep / estimate)``, at least
    1, the timed ones within ``min_iters`` / ``max_iters``."""
    est = max(estimate_ms, 1e-6)
    hi = max(1, cfg.max_iters)
    lo = max(1, min(cfg.min_iters, hi))
    warmup = max(1, min(hi, int(cfg.warmup_ms / est)))
    timed = max(lo, min(hi, int(cfg.rep_ms / est)))
    return warmup, timed


def bench(fn: Callable[[], None], clock: Clock, cfg: TimingConfig,
          flush: Callable[[], None] | None = None,
          probe: Callable[[], None] | None = None) -> Timing:
    """Time ``fn`` as ``triton.testing.do_bench`` does (see the module's docstring): the
    median of per-call times, each call after a flush when ``cfg.flush_l2`` (the flush
    outside the call's marks). ``fn`` must raise on failure. ``probe`` is called once the
    timed calls are issued, before the synchronization: while a GPU runs them (the device's
    clock, power and temperature are read there)."""
    flush = flush if (cfg.flush_l2 and flush is not None) else None

    fn()
    clock.sync()
    clock.reserve(2)
    start = clock.mark()
    for _ in range(ESTIMATE_CALLS):
        if flush is not None:
            flush()
        fn()
    end = clock.mark()
    clock.sync()
    estimate = clock.elapsed_ms(start, end) / ESTIMATE_CALLS
    warmup, n = iteration_counts(estimate, cfg)
    clock.reserve(2 * n)
    for _ in range(warmup):
        fn()
    marks = []
    for _ in range(n):
        if flush is not None:
            flush()
        a = clock.mark()
        fn()
        marks.append((a, clock.mark()))
    if probe is not None:
        probe()
    clock.sync()
    return summarize([clock.elapsed_ms(a, b) for a, b in marks])
