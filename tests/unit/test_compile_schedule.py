"""Compile scheduling (cutlens.nvcc.schedule and the pool): each distinct TU compiled once,
longest expected compile first, concurrency bounded by cores and by memory, compile time and
peak memory learned. No assertion depends on how long anything took: waits poll for states
(a process running, runs queued), and the estimates are set, not measured."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from cutlens.nvcc.pool import CompileJob, CompileOptions, Compiler, Mode
from cutlens.nvcc.schedule import (
    GB,
    KIND_DEFAULTS,
    Estimate,
    History,
    PeakSampler,
    Slots,
    memory_budget,
    parse_size,
    source_kind,
)
from test_compile import fake_nvcc

CUTLASS3 = '#include "cutlass/cutlass.h"\n#include "cute/tensor.hpp"\nint a;\n'
CUTLASS2 = '#include "cutlass/gemm/device/gemm.h"\nint b;\n'
CUDA = "#include <cuda_runtime.h>\n__global__ void k() {}\n"


async def until(cond, what: str, limit_s: float = 60.0) -> None:
    """Poll ``cond`` (a state, not a duration); fail after ``limit_s`` of no progress."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit_s
    while not cond():
        if loop.time() > end:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.02)


def test_source_kinds():
    assert source_kind(CUTLASS3) == "cutlass3"
    assert source_kind(CUTLASS2) == "cutlass2"
    assert source_kind(CUDA) == "cuda"
    assert source_kind('#include "cutlass/gemm/collective/collective_builder.hpp"') == \
        "cutlass3"


def test_estimates_from_kind_then_history(tmp_path):
    h = History(tmp_path / "schedule.json")
    full3 = h.estimate("gemm.jinja", Mode.FULL, CUTLASS3)
    assert full3 == Estimate(*KIND_DEFAULTS["cutlass3"])
    assert h.estimate("x", Mode.FULL, CUTLASS3).seconds > \
        h.estimate("x", Mode.FULL, CUTLASS2).seconds > h.estimate("x", Mode.FULL, CUDA).seconds
    assert h.estimate("x", Mode.QUICK, CUTLASS3).seconds < full3.seconds
    assert h.estimate("x", Mode.BUILD, CUTLASS3).peak_bytes <= KIND_DEFAULTS["cuda"][1]
    h.record("gemm.jinja", Mode.FULL, 40.0, 2 * GB)
    h.record("gemm.jinja", Mode.FULL, 50.0, 3 * GB)
    e = h.estimate("gemm.jinja", Mode.FULL, CUDA)  # measured beats the guess by kind
    assert e == Estimate(45.0, 3 * GB)
    assert h.estimate("gemm.jinja", Mode.QUICK, CUDA).seconds == pytest.approx(45.0 * 0.45)
    again = History(tmp_path / "schedule.json")  # kept on disk
    assert again.estimate("gemm.jinja", Mode.FULL, CUDA) == Estimate(45.0, 3 * GB)
    (tmp_path / "bad.json").write_text("{not json")
    assert History(tmp_path / "bad.json").get("gemm.jinja", Mode.FULL) is None


def test_memory_budget_sources(monkeypatch):
    assert parse_size("64G") == 64 * GB and parse_size("512M") == 512 << 20
    assert parse_size("100GB") == 100 * GB and parse_size("1000") == 1000
    with pytest.raises(ValueError, match="CUTLENS_COMPILE_MEMORY"):
        parse_size("lots")
    assert memory_budget(123) == 123
    monkeypatch.setenv("CUTLENS_COMPILE_MEMORY", "7G")
    assert memory_budget() == 7 * GB
    monkeypatch.delenv("CUTLENS_COMPILE_MEMORY")
    avail = memory_budget()
    assert avail is None or avail > 0


