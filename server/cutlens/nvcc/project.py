"""A project's compile side, from its config: the build directory, the number of parallel
nvcc jobs and the compile pool over the build cache (bounded by ``[cache] max_size``). The
check stage calls it; the CLI and the language server reach it through
:mod:`cutlens.bench.project`, which adds the benchmark runner."""

from __future__ import annotations

import os
from pathlib import Path

from cutlens.config import ProjectConfig
from cutlens.nvcc.pool import Compiler


def build_dir(cfg: ProjectConfig) -> Path:
    """The project's build cache: ``<root>/.cutlens/build``."""
    return cfg.cache_dir / "build"


def jobs(cfg: ProjectConfig, override: int | None = None) -> int:
    """Parallel nvcc processes: ``override`` (``--jobs``), else the config's ``jobs``, else
    one per core."""
    for n in (override, cfg.jobs):
        if n is not None and n > 0:
            return n
    return os.cpu_count() or 1


def compile_pool(cfg: ProjectConfig, jobs_override: int | None = None) -> Compiler:
    """The project's compile pool over its own build cache, under its own bound."""
    return Compiler(build_dir(cfg), jobs(cfg, jobs_override), max_bytes=cfg.cache.max_bytes)
