"""benchmarks/fidelity_do_bench.py off the GPU: choosing the libraries from a sweep report,
the rotation of methods, the summary, and one measurement pass on a fake kernel with runtime
arguments (CPU worker; a plain timer standing in for do_bench, which needs a GPU)."""

from __future__ import annotations

import importlib.util
import time

import pytest

from conftest import REPO, fakelib

pytest.importorskip("torch")

_spec = importlib.util.spec_from_file_location(
    "fidelity_do_bench", REPO / "benchmarks" / "fidelity_do_bench.py")
assert _spec is not None and _spec.loader is not None
fid = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fid)


def test_top_variants_one_per_build():
    rows = [
        {"sample": "square", "variant_name": "a1", "ms": 1.0, "verified": True, "build": "A"},
        {"sample": "square", "variant_name": "a2", "ms": 1.1, "verified": True, "build": "A"},
        {"sample": "square", "variant_name": "bad", "ms": 0.5, "verified": False, "build": "C"},
        {"sample": "square", "variant_name": "b1", "ms": 1.2, "verified": True, "build": "B"},
        {"sample": "large", "variant_name": "x", "ms": 0.1, "verified": True, "build": "D"},
        {"sample": "square", "variant_name": "e", "ms": None, "verified": None, "build": "E"},
        {"sample": "square", "variant_name": "c1", "ms": 2.0, "verified": True, "build": "F"},
    ]
    assert fid.top_variants({"results": rows}, "square", 3) == ["a1", "b1", "c1"]
    assert fid.top_variants({"results": rows}, "square", 1) == ["a1"]


def test_rotation_puts_each_method_first_once():
    orders = [fid.rotation(r) for r in range(3)]
    assert {o[0] for o in orders} == set(fid.METHODS)
    assert all(sorted(o) == sorted(fid.METHODS) for o in orders)


def test_summary_and_report():
    e = fid.summarize({"rounds": [
        {"cutlens": 1.00, "do_bench": 1.02, "do_bench_uniform": 0.98},
        {"cutlens": 1.01, "do_bench": 1.00, "do_bench_uniform": 0.97},
        {"cutlens": 0.99, "do_bench": 1.01, "do_bench_uniform": 0.99}]})
    assert e["cutlens_ms"] == 1.00 and e["do_bench_ms"] == 1.01
    assert e["diff_pct"] == pytest.approx(100 * (1.00 - 1.01) / 1.01)
    assert e["data_effect_pct"] == pytest.approx(100 * (0.98 - 1.01) / 1.01)
    rep = fid.report([e, {"diff_pct": -2.5}])
    assert rep["max_abs_diff_pct"] == 2.5 and rep["within_2pct"] is False


def test_measure_on_a_fake_kernel_with_runtime_arguments(lib):
    def timer(fn, timing):
        t0 = time.perf_counter()
        for _ in range(5):
            fn()
        return (time.perf_counter() - t0) / 5 * 1e3

    todo = [("mult=3", fakelib.scale_signature(lib, 3, 0.5), "run"),
            ("mult=200", fakelib.scale_signature(lib, 200, -1.0), "run")]
    entries = fid.measure(todo, {"reference": "Y = X * mult + add"}, fakelib.FAST_TIMING,
                          rounds=3, device="cpu", bencher=timer)
    assert [e["name"] for e in entries] == ["mult=3", "mult=200"]
    for e in entries:
        assert len(e["rounds"]) == 3 and all(r["verified"] is True for r in e["rounds"])
        assert e["cutlens_ms"] > 0 and e["do_bench_ms"] > 0 and "diff_pct" in e
    # the user-style tensors: the same layout as the signature, inputs from randn
    t = fid.user_tensors(fakelib.scale_signature(lib, 1, 0.0), "cpu", "randn", 1)
    assert set(t) == {"X", "Y"} and 0.5 < float(t["X"][1].std()) < 2.0
    u = fid.user_tensors(fakelib.scale_signature(lib, 1, 0.0), "cpu", "uniform", 1)
    assert float(u["X"][1].abs().max()) <= 1.0


