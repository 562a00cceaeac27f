"""Hints for known causes of opaque build errors (issue 26): each from a real nvcc run, the
hint as related information on the same diagnostic, in text, JSON, SARIF and the editor."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from cutlens.check import formats
from cutlens.check.run import check_paths
from cutlens.diagnostics import Diagnostic
from cutlens.nvcc import causes
from cutlens.nvcc.output import parse

from conftest import HAS_NVCC

pytestmark = [pytest.mark.nvcc, pytest.mark.skipif(not HAS_NVCC, reason="needs nvcc")]

#: One template per cause: its text, and the hint's words.
CASES = {
    "curand": ("#include <curand_kernel.h>\n__global__ void k() {}\n",
               "curand_kernel.h is cuRAND's (CUTLASS's tools/util tensor_fill.h includes it)"),
    "cutlass": ("#include <cutlass/cutlass.h>\n__global__ void k() {}\n",
                "CUTLASS's headers are not on the include path"),
    "sm90a": ('__global__ void k() {\n  asm volatile("wgmma.fence.sync.aligned;\\n");\n}\n',
              'wgmma exists only on the arch-specific target sm_90a, not sm_90: set arch = '
              '"sm_90a"'),
    "killed": ("__global__ void k() {}\n",
               "a compiler process was killed, most often by the out-of-memory killer"),
}
#: A host compiler killed by SIGKILL while it preprocesses the unit (as the OOM killer does).
KILLING_CCBIN = '#!/bin/sh\nfor a in "$@"; do case "$a" in *.cu) kill -9 $$;; esac; done\n' \
                'exec gcc "$@"\n'


@pytest.fixture(scope="module")
def causes_project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("causes")
    (root / "cutlens.toml").write_text('arch = "sm_90"\ncutlass = false\n')
    for name, (text, _) in CASES.items():
        (root / f"{name}.cu.jinja").write_text(text)
    ccbin = root / "killcc"
    ccbin.write_text(KILLING_CCBIN)
    ccbin.chmod(0o755)
    return root


def hinted_check(root: Path, name: str, monkeypatch) -> list[Diagnostic]:
    """A clean environment (no cuRAND dir on CPATH), and the killing host compiler for the
    ``killed`` case."""
    monkeypatch.delenv("CPATH", raising=False)
    if name == "killed":
        monkeypatch.setenv("NVCC_CCBIN", str(root / "killcc"))
    return check_paths([root / f"{name}.cu.jinja"], jobs=1).diagnostics


@pytest.mark.parametrize("name", list(CASES))
def test_each_known_cause_gets_its_hint_on_the_same_diagnostic(causes_project: Path,
                                                                name: str, monkeypatch):
    diags = hinted_check(causes_project, name, monkeypatch)
    errs = [d for d in diags if d.severity == "error"]
    assert errs, diags
    for d in errs:
        hint = d.related[0]
        assert (hint.file, hint.line) == (d.file, d.line)
        assert hint.message.startswith("hint: " + CASES[name][1]), hint.message
        assert "\n" not in hint.message
    # every output carries it
    hint = errs[0].related[0].message
    assert f": note: {hint}" in formats.text(errs)
    doc = json.loads(formats.to_json(errs, 1))
    assert doc["diagnostics"][0]["related"][0]["message"] == hint
    sarif = json.loads(formats.sarif(errs))["runs"][0]["results"][0]
    assert sarif["relatedLocations"][0]["message"]["text"] == hint


def test_the_curand_hint_names_the_installed_wheels_dir(causes_project: Path, monkeypatch):
    dirs = causes.curand_include_dirs()
    if not dirs:
        pytest.skip("no nvidia-curand wheel installed")
    (d,) = hinted_check(causes_project, "curand", monkeypatch)
    assert f"export CPATH={os.pathsep.join(dirs)}" in d.related[0].message
    monkeypatch.setenv("CPATH", dirs[0])  # the fix the hint gives: clean
    assert check_paths([causes_project / "curand.cu.jinja"], jobs=1).diagnostics == []


def test_a_cicc_killed_by_signal_9_gets_the_hint_from_recorded_output():
    """nvcc's own wording when the OOM killer takes cicc (recorded from a real run)."""
    (m,) = [m for m in parse("nvcc error   : 'cicc' died due to signal 9 (Kill signal)\n")
            if m.severity == "error"]
    d = Diagnostic("t.cu.jinja", 1, m.message, source="nvcc")
    causes.add_hints([d])
    assert d.related[0].message.startswith("hint: a compiler process was killed")


def test_no_hint_for_other_errors():
    d = Diagnostic("t.cu.jinja", 3, "v.h: No such file or directory", source="nvcc")
    e = Diagnostic("t.cu.jinja", 3, 'identifier "x" is undefined', source="nvcc")
    causes.add_hints([d, e])
    assert d.related == [] and e.related == []


def test_the_editor_shows_the_hints(causes_project: Path, monkeypatch):
    """The language server (a real one over stdio) publishes each hint as related
    information of the error."""
    from cutlens.lsp.headless import collect

    monkeypatch.delenv("CPATH", raising=False)
    paths = [causes_project / f"{n}.cu.jinja" for n in ("curand", "cutlass", "sm90a")]
    diags, n = asyncio.run(collect(paths))
    assert n == 3
    got = {Path(d.file).name.split(".")[0]: d for d in diags if d.severity == "error"}
    for name in ("curand", "cutlass", "sm90a"):
        rel = got[name].related
        assert rel[0].message.startswith("hint: " + CASES[name][1])
        assert rel[0].line == got[name].line
    # the killed compile, through the editor's path too
    monkeypatch.setenv("NVCC_CCBIN", str(causes_project / "killcc"))
    diags, _ = asyncio.run(collect([causes_project / "killed.cu.jinja"]))
    (d,) = [d for d in diags if d.severity == "error"]
    assert d.related[0].message.startswith("hint: " + CASES["killed"][1])