async def test_slots_admit_the_longest_waiting_first():
    slots = Slots(jobs=1, budget=None)
    order: list[str] = []
    gate = asyncio.Event()

    async def run(name: str, seconds: float) -> None:
        async with slots.hold(Estimate(seconds, 1)):
            order.append(name)
            if name == "first":
                await gate.wait()

    first = asyncio.create_task(run("first", 1.0))
    await until(lambda: order == ["first"], "the first run admitted")
    rest = [asyncio.create_task(run(n, s)) for n, s in
            (("short", 2.0), ("long", 60.0), ("mid", 10.0), ("long2", 60.0))]
    await until(lambda: len(slots._waiting) == 4, "four runs queued")
    gate.set()
    await asyncio.gather(first, *rest)
    assert order == ["first", "long", "long2", "mid", "short"]  # equals keep their order


async def test_slots_bound_memory_and_cores():
    slots = Slots(jobs=8, budget=10 * GB)
    inside: list[int] = []
    most = 0
    release = asyncio.Event()

    async def run() -> None:
        nonlocal most
        async with slots.hold(Estimate(30.0, 4 * GB)):
            inside.append(1)
            most = max(most, len(inside))
            await release.wait()
            inside.pop()

    tasks = [asyncio.create_task(run()) for _ in range(5)]
    await until(lambda: len(inside) == 2 and len(slots._waiting) == 3, "2 in, 3 waiting")
    release.set()
    await asyncio.gather(*tasks)
    assert most == 2 and slots.peak_reserved == 8 * GB  # 4 GB each within 10 GB
    assert slots.running == 0 and slots.reserved == 0

    cores = Slots(jobs=3, budget=None)
    gate = asyncio.Event()
    count = 0

    async def small() -> None:
        nonlocal count
        async with cores.hold(Estimate(1.0, 1)):
            count += 1
            await gate.wait()

    tasks = [asyncio.create_task(small()) for _ in range(5)]
    await until(lambda: count == 3 and len(cores._waiting) == 2, "3 running, 2 waiting")
    gate.set()
    await asyncio.gather(*tasks)


async def test_one_run_is_admitted_even_past_the_budget_and_cancel_frees_the_queue():
    slots = Slots(jobs=4, budget=1 * GB)
    gate = asyncio.Event()
    entered: list[str] = []

    async def run(name: str) -> None:
        async with slots.hold(Estimate(5.0, 8 * GB)):
            entered.append(name)
            await gate.wait()

    a = asyncio.create_task(run("a"))
    await until(lambda: entered == ["a"], "a runs alone")
    b = asyncio.create_task(run("b"))
    c = asyncio.create_task(run("c"))
    await until(lambda: len(slots._waiting) == 2, "b and c wait")
    b.cancel()
    with pytest.raises(asyncio.CancelledError):
        await b
    gate.set()
    await asyncio.gather(a, c)
    assert entered == ["a", "c"] and slots.running == 0


def _job(fake: str, name: str, source: str, cost: str) -> CompileJob:
    return CompileJob(source=source, mode=Mode.QUICK, name=name, cost=cost,
                      options=CompileOptions(nvcc=fake, cutlass=False))


async def test_pool_starts_longest_first_and_learns(tmp_path):
    go = tmp_path / "go"
    fake = fake_nvcc(tmp_path, f'while [ ! -e "{go}" ]; do sleep 0.02; done\nexit 0\n')
    c = Compiler(tmp_path / "cache", jobs=1, memory_bytes=64 * GB)
    c.history.record("slow.jinja", Mode.QUICK, 300.0, None)
    c.history.record("fast.jinja", Mode.QUICK, 0.5, None)  # below the guess for CUDA
    blocker = asyncio.create_task(c.compile(_job(fake, "blocker", CUDA, "fast.jinja")))
    await until(lambda: c.running_pids(), "the blocker runs")
    jobs = [_job(fake, "fast", CUDA + "//1", "fast.jinja"),
            _job(fake, "cuda-guess", CUDA + "//2", "new.jinja"),
            _job(fake, "slow", CUDA + "//3", "slow.jinja"),
            _job(fake, "cutlass3-guess", CUTLASS3, "new3.jinja"),
            _job(fake, "fast", CUDA + "//1", "fast.jinja")]  # the same TU again: joins
    tasks = [asyncio.create_task(c.compile(j)) for j in jobs]
    await until(lambda: len(c.slots()._waiting) == 4, "four distinct runs queued")
    go.write_text("")
    results = await asyncio.gather(blocker, *tasks)
    assert all(r.ok for r in results)
    assert [n for n, _ in c.stats.started] == ["blocker", "slow", "cutlass3-guess",
                                                "cuda-guess", "fast"]
    assert c.stats.nvcc_runs == 5 and c.stats.joined == 1
    learned = History(tmp_path / "cache" / "schedule.json")
    assert learned.get("new3.jinja", Mode.QUICK)["n"] == 1
    assert learned.get("fast.jinja", Mode.QUICK)["n"] == 3  # set above, blocker, fast


