"""``cutlens lsp --headless`` reports exactly what ``cutlens check`` reports on the same
tree: CI sees what an editor sees."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.nvcc

GOOD = """\
{#- cutlens
kind = "cuda"
[samples.a]
X = { dtype = "float32", size = [256] }
[variants]
n = [1, 2]
-#}
{% import "parts.cuh.jinja" as p %}
#include <cstdint>
__global__ void k(float* x) { x[threadIdx.x] *= {{ n }}; }
{{ p.helper(n) }}
"""
PARTS = """\
{% macro helper(n) %}
static int helper_{{ n }}() { return {{ n }}{% if n == 2 %} + missing_symbol{% endif %}; }
{% endmacro %}
"""
JINJA_BAD = """\
{#- cutlens
kind = "cuda"
[variants]
v = [1]
-#}
int a = {{ undefined_name }};
"""


def run(args, cwd):
    return subprocess.run([sys.executable, "-m", "cutlens", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


def test_headless_matches_check(tmp_path):
    (tmp_path / "good.cu.jinja").write_text(GOOD)
    (tmp_path / "parts.cuh.jinja").write_text(PARTS)
    (tmp_path / "bad.cu.jinja").write_text(JINJA_BAD)
    check = run(["check", ".", "--format", "json"], tmp_path)
    headless = run(["lsp", "--headless", ".", "--format", "json"], tmp_path)
    assert check.returncode == headless.returncode == 1, check.stderr + headless.stderr
    a, b = json.loads(check.stdout), json.loads(headless.stdout)
    assert a == b
    msgs = sorted((d["file"], d["line"], d["message"]) for d in a["diagnostics"])
    assert ("bad.cu.jinja", 6, "'undefined_name' is undefined") in msgs
    assert ("parts.cuh.jinja", 2, 'identifier "missing_symbol" is undefined') in msgs
    part = next(d for d in a["diagnostics"] if d["file"] == "parts.cuh.jinja")
    assert part["variants"] == ["n=2"] and part["related"][0]["file"] == "good.cu.jinja"
    # n = 2 cannot compile (the partial's missing_symbol): the validity pass says so on the
    # key's line and the grid's, in both
    assert {k: a["summary"][k] for k in ("templates", "errors", "infos")} == {
        "templates": 2, "errors": 2, "infos": 0}
    others = [d for d in a["diagnostics"]
              if d["severity"] == "warning" and d.get("code") != "invalid-variant"]
    assert a["summary"]["warnings"] == len(others) + 2
    invalid = sorted((d["line"], d["message"].split(":")[0]) for d in a["diagnostics"]
                     if d.get("code") == "invalid-variant")
    assert invalid == [(5, "1 of 2 variants cannot compile"),
                       (6, "1 variant(s) cannot compile with n = 2")]
