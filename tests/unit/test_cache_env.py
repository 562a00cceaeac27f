"""The build cache key covers the environment nvcc reads (issue 26): a failure caused by the
environment (a header found only through ``CPATH``) is not replayed once the environment is
fixed, from the CLI and through the language server."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from cutlens.nvcc import cache as build_cache
from cutlens.nvcc import toolchain as nv

from conftest import HAS_NVCC

needs_nvcc = pytest.mark.skipif(not HAS_NVCC, reason="needs nvcc")
UNIT = '#include "v.h"\n__global__ void k(int* p) { *p = V; }\n'


def cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cutlens", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300, env=env)


@pytest.fixture
def header_project(tmp_path: Path) -> Path:
    """A template including ``v.h``, which lives only in ``inc/`` (not an include dir)."""
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "v.h").write_text("#define V 3\n")
    (tmp_path / "k.cu.jinja").write_text(UNIT)
    return tmp_path


def units(root: Path) -> list[Path]:
    return [p for p in (root / ".cutlens" / "build").glob("??/*") if p.is_dir()]


@pytest.mark.parametrize("var", build_cache.NVCC_ENV)
def test_every_environment_variable_nvcc_reads_changes_the_key(var: str, monkeypatch,
                                                               tmp_path: Path):
    opts = nv.CompileOptions(arch="sm_80", cutlass=False)
    for v in build_cache.NVCC_ENV:
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("PATH", str(Path(nv.find_nvcc()).parent), prepend=":")
    before = build_cache.unit_key("u", "src", {}, opts)
    value = str(tmp_path) if var in ("CPATH", "CPLUS_INCLUDE_PATH", "C_INCLUDE_PATH",
                                     "LIBRARY_PATH") else "-DX=1"
    if var in ("CUDA_PATH", "CUDA_HOME"):
        value = str(Path(nv.find_nvcc()).parent.parent)
    if var in ("CUDACXX", "NVCC_CCBIN"):
        value = nv.find_nvcc() if var == "CUDACXX" else "g++"
    monkeypatch.setenv(var, value)
    assert build_cache.unit_key("u", "src", {}, opts) != before


def test_a_header_added_to_a_cpath_dir_changes_the_key(monkeypatch, tmp_path: Path):
    opts = nv.CompileOptions(arch="sm_80", cutlass=False)
    inc = tmp_path / "inc"
    inc.mkdir()
    monkeypatch.setenv("CPATH", str(inc))
    monkeypatch.setattr(build_cache, "FINGERPRINT_TTL_S", 0.0)
    before = build_cache.unit_key("u", "src", {}, opts)
    (inc / "v.h").write_text("#define V 3\n")
    assert build_cache.unit_key("u", "src", {}, opts) != before
    # -I in NVCC_APPEND_FLAGS is searched too
    monkeypatch.delenv("CPATH")
    monkeypatch.setenv("NVCC_APPEND_FLAGS", f"-I {inc}")
    before = build_cache.unit_key("u", "src", {}, opts)
    (inc / "w.h").write_text("#define W 3\n")
    assert build_cache.unit_key("u", "src", {}, opts) != before


@pytest.mark.nvcc
@needs_nvcc
def test_fixing_cpath_reruns_nvcc_and_the_check_passes(header_project: Path, monkeypatch):
    """The issue's repro: fail (v.h missing), set CPATH, rerun: nvcc runs again (a second
    unit in the cache) and the check is clean; unset it: the stored failure is replayed."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in build_cache.NVCC_ENV}
    out = cli("check", "k.cu.jinja", "--jobs", "1", cwd=header_project, env=env)
    assert out.returncode == 1 and "v.h: No such file or directory" in out.stdout
    assert len(units(header_project)) == 1
    fixed = {**env, "CPATH": str(header_project / "inc")}
    out = cli("check", "k.cu.jinja", "--jobs", "1", cwd=header_project, env=fixed)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 error(s)" in out.stderr and len(units(header_project)) == 2
    out = cli("check", "k.cu.jinja", "--jobs", "1", cwd=header_project, env=env)
    assert out.returncode == 1 and len(units(header_project)) == 2  # from the cache


@pytest.mark.nvcc
@needs_nvcc
def test_fixing_cpath_reruns_nvcc_through_the_language_server(header_project: Path,
                                                               monkeypatch):
    """The same through the editor's path: a server started without CPATH publishes the
    error; one started with it (same build cache) compiles again and publishes none."""
    from cutlens.lsp.headless import collect

    for v in build_cache.NVCC_ENV:
        monkeypatch.delenv(v, raising=False)
    diags, _ = asyncio.run(collect([header_project / "k.cu.jinja"]))
    assert [d.message for d in diags if d.severity == "error"] == [
        "v.h: No such file or directory"]
    monkeypatch.setenv("CPATH", str(header_project / "inc"))
    diags, _ = asyncio.run(collect([header_project / "k.cu.jinja"]))
    assert [d for d in diags if d.severity == "error"] == []
    assert len(units(header_project)) == 2
