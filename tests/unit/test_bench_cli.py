"""``cutlens bench`` end to end on the CPU: a real template rendered and built by nvcc into a
shared library whose kernel computes on the host, run by CPU workers, verified against the
torch reference, stored, printed as JSON, compared and plotted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cutlens.results.store import ResultStore

pytestmark = pytest.mark.nvcc

TEMPLATE = """\
{#- cutlens
kind = "cuda"
[samples.vec]
X = { dtype = "float32", size = [64, 32] }
Bias = { dtype = "float32", size = [32] }
Y = { dtype = "float32", size = [64, 32] }
[samples.nobias]
X = { dtype = "float32", size = [16, 32] }
Bias = false
Y = { dtype = "float32", size = [16, 32] }
[variants]
unroll = [1, 2]
fail = [false, true]
skip_if = "fail and unroll == 2"
[bench]
reference = "Y = X * 2 + (Bias if Bias is not None else 0)"
bytes = "2 * X.numel() * 4"
-#}
{{ template.header() }}
{{ template.globals() }}
extern "C" {
{{ kernel.def_kernel(inputs=[X, Bias], outputs=[Y], names_str="X, Bias, Y") }} {
  const int64_t rows = {{ kernel.size(X, 0) }}, cols = {{ kernel.size(X, 1) }};
  if (workspace_size) { *workspace_size = 256; return 0; }
  if (!workspace) return 2;
{% if fail %}  return 3;{% endif %}
  // host-side "kernel": the CPU bench worker calls it with host pointers
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; c += {{ unroll }})
      for (int u = 0; u < {{ unroll }}; ++u)
        {{ kernel.ptr(Y) }}[r * {{ kernel.stride(Y, 0) }} + c + u] =
            2.0f * {{ kernel.ptr(X) }}[r * {{ kernel.stride(X, 0) }} + c + u]
{%- if Bias is not none %} + {{ kernel.ptr(Bias) }}[c + u]{% endif %};
  return 0;
}
}
"""


def bench(root, *args):
    return subprocess.run([sys.executable, "-m", "cutlens", "bench", str(root / "v.cu.jinja"),
                           *args], capture_output=True, text=True, cwd=root, timeout=600)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    (root / "cutlens.toml").write_text(
        '[bench]\ndevice = "cpu"\nwarmup_ms = 1\nrep_ms = 5\nmin_iters = 5\n'
        "max_iters = 50\nflush_bytes = 1048576\ntimeout_s = 120\n")
    (root / "v.cu.jinja").write_text(TEMPLATE)
    out = bench(root, "--format", "json", "-o", str(root / "first.json"))
    # exit 1: the planted "unroll=1 fail" variant fails (returns 3) in both samples
    assert out.returncode == 1, out.stderr
    assert "cutlens bench: 2 result(s) failed" in out.stderr
    return root, json.loads(out.stdout)


def test_sweep_results_verified_and_failures_reported(workspace):
    _root, rep = workspace
    rows = {(r["sample"], r["variant_name"]): r for r in rep["results"]}
    assert set(rows) == {(s, v) for s in ("vec", "nobias")
                         for v in ("unroll=1 no-fail", "unroll=2 no-fail", "unroll=1 fail")}
    ok = rows[("vec", "unroll=2 no-fail")]
    assert ok["verified"] is True and ok["error"] is None
    assert ok["workspace_bytes"] == 256 and ok["ms"] > 0 and ok["gbps"] > 0
    assert rows[("nobias", "unroll=1 no-fail")]["verified"] is True  # Bias bound as None
    assert rows[("vec", "unroll=1 fail")]["error"] == "returned 3"
    assert set(rep["baseline"]) == {"vec", "nobias"} and rep["baseline"]["vec"]["ms"] > 0
    assert rep["nvcc"].startswith("13.")
    # the JSON contract (issue 22): on the CPU nothing is judged or measured against a peak
    assert {"ceilings", "finalists"} <= set(rep) and rep["ceilings"] is None
    for r in rep["results"]:
        assert {"sol_pct", "bound", "stable", "gpu_state"} <= set(r), r
    assert ok["stable"] is None and ok["gpu_state"] is None and ok["sol_pct"] is None


def test_results_are_stored(workspace):
    root, _ = workspace
    store = ResultStore(root)
    runs = store.history()
    assert len(runs) >= 8  # 6 variants + 2 baselines
    assert {r["kind"] for r in runs} == {"variant", "baseline"}


def test_compare_exits_1_on_regression(workspace):
    """Deterministic: the baselines claim times no measurement can reach (a picosecond, an
    hour), so the verdict does not depend on how fast this machine ran the kernel."""
    root, _rep = workspace
    first = json.loads((root / "first.json").read_text())

    def claiming(ms: float) -> Path:
        doc = json.loads(json.dumps(first))
        for r in doc["results"]:
            if r["ms"]:
                r["ms"] = ms
        path = root / f"claims-{ms:g}.json"
        path.write_text(json.dumps(doc))
        return path

    out = bench(root, "--variants", "unroll=2 no-fail", "--sample", "vec", "--format", "csv",
                "--compare", str(claiming(1e-9)), "--threshold", "50", "--no-baseline")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "unroll=2 no-fail" in out.stdout
    assert "1 regression(s) beyond 50%" in out.stderr  # beside CSV: on stderr
    same = bench(root, "--variants", "2", "--sample", "vec", "--compare",
                 str(claiming(3.6e6)), "--threshold", "5", "--plot", str(root / "p.png"))
    assert same.returncode == 0, same.stdout + same.stderr
    assert "no regression beyond 5%" in same.stdout and "1 improvement(s)" in same.stdout
    assert (root / "p.png").read_bytes()[:4] == b"\x89PNG"
    # a variant that failed in the baseline and fails now is no regression, but a failure
    fails = bench(root, "--variants", "1", "--sample", "vec", "--compare",
                  str(root / "first.json"), "--no-baseline")
    assert fails.returncode == 1 and "no regression beyond 5%" in fails.stdout
    assert "cutlens bench: 1 result(s) failed" in fails.stderr


def test_two_local_workers_give_the_same_verified_results(workspace):
    root, first = workspace
    assert (first["executor"], first["workers"]) == ("local", 1)
    before = len(ResultStore(root).history())
    out = bench(root, "--gpus", "0,0", "--format", "json")
    assert out.returncode == 1, out.stderr  # the planted failing variant
    rep = json.loads(out.stdout)
    assert (rep["executor"], rep["workers"]) == ("local", 2)

    def outcome(r):
        return r["sample"], r["variant_name"], r["verified"], r["error"]

    assert sorted(map(outcome, rep["results"])) == sorted(map(outcome, first["results"]))
    assert set(rep["baseline"]) == set(first["baseline"])
    n = len(rep["results"]) + len(rep["baseline"])
    history = ResultStore(root).history()  # newest first
    assert len(history) - before == n
    assert {r["raw"]["worker"] for r in history[:n]} == {0, 1}  # both workers took work


@pytest.mark.parametrize("build_only", [False, True])
def test_missing_nvcc_is_one_usage_error(tmp_path, build_only):
    (tmp_path / "cutlens.toml").write_text('nvcc = "/nonexistent/bin/nvcc"\n'
                                           '[bench]\ndevice = "cpu"\n')
    (tmp_path / "v.cu.jinja").write_text(TEMPLATE)
    r = bench(tmp_path, "--format", "json", *(["--build-only"] if build_only else []))
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("/nonexistent/bin/nvcc") == 1
    assert r.stderr.startswith("cutlens bench: configured nvcc") and "Traceback" not in r.stderr
    assert r.stdout == ""
    assert not (tmp_path / ".cutlens" / "results.sqlite").exists() or \
        ResultStore(tmp_path).history() == []
