"""``cutlens bench --samples captured`` end to end on the CPU: samples captured from a real
(eager) PyTorch program, taken by a template through ``samples_from`` + ``[accepts]``, built
by the real nvcc into a host GEMM, run by the CPU bench worker against the torch reference;
the report's ``captured`` section (per-sample winners, the weighted ratio) and the headline.
No timing is asserted, only the figures' relations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cutlens.bench.captured import headline, summary

REPO = Path(__file__).resolve().parents[2]

TEMPLATE = """\
{#- cutlens
kind = "cuda"
[accepts]
ops = ["mm", "addmm"]
dtypes = ["float32"]
nodes = { X = "mat1", W = "mat2", Bias = "bias", Y = "out" }
layouts = { X = ["row"], W = ["any"], Y = ["row"] }
[variants]
order = ["mnk", "mkn"]
[bench]
reference = "Y = torch.mm(X, W) if Bias is None else torch.addmm(Bias, X, W)"
flops = "2 * X.shape[0] * W.shape[1] * X.shape[1]"
-#}
{{ template.header() }}
{{ template.globals() }}
extern "C" {
{{ kernel.def_kernel(inputs=[X, W, Bias], outputs=[Y], names_str="X, W, Bias, Y") }} {
  const int64_t M = {{ kernel.size(X, 0) }}, K = {{ kernel.size(X, 1) }};
  const int64_t N = {{ kernel.size(W, 1) }};
  if (workspace_size) { *workspace_size = 0; return 0; }
  // host-side "kernel": the CPU bench worker calls it with host pointers
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n)
      {{ kernel.ptr(Y) }}[m * {{ kernel.stride(Y, 0) }} + n] =
{%- if Bias is not none %} {{ kernel.ptr(Bias) }}[n]{% else %} 0.0f{% endif %};
{% if order == "mnk" %}
    for (int64_t n = 0; n < N; ++n) {
      float acc = 0.0f;
      for (int64_t k = 0; k < K; ++k)
        acc += {{ kernel.ptr(X) }}[m * {{ kernel.stride(X, 0) }} + k]
             * {{ kernel.ptr(W) }}[k * {{ kernel.stride(W, 0) }} + n * {{ kernel.stride(W, 1) }}];
      {{ kernel.ptr(Y) }}[m * {{ kernel.stride(Y, 0) }} + n] += acc;
    }
{% else %}
    for (int64_t k = 0; k < K; ++k)
      for (int64_t n = 0; n < N; ++n)
        {{ kernel.ptr(Y) }}[m * {{ kernel.stride(Y, 0) }} + n] +=
            {{ kernel.ptr(X) }}[m * {{ kernel.stride(X, 0) }} + k]
            * {{ kernel.ptr(W) }}[k * {{ kernel.stride(W, 0) }} + n * {{ kernel.stride(W, 1) }}];
{% endif %}
  }
  return 0;
}
}
"""

PROGRAM = """\
import torch
class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.q_proj = torch.nn.Linear(32, 48)
        self.down = torch.nn.Linear(48, 16, bias=False)
    def forward(self, x):
        return self.down(torch.relu(self.q_proj(x)))
net = Block()
with torch.no_grad():
    for _ in range(3):
        net(torch.randn(24, 32))
    net.q_proj(torch.randn(24, 32))   # q_proj runs 4 times, down 3
"""


def cutlens(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "server")}
    return subprocess.run([sys.executable, "-m", "cutlens", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.nvcc
def test_bench_on_captured_samples(tmp_path):
    (tmp_path / "cutlens.toml").write_text(
        'samples_from = "captured"\n[bench]\ndevice = "cpu"\nwarmup_ms = 1\nrep_ms = 5\n'
        "min_iters = 3\nmax_iters = 20\nflush_bytes = 1048576\ntimeout_s = 120\n")
    (tmp_path / "g.cu.jinja").write_text(TEMPLATE)
    (tmp_path / "prog.py").write_text(PROGRAM)
    cap = cutlens("capture", "-q", "--", sys.executable, "prog.py", cwd=tmp_path)
    assert cap.returncode == 0, cap.stderr
    out = cutlens("bench", "g.cu.jinja", "--samples", "captured", "--format", "json",
                  "--jobs", "1", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rep = json.loads(out.stdout)
    assert {r["sample"] for r in rep["results"]} == {"q_proj", "down"}
    assert all(r.get("verified") is True for r in rep["results"])
    cap_sum = rep["captured"]
    assert cap_sum["weight_by"] == "count" and cap_sum["reference"] == "torch.mm"
    per = cap_sum["samples"]
    assert per["q_proj"]["weight"] == pytest.approx(4 / 7, abs=1e-4)
    assert per["down"]["weight"] == pytest.approx(3 / 7, abs=1e-4)
    for e in per.values():
        assert e["vs_torch"] == pytest.approx(e["torch_ms"] / e["best_ms"])
        assert e["winner"] == ("template" if e["best_ms"] < e["torch_ms"] else "torch")
    expect = 1 / sum(e["weight"] / e["vs_torch"] for e in per.values())
    assert cap_sum["vs_torch"] == pytest.approx(expect)
    assert "on this model's GEMMs:" in out.stderr and "torch.mm, weighted by count" in out.stderr


def test_summary_weights_by_time_and_leaves_out_failed_samples():
    """A recorded report: two samples timed, one whose every variant failed verification."""
    rep = {"results": [
        {"sample": "c_attn", "variant_name": "a", "ms": 0.5, "verified": True},
        {"sample": "c_attn", "variant_name": "b", "ms": 0.4, "verified": True},
        {"sample": "c_fc", "variant_name": "a", "ms": 2.0, "verified": True},
        {"sample": "lm_head", "variant_name": "a", "ms": 0.1, "verified": False}],
        "baseline": {"c_attn": {"ms": 0.6}, "c_fc": {"ms": 1.0}, "lm_head": {"ms": 1.0}}}
    s = summary(rep, {"c_attn": 0.5, "c_fc": 0.3, "lm_head": 0.2}, "time", "torch.mm")
    assert s["samples"]["c_attn"]["variant_name"] == "b"
    assert s["samples"]["c_attn"]["winner"] == "template"
    assert s["samples"]["c_fc"]["winner"] == "torch"
    assert s["samples"]["lm_head"]["winner"] == "torch" and "vs_torch" not in \
        s["samples"]["lm_head"]
    assert s["covered_weight"] == pytest.approx(0.8)
    # the model's GEMM time with the template: 0.5/0.8 x 0.4/0.6 + 0.3/0.8 x 2.0/1.0
    assert s["vs_torch"] == pytest.approx(1 / (0.625 * 0.4 / 0.6 + 0.375 * 2.0))
    # with per-shape winners c_fc stays torch's
    assert s["vs_torch_winners"] == pytest.approx(1 / (0.625 * 0.4 / 0.6 + 0.375))
    text = headline(s)
    assert text.startswith("on this model's GEMMs: ")
    assert "torch.mm, weighted by time (80% of the captured time benchmarked)" in text
    assert "not compared (no verified variant or no torch time): lm_head" in text
    assert summary(rep, {"lm_head": 1.0}, "time") is None
