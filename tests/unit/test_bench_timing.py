"""The do_bench-style timing loop with a fake clock (no torch needed)."""

from __future__ import annotations

import pytest

from cutlens.bench.protocol import TimingConfig
from cutlens.bench.timing import ESTIMATE_CALLS, CpuClock, bench, iteration_counts, summarize


class FakeClock:
    """Each call of the timed function advances time by ``cost`` ms; flushes by 100 ms."""

    def __init__(self) -> None:
        self.now = 0.0
        self.syncs = 0
        self.reserved = 0

    def reserve(self, n: int) -> None:
        self.reserved += n

    def mark(self) -> float:
        return self.now

    def elapsed_ms(self, start: float, end: float) -> float:
        return end - start

    def sync(self) -> None:
        self.syncs += 1


def test_summarize():
    t = summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert t.ms == 3.0 and t.ms_min == 1.0 and t.ms_max == 100.0 and t.iters == 5
    # IQR (inclusive quartiles 2.0 and 4.0) over the median: the outlier does not count
    assert t.spread_pct == pytest.approx(100 * (4.0 - 2.0) / 3.0)
    assert summarize([2.0]).spread_pct == 0.0
    with pytest.raises(ValueError):
        summarize([])


def test_iteration_counts():
    cfg = TimingConfig(warmup_ms=25, rep_ms=100, min_iters=10, max_iters=1000)
    assert iteration_counts(1.0, cfg) == (25, 100)
    assert iteration_counts(0.001, cfg) == (1000, 1000)       # bounded above
    assert iteration_counts(50.0, cfg) == (1, 10)              # at least min_iters
    assert iteration_counts(0.0, cfg) == (1000, 1000)


def test_bench_follows_do_bench():
    """Each timed call after a flush (outside its marks); the estimate over 5 flushed calls
    between one pair of marks, flushes included, as triton.testing.do_bench estimates."""
    clock = FakeClock()
    events: list[str] = []

    def fn() -> None:
        events.append("call")
        clock.now += 5.0

    def flush() -> None:
        events.append("flush")
        clock.now += 5.0  # in the estimate, not in the timed calls' marks

    cfg = TimingConfig(warmup_ms=25, rep_ms=100, min_iters=3, max_iters=100)
    t = bench(fn, clock, cfg, flush)
    assert t.ms == 5.0 and t.ms_min == 5.0 and t.spread_pct == 0.0
    assert t.iters == 10  # int(100 ms / (5 ms call + 5 ms flush)), as do_bench counts
    # 1 first call, ESTIMATE_CALLS flushed, 2 warm-up (int(25 / 10)) unflushed, 10 timed
    assert events.count("call") == 1 + ESTIMATE_CALLS + 2 + 10
    assert events.count("flush") == ESTIMATE_CALLS + 10
    assert events[1:1 + 2 * ESTIMATE_CALLS] == ["flush", "call"] * ESTIMATE_CALLS
    assert events[-22:] == ["call", "call"] + ["flush", "call"] * 10
    assert clock.reserved == 2 + 2 * 10  # marks prepared before the warm-up
    assert clock.syncs == 3  # after the first call, the estimate, the timed calls: no more


def test_bench_without_flush():
    clock = FakeClock()
    flushes = []

    def fn() -> None:
        clock.now += 1.0

    t = bench(fn, clock, TimingConfig(flush_l2=False, rep_ms=20, warmup_ms=1, min_iters=1),
              lambda: flushes.append(1))
    assert not flushes and t.iters == 20


def test_bench_propagates_failure():
    def fn() -> None:
        raise RuntimeError("returned 3")

    with pytest.raises(RuntimeError, match="returned 3"):
        bench(fn, FakeClock(), TimingConfig())


def test_cpu_clock_times_real_work():
    import time

    t = bench(lambda: time.sleep(0.002), CpuClock(),
              TimingConfig(warmup_ms=1, rep_ms=20, min_iters=3, max_iters=10), None)
    # a sleep of 2 ms lasts at least that long: the clock times the call. (No upper bound:
    # how much longer it takes is up to the machine's load.)
    assert t.ms > 1.5


def test_timing_config_from_json_ignores_unknown():
    cfg = TimingConfig.from_json({"rep_ms": 7, "bogus": 1})
    assert cfg.rep_ms == 7 and cfg.to_json()["warmup_ms"] == 25.0
