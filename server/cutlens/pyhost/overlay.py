"""Unsaved editor text as module source: a project module whose file has an overlay (the
buffer the user is editing) is imported from that text, so a driver checks what is on screen,
not what is on disk. No bytecode is written for it."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import linecache
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any


class _OverlayLoader(importlib.machinery.SourceFileLoader):
    """A source loader reading ``path`` from the overlay text."""

    def __init__(self, fullname: str, path: str, text: str) -> None:
        super().__init__(fullname, path)
        self.text = text

    def get_data(self, path: str) -> bytes:
        if path == self.path:
            return self.text.encode()
        return super().get_data(path)

    def path_stats(self, path: str) -> dict[str, Any]:
        return {"mtime": 0, "size": len(self.text.encode())}

    def get_code(self, fullname: str) -> Any:
        return compile(self.text, self.path, "exec", dont_inherit=True)


class _OverlayFinder(importlib.abc.MetaPathFinder):
    def __init__(self, overlays: dict[str, str]) -> None:
        self.overlays = overlays

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> Any:
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin not in self.overlays:
            return None
        loader = _OverlayLoader(fullname, spec.origin, self.overlays[spec.origin])
        return importlib.util.spec_from_file_location(
            fullname, spec.origin, loader=loader,
            submodule_search_locations=spec.submodule_search_locations)


@contextmanager
def overlays_installed(overlays: dict[str, str]) -> Iterator[None]:
    """Import project modules from ``overlays`` (absolute path -> text) in this block."""
    finder = _OverlayFinder(overlays)
    sys.meta_path.insert(0, finder)
    for path, text in overlays.items():  # tracebacks show the text being edited
        linecache.cache[path] = (len(text), None, text.splitlines(True), path)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)

