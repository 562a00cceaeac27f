"""The process Nsight Compute profiles: ``python -m cutlens.bench.profile_harness REQUEST.json``.

The request is a bench run request (a signature naming the built library, the seed): the
harness marshals the sample's tensors and calls the library through its ABI exactly as the
bench worker does (:meth:`cutlens.bench.worker.Worker.kernel_call`), ``--warmup`` times outside
the profiler range, then once inside ``cudaProfilerStart``/``cudaProfilerStop`` (ncu runs with
``--profile-from-start off``): only that call's kernels are profiled. A failure prints one
``cutlens-harness: <why>`` line on stderr and exits 3.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def run(request: dict[str, Any], warmup: int) -> None:
    import torch

    from cutlens.bench.marshal import load_kernel, marshal, unload
    from cutlens.bench.worker import Worker

    if not torch.cuda.is_available():
        raise RuntimeError("no CUDA GPU is visible to the profiled process")
    m = marshal(request["signature"], "cuda", int(request.get("seed", 0)))
    lib, fn = load_kernel(m.library, m.kernel, m.argtypes())
    call, _, _keep = Worker("cuda").kernel_call("cuda", m, fn)  # the bench worker's caller
    for _ in range(warmup):
        call()
    torch.cuda.synchronize()
    torch.cuda.profiler.start()
    try:
        call()
        torch.cuda.synchronize()
    finally:
        torch.cuda.profiler.stop()
    unload(lib)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cutlens.bench.profile_harness")
    ap.add_argument("request", type=Path, help="the run request (JSON)")
    ap.add_argument("--warmup", type=int, default=3, help="calls before the profiled one")
    args = ap.parse_args(argv)
    try:
        request = json.loads(args.request.read_text())
        run(request, args.warmup)
    except Exception as e:  # one line for ncu's caller, never a traceback
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "no CUDA GPU" in first or "no CUDA-capable device" in first:
            first = "no CUDA GPU is visible to the profiled process"
            sys.stderr.write("cutlens-harness: no CUDA GPU\n")
        else:
            sys.stderr.write(f"cutlens-harness: {type(e).__name__}: {first}\n")
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
