"""How a template takes captured samples (``samples_from`` in cutlens.toml or front matter,
``[accepts]``): matching on op, dtypes and layouts, node mapping, each bad setting an error
on its line, the project's file taken by every declaring template, a changed samples file
seen by the next load; the merge's names and weights from recorded capture records."""

from __future__ import annotations

import tomllib
from pathlib import Path

from cutlens import config
from cutlens.capture.merge import merge
from cutlens.capture.write import to_toml
from cutlens.template import captured
from cutlens.template.loader import load
from cutlens.template.selection import Selection

from conftest import line_of

FILE = """\
[capture]
weight_by = "count"

[samples.up]
op = "addmm"
count = 3
weight = 0.75
bias = { dtype = "float16", size = [64], stride = [1] }
mat1 = { dtype = "float16", size = ["s0", 32], stride = [32, 1] }
mat2 = { dtype = "float16", size = [32, 64], stride = [1, 32] }
out = { dtype = "float16", size = ["s0", 64], stride = [64, 1] }
hints = { s0 = 128 }
seen = { s0 = [128, 256] }

[samples.down]
op = "mm"
count = 1
weight = 0.25
mat1 = { dtype = "float16", size = [128, 64], stride = [1, 128] }
mat2 = { dtype = "float16", size = [64, 32], stride = [32, 1] }
out = { dtype = "float16", size = [128, 32], stride = [32, 1] }
"""

HEAD = """\
{#- cutlens
kind = "cuda"
"""
OWN = """\
[samples.own]
X = { dtype = "float16", size = [8, 8] }
W = { dtype = "float16", size = [8, 8] }
Bias = false
Y = { dtype = "float16", size = [8, 8] }
"""
ACCEPTS = """\
[accepts]
ops = ["mm", "addmm"]
dtypes = ["float16"]
nodes = { X = "mat1", W = "mat2", Bias = "bias", Y = "out" }
layouts = { X = ["row"], W = ["row", "col"] }
"""
TAIL = "-#}\n// {{ X.get_size() }}\n"


def project(tmp_path: Path, front: str, toml: str = 'samples_from = "captured"\n',
            file: str | None = FILE, top: str = ""):
    (tmp_path / "cutlens.toml").write_text(toml)
    if file is not None:
        (tmp_path / ".cutlens").mkdir(exist_ok=True)
        (tmp_path / ".cutlens" / "captured.toml").write_text(file)
    text = HEAD + top + OWN + front + TAIL
    (tmp_path / "g.cu.jinja").write_text(text)
    return load(tmp_path / "g.cu.jinja", config.load(tmp_path)), text


def test_project_samples_from_and_accepts(tmp_path):
    t, _ = project(tmp_path, ACCEPTS)
    assert not t.errors
    names = [s.name for s in t.samples]
    assert names == ["own", "up"]  # down's X is column-major: the template takes row only
    up = t.sample("up")
    assert up.origin == "captured" and up.weight == 0.75 and up.hints == {"s0": 128}
    assert up.nodes["W"].describe() == "float16[32, 64] stride [1, 32]"
    assert str(up.nodes["X"].get_size()[0]) == "s0"
    assert t.captured.skipped == [("down", "X is col-major (the template accepts row)")]
    picked = Selection(["captured"]).pick_samples(t)[0]
    assert [s.name for s in picked] == ["up"]


def test_a_changed_samples_file_is_seen_by_the_next_load(tmp_path):
    t, _ = project(tmp_path, ACCEPTS.replace('X = ["row"]', 'X = ["any"]'))
    assert [s.name for s in t.samples] == ["own", "up", "down"]
    (tmp_path / ".cutlens" / "captured.toml").write_text(FILE.split("[samples.down]")[0])
    t2 = load(tmp_path / "g.cu.jinja", t.config)
    assert [s.name for s in t2.samples] == ["own", "up"]


def test_bad_accepts_entries_are_errors_on_their_lines(tmp_path):
    bad = ACCEPTS.replace('"mm", "addmm"', '"mm", "gemm"').replace(
        '["row", "col"]', '["row", "diagonal"]')
    t, text = project(tmp_path, bad)
    msgs = {d.line: d.message for d in t.errors}
    assert "'gemm' is not one of" in msgs[line_of(text, "ops =")]
    assert "'diagonal' is not one of 'row', 'col', 'any'" in msgs[line_of(text, "layouts =")]
    t, text = project(tmp_path, ACCEPTS.replace('["float16"]', '["float17"]'))
    assert [(d.line, "unknown dtype 'float17'" in d.message) for d in t.errors] == [
        (line_of(text, "dtypes ="), True)]


