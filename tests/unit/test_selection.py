"""One selection type and one syntax for samples × variants, applied before rendering: the
same items select the same pairs in ``render``, ``variants``, ``check`` and ``bench``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cutlens.check.jinja_tier import jinja_check
from cutlens.render.renderer import Renderer
from cutlens.template.selection import Selection

from conftest import Project

GRID = """\
{#- cutlens
kind = "cuda"
[samples.small]
X = { dtype = "float32", size = [64] }
[samples.large]
X = { dtype = "float32", size = [4096] }
[variants]
block = [64, 128, 256]
mode = ["plain", "pingpong"]
skip_if = "block == 64 and mode == 'pingpong'"
-#}
// {{ block }} {{ mode }} {{ X.get_size()[0] }}
"""


@pytest.fixture
def grid(project: Project):
    project.write("g.cu.jinja", GRID)
    return project.load("g.cu.jinja")


def names(pairs) -> list[str]:
    return [f"{s.name}/{v.name}" for s, v in pairs]


def test_every_form_of_item(grid):
    all_ = names(Selection().pairs(grid))
    assert len(all_) == 10 and all_[0] == "small/block=64 plain"
    assert names(Selection(["first"], ["first"]).pairs(grid)) == ["small/block=64 plain"]
    assert names(Selection("large", "first:2").pairs(grid)) == [
        "large/block=64 plain", "large/block=128 plain"]
    assert names(Selection([], ["3"]).pairs(grid)) == [  # index 3, as `cutlens variants` lists
        "small/block=128 pingpong", "large/block=128 pingpong"]
    assert names(Selection(["1"], ["*pingpong*"]).pairs(grid)) == [
        "large/block=128 pingpong", "large/block=256 pingpong"]
    assert names(Selection(["small"], ["block-256-plain"]).pairs(grid)) == [  # a slug
        "small/block=256 plain"]
    # a union, in the template's order
    assert names(Selection(["small"], ["block=256 plain", "first"]).pairs(grid)) == [
        "small/block=64 plain", "small/block=256 plain"]


def test_what_matches_nothing_is_named(grid):
    assert Selection(["tiny"], ["nope", "first"]).unmatched(grid) == ["tiny"]
    assert Selection([], ["nope", "first"]).unmatched(grid) == ["nope"]
    assert Selection([], ["5"]).unmatched(grid) == []  # index 5 exists...
    assert Selection([], ["1"]).unmatched(grid) == ["1"]  # ...index 1 was skipped (skip_if)


def test_applied_before_rendering(grid, project: Project):
    renderer = Renderer()
    jc = jinja_check(grid, renderer, Selection(["large"], ["*256*"]))
    assert [u.text.strip() for u in jc.units] == ["// 256 plain 4096", "// 256 pingpong 4096"]
    assert len(jc.pairs) == 2


def _cutlens(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cutlens", *args], cwd=root,
                          capture_output=True, text=True, timeout=120)


def test_the_same_syntax_on_every_command(grid, project: Project):
    sel = ["--samples", "large", "--variants", "*pingpong*"]
    out = _cutlens(project.root, "variants", "g.cu.jinja", "--format", "json", *sel)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert [s["name"] for s in doc["samples"]] == ["large"]
    assert [v["name"] for v in doc["samples"][0]["variants"]] == [
        "block=128 pingpong", "block=256 pingpong"]
    out = _cutlens(project.root, "render", "g.cu.jinja", *sel)
    assert out.returncode == 0, out.stderr
    assert [ln for ln in out.stdout.splitlines() if ln.startswith("// 1") or
            ln.startswith("// 2")] == ["// 128 pingpong 4096", "// 256 pingpong 4096"]
    out = _cutlens(project.root, "check", "g.cu.jinja", "--no-nvcc", "--format", "json", *sel)
    assert out.returncode == 0, out.stderr
    # render's default is the first sample and variant; --sample/--variant name one
    out = _cutlens(project.root, "render", "g.cu.jinja", "--sample", "large", "--variant", "4")
    assert out.returncode == 0 and "// 256 plain 4096" in out.stdout, out.stderr


def test_a_selection_that_matches_nothing_is_a_usage_error(grid, project: Project):
    for cmd in (["render", "g.cu.jinja"], ["variants", "g.cu.jinja"],
                ["check", "g.cu.jinja", "--no-nvcc"], ["bench", "g.cu.jinja", "--build-only"]):
        out = _cutlens(project.root, *cmd, "--variants", "nope")
        assert out.returncode == 2, (cmd, out.stdout, out.stderr)
        assert "nothing matches 'nope'" in out.stderr and "Traceback" not in out.stderr
