"""Where a sweep runs: the local process pool, or a Ray cluster.

An :class:`Executor` pairs a compiler (``await compiler.compile(job) -> CompileResult``) with a
:class:`~cutlens.bench.runner.Runner`; :func:`~cutlens.bench.template_sweep.sweep` takes both,
so the results, the store and the report are the same whichever executor ran the sweep::

    async with open_executor(ExecutorConfig(kind="local", gpus=["0", "0"]), build_dir) as ex:
        # (cutlens.bench.launch.open_executor)
        results = await sweep(plan, renderer, ex.compiler, ex.runner, store)

- ``local``: nvcc jobs across every core (the :class:`~cutlens.nvcc.pool.Compiler` pool, with
  the project's build cache) and one bench worker process per GPU (``gpus``; an entry listed
  twice, or ``workers_per_gpu``, shares a GPU between workers).
- ``ray``: compile tasks as Ray CPU tasks and bench workers as Ray actors holding one GPU each
  (:mod:`cutlens.bench.ray_executor`, which alone imports ``ray``).

Torch-free and ray-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cutlens.bench.runner import Runner
from cutlens.errors import UsageError
from cutlens.nvcc.pool import CompileJob, CompileResult

EXECUTORS = ("local", "ray")


@dataclass
class ExecutorConfig:
    """How and where to compile and benchmark."""

    kind: str = "local"  # local | ray
    device: str = "cuda"  # cuda | cpu (tests: fake libraries computing on the host)
    gpus: int | list[str] | None = None  # local: CUDA_VISIBLE_DEVICES entries (or a count)
    workers_per_gpu: int = 1
    timeout_s: float = 60.0  # per bench request
    jobs: int | None = None  # local: parallel nvcc jobs (None: cores)
    address: str | None = None  # ray: None (RAY_ADDRESS or a new local cluster), auto, ray://
    gpu_resource: str = "GPU"  # ray: the resource a bench worker holds (tests: a fake one)
    workers: int | None = None  # ray: bench workers in all (None: the cluster's GPUs x per GPU)
    cache_dir: str | None = None  # ray: the build cache on each node (None: a temp dir)

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise UsageError(f"unknown executor {self.kind!r} (expected one of "
                             f"{', '.join(EXECUTORS)})")
        if self.workers_per_gpu < 1:
            raise UsageError("--workers-per-gpu must be at least 1")
        if self.workers is not None and self.workers < 1:
            raise UsageError("--workers must be at least 1")


class BuildCompiler(Protocol):
    """What a sweep builds with: the local pool (:class:`cutlens.nvcc.pool.Compiler`) or
    Ray's compile tasks (:class:`cutlens.bench.ray_executor.RayCompiler`)."""

    async def compile(self, job: CompileJob) -> CompileResult:
        """Build ``job`` (from the cache when it holds it)."""
        ...

    def hold(self, key: str) -> None:
        """Keep the build ``key`` from eviction while a bench worker may load it."""
        ...

    def release(self, key: str) -> None:
        """Undo :meth:`hold`."""
        ...


@dataclass
class Executor:
    """A compiler and a runner that belong together, and what to record about them."""

    name: str
    compiler: BuildCompiler
    runner: Runner

    @property
    def workers(self) -> int:
        """Bench workers serving the sweep."""
        return self.runner.workers


def local_runner(cfg: ExecutorConfig) -> Runner:
    """The local pool's runner: one worker per listed (or visible) GPU, times
    ``workers_per_gpu``; on ``device="cpu"``, one CPU worker per listed entry."""
    if cfg.device == "cpu":
        n = cfg.gpus if isinstance(cfg.gpus, int) else len(cfg.gpus or [None])
        return Runner(device="cpu", workers=n,
                      workers_per_gpu=cfg.workers_per_gpu, timeout_s=cfg.timeout_s)
    return Runner(device=cfg.device, gpus=cfg.gpus, workers_per_gpu=cfg.workers_per_gpu,
                  timeout_s=cfg.timeout_s)