def test_own_samples_from_without_accepts_or_file_warns_on_its_line(tmp_path):
    t, text = project(tmp_path, "", toml="", top='samples_from = "captured"\n')
    (w,) = t.errors
    assert w.severity == "warning" and w.line == line_of(text, "samples_from")
    assert "add an [accepts] table" in w.message
    t, text = project(tmp_path, ACCEPTS, toml="", top='samples_from = "gpt2.toml"\n')
    (w,) = t.errors
    assert w.line == line_of(text, "samples_from") and "gpt2.toml" in w.message
    assert [s.name for s in t.samples] == ["own"]


def test_the_projects_missing_default_file_is_quiet(tmp_path):
    t, _ = project(tmp_path, ACCEPTS, file=None)
    assert not t.errors and [s.name for s in t.samples] == ["own"]
    assert t.captured.error is not None


def test_merge_names_weights_and_symbolic_sizes():
    """Recorded hook output: a dynamic-M compiled graph (two layers of one shape) run at two
    M values, and an eager op; merged by shape, named by module, weighted by time."""
    sym = [["s0", 128], 32]
    graph = [{"op": "addmm", "module": f"model.layers.{i}.mlp.up_proj", "epilogue": ["relu"],
              "inputs": [{"dtype": "bfloat16", "size": [64], "stride": [1]},
                         {"dtype": "bfloat16", "size": sym, "stride": [32, 1]},
                         {"dtype": "bfloat16", "size": [32, 64], "stride": [1, 32]}],
              "output": {"dtype": "bfloat16", "size": [["s0", 128], 64], "stride": [64, 1]}}
             for i in (0, 1)]

    def call(m, n, us, module=None):
        return {"op": "addmm", "shapes": [[64], [m, 32], [32, 64], [], []], "strides": [],
                "dtypes": ["bfloat16"] * 3 + ["Scalar"] * 2, "module": module,
                "count": n, "device_us": us}
    raw = {"gpu": True, "graph_nodes": graph, "calls": [
        call(128, 6, 300.0), call(256, 2, 200.0),
        {"op": "mm", "shapes": [[8, 32], [32, 16]], "strides": [[32, 1], [16, 1]],
         "dtypes": ["float32", "float32"], "module": "head", "count": 1, "device_us": 500.0}]}
    up, head = merge(raw)
    assert (up.name, up.op, up.count) == ("up_proj", "addmm", 8)
    assert up.modules == ["model.layers.0.mlp.up_proj", "model.layers.1.mlp.up_proj"]
    assert up.nodes["mat1"] == {"dtype": "bfloat16", "size": ["s0", 32], "stride": [32, 1]}
    assert up.nodes["mat2"]["stride"] == [1, 32]  # from the graph: the profiler gave none
    assert up.hints == {"s0": 128} and up.seen == {"s0": [128, 256]}
    assert up.epilogue == ["relu"] and up.time_ms == 0.5 and up.weight == 0.5
    assert (head.name, head.weight, head.nodes["out"]["size"]) == ("head", 0.5, [8, 16])
    assert head.nodes["mat1"]["dtype"] == "float32"
    back = tomllib.loads(to_toml([up, head], {"weight_by": "time"}))["samples"]
    assert back["up_proj"]["mat1"] == up.nodes["mat1"] and back["head"]["weight"] == 0.5
    assert captured.layout_of(back["up_proj"]["mat2"]) == "col"


def test_merge_names_gradients_after_their_module():
    """Recorded records of a compiled training step: a forward addmm and the two mm of its
    gradients (graph nodes tagged backward), and attention's two bmm in one module."""
    def node(op, sizes, module, backward=False):
        names = {"addmm": 3, "mm": 2, "bmm": 2}[op]
        ins = [{"dtype": "float32", "size": sz, "stride": [1] if len(sz) == 1 else
                [sz[1], 1] if len(sz) == 2 else [sz[1] * sz[2], sz[2], 1]} for sz in sizes]
        return {"op": op, "inputs": ins[:names], "output": None, "module": module,
                "epilogue": [], "backward": backward}

    def call(op, sizes):
        return {"op": op, "shapes": sizes, "strides": [], "dtypes": ["float32"] * len(sizes),
                "module": None, "count": 2, "device_us": 0.0}

    fwd = [[64], [16, 32], [32, 64]]
    g1, g2 = [[16, 64], [64, 32]], [[64, 16], [16, 32]]
    b1, b2 = [[4, 8, 16], [4, 16, 8]], [[4, 8, 8], [4, 8, 16]]
    raw = {"gpu": False, "graph_nodes": [
        node("addmm", fwd, "h.0.mlp.c_fc"), node("mm", g1, "h.0.mlp.c_fc", True),
        node("mm", g2, "h.0.mlp.c_fc", True), node("bmm", b1, "h.0.attn"),
        node("bmm", b2, "h.0.attn")],
        "calls": [call("addmm", fwd), call("mm", g1), call("mm", g2), call("bmm", b1),
                  call("bmm", b2)]}
    names = {s.name: s.backward for s in merge(raw)}
    assert names == {"c_fc": False, "c_fc_grad": True, "c_fc_grad_2": True,
                     "attn_bmm": False, "attn_bmm_2": False}
