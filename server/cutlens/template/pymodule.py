"""Importing workspace Python (variant generators, ``template_class`` helpers) from the
template's folder or the project root: only in a trusted workspace, and again when the
module's file changed."""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cutlens import trust


class ImportFailed(ImportError):
    """A workspace module or attribute that could not be imported."""


@contextmanager
def _import_path(paths: list[Path]) -> Iterator[None]:
    added = [str(p) for p in paths if str(p) not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for p in added:
            if p in sys.path:
                sys.path.remove(p)


_LOADED: dict[str, tuple[str | None, int]] = {}


def import_project_module(mod_name: str, folders: list[Path]) -> Any:
    """Import a project module (generator, template_class) from the template's folder or
    the project root, re-importing it when its file or location changed. Refused
    (:class:`trust.Untrusted`) unless the workspace is trusted."""
    trust.require_exec(f"workspace module {mod_name!r}")
    dirs = [str(d) for d in folders]
    top = mod_name.split(".")[0]
    spec = importlib.machinery.PathFinder.find_spec(top, dirs)
    origin = spec.origin if spec is not None else None
    try:
        mtime = Path(origin).stat().st_mtime_ns if origin else 0
    except OSError:
        mtime = 0
    cached = sys.modules.get(mod_name)
    if cached is not None and _LOADED.get(mod_name) == (origin, mtime):
        return cached
    if spec is not None:  # a project module: forget any earlier copy of it
        for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
            del sys.modules[name]
    with _import_path(folders):
        importlib.invalidate_caches()
        mod = importlib.import_module(mod_name)
    _LOADED[mod_name] = (origin, mtime)
    return mod


def load_attr(spec: str, folders: list[Path]) -> Any:
    """``module:name`` imported from ``folders``; :class:`ImportFailed` saying why not."""
    if ":" not in spec:
        raise ImportFailed(f"must be 'module:name', not {spec!r}")
    mod_name, attr = spec.split(":", 1)
    try:
        mod = import_project_module(mod_name, folders)
    except trust.Untrusted:
        raise
    except Exception as e:
        raise ImportFailed(f"cannot import {mod_name}: {type(e).__name__}: {e}") from None
    if not hasattr(mod, attr):
        raise ImportFailed(f"{mod_name} has no {attr!r}")
    return getattr(mod, attr)


def module_file(spec: str, folders: list[Path]) -> Path | None:
    """The source file of the module of ``module:name`` (for file watching, cache keys)."""
    if ":" not in spec:
        return None
    mod = spec.split(":", 1)[0].replace(".", "/")
    for base in folders:
        for cand in (base / f"{mod}.py", base / mod / "__init__.py"):
            if cand.is_file():
                return cand
    return None
