"""Timing loop after Triton's ``do_bench``: estimate, warm up, flush L2, one timer pair a call.

The loop is device-neutral: a :class:`Clock` supplies the timestamps (CUDA events on the
current stream, or ``time.perf_counter_ns`` on the CPU) and ``flush`` evicts the cache. The
worker uses the same loop for both devices; only the clock and the flush buffer differ.
This module imports torch only inside :class:`CudaClock` (given the module).
"""

from __future__ import annotations

import math
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
    """(warm-up calls, timed calls) for a call that takes about ``estimate_ms``."""
    est = max(estimate_ms, 1e-6)
    hi = max(1, cfg.max_iters)
    lo = max(1, min(cfg.min_iters, hi))
    warmup = max(1, min(hi, math.ceil(cfg.warmup_ms / est)))
    timed = max(lo, min(hi, math.ceil(cfg.rep_ms / est)))
    return warmup, timed


def bench(fn: Callable[[], None], clock: Clock, cfg: TimingConfig,
          flush: Callable[[], None] | None = None) -> Timing:
    """Time ``fn``: estimate from a few flushed calls, warm up, then time each call between
    two clock marks, flushing before each when ``cfg.flush_l2`` (the flush is outside the
    marks). ``fn`` must raise on failure."""
    flush = flush if (cfg.flush_l2 and flush is not None) else None

    def timed_calls(n: int) -> list[float]:
        clock.reserve(2 * n)
        marks = []
        for _ in range(n):
            if flush is not None:
                flush()
            start = clock.mark()
            fn()
            marks.append((start, clock.mark()))
        clock.sync()
        return [clock.elapsed_ms(a, b) for a, b in marks]

    fn()
    clock.sync()
    estimate = statistics.median(timed_calls(ESTIMATE_CALLS))
    warmup, n = iteration_counts(estimate, cfg)
    for _ in range(warmup):
        fn()
    clock.sync()
    return summarize(timed_calls(n))