def test_issue18_summary(tmp_path):
    """The GPU run's summary: the square report annotated, the three-shape table, checks."""
    import json

    from cutlens.bench.report import make_report

    spec = importlib.util.spec_from_file_location("issue18_summary",
                                                  REPO / "benchmarks" / "issue18_summary.py")
    summary = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(summary)

    def results(sample: str, torch_ms: float, best_ms: float, n: int) -> list[dict]:
        rows = [{"op": "baseline", "kind": "baseline", "sample": sample, "ms": torch_ms,
                 "gpu": "NVIDIA H200"}]
        rows += [{"sample": sample, "variant_name": f"v{i}", "variant": {"i": i},
                  "ms": best_ms + i * 0.01, "verified": True, "error": None,
                  "build": f"b{i % 13}", "gpu": "NVIDIA H200"} for i in range(n)]
        return rows

    sweep = {"sweep_wall_s": 88.5, "builds": 13, "compiled": 13, "cold": True, "variants": 53}
    square = make_report(results("square", 0.19, 0.188, 53), sweep=sweep)
    shapes = make_report(results("large", 1.5, 1.45, 53) + results("skinny", 0.05, 0.051, 53),
                         sweep={**sweep, "cold": False})
    (tmp_path / "square.json").write_text(json.dumps(square))
    (tmp_path / "shapes.json").write_text(json.dumps(shapes))
    (tmp_path / "fidelity.json").write_text(json.dumps(
        {"max_abs_diff_pct": 1.2, "within_2pct": True, "libraries": [{}, {}, {}, {}]}))
    assert summary.main([str(tmp_path), "--process-wall-s", "91.25", "--jobs", "16"]) == 0
    sq = json.loads((tmp_path / "square.json").read_text())
    assert sq["process_wall_s"] == 91.25 and sq["jobs"] == 16 and sq["cold"] is True
    doc = json.loads((tmp_path / "three_shapes.json").read_text())
    assert [r["shape"] for r in doc["table"]] == ["4096³", "8192³", "1024×4096×4096"]
    assert doc["table"][0]["vs_torch"] == pytest.approx(0.19 / 0.188)
    assert doc["checks"]["square"] == {
        "cold": True, "sweep_wall_s": 88.5, "process_wall_s": 91.25, "builds": 13,
        "variants": 53, "all_verified": True, "at_least_40": True, "within_100s": True}
    assert doc["checks"]["vs_torch_at_least_1"] == {"square": True, "large": True,
                                                    "skinny": False}
    assert "| 4096³ | v0 | 0.1880 | 0.1900 | 1.011× | 53/53 |" in doc["markdown"]
    assert doc["markdown"].startswith("| bf16 GEMM (H200) |")  # the card of the run


def test_lens_check_from_recorded_rounds():
    """Issue 22's check on recorded figures: the lens latencies against interleaved do_bench
    medians, and the winner's ratio against the interleaved one."""
    report = {
        "results": [
            {"sample": "large", "variant_name": "w", "ms": 1.512, "stable": True,
             "sol_pct": 91.0, "bound": "compute", "verified": True, "build": "A"},
            {"sample": "large", "variant_name": "x", "ms": 1.640, "stable": True,
             "verified": True, "build": "B"},
            {"sample": "large", "variant_name": "lucky", "ms": 1.30, "stable": False,
             "verified": True, "build": "C"}],
        "baseline": {"large": {"ms": 1.508}},
        "best": {"large": {"variant_name": "w", "vs_torch": 0.997, "interval": [0.99, 1.004],
                           "tie": True, "from": "rounds"}},
        "finalists": {"large": [{"variant_name": "w"}, {"variant_name": "x"}]},
    }
    assert fid.lens_variants(report, "large", 3) == ["w", "x", "lucky"]
    assert fid.lens_variants({**report, "finalists": {}, "best": {}}, "large", 2) == [
        "lucky", "w"]
    per_round = {"w": [1.52, 1.50, 1.53], "x": [1.65, 1.64, 1.66],
                 "torch.mm": [1.51, 1.50, 1.52]}
    out = fid.lens_check(report, "large", per_round)
    by = {e["name"]: e for e in out["libraries"]}
    assert by["w"]["diff_pct"] == pytest.approx(100 * (1.512 - 1.52) / 1.52)
    assert by["torch.mm"]["lens_ms"] == 1.508
    assert out["within_2pct"] is True and out["unstable_best"] is False
    w = out["winner"]
    assert w["interleaved_vs_torch"] == pytest.approx(sorted(
        t / v for t, v in zip(per_round["torch.mm"], per_round["w"], strict=True))[1])
    assert w["within_1pct"] is True and out["do_bench_fastest"] == "w"
    calls = {"a": lambda: None, "b": lambda: None}
    order: list[str] = []
    got = fid.interleaved(calls, {}, 4, bencher=lambda fn, t: order.append(
        next(k for k, v in calls.items() if v is fn)) or 1.0)
    assert got == {"a": [1.0] * 4, "b": [1.0] * 4} and order == ["a", "b", "b", "a"] * 2
