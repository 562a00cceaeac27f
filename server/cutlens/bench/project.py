"""The one place a project's config (plus command-line overrides) becomes what compiles and
benchmarks it: the build directory, the nvcc jobs and compile pool
(:mod:`cutlens.nvcc.project`), the executor config and the benchmark runner. ``cutlens
bench``, ``cutlens check`` and the language server all call it, so the editor starts the
same bench workers as ``cutlens bench`` for the same config."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from cutlens.bench.executor import Executor, ExecutorConfig, local_runner
from cutlens.bench.launch import open_executor
from cutlens.bench.runner import Runner, parse_gpus
from cutlens.config import ProjectConfig
from cutlens.errors import UsageError
from cutlens.nvcc.project import build_dir, compile_pool, jobs

__all__ = ["BenchOverrides", "build_dir", "compile_pool", "executor_config", "jobs",
           "open_executor_for", "runner"]


@dataclass(frozen=True)
class BenchOverrides:
    """What the command line may say over the project's ``[bench]`` table (None: the
    table's value)."""

    executor: str | None = None
    gpus: str | None = None  # "all" or "0,1" (local)
    workers_per_gpu: int | None = None
    address: str | None = None  # ray
    workers: int | None = None  # ray
    gpu_resource: str | None = None  # ray
    jobs: int | None = None


def executor_config(cfg: ProjectConfig, over: BenchOverrides | None = None,
                    timeout_s: float | None = None) -> ExecutorConfig:
    """The executor of ``cfg``'s ``[bench]`` table (``device``, ``devices``, ``executor``,
    ``ray_address``, ``gpu_resource``, ``workers_per_gpu``, ``timeout_s``) with ``over``
    applied; :class:`UsageError` for options that do not go together."""
    over = over or BenchOverrides()
    bench = cfg.bench
    kind = over.executor or bench.executor
    if kind == "ray" and over.gpus is not None:
        raise UsageError("--gpus is for the local executor; Ray places the workers "
                         "(--workers, --workers-per-gpu)")
    if kind != "ray" and over.workers is not None:
        raise UsageError("--workers is for --executor ray; locally use --gpus and "
                         "--workers-per-gpu")
    devices = bench.devices
    gpus = parse_gpus(over.gpus) if over.gpus is not None else (
        [str(d) for d in devices] if isinstance(devices, list) else
        int(devices) if isinstance(devices, int) else None)
    return ExecutorConfig(
        kind=kind, device=str(bench.device), gpus=gpus,
        workers_per_gpu=int(over.workers_per_gpu or bench.workers_per_gpu),
        timeout_s=bench.timeout_s if timeout_s is None else timeout_s,
        jobs=jobs(cfg, over.jobs), address=over.address or bench.ray_address,
        gpu_resource=over.gpu_resource or bench.gpu_resource, workers=over.workers)


def open_executor_for(cfg: ProjectConfig, ecfg: ExecutorConfig, bench: bool = True
                      ) -> AbstractAsyncContextManager[Executor]:
    """The executor of ``ecfg`` over ``cfg``'s build cache and bound (``bench=False``:
    build only, no bench worker)."""
    return open_executor(ecfg, build_dir(cfg), bench=bench, max_bytes=cfg.cache.max_bytes)


def runner(cfg: ProjectConfig, over: BenchOverrides | None = None,
           timeout_s: float | None = None) -> Runner:
    """The local benchmark runner of ``cfg``: the workers ``cutlens bench`` starts."""
    return local_runner(executor_config(cfg, over, timeout_s))
