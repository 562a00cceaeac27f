"""Executors without Ray: --gpus parsing, several workers per GPU, the local pool's runner,
the command line's executor options, and the report's executor/workers keys."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cutlens import config as config_mod
from cutlens.bench.executor import ExecutorConfig, local_runner
from cutlens.bench.launch import open_executor
from cutlens.bench.project import BenchOverrides, executor_config, jobs
from cutlens.bench.protocol import run_request
from cutlens.bench.report import make_report, render_table
from cutlens.bench.runner import Runner, parse_gpus
from cutlens.config import BenchConfig, ProjectConfig
from cutlens.errors import UsageError

from conftest import fakelib


def test_parse_gpus():
    assert parse_gpus(None) is None and parse_gpus("all") is None and parse_gpus("ALL") is None
    assert parse_gpus("0,1") == ["0", "1"]
    assert parse_gpus(" 0, 0 ") == ["0", "0"]
    assert parse_gpus("GPU-abc") == ["GPU-abc"]
    with pytest.raises(UsageError, match="comma-separated"):
        parse_gpus("0,,1")


def test_workers_per_gpu_and_repeated_gpus():
    r = Runner(gpus=["0", "1"], workers_per_gpu=2)
    assert [s.visible for s in r.slots] == ["0", "0", "1", "1"] and r.workers == 4
    assert [s.index for s in r.slots] == [0, 1, 2, 3]
    assert [s.visible for s in Runner(gpus=["0", "0"]).slots] == ["0", "0"]
    assert Runner(device="cpu", workers=1, workers_per_gpu=3).workers == 3
    with pytest.raises(UsageError):
        Runner(workers_per_gpu=0)


def test_local_runner_from_config():
    assert [s.visible for s in local_runner(ExecutorConfig(gpus=["3"], workers_per_gpu=2)).slots
            ] == ["3", "3"]
    cpu = local_runner(ExecutorConfig(device="cpu", gpus=["0", "0"]))
    assert cpu.workers == 2 and all(s.device == "cpu" for s in cpu.slots)
    assert local_runner(ExecutorConfig(device="cpu")).workers == 1
    with pytest.raises(UsageError, match="unknown executor"):
        ExecutorConfig(kind="slurm")


def _args(**kw) -> BenchOverrides:
    return BenchOverrides(**kw)


def test_cli_executor_options(tmp_path):
    cfg = ProjectConfig(root=tmp_path)
    c = executor_config(cfg, _args(gpus="0,0"))
    assert (c.kind, c.gpus, c.workers_per_gpu, c.device) == ("local", ["0", "0"], 1, "cuda")
    c = executor_config(cfg, _args(executor="ray", address="ray://h:10001", workers=3,
                                   gpu_resource="fake_gpu", workers_per_gpu=2))
    assert (c.kind, c.address, c.workers, c.gpu_resource, c.workers_per_gpu) == (
        "ray", "ray://h:10001", 3, "fake_gpu", 2)
    with pytest.raises(UsageError, match="--gpus is for the local executor"):
        executor_config(cfg, _args(executor="ray", gpus="0"))
    with pytest.raises(UsageError, match="--workers is for --executor ray"):
        executor_config(cfg, _args(workers=2))
    # the project's [bench] table is the default; the command line wins
    cfg.bench = BenchConfig(executor="ray", gpu_resource="accel", workers_per_gpu=2,
                            ray_address="auto", device="cpu")
    c = executor_config(cfg, _args())
    assert (c.kind, c.gpu_resource, c.workers_per_gpu, c.address, c.device) == (
        "ray", "accel", 2, "auto", "cpu")
    assert executor_config(cfg, _args(executor="local", workers_per_gpu=1)).workers_per_gpu == 1
    cfg.bench = BenchConfig(devices=[2, 3])
    assert executor_config(cfg, _args()).gpus == ["2", "3"]
    # jobs: --jobs, else the config's, else one per core
    assert executor_config(cfg, _args(jobs=3)).jobs == 3
    cfg.jobs = 5
    assert executor_config(cfg, _args()).jobs == 5 and jobs(cfg, None) == 5


@pytest.mark.parametrize("bench", [
    'device = "cpu"\ndevices = ["0", "0"]\nworkers_per_gpu = 2\n',
    'devices = [3]\nworkers_per_gpu = 2\ntimeout_s = 7\n',
    'devices = 2\n',
])
def test_the_editor_starts_the_same_bench_workers_as_cutlens_bench(tmp_path, bench):
    """For one project config, the language server's runner and ``cutlens bench``'s have
    the same worker slots (device, GPU, count) and timeout."""
    from cutlens.cli.bench import overrides
    from cutlens.cli.main import _parser
    from cutlens.lsp.session import Session

    (tmp_path / "cutlens.toml").write_text("[bench]\n" + bench)
    (tmp_path / "t.cu.jinja").write_text("x\n")
    cfg = config_mod.load(tmp_path)
    assert not cfg.problems
    args = _parser().parse_args(["bench", str(tmp_path / "t.cu.jinja")])
    cli = local_runner(executor_config(cfg, overrides(args)))
    editor = Session().project_for(tmp_path / "t.cu.jinja").runner

    def slots(r: Runner) -> list[tuple[str, str | None]]:
        return [(s.device, s.visible) for s in r.slots]

    assert slots(editor) == slots(cli) and editor.timeout_s == cli.timeout_s
    assert editor.workers == cli.workers == cfg.bench.workers_per_gpu * (
        2 if "devices = 2" in bench or '"0", "0"' in bench else 1)


def test_check_uses_each_projects_own_cache(tmp_path):
    """``cutlens check projA projB``: each project's units compile into its own build
    cache, under its own bound and jobs."""
    from cutlens.bench.project import compile_pool

    for name, size, n in (("a", "1GB", 1), ("b", "2GB", 2)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "cutlens.toml").write_text(f"jobs = {n}\n[cache]\nmax_size = "
                                                     f"'{size}'\n")
    a, b = (compile_pool(config_mod.load(tmp_path / x)) for x in "ab")
    assert a.cache.root == (tmp_path / "a" / ".cutlens" / "build").resolve()
    assert b.cache.root == (tmp_path / "b" / ".cutlens" / "build").resolve()
    assert (a.jobs, b.jobs) == (1, 2)
    assert (a.cache.max_bytes, b.cache.max_bytes) == (10**9, 2 * 10**9)


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
        results = [r async for r in ex.runner.sweep(reqs)]
    by_id = {r["id"]: r for r in results}
    assert sorted(by_id) == [f"q{i}" for i in range(len(kernels))]
    assert [by_id[f"q{i}"]["verified"] for i in (0, 2, 4, 5)] == [True] * 4
    assert by_id["q1"]["verified"] is False and by_id["q3"]["error"] == "returned 7"
    assert {r["worker"] for r in results} == {0, 1}


def test_ray_is_not_imported_by_the_cli_or_the_server():
    import subprocess

    code = ("import sys, cutlens.cli, cutlens.cli.bench, cutlens.bench.executor, "
            "cutlens.lsp.server; assert 'ray' not in sys.modules, 'ray imported'")
    env = {"PYTHONPATH": str(Path(__file__).parents[2] / "server")}
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 0


async def test_ray_executor_without_ray_is_a_usage_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    monkeypatch.delitem(sys.modules, "cutlens.bench.ray_executor", raising=False)
    with pytest.raises(UsageError, match=r"pip install 'cutlens\[ray\]'"):
        async with open_executor(ExecutorConfig(kind="ray"), tmp_path):
            pass
