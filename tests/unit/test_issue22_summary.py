"""benchmarks/issue22_summary.py on recorded sweep and check JSON (no GPU)."""

from __future__ import annotations

import importlib.util
import json

from conftest import REPO

_spec = importlib.util.spec_from_file_location(
    "issue22_summary", REPO / "benchmarks" / "issue22_summary.py")
assert _spec is not None and _spec.loader is not None
summary = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(summary)


def test_summary_from_recorded_runs(tmp_path):
    sweep = {
        "gpu": "NVIDIA H100 80GB HBM3", "sweep_wall_s": 96.2, "builds": 13, "cold": True,
        "ceilings": {"gpu": "NVIDIA H100 80GB HBM3", "driver": "580.82.07",
                     "compute_tflops": {"bfloat16": 794.6}, "memory_gbps": 2900.0},
        "results": [
            {"sample": "large", "variant_name": "w", "ms": 1.512, "verified": True,
             "stable": True, "sol_pct": 91.5, "bound": "compute"},
            {"sample": "large", "variant_name": "lucky", "ms": 1.30, "verified": True,
             "stable": False, "sol_pct": 95.0, "bound": "compute"},
            {"sample": "large", "variant_name": "bad", "ms": None, "verified": None,
             "error": "returned 7", "stable": None}],
        "best": {"large": {"variant_name": "w", "ms": 1.512, "vs_torch": 0.997,
                           "interval": [0.99, 1.004], "tie": True, "from": "rounds"}},
        "finalists": {"large": [{"variant_name": "w", "ms": 1.512}]},
    }
    check = {"gpu": "NVIDIA H100 80GB HBM3", "max_abs_diff_pct": 0.8, "within_2pct": True,
             "libraries": [{"name": "w", "lens_ms": 1.512, "do_bench_ms": 1.52,
                            "diff_pct": -0.53, "stable": True, "do_bench_rounds": [1.52]}],
             "winner": {"name": "w", "report_vs_torch": 0.997,
                        "interleaved_vs_torch": 0.993, "within_1pct": True}}
    (tmp_path / "sweep_large.json").write_text(json.dumps(sweep))
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "check_large.json").write_text(json.dumps(check))
    assert summary.main([str(tmp_path), "--checks", str(checks)]) == 0
    doc = json.loads((tmp_path / "issue22.json").read_text())
    large = next(x for x in doc["shapes"] if x["sample"] == "large")
    assert large["verified"] == 2 and large["unstable"] == 1
    assert large["best_is_unstable"] is False and large["every_verified_row_has_sol"] is True
    assert large["within_2pct"] is True and large["winner_within_1pct"] is True
    assert doc["no_unstable_best"] is True and doc["complete"] is False  # two shapes missing
    table = (tmp_path / "summary.md").read_text()
    assert "| large | 96 | 2 | 1 | w | 1.5120 | 92% compute | 0.997 [0.990–1.004] tie | 0.993 " \
           "| 0.80 % |" in table
    assert "bfloat16 794.6 TFLOP/s; copy 2900.0 GB/s" in table
