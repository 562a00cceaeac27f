"""Property tests (fuzzing) of the language server's handlers: random edit sequences with
requests interleaved, in-process through pygls's dispatch (fast enough for thousands of
sequences), and a shorter one over stdio against the real ``cutlens lsp`` process."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzz_common import budget
from fuzz_lsp import TEMPLATE, StdioServer, new_root, run_sequence, run_stdio_sequence

pytestmark = pytest.mark.fuzz


@given(st.data())
@budget(40, divisor=10)
def test_random_edit_sequences_in_process(data: st.DataObject):
    """A fresh server per sequence; see :func:`fuzz_lsp.run_sequence` for the properties."""
    with new_root() as d:
        asyncio.run(run_sequence(data, Path(d).resolve()))


@pytest.fixture(scope="module")
def stdio_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StdioServer]:
    srv = StdioServer(tmp_path_factory.mktemp("lsp-stdio").resolve())
    yield srv
    srv.close()
    assert not srv.errors(), "\n".join(srv.errors())


@given(st.data())
@budget(8, divisor=100)
def test_random_edit_sequences_over_stdio(stdio_server: StdioServer, data: st.DataObject):
    """The real ``cutlens lsp`` process: random edits and requests, then the diagnostics
    of the final text at its version (and no ERROR in the server's log)."""
    stdio_server.loop.run_until_complete(run_stdio_sequence(stdio_server, data))


NUL_INCLUDE = TEMPLATE.replace('{% import "macros.cuh.jinja"', '{% import "macros\x00.cuh.jinja"')


@given(st.data())
@settings(max_examples=3, deadline=None)
def test_regression_nul_in_an_include_name(data: st.DataObject):
    """Found by the long run: a NUL typed into an include's name made the Jinja tier's task
    fail (``Path.resolve()`` raised ValueError while listing dependencies), so no diagnostics
    were published for that text."""
    with new_root() as d:
        asyncio.run(run_sequence(data, Path(d).resolve(), max_ops=2, seed=NUL_INCLUDE))
