"""The runner on CPU workers: results, crashes, hangs, restarts, sweeps."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from cutlens.bench.protocol import baseline_request, run_request
from cutlens.bench.runner import Runner, crash_reason, visible_gpus

from conftest import fakelib

pytest.importorskip("torch")  # the workers import it




def req(lib: Path, kernel: str = "fake_gemm", **context) -> dict:
    return run_request(fakelib.gemm_signature(lib, kernel), fakelib.GEMM_BENCH,
                       timing=fakelib.FAST_TIMING, template="gemm.cu.jinja", sample="small",
                       variant={"kernel": kernel}, variant_name=kernel, **context)


def test_crash_reason():
    assert crash_reason(-11) == "worker crashed (signal 11, SIGSEGV)"
    assert crash_reason(3) == "worker exited with status 3"


def test_visible_gpus_from_env():
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "2,3"}) == ["2", "3"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "-1"}) == []
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "GPU-abc"}) == ["GPU-abc"]


def test_runner_picks_gpus_without_starting_anything():
    r = Runner(gpus=["1", "3"])
    assert [s.visible for s in r.slots] == ["1", "3"]
    r = Runner(env={"CUDA_VISIBLE_DEVICES": "0,1,2"})
    assert [s.visible for s in r.slots] == ["0", "1", "2"]
    assert len(Runner(device="cpu", workers=3).slots) == 3


async def test_run_crash_hang_restart(lib):
    async with Runner(device="cpu", timeout_s=8) as runner:
        ok = await runner.run(req(lib))
        assert ok["error"] is None and ok["verified"] is True and ok["ms"] > 0
        # context comes back with the result
        assert ok["template"] == "gemm.cu.jinja" and ok["sample"] == "small"
        assert ok["variant"] == {"kernel": "fake_gemm"} and ok["variant_name"] == "fake_gemm"
        assert ok["gpu"].startswith("cpu") and ok["worker"] == 0
        slot = runner.slots[0]
        pid = slot.proc.pid

        again = await runner.run(req(lib))  # the worker is reused
        assert again["error"] is None and slot.proc.pid == pid and slot.starts == 1

        bad = await runner.run(req(lib, "fake_fail"))
        assert bad["error"] == "returned 7" and slot.proc.pid == pid  # no restart needed

        crash = await runner.run(req(lib, "fake_segv"))
        assert crash["error"] == "worker crashed (signal 11, SIGSEGV)"
        assert crash["variant_name"] == "fake_segv" and crash["ms"] is None
        after = await runner.run(req(lib))
        assert after["error"] is None and slot.starts == 2

        # the time limit fires (its message says so); wait_for only guards against a hang
        hang = await asyncio.wait_for(runner.run({**req(lib, "fake_hang"), "timeout_s": 3}),
                                      60)
        assert hang["error"] == "timed out after 3 s"
        after = await runner.run(req(lib))
        assert after["error"] is None and after["verified"] is True and slot.starts == 3

        base = await runner.run(baseline_request(fakelib.gemm_signature(lib),
                                                 fakelib.GEMM_BENCH, timing=fakelib.FAST_TIMING,
                                                 sample="small"))
        assert base["op"] == "baseline" and base["ms"] > 0 and base["sample"] == "small"
    assert all(not s.alive for s in runner.slots)


async def test_sweep_over_arriving_builds(lib):
    kernels = ["fake_gemm", "fake_gemm_wrong", "fake_segv", "fake_gemm_bigws", "fake_fail",
               "fake_gemm"]

    async def builds():  # builds finishing one by one, as the compile pool yields them
        for i, k in enumerate(kernels):
            await asyncio.sleep(0.05)
            yield req(lib, k, id=f"b{i}")

    async with Runner(device="cpu", workers=2, timeout_s=30) as runner:
        results = [r async for r in runner.sweep(builds())]
        assert sorted(r["id"] for r in results) == [f"b{i}" for i in range(len(kernels))]
        by_id = {r["id"]: r for r in results}
        assert by_id["b0"]["verified"] is True and by_id["b5"]["verified"] is True
        assert by_id["b1"]["verified"] is False
        assert by_id["b2"]["error"].startswith("worker crashed")
        assert by_id["b3"]["workspace_bytes"] == 1 << 20
        assert by_id["b4"]["error"] == "returned 7"
        assert {r["worker"] for r in results} == {0, 1}  # both workers took work
        # a plain iterable works too
        more = [r async for r in runner.sweep([req(lib, id="c0"), req(lib, id="c1")])]
        assert sorted(r["id"] for r in more) == ["c0", "c1"]


async def test_sweep_surfaces_producer_failure(lib):
    async def broken():
        yield req(lib)
        raise RuntimeError("compile pool died")

    async with Runner(device="cpu") as runner:
        with pytest.raises(RuntimeError, match="compile pool died"):
            async for _ in runner.sweep(broken()):
                pass


async def test_worker_that_cannot_start(tmp_path):
    fake_python = tmp_path / "python"
    fake_python.write_text("#!/bin/sh\necho 'no torch here' >&2\nexit 1\n")
    fake_python.chmod(0o755)
    async with Runner(device="cpu", python=str(fake_python), start_timeout_s=10) as runner:
        r = await runner.run({"op": "info", "sample": "s"})
        assert r["error"].startswith("worker failed to start: worker exited with status 1")
        assert "no torch here" in r["error"]


async def test_no_torch_import_in_runner_process():
    code = ("import sys, cutlens.bench, cutlens.bench.runner, cutlens.bench.report, "
            "cutlens.bench.progress, cutlens.results.store; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, env={"PYTHONPATH": str(Path(__file__).parents[2] / "server")})
    assert await proc.wait() == 0


async def test_start_prewarms_and_eager_restart(lib):
    async with Runner(device="cpu", timeout_s=30) as runner:
        assert await runner.start() == [None]
        slot = runner.slots[0]
        assert slot.alive and slot.starts == 1
        crash = await runner.run(req(lib, "fake_segv"))
        assert crash["error"].startswith("worker crashed")
        # a replacement is starting in the background, before any new request
        await asyncio.wait_for(slot._warm_task, 60)
        assert slot.alive and slot.starts == 2
        assert (await runner.run(req(lib)))["error"] is None and slot.starts == 2


async def test_collect_stores_each_result(lib, tmp_path):
    from cutlens.bench.progress import SweepProgress
    from cutlens.results.store import ResultStore

    from conftest import collect

    seen = []
    with ResultStore(tmp_path) as store, SweepProgress(total=3) as progress:
        async with Runner(device="cpu") as runner:
            results = await collect(
                runner, [req(lib), req(lib, "fake_fail"),
                         baseline_request(fakelib.gemm_signature(lib), fakelib.GEMM_BENCH,
                                          timing=fakelib.FAST_TIMING, sample="small")],
                store=store, record={"template_hash": "h", "nvcc": "13.0"}, progress=progress,
                on_result=seen.append)
        assert len(results) == 3 and seen == results and progress.done == 3
        latest = store.latest("h")
        assert [(r["variant_name"], r["error"]) for r in latest] == [
            ("fake_gemm", None), ("fake_fail", "returned 7")]
        assert latest[0]["nvcc"] == "13.0" and latest[0]["gpu"].startswith("cpu")
        assert store.baselines("h")["small"]["ms"] > 0


ORPHAN = """
import asyncio, sys
from pathlib import Path
from cutlens.bench.protocol import run_request
from cutlens.bench.runner import Runner
sys.path.insert(0, sys.argv[2])
import fakelib

async def main():
    runner = Runner(device="cpu", timeout_s=600)
    await runner.start()
    print(runner.slots[0].proc.pid, flush=True)
    await runner.run(run_request(fakelib.gemm_signature(Path(sys.argv[1]), "fake_hang"),
                                 fakelib.GEMM_BENCH, timing=fakelib.FAST_TIMING))

asyncio.run(main())
"""


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_worker_exits_when_runner_is_killed(lib, tmp_path):
    import os
    import signal
    import subprocess

    marker = tmp_path / "in-kernel"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "server"),
           "CUTLENS_FAKE_HANG_MARK": str(marker)}
    parent = subprocess.Popen(
        [sys.executable, "-c", ORPHAN, str(lib), str(Path(fakelib.__file__).parent)],
        stdout=subprocess.PIPE, text=True, env=env)
    try:
        worker_pid = int(parent.stdout.readline())
        deadline = time.monotonic() + 60  # a hang guard: the kernel marks its start
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the worker never entered the hanging kernel"
        assert not _gone(worker_pid)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 15
    while not _gone(worker_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _gone(worker_pid)
