"""Shared fixtures: temporary projects with templates written from strings; the one
pytest-lsp client harness (``lsp_server``, ``lsp_server_no_exec``: a real ``cutlens lsp``
over stdio, what it sends recorded, started by :func:`start_lsp`); the ``nvcc`` marker,
which also skips where no nvcc is installed."""

from __future__ import annotations

import sys
import textwrap
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from cutlens import config as config
from cutlens.render.renderer import Renderer
from cutlens.template.loader import load
from cutlens.template.model import Template

REPO = Path(__file__).resolve().parent.parent


def _has_nvcc() -> bool:
    from cutlens.cuda_install import NvccNotFound, find_nvcc

    try:
        find_nvcc()
    except NvccNotFound:
        return False
    return True


#: An nvcc is installed (found as cutlens finds it: $CUDACXX, $CUDA_HOME, PATH, the usual
#: folder). Tests that need it carry ``@pytest.mark.nvcc`` (skipped without one, and
#: deselected by ``-m "not nvcc"``), never a skip of their own.
HAS_NVCC = _has_nvcc()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The one way to say a test needs nvcc: the ``nvcc`` marker, which skips it here
    when no nvcc is installed."""
    if HAS_NVCC:
        return
    skip = pytest.mark.skip(reason="needs nvcc (none found: $CUDACXX, $CUDA_HOME, PATH, "
                                   "/usr/local/cuda)")
    for item in items:
        if item.get_closest_marker("nvcc") is not None:
            item.add_marker(skip)


#: What a test not marked ``nvcc`` finds as nvcc: it answers ``--version`` and refuses to
#: compile, so that such a test never depends on (or waits for) a real compile.
NO_NVCC = """#!/bin/sh
if [ "$1" = --version ]; then
  echo "Cuda compilation tools, release 13.0, V13.0.0 (a stand-in: cutlens tests not"
  echo "marked nvcc run no nvcc)"; exit 0
fi
echo "nvcc: not available to a test not marked @pytest.mark.nvcc" >&2
exit 1
"""


def _stand_in_home(base: Path) -> Path:
    """A CUDA install like the real one (its headers, libraries and tools, linked) whose
    ``bin/nvcc`` is :data:`NO_NVCC`."""
    from cutlens.cuda_install import cuda_home

    home = base / "cuda"
    if home.exists():
        return home
    real = cuda_home()
    (home / "bin").mkdir(parents=True)
    if real is not None:
        for entry in real.iterdir():
            if entry.name != "bin":
                (home / entry.name).symlink_to(entry)
        for tool in (real / "bin").iterdir():
            if tool.name != "nvcc":
                (home / "bin" / tool.name).symlink_to(tool)
    stub = home / "bin" / "nvcc"
    stub.write_text(NO_NVCC)
    stub.chmod(0o755)
    return home


@pytest.fixture(autouse=True)
def _nvcc_only_where_marked(request: pytest.FixtureRequest,
                            tmp_path_factory: pytest.TempPathFactory,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside tests marked ``nvcc``, the CUDA install cutlens finds ($CUDACXX first; the
    language server and the CLI inherit it) is the real one with a stand-in nvcc that
    compiles nothing: ``-m "not nvcc"`` runs no nvcc. A config's own ``nvcc`` (a test's
    fake) still wins. Without an nvcc there is nothing to stand in for."""
    if not HAS_NVCC or request.node.get_closest_marker("nvcc") is not None:
        return
    home = _stand_in_home(tmp_path_factory.getbasetemp())
    monkeypatch.setenv("CUDACXX", str(home / "bin" / "nvcc"))
    monkeypatch.setenv("CUDA_HOME", str(home))
    monkeypatch.setenv("CUDA_PATH", str(home))


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


