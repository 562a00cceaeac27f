"""Shared fixtures: temporary projects with templates written from strings."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from cutlens import config as config
from cutlens.render.renderer import Renderer
from cutlens.template.loader import load
from cutlens.template.model import Template

REPO = Path(__file__).resolve().parent.parent
HAS_NVCC = shutil.which("nvcc") is not None or Path("/usr/local/cuda/bin/nvcc").exists()


class Project:
    """A throwaway workspace: write files, load templates, render them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.renderer = Renderer()

    def write(self, name: str, text: str) -> Path:
        p = self.root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip("\n") if text.startswith("\n") else text)
        return p

    def load(self, name: str) -> Template:
        cfg = config.load(self.root)
        return load(self.root / name, cfg)

    def render(self, name: str, sample: str | None = None, variant: str | int | None = None):
        t = self.load(name)
        s = t.sample(sample)
        return self.renderer.render(t, s, t.variant(s, variant))


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing ``needle``."""
    for i, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not found")


def _load_fakelib():
    """The bench tests' fake kernel library helpers (tests/fixtures/fakelib/fakelib.py)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "fakelib_helpers", Path(__file__).parent / "fixtures" / "fakelib" / "fakelib.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


fakelib = _load_fakelib()


@pytest.fixture(scope="module")
def lib(tmp_path_factory) -> Path:
    """The fake kernel library, built with the host compiler once per test module."""
    if fakelib.compiler() is None:
        pytest.skip("no C++ compiler")
    return fakelib.build(tmp_path_factory.mktemp("fakelib"))
