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

SERVER = str(Path(__file__).resolve().parents[2] / "server")



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


def test_gpu_timings_settle_and_cpu_timings_do_not(monkeypatch):
    """On a GPU every timing goes through the steady-state protocol (settle, re-measure,
    NVML probe); on the CPU one do_bench-style timing, unjudged."""
    import cutlens.bench.worker as worker_mod

    seen: list[bool] = []

    def fake_measure(call, clock, cfg, flush, *, steady, probe):
        seen.append(steady)

    monkeypatch.setattr(worker_mod, "measure", fake_measure)
    w = Worker("cuda")
    monkeypatch.setattr(w, "_flusher", lambda dev, cfg: None)
    monkeypatch.setattr(w, "monitor", lambda: None)
    monkeypatch.setattr(w, "_clock", lambda dev: None)
    w._time(lambda: None, "cuda", TimingConfig())
    w._time(lambda: None, "cpu", TimingConfig())
    assert seen == [True, False]


def test_rounds_interleave_candidates_and_the_reference(worker, lib):
    """The finalists' op: every candidate and the reference once per round, the order
    rotating; the same library code path as ``run`` (workspace query included)."""
    from cutlens.bench.rounds import rotation

    sig = fakelib.gemm_signature(lib, "fake_gemm")
    big = fakelib.gemm_signature(lib, "fake_gemm_bigws")
    req = {"op": "rounds", "id": "r", "rounds": 3, "timing": fakelib.FAST_TIMING, "seed": 0,
           "candidates": [{"name": "a", "signature": sig, "bench": fakelib.GEMM_BENCH},
                          {"name": "b", "signature": big, "bench": fakelib.GEMM_BENCH}],
           "reference": {"signature": sig, "bench": fakelib.GEMM_BENCH}}
    r = worker.handle(req)
    assert r["error"] is None, r
    assert set(r["per_round"]) == {"a", "b", "reference"}
    assert all(len(v) == 3 and all(t > 0 for t in v) for v in r["per_round"].values())
    assert r["gpu_state"] == {"a": None, "b": None, "reference": None}  # no NVML on a CPU
    assert [rotation(["a", "b", "reference"], i)[0] for i in range(3)] == [
        "a", "b", "reference"]
    bad = worker.handle({**req, "candidates": [{"name": "x", "signature": fakelib.gemm_signature(
        lib, "fake_wsfail"), "bench": fakelib.GEMM_BENCH}]})
    assert bad["error"] == "returned 2 (workspace query)"


def test_ceilings_are_not_measured_on_the_cpu(worker):
    r = worker.handle({"op": "ceilings", "id": "c", "dtypes": ["float32"]})
    assert r["error"] == "no GPU: no ceilings"


def test_bytes_default_to_the_buffers_own_sizes(worker, lib):
    bench = {k: v for k, v in fakelib.GEMM_BENCH.items() if k != "bytes"}
    r = worker.handle(run_request(fakelib.gemm_signature(lib, "fake_gemm"), bench,
                                  timing=fakelib.FAST_TIMING))
    nbytes = (fakelib.M * fakelib.K + fakelib.K * fakelib.N + fakelib.M * fakelib.N) * 4
    assert r["bytes_from"] == "nodes"
    assert r["gbps"] == pytest.approx(nbytes / (r["ms"] * 1e-3) / 1e9)
    assert r["stable"] is None and r["gpu_state"] is None  # not judged on the CPU


def test_ceilings_measured_once_then_cached(tmp_path):
    """The ceiling probe on small CPU tensors with a recorded timer (a GEMM of 2·m·n·k flops
    at a fixed rate): the best shape wins, a dtype torch.mm cannot multiply gets no compute
    ceiling but an error, and a second call measures nothing."""
    from cutlens.bench.ceiling_probe import ceilings
    from cutlens.bench.steady import Measured
    from cutlens.bench.timing import summarize

    calls: list[int] = []

    def timer(fn, cfg):  # recorded: every call takes 1 ns
        fn()
        calls.append(1)
        return Measured(summarize([1e-6]), True, 1, 400.0, {"sm_clock_mhz": 1980})

    cache = tmp_path / "ceilings.json"
    small = {"device": "cpu", "shapes": ((64, 64, 64), (128, 64, 64)), "sizes": (1 << 16,)}
    got = ceilings(["float32", "nope"], "Fake GPU", "1.0", cache, timer, TimingConfig(),
                   **small)
    assert got["compute_tflops"] == {"float32": 1048.6}  # 2·128·64·64 flops in 1 ns
    assert got["how"]["compute"]["float32"]["best_shape"] == [128, 64, 64]
    assert got["how"]["compute"]["float32"]["shapes"][0]["gpu_state"] == {"sm_clock_mhz": 1980}
    assert got["memory_gbps"] == 131072.0  # 2 × 64 KiB in 1 ns
    assert "nope" in got["errors"] and got["cached"] == []
    n = len(calls)
    again = ceilings(["float32"], "Fake GPU", "1.0", cache, timer, TimingConfig(), **small)
    assert len(calls) == n and again["cached"] == ["float32", "memory"]
    assert again["compute_tflops"] == got["compute_tflops"]
    # another driver: measured again
    ceilings(["float32"], "Fake GPU", "2.0", cache, timer, TimingConfig(), **small)
    assert len(calls) > n