async def collect(runner: Any, requests: Any, *, store: Any = None,
                  record: dict[str, Any] | None = None, progress: Any = None,
                  on_result: Any = None) -> list[dict[str, Any]]:
    """Run requests through ``runner.sweep``, each result stored as the sweep stores it
    (:func:`cutlens.bench.sweep.store_guard`), shown and handed to ``on_result``."""
    from cutlens.bench.sweep import store_guard

    keep = store_guard(store)
    out = []
    async for result in runner.sweep(requests):
        keep({**(record or {}), **result})
        if progress is not None:
            progress.update(result)
        if on_result is not None:
            on_result(result)
        out.append(result)
    return out


# -- the language server over stdio (pytest-lsp) ----------------------------------------------
LSP_SERVER = [sys.executable, "-m", "cutlens", "lsp"]


@dataclass
class Published:
    """One publishDiagnostics, as it came."""

    uri: str
    version: int | None
    messages: list[str]
    at: float


@dataclass
class Seen:
    """What the server sent that the tests wait on (``client.seen``)."""

    status: list[dict[str, Any]] = field(default_factory=list)
    lens_refreshes: int = 0
    hint_refreshes: int = 0
    published: list[Published] = field(default_factory=list)


def _record(client: LanguageClient) -> Seen:
    seen = Seen()
    features = client.protocol.fm.features
    default = features[lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS]

    def on_publish(params: lsp.PublishDiagnosticsParams) -> None:  # every one, in order
        default(params)
        seen.published.append(Published(params.uri, params.version,
                                        [d.message for d in params.diagnostics],
                                        time.monotonic()))

    features[lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS] = on_publish

    @client.feature("cutlens/status")
    def on_status(params: Any) -> None:
        seen.status.append(params if isinstance(params, dict) else params._asdict())

    @client.feature(lsp.WORKSPACE_CODE_LENS_REFRESH)
    def on_lens_refresh(params: Any) -> None:
        seen.lens_refreshes += 1

    @client.feature(lsp.WORKSPACE_INLAY_HINT_REFRESH)
    def on_hint_refresh(params: Any) -> None:
        seen.hint_refreshes += 1

    # lsprotocol structures any code action that has a `command` as a Command (its union
    # hook checks only for the key); a client tells them apart by the key's type, as VS
    # Code does
    def command_or_action(obj: dict[str, Any], _type: Any) -> Any:
        conv = client.protocol._converter
        if isinstance(obj.get("command"), str):
            return conv.structure(obj, lsp.Command)
        return conv.structure(obj, lsp.CodeAction)

    client.protocol._converter.register_structure_hook(
        Union[lsp.Command, lsp.CodeAction], command_or_action)  # noqa: UP007
    return seen


async def start_lsp(client: LanguageClient, root: Path,
                    options: dict[str, Any] | None = None) -> LanguageClient:
    """Initialize the session as VS Code does, on the workspace folder ``root``, with
    ``options`` as the initialization options (none: the project config decides)."""
    client.root = root  # type: ignore[attr-defined]
    await client.initialize_session(lsp.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"), root_uri=root.as_uri(),
        workspace_folders=[lsp.WorkspaceFolder(root.as_uri(), "ws")],
        initialization_options=options))
    client.started = True  # type: ignore[attr-defined]
    return client


async def _harness(client: LanguageClient) -> AsyncIterator[LanguageClient]:
    client.seen = _record(client)  # type: ignore[attr-defined]
    client.started = False  # type: ignore[attr-defined]
    yield client
    if client.started:  # type: ignore[attr-defined]
        await client.shutdown_session()


@pytest_lsp.fixture(config=ClientServerConfig(server_command=LSP_SERVER))
async def lsp_server(lsp_client: LanguageClient) -> AsyncIterator[LanguageClient]:
    """A client of a real ``cutlens lsp`` (stdio), recording into ``client.seen``; a test's
    fixture writes its workspace and calls :func:`start_lsp`."""
    async for c in _harness(lsp_client):
        yield c


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[*LSP_SERVER, "--no-exec"]))
async def lsp_server_no_exec(lsp_client: LanguageClient) -> AsyncIterator[LanguageClient]:
    """The same for ``cutlens lsp --no-exec``."""
    async for c in _harness(lsp_client):
        yield c
