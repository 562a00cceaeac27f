"""The worker's ``rounds`` and ``ceilings`` ops (worker side; imports torch).

``rounds``: load every candidate library (and the reference expression), then time each
once per round with the worker's steady-state protocol, the order rotating every round so
that none always follows the same one (:mod:`cutlens.bench.finalists` reads the answer).
``ceilings``: this GPU's measured ceilings, through the cache
(:mod:`cutlens.bench.ceiling_probe`).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Protocol

import torch

from cutlens.bench.ceilings import cache_path
from cutlens.bench.finalists import REFERENCE
from cutlens.bench.marshal import load_kernel, marshal, unload
from cutlens.bench.protocol import TimingConfig
from cutlens.bench.steady import Measured


class _Worker(Protocol):
    device: str

    def _dev(self, req: dict[str, Any]) -> str: ...
    def _sync(self, dev: str) -> None: ...
    def kernel_call(self, dev: str, m: Any, fn: Any) -> tuple[Any, int, list[Any]]: ...
    def reference_call(self, req: dict[str, Any]) -> Any: ...
    def measure(self, call: Any, dev: str, cfg: TimingConfig) -> Measured: ...
    def info(self, req: dict[str, Any] | None = None) -> dict[str, Any]: ...


def rotation(names: list[str], round_index: int) -> list[str]:
    """``names`` rotated by the round's index."""
    k = round_index % len(names) if names else 0
    return [*names[k:], *names[:k]]


def rounds_op(worker: _Worker, req: dict[str, Any]) -> dict[str, Any]:
    """``{"per_round": {name: [ms, ...]}, "gpu_state": {name: state}}``."""
    dev = worker._dev(req)
    cfg = TimingConfig.from_json(req.get("timing"))
    seed = int(req.get("seed", 0))
    calls: dict[str, Any] = {}
    libs: list[Any] = []
    keep: list[Any] = []
    healthy = False
    try:
        for c in req.get("candidates") or []:
            m = marshal(c["signature"], dev, seed)
            lib, fn = load_kernel(m.library, m.kernel, m.argtypes())
            libs.append(lib)
            call, _, args = worker.kernel_call(dev, m, fn)
            keep.append((m, args))
            calls[str(c["name"])] = call
        ref = req.get("reference")
        if ref:
            calls[REFERENCE] = worker.reference_call({**ref, "device": dev, "seed": seed})
        names = list(calls)
        per_round: dict[str, list[float]] = {n: [] for n in names}
        state: dict[str, Any] = {}
        for r in range(max(1, int(req.get("rounds") or cfg.rounds))):
            for name in rotation(names, r):
                got = worker.measure(calls[name], dev, cfg)
                per_round[name].append(got.timing.ms)
                state[name] = got.state
        healthy = True
        return {"id": req.get("id"), "op": "rounds", "error": None, "per_round": per_round,
                "gpu_state": state}
    finally:
        keep.clear()
        if healthy:  # after a fault the worker exits: never dlclose under a broken context
            with contextlib.suppress(Exception):
                worker._sync(dev)
            for lib in libs:
                unload(lib)


def ceilings_op(worker: _Worker, req: dict[str, Any]) -> dict[str, Any]:
    """The ceilings entry of this GPU (``error`` on the CPU: nothing is measured there)."""
    from cutlens.bench.ceiling_probe import ceilings

    dev = worker._dev(req)
    if dev == "cpu" or not torch.cuda.is_available():
        return {"id": req.get("id"), "op": "ceilings", "error": "no GPU: no ceilings"}
    info = worker.info(req)
    cfg = TimingConfig.from_json(req.get("timing"))
    cache = Path(req["cache"]) if req.get("cache") else cache_path()
    entry = ceilings([str(d) for d in req.get("dtypes") or []], str(info.get("gpu")),
                     info.get("driver"), cache,
                     lambda fn, c: worker.measure(fn, dev, c), cfg)
    return {"id": req.get("id"), "op": "ceilings", "error": None, "ceilings": entry}
