"""Measure this GPU's ceilings (worker side; imports torch): the best ``torch.mm`` rate per
dtype over :data:`GEMM_SHAPES` and the copy bandwidth over :data:`COPY_BYTES`, each timed
with the steady-state protocol (:func:`cutlens.bench.steady.measure`). The cache and the
arithmetic are in :mod:`cutlens.bench.ceilings`."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from cutlens.bench.ceilings import cache_key, load_cache, missing, save_entry
from cutlens.bench.marshal import torch_dtype
from cutlens.bench.protocol import TimingConfig
from cutlens.bench.steady import Measured

#: (M, N, K) of the dense GEMMs whose best rate is the compute ceiling.
GEMM_SHAPES = ((8192, 8192, 8192), (16384, 8192, 8192), (8192, 8192, 16384))
#: Sizes of the device-to-device copies whose best rate is the memory ceiling.
COPY_BYTES = (1 << 30, 2 << 30)

Timer = Callable[[Callable[[], None], TimingConfig], Measured]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def compute_ceiling(dtype: str, timer: Timer, cfg: TimingConfig, *, device: str = "cuda",
                    shapes: tuple[tuple[int, int, int], ...] = GEMM_SHAPES
                    ) -> tuple[float, dict[str, Any]]:
    """(TFLOP/s, how) of the best ``torch.mm`` over the shapes, in ``dtype``."""
    dt = torch_dtype(dtype)
    best, best_shape, rates = 0.0, None, []
    for m, n, k in shapes:
        a = torch.randn(m, k, device=device).to(dt)
        b = torch.randn(k, n, device=device).to(dt)
        def mm(a: torch.Tensor = a, b: torch.Tensor = b) -> None:
            torch.mm(a, b)

        t = timer(mm, cfg)
        rate = 2.0 * m * n * k / t.timing.ms / 1e9
        rates.append({"shape": [m, n, k], "ms": t.timing.ms, "tflops": round(rate, 1),
                      "stable": t.stable, "gpu_state": t.state})
        if rate > best:
            best, best_shape = rate, [m, n, k]
        del a, b
    if device != "cpu":
        torch.cuda.empty_cache()
    return round(best, 1), {"method": "torch.mm (dense GEMM, median of do_bench-style "
                                      "timing after steady-state warm-up)",
                            "best_shape": best_shape, "shapes": rates, "measured_at": _now()}


def memory_ceiling(timer: Timer, cfg: TimingConfig, *, device: str = "cuda",
                   sizes: tuple[int, ...] = COPY_BYTES) -> tuple[float, dict[str, Any]]:
    """(GB/s, how) of the best device-to-device ``copy_`` (read + write counted)."""
    best, runs = 0.0, []
    for nbytes in sizes:
        src = torch.empty(nbytes // 4, dtype=torch.int32, device=device).fill_(1)
        dst = torch.empty_like(src)
        def copy(s: torch.Tensor = src, d: torch.Tensor = dst) -> None:
            d.copy_(s)

        t = timer(copy, cfg)
        rate = 2.0 * nbytes / t.timing.ms / 1e6
        runs.append({"bytes": nbytes, "ms": t.timing.ms, "gbps": round(rate, 1),
                     "stable": t.stable})
        best = max(best, rate)
        del src, dst
    if device != "cpu":
        torch.cuda.empty_cache()
    return round(best, 1), {"method": "torch copy_ device to device (bytes read + written)",
                            "runs": runs, "measured_at": _now()}


def ceilings(dtypes: list[str], gpu: str, driver: str | None, cache: Path, timer: Timer,
             cfg: TimingConfig, **probe: Any) -> dict[str, Any]:
    """The cached entry for (gpu, driver), measuring what it lacks; ``cached`` lists what
    came from the cache file. ``probe``: ``device`` and the shapes / sizes (tests)."""
    key = cache_key(gpu, driver)
    entry: dict[str, Any] = dict(load_cache(cache).get(key) or {})
    entry.update(gpu=gpu, driver=driver)
    entry.setdefault("compute_tflops", {})
    how = entry.setdefault("how", {"compute": {}})
    how.setdefault("compute", {})
    todo, need_memory = missing(entry, dtypes)
    cached = [d for d in dtypes if d not in todo]
    cfg = TimingConfig(**{**cfg.to_json(), "flush_l2": False})
    errors = {}
    for d in todo:
        try:
            entry["compute_tflops"][d], how["compute"][d] = compute_ceiling(
                d, timer, cfg, **{k: v for k, v in probe.items() if k != "sizes"})
        except Exception as e:  # a dtype torch.mm cannot multiply (fp8): no ceiling
            errors[d] = f"{type(e).__name__}: {e}"[:200]
    if need_memory:
        entry["memory_gbps"], how["memory"] = memory_ceiling(
            timer, cfg, **{k: v for k, v in probe.items() if k != "shapes"})
    if todo or need_memory:
        save_entry(cache, key, {k: v for k, v in entry.items() if k != "errors"})
    return {**entry, "cached": cached + ([] if need_memory else ["memory"]),
            **({"errors": errors} if errors else {})}
