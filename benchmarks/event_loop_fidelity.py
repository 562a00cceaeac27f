#!/usr/bin/env python3
"""Fidelity check: time a built kernel library with a plain CUDA-event loop.

    python benchmarks/event_loop_fidelity.py SIGNATURE.json [--iters 200] [--runner]

SIGNATURE.json is the render step's recorded call signature (``{"kernel", "library", "args"}``;
a runner request holding ``"signature"`` works too). The script loads the .so with ctypes,
allocates the same tensors (base storage per buffer, null for absent inputs, int64 sizes),
asks for the workspace, then times ``--iters`` calls, each preceded by the same L2 flush as
the runner (zeroing 256 MiB) and bracketed by its own CUDA event pair, and prints JSON with
the median and min. It shares no code with cutlens.

With ``--runner`` it also times the same signature through ``cutlens.bench.runner.Runner``
(a worker process, as ``cutlens bench`` does) and reports ``diff_pct`` = 100 * (runner median
- loop median) / loop median and ``within_3pct``. Rounds alternate loop and runner
(``--rounds``) and the medians of the rounds are compared, so clock drift hits both alike.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import statistics
import sys
from pathlib import Path

import torch

FLUSH_BYTES = 256 << 20
SCALARS = {"int": ctypes.c_int, "uint8_t": ctypes.c_uint8, "int32_t": ctypes.c_int32,
           "int64_t": ctypes.c_int64, "double": ctypes.c_double, "float": ctypes.c_float,
           "bool": ctypes.c_bool, "unsigned": ctypes.c_uint, "size_t": ctypes.c_size_t}


def storage_numel(size: list[int], stride: list[int], offset: int) -> int:
    if any(n == 0 for n in size):
        return offset
    return offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True)) + 1


def allocate(signature: dict) -> tuple[list, list, list]:
    """(ctypes values, ctypes types, tensors kept alive) for the data arguments."""
    values, types, keep = [], [], []
    gen = torch.Generator(device="cuda").manual_seed(0)
    for a in signature["args"]:
        if a["kind"] == "size":
            values.append(ctypes.c_int64(int(a["value"])))
            types.append(ctypes.c_int64)
            continue
        if a["kind"] == "scalar":  # a runtime argument: its C type and value
            t = SCALARS[a["ctype"]]
            values.append(t(a["value"]))
            types.append(t)
            continue
        types.append(ctypes.c_void_p)
        if a.get("none"):
            values.append(ctypes.c_void_p(None))
            continue
        dtype = getattr(torch, a["dtype"])
        n = storage_numel(a["size"], a["stride"], int(a.get("offset") or 0))
        t = torch.empty(n, dtype=dtype, device="cuda")
        if dtype.is_floating_point:
            t.copy_(torch.rand(n, generator=gen, device="cuda").mul_(2).sub_(1).to(dtype))
        else:
            t.zero_()
        keep.append(t)
        values.append(ctypes.c_void_p(t.data_ptr()))
    return values, types, keep


def event_loop(signature: dict, iters: int, warmup: int, flush: bool,
               rep_ms: float | None = None) -> dict:
    """Median and min of ``iters`` flushed, event-timed calls (with ``rep_ms``: as many
    calls as fill ``rep_ms``, estimated from 5 calls, 10 to 1000 — the work a sweep does)."""
    lib = ctypes.CDLL(signature["library"])
    fn = getattr(lib, signature["kernel"])
    values, types, keep = allocate(signature)
    fn.restype = ctypes.c_int
    fn.argtypes = [*types, ctypes.POINTER(ctypes.c_size_t), ctypes.c_void_p, ctypes.c_void_p]
    stream = ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)
    ws = ctypes.c_size_t(0)
    nulls = [ctypes.c_void_p(None) if t is ctypes.c_void_p else v
             for v, t in zip(values, types, strict=True)]
    if fn(*nulls, ctypes.byref(ws), None, stream) != 0:
        raise SystemExit("workspace query failed")
    workspace = torch.zeros(max(ws.value, 1), dtype=torch.uint8, device="cuda")
    args = [*values, None, ctypes.c_void_p(workspace.data_ptr() if ws.value else None), stream]
    cache = torch.empty(FLUSH_BYTES // 4, dtype=torch.int32, device="cuda")
    for _ in range(warmup):
        if fn(*args) != 0:
            raise SystemExit("kernel returned non-zero")
    torch.cuda.synchronize()
    if rep_ms is not None:
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(5):
            fn(*args)
        b.record()
        torch.cuda.synchronize()
        est = max(a.elapsed_time(b) / 5, 1e-6)
        iters = max(10, min(1000, math.ceil(rep_ms / est)))
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    for i in range(iters):
        if flush:
            cache.zero_()
        starts[i].record()
        fn(*args)
        ends[i].record()
    torch.cuda.synchronize()
    times = [s.elapsed_time(e) for s, e in zip(starts, ends, strict=True)]
    del keep
    return {"ms": statistics.median(times), "ms_min": min(times), "iters": iters,
            "workspace_bytes": ws.value}


def runner_time(signature: dict, flush: bool) -> dict:
    """The same signature through cutlens' runner (no reference: timing only)."""
    import asyncio

    try:
        from cutlens.bench.protocol import run_request
        from cutlens.bench.runner import Runner
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
        from cutlens.bench.protocol import run_request
        from cutlens.bench.runner import Runner

    async def go() -> dict:
        async with Runner(gpus=1, timeout_s=300) as runner:
            req = run_request(signature, {}, timing={"flush_l2": flush})
            return await runner.run(req)

    r = asyncio.run(go())
    if r.get("error"):
        raise SystemExit(f"runner: {r['error']}")
    return {k: r.get(k) for k in ("ms", "ms_min", "spread_pct", "iters", "workspace_bytes",
                                  "gpu")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("signature", type=Path)
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--no-flush", action="store_true")
    ap.add_argument("--runner", action="store_true", help="also time through cutlens' runner")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rep-ms", type=float, default=None,
                    help="time as many calls as fill this many ms (overrides --iters)")
    args = ap.parse_args()
    doc = json.loads(args.signature.read_text())
    sig = doc.get("signature", doc)
    flush = not args.no_flush
    out: dict = {"library": sig["library"], "kernel": sig["kernel"],
                 "gpu": torch.cuda.get_device_name(), "flush_l2": flush}
    loops, runs = [], []
    for _ in range(args.rounds if args.runner else 1):
        loops.append(event_loop(sig, args.iters, args.warmup, flush, args.rep_ms))
        if args.runner:
            runs.append(runner_time(sig, flush))
    out["event_loop"] = {"ms": statistics.median(x["ms"] for x in loops),
                         "ms_min": min(x["ms_min"] for x in loops), "rounds": loops}
    if args.runner:
        out["runner"] = {"ms": statistics.median(x["ms"] for x in runs),
                         "ms_min": min(x["ms_min"] for x in runs), "rounds": runs}
        diff = 100.0 * (out["runner"]["ms"] - out["event_loop"]["ms"]) / out["event_loop"]["ms"]
        out["diff_pct"] = diff
        out["within_3pct"] = abs(diff) <= 3.0
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
