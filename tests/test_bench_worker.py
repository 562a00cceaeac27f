"""The worker on the CPU: workspace protocol, run, verify, time against the fake library."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import fakelib

torch = pytest.importorskip("torch")

from cutlens.bench.protocol import TimingConfig, baseline_request, run_request  # noqa: E402
from cutlens.bench.worker import Worker, classify_error  # noqa: E402

SERVER = str(Path(__file__).resolve().parents[1] / "server")



@pytest.fixture(scope="module")
def worker() -> Worker:
    return Worker("cpu")


def run(worker: Worker, lib: Path, kernel: str = "fake_gemm", bias: bool = False,
        **bench) -> dict:
    req = run_request(fakelib.gemm_signature(lib, kernel, bias),
                      {**fakelib.GEMM_BENCH, **bench}, timing=fakelib.FAST_TIMING)
    return worker.handle(req)


def test_full_run(worker, lib):
    r = run(worker, lib)
    assert r["error"] is None, r
    assert r["verified"] is True and r["max_abs_err"] < 1e-4
    assert r["workspace_bytes"] == 1024  # the kernel's query answer, and it got them
    assert r["ms"] > 0 and r["ms_min"] <= r["ms"] <= r["ms_max"]
    assert r["iters"] >= fakelib.FAST_TIMING["min_iters"]
    # the interquartile spread lies within the whole range, as a share of the median
    assert 0 <= r["spread_pct"] <= 100 * (r["ms_max"] - r["ms_min"]) / r["ms"] + 1e-9
    flops = 2 * fakelib.M * fakelib.N * fakelib.K
    assert r["tflops"] == pytest.approx(flops / (r["ms"] * 1e-3) / 1e12)
    nbytes = (fakelib.M * fakelib.K + fakelib.K * fakelib.N + fakelib.M * fakelib.N) * 4
    assert r["gbps"] == pytest.approx(nbytes / (r["ms"] * 1e-3) / 1e9)


def test_bias_input_and_big_workspace(worker, lib):
    assert run(worker, lib, bias=True)["verified"] is True
    r = run(worker, lib, "fake_gemm_bigws")
    assert r["verified"] is True and r["workspace_bytes"] == 1 << 20


def test_wrong_result_fails_verification(worker, lib):
    r = run(worker, lib, "fake_gemm_wrong")
    assert r["verified"] is False and r["ms"] is None
    assert r["error"].startswith("mismatch: Y: max abs err 0.5")
    assert r["max_abs_err"] == pytest.approx(0.5, abs=1e-3)


def test_wrong_result_timed_on_request(worker, lib):
    req = run_request(fakelib.gemm_signature(lib, "fake_gemm_wrong"), fakelib.GEMM_BENCH,
                      timing=fakelib.FAST_TIMING)
    req["time_unverified"] = True
    r = worker.handle(req)
    assert r["verified"] is False and r["ms"] > 0 and r["error"].startswith("mismatch")


def test_unwritten_output_fails(worker, lib):
    r = run(worker, lib, "fake_gemm_partial")
    assert r["verified"] is False and "NaN" in r["error"]


def test_tolerance_override_admits_wrong_result(worker, lib):
    assert run(worker, lib, "fake_gemm_wrong", atol=0.6)["verified"] is True


def test_nonzero_returns(worker, lib):
    assert run(worker, lib, "fake_fail")["error"] == "returned 7"
    assert run(worker, lib, "fake_wsfail")["error"] == "returned 2 (workspace query)"


def test_no_reference_is_unverified(worker, lib):
    r = run(worker, lib, reference="")
    assert r["verified"] is None and r["error"] is None and r["ms"] > 0


def test_bad_flops_expression_warns(worker, lib):
    r = run(worker, lib, flops="X.nope")
    assert r["error"] is None and r["tflops"] is None
    assert any("bench.flops" in w for w in r["warnings"])


def test_bad_requests(worker, lib, tmp_path):
    r = worker.handle({"op": "run", "id": "x", "signature": fakelib.gemm_signature(
        tmp_path / "missing.so"), "bench": {}, "timing": fakelib.FAST_TIMING})
    assert r["id"] == "x" and "cannot load" in r["error"]
    r = run(worker, lib, reference="Y = X @ X")
    assert r["error"].startswith("reference failed")
    assert worker.handle({"op": "nope", "id": 1})["error"] == "unknown op 'nope'"


def test_baseline(worker, lib):
    req = baseline_request(fakelib.gemm_signature(lib), fakelib.GEMM_BENCH,
                           timing=fakelib.FAST_TIMING, sample="s")
    r = worker.handle(req)
    assert r["error"] is None and r["op"] == "baseline"
    assert r["ms"] > 0 and r["tflops"] > 0 and r["gbps"] > 0


def test_info(worker):
    r = worker.handle({"op": "info", "id": 3})
    assert r["device"] == "cpu" and r["gpu"].startswith("cpu") and r["id"] == 3


def test_classify_errors():
    cuda_msg = ("CUDA error: an illegal memory access was encountered\n"
                "CUDA kernel errors might be asynchronously reported")
    assert classify_error(RuntimeError(cuda_msg), "cuda") == ("illegal memory access", True)
    assert classify_error(RuntimeError("CUDA error: misaligned address"), "cuda") == (
        "misaligned address", True)
    assert classify_error(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried"), "cuda") == (
        "out of memory", True)
    assert classify_error(RuntimeError("CUDA error: something new"), "cuda") == (
        "CUDA error: something new", True)
    assert classify_error(ValueError("x"), "cuda") == ("ValueError: x", False)
    assert classify_error(RuntimeError("CUDA error: x"), "cpu")[1] is False


def test_protocol_stream_stays_clean(lib):
    """A kernel printing to stdout must not corrupt the JSON-line stream."""
    reqs = [run_request(fakelib.add_signature(lib), {"reference": "Y = X + 1"},
                        timing=fakelib.FAST_TIMING, id="a"),
            {"op": "info", "id": "b"}, {"op": "exit", "id": "c"}]
    env = {**os.environ, "PYTHONPATH": SERVER}
    p = subprocess.run([sys.executable, "-m", "cutlens.bench.worker", "--device", "cpu"],
                       input="".join(json.dumps(r) + "\n" for r in reqs), capture_output=True,
                       text=True, env=env, timeout=120)
    lines = [json.loads(line) for line in p.stdout.splitlines()]  # every line is JSON
    assert [x.get("id") for x in lines] == [None, "a", "b", "c"]
    assert lines[0]["op"] == "hello"
    assert lines[1]["verified"] is True and lines[1]["error"] is None
    assert "fake_add_noisy" in p.stderr
    assert p.returncode == 0


def test_a_timing_after_an_idle_gpu_warms_up_longer(monkeypatch):
    """The first timing, and one after a pause, adds RAMP_MS of warm-up (the GPU's clocks
    dropped while it was idle); back-to-back timings use the configured warm-up."""
    import cutlens.bench.worker as worker_mod

    seen: list[float] = []
    monkeypatch.setattr(worker_mod, "bench", lambda call, clock, cfg, flush: seen.append(
        cfg.warmup_ms))
    w = Worker("cuda")
    monkeypatch.setattr(w, "_flusher", lambda dev, cfg: None)
    cfg = TimingConfig(warmup_ms=25.0)
    w._time(lambda: None, "cuda", cfg)
    w._time(lambda: None, "cuda", cfg)
    w._busy_until -= 2 * worker_mod.IDLE_S
    w._time(lambda: None, "cuda", cfg)
    w._time(lambda: None, "cpu", cfg)  # no clocks to ramp on the CPU
    assert seen == [25.0 + worker_mod.RAMP_MS, 25.0, 25.0 + worker_mod.RAMP_MS, 25.0]
