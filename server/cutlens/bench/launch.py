"""Opening the executor a sweep runs on: the local process pool, or a Ray cluster
(:mod:`cutlens.bench.ray_executor`, imported only then: it alone imports ``ray``)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from cutlens.bench.executor import Executor, ExecutorConfig, local_runner
from cutlens.errors import UsageError
from cutlens.nvcc.pool import Compiler


@contextlib.asynccontextmanager
async def open_executor(cfg: ExecutorConfig, build_dir: Path, bench: bool = True,
                        max_bytes: int | None = None) -> AsyncIterator[Executor]:
    """The executor of ``cfg``; its workers stop on exit. ``build_dir``: the local build
    cache (``max_bytes``: its bound; None: the default). ``bench=False`` (build only)
    starts no bench worker."""
    if cfg.kind == "ray":
        try:
            from cutlens.bench.ray_executor import open_ray
        except ImportError as e:
            raise UsageError(f"--executor ray needs Ray ({e}): pip install 'cutlens[ray]'"
                             ) from None
        async with open_ray(cfg, bench=bench) as ex:
            yield ex
        return
    async with local_runner(cfg) as runner:
        compiler = Compiler(build_dir, cfg.jobs) if max_bytes is None else \
            Compiler(build_dir, cfg.jobs, max_bytes=max_bytes)
        yield Executor("local", compiler, runner)