@pytest.mark.parametrize(("source", "running"), [(CUTLASS3, 1), (CUDA, 4)])
async def test_pool_concurrency_bounded_by_memory(tmp_path, source, running):
    """5 GB of budget: one CUTLASS 3.x compile (3.5 GB expected) at a time, but four plain
    CUDA ones (0.5 GB) with four jobs."""
    go = tmp_path / "go"
    fake = fake_nvcc(tmp_path, f'while [ ! -e "{go}" ]; do sleep 0.02; done\nexit 0\n')
    c = Compiler(tmp_path / "cache", jobs=4, memory_bytes=5 * GB)
    tasks = [asyncio.create_task(c.compile(_job(fake, f"u{i}", f"{source}//{i}", "t.jinja")))
             for i in range(6)]
    await until(lambda: len(c.running_pids()) == running
                and len(c.slots()._waiting) == 6 - running, f"{running} running")
    go.write_text("")
    assert all(r.ok for r in await asyncio.gather(*tasks))
    assert c.stats.peak_running == running and c.stats.nvcc_runs == 6


HOG = """import os, sys, time
block = bytearray(200 << 20)
for i in range(0, len(block), 4096):
    block[i] = 1
open(sys.argv[1], "w").close()
while not os.path.exists(sys.argv[2]):
    time.sleep(0.02)
"""


def test_peak_sampler_reads_a_process_groups_memory(tmp_path):
    (tmp_path / "hog.py").write_text(HOG)
    ready, go = tmp_path / "ready", tmp_path / "go"
    proc = subprocess.Popen([sys.executable, str(tmp_path / "hog.py"), str(ready), str(go)],
                            start_new_session=True)
    try:
        while not ready.exists() and proc.poll() is None:
            os.sched_yield()
        sampler = PeakSampler()
        if not sampler.enabled:
            pytest.skip("no /proc")
        rss = sampler.sample({proc.pid, 999_999_999})
        assert rss[proc.pid] >= 200 << 20 and 999_999_999 not in rss
    finally:
        go.write_text("")
        proc.wait(30)


async def test_pool_records_the_peak_memory_of_a_compile(tmp_path):
    (tmp_path / "hog.py").write_text(HOG)
    go = tmp_path / "go"
    fake = fake_nvcc(tmp_path, f'exec "{sys.executable}" "{tmp_path / "hog.py"}" '
                               f'"{tmp_path / "ready"}" "{go}"\n')
    c = Compiler(tmp_path / "cache", jobs=1)
    if not c.sampler.enabled:
        pytest.skip("no /proc")
    task = asyncio.create_task(c.compile(_job(fake, "hog", CUDA, "hog.jinja")))
    await until(lambda: any(v >= 200 << 20 for v in c.sampler._peaks.values()),
                "the sampler saw the compile's memory")
    go.write_text("")
    res = await task
    assert res.ok and res.peak_rss_bytes >= 200 << 20
    assert c.history.get("hog.jinja", Mode.QUICK)["peak_bytes"] >= 200 << 20
