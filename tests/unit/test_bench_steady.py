"""Steady-state timing, stability and the GPU state, with fake clocks and a recorded NVML
(no GPU, no timed assertion: every time here is simulated)."""

from __future__ import annotations

import sys
import types

import pytest

from cutlens.bench.gpu_state import GpuMonitor, throttle_names
from cutlens.bench.protocol import TimingConfig
from cutlens.bench.steady import agree, measure, settle


class RampClock:
    """A simulated GPU: the n-th call costs ``cost(n)`` ms (its clock ramps or throttles);
    marks read the simulated time."""

    def __init__(self, cost) -> None:
        self.cost = cost
        self.now = 0.0
        self.calls = 0

    def fn(self) -> None:
        self.now += self.cost(self.calls)
        self.calls += 1

    def reserve(self, n: int) -> None:
        pass

    def mark(self) -> float:
        return self.now

    def elapsed_ms(self, a: float, b: float) -> float:
        return b - a

    def sync(self) -> None:
        pass


CFG = TimingConfig(warmup_ms=25, rep_ms=100, flush_l2=False, settle_window_ms=50,
                   settle_min_ms=400, settle_pct=1.0, settle_max_ms=2000, stable_pct=3.0,
                   remeasure=2)


def test_agree():
    assert agree(1.0, 1.009, 1.0) and not agree(1.0, 1.02, 1.0) and not agree(0.0, 0.0, 1.0)


def test_settle_waits_out_a_power_limit():
    """An 8192³ GEMM on an H100 (issue 22): 1.42 ms while boosting, 1.62 ms once the card
    sits at its power limit (~200 ms in; early windows agree before the drop). Settling
    runs its minimum, then until the second half shows no drift: past the drop, so the
    timing that follows reads the sustained figure."""
    clock = RampClock(lambda n: 1.42 if n < 140 else 1.62)
    s = settle(clock.fn, clock, CFG)
    assert s.steady and s.ms >= CFG.settle_min_ms
    assert s.windows[1] == pytest.approx(1.42)  # two boost windows that agreed
    assert s.windows[-1] == pytest.approx(1.62)
    assert s.windows[len(s.windows) // 2] == pytest.approx(1.62)
    m = measure(clock.fn, clock, CFG)
    assert m.timing.ms == pytest.approx(1.62) and m.stable is True and m.attempts == 1


def test_without_settling_the_boost_is_measured():
    """The protocol before issue 22 (do_bench's 25 ms warm-up on an idle GPU) reads the
    boost clock's figure: 12 % low against the sustained one."""
    from cutlens.bench.timing import bench

    clock = RampClock(lambda n: 1.42 if n < 140 else 1.62)
    assert bench(clock.fn, clock, CFG).ms == pytest.approx(1.42)


def test_settle_gives_up_at_its_limit():
    clock = RampClock(lambda n: 1.0 + 0.05 * (n % 2) * (n // 10))  # never settles
    s = settle(clock.fn, clock, CFG)
    assert not s.steady and 2000 <= s.ms < 2200


def test_unstable_timings_are_measured_again_and_marked():
    """A timing whose spread stays above the threshold is re-measured ``remeasure`` times
    and comes back unstable (the lowest-spread attempt); one that calms down is stable."""
    noisy = RampClock(lambda n: 1.0 if n % 2 else 1.3)  # every other call 30 % slower
    m = measure(noisy.fn, noisy, CFG)
    assert m.stable is False and m.attempts == 3 and m.timing.spread_pct > CFG.stable_pct

    # noisy for the first ~700 ms of calls, steady after: a re-measurement is stable
    calming = RampClock(lambda n: (1.0 if n % 2 else 1.3) if n < 600 else 1.1)
    m = measure(calming.fn, calming, CFG)
    assert m.stable is True and m.attempts >= 2 and m.timing.ms == pytest.approx(1.1)


def test_cpu_measurement_is_one_timing_unjudged():
    clock = RampClock(lambda n: 1.0 if n % 2 else 1.3)
    m = measure(clock.fn, clock, CFG, steady=False)
    assert m.stable is None and m.attempts == 1 and m.settle_ms == 0.0


def test_probe_reads_the_state_while_the_timed_calls_run():
    clock = RampClock(lambda n: 1.0)
    seen: list[int] = []

    def probe() -> dict:
        seen.append(clock.calls)
        return {"sm_clock_mhz": 1755}

    m = measure(clock.fn, clock, CFG, probe=probe)
    assert m.state == {"sm_clock_mhz": 1755}
    assert len(seen) == 1 and seen[0] == clock.calls  # after the timed calls were issued


# ---- NVML --------------------------------------------------------------------------------
def test_throttle_names():
    assert throttle_names(0) == []
    assert throttle_names(0x4 | 0x20) == ["sw_power_cap", "sw_thermal"]
    assert throttle_names(0x1000) == ["0x1000"]


def fake_pynvml(recorded: dict) -> types.ModuleType:
    """A pynvml answering what an H100 answered under an 8192³ GEMM (recorded)."""
    m = types.ModuleType("pynvml")
    m.NVML_CLOCK_SM = 1
    m.NVML_TEMPERATURE_GPU = 0
    m.nvmlInit = lambda: None

    def by_uuid(u):
        if u != recorded["uuid"]:
            raise RuntimeError("NVML_ERROR_NOT_FOUND")
        return "h"
    m.nvmlDeviceGetHandleByUUID = by_uuid
    m.nvmlDeviceGetHandleByPciBusId = lambda b: (_ for _ in ()).throw(RuntimeError("no"))
    m.nvmlDeviceGetHandleByIndex = lambda i: "h"
    m.nvmlDeviceGetClockInfo = lambda h, kind: recorded["sm"]
    m.nvmlDeviceGetTemperature = lambda h, kind: recorded["temp"]
    m.nvmlDeviceGetPowerUsage = lambda h: recorded["power_mw"]
    m.nvmlDeviceGetCurrentClocksEventReasons = lambda h: recorded["reasons"]
    m.nvmlSystemGetDriverVersion = lambda: recorded["driver"]
    return m


def test_gpu_monitor_reads_nvml(monkeypatch):
    rec = {"uuid": "GPU-1234", "sm": 1755, "temp": 61, "power_mw": 688_215, "reasons": 0x4,
           "driver": b"580.82.07"}
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(rec))
    mon = GpuMonitor.open(uuid="GPU-1234", pci_bus_id="00000000:1B:00.0")
    assert mon is not None and mon.driver == "580.82.07"
    assert mon.read() == {"sm_clock_mhz": 1755, "temp_c": 61, "power_w": 688.2,
                          "throttle": ["sw_power_cap"]}
    # no match by UUID or bus id and no index: no monitor, no error
    assert GpuMonitor.open(uuid="GPU-other", pci_bus_id="x") is None


def test_gpu_monitor_without_nvml(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    assert GpuMonitor.open(index=0) is None
