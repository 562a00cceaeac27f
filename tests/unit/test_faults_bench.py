"""Benchmark faults on CPU workers with fake kernel libraries: a worker killed from outside
mid-sweep, killed while idle, a kernel writing far out of bounds and one spinning forever.
The failing request gets a ``✗`` reason, the worker is replaced, the rest of the sweep
completes, and every finished result is in the store."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from cutlens.bench.progress import SweepProgress
from cutlens.bench.protocol import run_request
from cutlens.bench.report import status_text
from cutlens.bench.runner import Runner
from cutlens.results.store import ResultStore

from conftest import collect, fakelib

pytest.importorskip("torch")  # the workers import it

#: Kernels with the fake GEMM's ABI that fault the way GPU kernels do.
FAULTS_SRC = r"""
#include <cstddef>
#include <cstdint>
#define API extern "C" __attribute__((visibility("default"))) int
#define ARGS const float*, const float*, const float*, float* Y, int64_t, int64_t, int64_t, \
             size_t* workspace_size, uint8_t*, void*
// An index gone wild: a store 4 TiB past the end of Y.
API fault_oob(ARGS) {
  if (workspace_size) { *workspace_size = 0; return 0; }
  volatile float* p = Y + (int64_t(1) << 40);
  *p = 1.0f;
  return 0;
}
// Never returns, busy on the CPU (no sleeping).
API fault_spin(ARGS) {
  if (workspace_size) { *workspace_size = 0; return 0; }
  volatile uint64_t n = 0;
  for (;;) n = n + 1;
}
"""


@pytest.fixture(scope="module")
def faults(tmp_path_factory) -> Path:
    cxx = fakelib.compiler()
    if cxx is None:
        pytest.skip("no C++ compiler")
    d = tmp_path_factory.mktemp("faults")
    (d / "faults.cpp").write_text(FAULTS_SRC)
    subprocess.run([cxx, "-shared", "-fPIC", "-O1", "-o", str(d / "libfaults.so"),
                    str(d / "faults.cpp")], check=True)
    return d / "libfaults.so"


def req(lib: Path, kernel: str, rid: str, **extra) -> dict:
    return {**run_request(fakelib.gemm_signature(lib, kernel), fakelib.GEMM_BENCH,
                          timing=fakelib.FAST_TIMING, template="gemm.cu.jinja", sample="small",
                          variant={"kernel": kernel}, variant_name=f"{rid}-{kernel}"),
            "id": rid, **extra}


RECORD = {"template_hash": "h", "nvcc": "13.0"}


async def test_worker_killed_mid_sweep(lib, tmp_path, monkeypatch):
    """SIGKILL the worker (from outside) while it runs the second request (the hanging
    kernel marks its start: no timer racing the worker)."""
    marker = tmp_path / "in-kernel"
    monkeypatch.setenv("CUTLENS_FAKE_HANG_MARK", str(marker))
    killed: list[tuple[int, int]] = []  # (worker pid, results stored when killed)
    requests = [req(lib, "fake_gemm", "a"), req(lib, "fake_hang", "b", timeout_s=60),
                req(lib, "fake_gemm", "c"), req(lib, "fake_gemm_wrong", "d")]
    with ResultStore(tmp_path) as store:
        async with Runner(device="cpu", workers=1, timeout_s=60) as runner:
            slot = runner.slots[0]

            def kill_worker() -> None:
                assert slot.proc is not None and slot.alive
                killed.append((slot.proc.pid, store.count()))
                os.kill(slot.proc.pid, signal.SIGKILL)

            async def kill_inside_b() -> None:
                while not marker.exists():  # collect()'s wait_for guards a hang
                    await asyncio.sleep(0.02)
                kill_worker()

            def on_result(r: dict) -> None:
                if r["id"] == "a":  # "b" is served next
                    tasks.append(asyncio.ensure_future(kill_inside_b()))

            tasks: list[asyncio.Future] = []

            with SweepProgress(total=len(requests)) as progress:
                results = await asyncio.wait_for(
                    collect(runner, requests, store=store, record=RECORD, progress=progress,
                            on_result=on_result), 60)
            assert slot.starts == 2
        by_id = {r["id"]: r for r in results}
        assert len(killed) == 1 and killed[0][1] == 1  # "a" was stored before the kill
        assert by_id["b"]["error"] == "worker crashed (signal 9, SIGKILL)"
        assert status_text(by_id["b"]) == "✗ worker crashed (signal 9, SIGKILL)"
        assert by_id["b"]["ms"] is None and "log" in by_id["b"]
        assert by_id["a"]["verified"] is True and by_id["c"]["verified"] is True
        assert by_id["d"]["verified"] is False  # the next variants ran, and were judged
        stored = {r["variant_name"]: r for r in store.latest("h")}
        assert set(stored) == {"a-fake_gemm", "b-fake_hang", "c-fake_gemm",
                               "d-fake_gemm_wrong"}
        assert stored["b-fake_hang"]["error"] == "worker crashed (signal 9, SIGKILL)"
        assert stored["a-fake_gemm"]["ms"] == by_id["a"]["ms"]
    assert not any(_alive(pid) for pid, _ in killed)


async def test_worker_killed_while_idle_is_replaced(lib):
    """A worker that died between requests (OOM killer, a stray ``kill``) is replaced at the
    next request, which runs normally. (A request sent within the instant between the kill
    and the worker's exit is still blamed for it: the protocol has no receipt to tell.)"""
    async with Runner(device="cpu", timeout_s=60, restart_eagerly=False) as runner:
        assert await runner.start() == [None]
        slot = runner.slots[0]
        os.kill(slot.proc.pid, signal.SIGKILL)
        for _ in range(1200):  # a hang guard (60 s), not a measurement
            if not slot.alive:
                break
            await asyncio.sleep(0.05)
        assert not slot.alive
        r = await runner.run(req(lib, "fake_gemm", "x"))
        assert r["error"] is None and r["verified"] is True
        assert slot.starts == 2


async def test_out_of_bounds_and_spinning_kernels_in_a_sweep(lib, faults, tmp_path):
    requests = [req(lib, "fake_gemm", "a"), req(faults, "fault_oob", "b"),
                req(lib, "fake_gemm", "c"), req(faults, "fault_spin", "d", timeout_s=2),
                req(lib, "fake_gemm", "e")]
    with ResultStore(tmp_path) as store:
        async with Runner(device="cpu", workers=1, timeout_s=60) as runner:
            results = await asyncio.wait_for(
                collect(runner, requests, store=store, record=RECORD), 90)
            slot = runner.slots[0]
            assert slot.starts == 3  # replaced after each fault
            pids_alive = slot.alive
        by_id = {r["id"]: r for r in results}
        assert by_id["b"]["error"] == "worker crashed (signal 11, SIGSEGV)"
        assert by_id["d"]["error"] == "timed out after 2 s"
        for ok in "ace":
            assert by_id[ok]["error"] is None and by_id[ok]["verified"] is True, by_id[ok]
        assert store.count() == 5
        assert {r["variant_name"]: r["error"] for r in store.latest("h")} == {
            "a-fake_gemm": None, "b-fault_oob": "worker crashed (signal 11, SIGSEGV)",
            "c-fake_gemm": None, "d-fault_spin": "timed out after 2 s", "e-fake_gemm": None}
    assert pids_alive


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


class _FullAfter(ResultStore):
    """A store whose disk fills up after ``n`` results."""

    def __init__(self, root: Path, n: int) -> None:
        super().__init__(root)
        self.left = n

    def add(self, record, ts=None):  # type: ignore[no-untyped-def,override]
        if self.left <= 0:
            raise sqlite3.OperationalError("database or disk is full")
        self.left -= 1
        return super().add(record, ts)


async def test_store_failing_mid_sweep_costs_a_warning_not_the_results(lib, tmp_path, caplog):
    requests = [req(lib, "fake_gemm", r) for r in "abc"]
    with _FullAfter(tmp_path, 1) as store, caplog.at_level(logging.WARNING, "cutlens.bench.sweep"):
        async with Runner(device="cpu", workers=1, timeout_s=60) as runner:
            results = await collect(runner, requests, store=store, record=RECORD)
        assert sorted(r["id"] for r in results) == ["a", "b", "c"]
        assert all(r["verified"] is True for r in results)
        assert store.count() == 1  # the one stored before the disk filled
        assert caplog.text.count("cannot store results (database or disk is full)") == 1
