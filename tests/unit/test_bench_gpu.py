"""GPU tests: a real CUDA kernel library built with nvcc, run through the runner.

Marked ``gpu``; skipped cleanly where torch sees no CUDA device or nvcc is missing.
Written as plain functions around ``asyncio.run`` so they need no asyncio plugin.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import fakelib

torch = pytest.importorskip("torch")

from cutlens.bench.protocol import baseline_request, run_request  # noqa: E402
from cutlens.bench.runner import Runner  # noqa: E402

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU"),
    pytest.mark.nvcc,
]


ROOT = Path(__file__).resolve().parents[2]
TIMING = {"warmup_ms": 5, "rep_ms": 20, "min_iters": 10, "max_iters": 200, "flush_l2": True}


@pytest.fixture(scope="module")
def cudalib(tmp_path_factory) -> Path:
    major, minor = torch.cuda.get_device_capability()
    return fakelib.build_cuda(tmp_path_factory.mktemp("cudalib"), arch=f"sm_{major}{minor}")


def gemm(lib: Path, kernel: str = "cuda_gemm", **kw) -> dict:
    sig = fakelib.cuda_gemm_signature(lib, kernel, **kw)
    return run_request(sig, fakelib.CUDA_GEMM_BENCH, timing=TIMING, sample="s",
                       variant_name=kernel)


def test_gpu_run_fault_hang_restart(cudalib):
    async def go() -> None:
        async with Runner(gpus=1, timeout_s=60) as runner:
            (info,) = await runner.info()
            assert info["device"] == "cuda" and info["gpu"] == torch.cuda.get_device_name(0)

            ok = await runner.run(gemm(cudalib))
            assert ok["error"] is None, ok
            assert ok["verified"] is True and ok["workspace_bytes"] == 256
            assert ok["ms"] > 0 and ok["tflops"] > 0 and ok["gbps"] > 0
            assert ok["gpu"] == info["gpu"]
            slot = runner.slots[0]
            starts = slot.starts

            assert (await runner.run(gemm(cudalib, "cuda_fail")))["error"] == "returned 5"
            assert slot.starts == starts  # a non-zero return keeps the worker

            bad = await runner.run(gemm(cudalib, "cuda_illegal"))
            assert bad["error"] == "illegal memory access", bad
            assert bad.get("fatal") is True

            after = await runner.run(gemm(cudalib))
            assert after["error"] is None and after["verified"] is True
            assert slot.starts == starts + 1  # restarted after the fault

            hang = await runner.run({**gemm(cudalib, "cuda_hang"), "timeout_s": 10})
            assert hang["error"] == "timed out after 10 s"
            after = await runner.run(gemm(cudalib))
            assert after["error"] is None and slot.starts == starts + 2

            oom = gemm(cudalib, m=1 << 20, n=1 << 20, k=16)  # a 2 TiB output
            assert (await runner.run(oom))["error"] == "out of memory"
            assert (await runner.run(gemm(cudalib)))["error"] is None

            base = await runner.run(baseline_request(
                fakelib.cuda_gemm_signature(cudalib, m=2048, n=2048, k=2048),
                fakelib.CUDA_GEMM_BENCH, timing=TIMING, sample="s"))
            assert base["error"] is None and base["tflops"] > 10  # cuBLAS

    asyncio.run(go())


def test_gpu_large_gemm_verifies(cudalib):
    async def go() -> dict:
        async with Runner(gpus=1) as runner:
            return await runner.run(gemm(cudalib, m=1024, n=1024, k=4096))

    r = asyncio.run(go())
    assert r["error"] is None and r["verified"] is True, r


def test_fidelity_script_agrees(cudalib, tmp_path):
    sig = fakelib.cuda_gemm_signature(cudalib, m=2048, n=2048, k=2048)
    path = tmp_path / "sig.json"
    path.write_text(json.dumps(sig))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "server")}
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "event_loop_fidelity.py"),
                          str(path), "--runner"], capture_output=True, text=True, env=env,
                         timeout=600, check=True)
    doc = json.loads(out.stdout)
    assert abs(doc["diff_pct"]) < 3.0, doc


def test_gpu_baseline_strided_bf16():
    """Marshalling on the GPU: bf16, a transposed input, an offset output, a None input."""
    n = 1024
    sig = {"kernel": "unused", "library": "unused", "args": [
        {"name": "X", "kind": "input", "dtype": "bfloat16", "size": [n, n], "stride": [n, 1],
         "offset": 0},
        {"name": "W", "kind": "input", "dtype": "bfloat16", "size": [n, n], "stride": [1, n],
         "offset": 0},
        {"name": "Bias", "kind": "input", "dtype": None, "none": True},
        {"name": "Y", "kind": "output", "dtype": "bfloat16", "size": [n, n],
         "stride": [n + 8, 1], "offset": 16},
        {"name": "M", "kind": "size", "value": n}]}
    bench = {"reference": "Y = X @ W if Bias is None else X @ W + Bias",
             "flops": "2 * M * W.shape[1] * X.shape[1]"}

    async def go() -> dict:
        async with Runner(gpus=1) as runner:
            return await runner.run(baseline_request(sig, bench, timing=TIMING, sample="s"))

    r = asyncio.run(go())
    assert r["error"] is None and r["ms"] > 0 and r["tflops"] > 1, r
