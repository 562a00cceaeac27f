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
