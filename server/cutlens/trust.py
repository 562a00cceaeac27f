"""Trust: whether cutlens may run workspace code.

Workspace Python (variant generators, ``template_class``/``kernel_class`` helpers, render
drivers), nvcc and benchmarks run only in a trusted workspace. Trust is process-wide: the CLI
is trusted unless ``--no-exec``; the language server takes it from its client (``trusted`` in
the initialization options or settings; a client that says nothing is trusted, like the CLI;
``cutlens lsp --no-exec`` refuses whatever the client says). Untrusted, the Jinja tier still
runs (sandboxed) and each template gets one notice (:mod:`cutlens.check.jinja_tier`). Which
nvcc flags a template may pass is :mod:`cutlens.config.flags`'s business.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

HOW_TO_TRUST = ("To trust it: VS Code: \"Workspaces: Manage Workspace Trust\"; other editors: "
                "initializationOptions {\"trusted\": true}; CLI: run without --no-exec.")

_lock = threading.Lock()
_exec_allowed = True


class Untrusted(PermissionError):
    """Workspace code was not run because the workspace is not trusted."""


def exec_allowed() -> bool:
    """True when workspace code (Python, nvcc, benchmarks) may run."""
    return _exec_allowed


def set_exec_allowed(allowed: bool) -> None:
    """Set the process-wide trust (the CLI's ``--no-exec``, the LSP client's state)."""
    global _exec_allowed
    with _lock:
        _exec_allowed = bool(allowed)


@contextmanager
def exec_policy(allowed: bool) -> Iterator[None]:
    """Run a block under ``allowed``, restoring the previous state after it."""
    before = exec_allowed()
    set_exec_allowed(allowed)
    try:
        yield
    finally:
        set_exec_allowed(before)


def require_exec(what: str) -> None:
    """Raise :class:`Untrusted` unless workspace code may run."""
    if not exec_allowed():
        raise Untrusted(f"{what}: not run because the workspace is not trusted")
