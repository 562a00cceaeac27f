"""Executors without Ray: --gpus parsing, several workers per GPU, the local pool's runner,
the command line's executor options, and the report's executor/workers keys."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

from cutlens.bench.executor import ExecutorConfig, local_runner
from cutlens.bench.launch import open_executor
from cutlens.bench.protocol import run_request
from cutlens.bench.report import make_report, render_table
from cutlens.bench.runner import Runner, parse_gpus
from cutlens.cli.bench import executor_config
from cutlens.config import BenchConfig, ProjectConfig

from conftest import fakelib


def test_parse_gpus():
    assert parse_gpus(None) is None and parse_gpus("all") is None and parse_gpus("ALL") is None
    assert parse_gpus("0,1") == ["0", "1"]
    assert parse_gpus(" 0, 0 ") == ["0", "0"]
    assert parse_gpus("GPU-abc") == ["GPU-abc"]
    with pytest.raises(ValueError, match="comma-separated"):
        parse_gpus("0,,1")


def test_workers_per_gpu_and_repeated_gpus():
    r = Runner(gpus=["0", "1"], workers_per_gpu=2)
    assert [s.visible for s in r.slots] == ["0", "0", "1", "1"] and r.workers == 4
    assert [s.index for s in r.slots] == [0, 1, 2, 3]
    assert [s.visible for s in Runner(gpus=["0", "0"]).slots] == ["0", "0"]
    assert Runner(device="cpu", workers=1, workers_per_gpu=3).workers == 3
    with pytest.raises(ValueError):
        Runner(workers_per_gpu=0)


def test_local_runner_from_config():
    assert [s.visible for s in local_runner(ExecutorConfig(gpus=["3"], workers_per_gpu=2)).slots
            ] == ["3", "3"]
    cpu = local_runner(ExecutorConfig(device="cpu", gpus=["0", "0"]))
    assert cpu.workers == 2 and all(s.device == "cpu" for s in cpu.slots)
    assert local_runner(ExecutorConfig(device="cpu")).workers == 1
    with pytest.raises(ValueError, match="unknown executor"):
        ExecutorConfig(kind="slurm")


def _args(**kw) -> argparse.Namespace:
    base = dict(executor=None, gpus=None, workers_per_gpu=None, address=None, workers=None,
                gpu_resource=None, jobs=None)
    return argparse.Namespace(**{**base, **kw})


def test_cli_executor_options(tmp_path):
    cfg = ProjectConfig(root=tmp_path)
    c = executor_config(_args(gpus="0,0"), cfg)
    assert (c.kind, c.gpus, c.workers_per_gpu, c.device) == ("local", ["0", "0"], 1, "cuda")
    c = executor_config(_args(executor="ray", address="ray://h:10001", workers=3,
                              gpu_resource="fake_gpu", workers_per_gpu=2), cfg)
    assert (c.kind, c.address, c.workers, c.gpu_resource, c.workers_per_gpu) == (
        "ray", "ray://h:10001", 3, "fake_gpu", 2)
    with pytest.raises(ValueError, match="--gpus is for the local executor"):
        executor_config(_args(executor="ray", gpus="0"), cfg)
    with pytest.raises(ValueError, match="--workers is for --executor ray"):
        executor_config(_args(workers=2), cfg)
    # the project's [bench] table is the default; the command line wins
    cfg.bench = BenchConfig(executor="ray", gpu_resource="accel", workers_per_gpu=2,
                            ray_address="auto", device="cpu")
    c = executor_config(_args(), cfg)
    assert (c.kind, c.gpu_resource, c.workers_per_gpu, c.address, c.device) == (
        "ray", "accel", 2, "auto", "cpu")
    assert executor_config(_args(executor="local", workers_per_gpu=1), cfg).workers_per_gpu == 1
    cfg.bench = BenchConfig(devices=[2, 3])
    assert executor_config(_args(), cfg).gpus == ["2", "3"]


def test_report_records_executor_and_workers():
    rep = make_report([{"sample": "s", "variant_name": "v", "ms": 1.0, "verified": True,
                        "gpu": "G"}], nvcc="13.0", executor="ray", workers=4)
    assert rep["executor"] == "ray" and rep["workers"] == 4
    assert "ray, 4 worker(s)" in str(render_table(rep).title)
    assert make_report([])["executor"] is None


async def test_local_pool_spreads_a_sweep_over_two_workers(lib, tmp_path):
    pytest.importorskip("torch")
    kernels = ["fake_gemm", "fake_gemm_wrong", "fake_gemm", "fake_fail", "fake_gemm",
               "fake_gemm"]
    reqs = [run_request(fakelib.gemm_signature(lib, k), fakelib.GEMM_BENCH,
                        timing=fakelib.FAST_TIMING, id=f"q{i}", variant_name=k)
            for i, k in enumerate(kernels)]
    async with open_executor(ExecutorConfig(device="cpu", gpus=["0", "0"]), tmp_path) as ex:
        assert ex.name == "local" and ex.workers == 2
        results = await ex.runner.run_all(reqs)
    by_id = {r["id"]: r for r in results}
    assert sorted(by_id) == [f"q{i}" for i in range(len(kernels))]
    assert [by_id[f"q{i}"]["verified"] for i in (0, 2, 4, 5)] == [True] * 4
    assert by_id["q1"]["verified"] is False and by_id["q3"]["error"] == "returned 7"
    assert {r["worker"] for r in results} == {0, 1}


def test_ray_is_not_imported_by_the_cli_or_the_server():
    import subprocess

    code = ("import sys, cutlens.cli, cutlens.cli.bench, cutlens.bench.executor, "
            "cutlens.lsp.server; assert 'ray' not in sys.modules, 'ray imported'")
    env = {"PYTHONPATH": str(Path(__file__).parents[1] / "server")}
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 0


async def test_ray_executor_without_ray_is_a_usage_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    monkeypatch.delitem(sys.modules, "cutlens.bench.ray_executor", raising=False)
    with pytest.raises(ValueError, match=r"pip install 'cutlens\[ray\]'"):
        async with open_executor(ExecutorConfig(kind="ray"), tmp_path):
            pass
