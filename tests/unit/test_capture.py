"""``cutlens capture`` end to end on the CPU: a GPT-2-shaped model (Hugging Face
``transformers``, built from its config with random weights, no download) under
``torch.compile`` (CPU Inductor) and eager; the samples file's shapes against the model's
linear layers; a shipped template taking them (``samples_from`` + ``[accepts]``) and
rendering on them; the failures (the program fails, captures nothing, runs past the limit)
each one message with the samples file left as it was."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cutlens.template import captured

REPO = Path(__file__).resolve().parents[2]
pytest.importorskip("transformers")

GPT2 = """\
import sys, torch
from transformers import GPT2Config, GPT2LMHeadModel
torch.manual_seed(0)
cfg = GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=64, n_positions=16)
model = GPT2LMHeadModel(cfg).to(torch.bfloat16).eval()
if "--compile" in sys.argv:
    model = torch.compile(model)
x = torch.randint(0, 64, (2, 8))
with torch.no_grad():
    for _ in range(3):
        model(x)
print("done")
"""


def cutlens(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "server")}
    return subprocess.run([sys.executable, "-m", "cutlens", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def gpt2_project(tmp_path_factory):
    """A project with a copy of gemm_sm90 and its macros, captured from the compiled model."""
    root = tmp_path_factory.mktemp("capture")
    (root / "cutlens.toml").write_text('samples_from = "captured"\n')
    (root / "t").mkdir()
    for name in ("gemm_sm90.cu.jinja", "gemm_macros.cuh.jinja"):
        shutil.copy(REPO / "templates" / name, root / "t" / name)
    (root / "train.py").write_text(GPT2)
    out = cutlens("capture", "-q", "--", sys.executable, "train.py", "--compile", cwd=root)
    assert out.returncode == 0, out.stderr + out.stdout
    return root, out


def expected_linears(tokens: int = 16, d: int = 32, vocab: int = 64) -> dict[str, tuple]:
    """(op, mat1 size, mat2 size, mat2 stride, bias size) of each linear layer of the model:
    GPT-2's Conv1D keeps its weight [in, out] (row-major); lm_head is nn.Linear (its weight
    transposed: column-major)."""
    return {"c_attn": ("addmm", [tokens, d], [d, 3 * d], [3 * d, 1], [3 * d]),
            "attn_c_proj": ("addmm", [tokens, d], [d, d], [d, 1], [d]),
            "c_fc": ("addmm", [tokens, d], [d, 4 * d], [4 * d, 1], [4 * d]),
            "mlp_c_proj": ("addmm", [tokens, 4 * d], [4 * d, d], [d, 1], [d]),
            "lm_head": ("mm", [tokens, d], [d, vocab], [1, d], None)}


def test_compiled_gpt2_shapes_match_its_linear_layers(gpt2_project):
    root, out = gpt2_project
    f = captured.read(root / ".cutlens" / "captured.toml")
    got = {s.name: (s.op, s.nodes["mat1"]["size"], s.nodes["mat2"]["size"],
                    s.nodes["mat2"]["stride"], s.nodes.get("bias", {}).get("size"))
           for s in f.samples}
    assert got == expected_linears()
    by_name = {s.name: s for s in f.samples}
    # two layers x three steps of each block's layer, merged into one sample; lm_head once
    assert by_name["c_attn"].count == 6 and by_name["lm_head"].count == 3
    assert by_name["c_attn"].modules == ["transformer.h.0.attn.c_attn",
                                         "transformer.h.1.attn.c_attn"]
    assert all(s.nodes["out"]["dtype"] == "bfloat16" for s in f.samples)
    assert abs(sum(s.weight for s in f.samples) - 1) < 1e-3
    assert f.weight_by == "count" and f.capture["device"] == "cpu"
    assert "5 sample(s) written" in out.stdout


def test_template_takes_and_renders_the_captured_samples(gpt2_project):
    root, _ = gpt2_project
    v = cutlens("variants", "t/gemm_sm90.cu.jinja", "--samples", "captured", "--format",
                "json", cwd=root)
    assert v.returncode == 0, v.stderr
    data = json.loads(v.stdout)
    names = [s["name"] for s in data["samples"]]
    assert sorted(names) == sorted(expected_linears())
    c = cutlens("check", "--no-nvcc", "t/gemm_sm90.cu.jinja", "--samples", "captured",
                "--variants", "first", cwd=root)
    assert c.returncode == 0, c.stdout + c.stderr
    r = cutlens("render", "t/gemm_sm90.cu.jinja", "--sample", "lm_head", cwd=root)
    assert r.returncode == 0, r.stderr
    assert "cutlass::bfloat16_t" in r.stdout


def test_eager_linear_capture_names_and_layouts(tmp_path):
    (tmp_path / "prog.py").write_text(
        "import torch\n"
        "class Net(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.q_proj = torch.nn.Linear(24, 40)\n"
        "        self.up = torch.nn.Linear(40, 8, bias=False)\n"
        "    def forward(self, x):\n"
        "        return self.up(self.q_proj(x))\n"
        "net = Net()\n"
        "for _ in range(4):\n"
        "    net(torch.randn(6, 24))\n"
        "net(torch.randn(6, 24)).sum().backward()  # one training step: its gradients' GEMMs\n")
    out = cutlens("capture", "-q", "-o", "s.toml", "--", sys.executable, "prog.py",
                  cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    f = captured.read(tmp_path / "s.toml")
    s = {x.name: x for x in f.samples}
    # the input needs no gradient: q_proj has one (its weight's), up two
    assert set(s) == {"q_proj", "up", "q_proj_grad", "up_grad", "up_grad_2"}
    assert s["q_proj"].op == "addmm" and s["q_proj"].count == 5
    assert not s["q_proj"].backward and s["up_grad"].backward
    # up: Y[6, 8] = X[6, 40] W^T; its gradients: dX = dY W [6, 8]x[8, 40], dW = dY^T X
    grads = sorted((x.nodes["mat1"]["size"], x.nodes["mat2"]["size"])
                   for n, x in s.items() if n.startswith("up_grad"))
    assert grads == [([6, 8], [8, 40]), ([8, 6], [6, 40])]
    assert all(x.count == 1 and x.modules == [n.split("_grad")[0]]
               for n, x in s.items() if "_grad" in n)
    assert s["q_proj"].nodes["mat2"] == {"dtype": "float32", "size": [24, 40],
                                         "stride": [1, 24]}
    assert s["up"].op == "mm" and s["up"].nodes["out"]["size"] == [6, 8]


@pytest.mark.parametrize("program, limit, message", [
    ("import sys; print('step 1'); print('boom: out of memory'); sys.exit(3)", "200",
     "failed (exit status 3)"),
    ("print('no torch math here')", "200", "ran no matmul-family op"),
    ("import time; time.sleep(600)", "3", "ran past the limit of 3 s"),
])
def test_failures_write_nothing(tmp_path, program, limit, message):
    old = "# an earlier capture, kept\n"
    (tmp_path / "s.toml").write_text(old)
    out = cutlens("capture", "-q", "--timeout", limit, "-o", "s.toml", "--", sys.executable,
                  "-c", program, cwd=tmp_path, timeout=300)
    assert out.returncode == 1
    assert message in out.stderr
    assert out.stderr.count("cutlens capture:") == 1
    if "exit status" in message:
        assert "boom: out of memory" in out.stderr  # its last lines
    assert (tmp_path / "s.toml").read_text() == old
    assert [p.name for p in tmp_path.iterdir()] == ["s.toml"]


def test_usage_errors(tmp_path):
    out = cutlens("capture", cwd=tmp_path)
    assert out.returncode == 2 and "no program" in out.stderr
    out = cutlens("capture", "--no-exec", "--", "python", "x.py", cwd=tmp_path)
    assert out.returncode == 2 and "--no-exec" in out.stderr
