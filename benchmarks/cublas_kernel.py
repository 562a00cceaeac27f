"""Which kernel torch.mm (cuBLAS) runs for a bf16 M x K @ K x N (W column-major, as the
gemm_sm90 samples), from the torch profiler (GPU host only).

    python benchmarks/cublas_kernel.py 4096 4096 4096
"""

from __future__ import annotations

import sys

import torch
from torch.profiler import ProfilerActivity, profile


def main() -> None:
    m, n, k = (int(a) for a in sys.argv[1:4])
    x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16).t()  # stride [1, K]
    for _ in range(3):
        torch.mm(x, w)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        torch.mm(x, w)
        torch.cuda.synchronize()
    for e in prof.events():
        if e.device_type.name == "CUDA":
            print(f"{m}x{n}x{k}: {e.name}")


if __name__ == "__main__":
    main()
