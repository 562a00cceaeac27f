"""Where templates are read from: the search path, preferring unsaved editor text, and
never outside the project's template roots."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

from jinja2 import BaseLoader, TemplateNotFound
from jinja2 import Template as JinjaTemplate
from jinja2.exceptions import SecurityError


class OutsideRoots(SecurityError):
    """An include/import/extends name that resolves outside the template roots."""

    def __init__(self, name: str, roots: list[Path]) -> None:
        where = ", ".join(map(str, dict.fromkeys(roots)))
        super().__init__(f"{name!r} is outside the project's template roots ({where}); add "
                         "its folder to search_path in the project config to include it")
        self.name = name


class OverlayLoader(BaseLoader):
    """Loads template names from ``search_path``, preferring unsaved editor text
    (``overlays``: absolute path -> text). A name that resolves (symlinks followed) outside
    every ``search_path`` directory is refused: templates read only inside the project."""

    def __init__(self, search_path: list[Path], overlays: Mapping[str, str] | None = None):
        self.search_path = [p.resolve() for p in search_path]
        self.overlays: Mapping[str, str] = overlays if overlays is not None else {}

    def resolve(self, name: str) -> Path | None:
        p = Path(name)
        cands = [p] if p.is_absolute() else [d / name for d in self.search_path]
        outside = 0
        for c in cands:
            real = c.resolve()
            if not any(real.is_relative_to(r) for r in self.search_path):
                outside += 1
                continue
            key = str(real) if c.exists() or str(c) in self.overlays else str(c)
            if key in self.overlays or c.is_file():
                return Path(key)
        if outside == len(cands):
            raise OutsideRoots(name, self.search_path)
        return None

    def load(self, environment: Any, name: str, globals: Any = None) -> JinjaTemplate:
        source, filename, uptodate = self.get_source(environment, name)
        if hasattr(environment, "load_source"):  # the RenderEnvironment
            return cast(JinjaTemplate, environment.load_source(name, source, filename, uptodate,
                                                               globals or {}))
        return super().load(environment, name, globals)

    def get_source(self, environment: Any, template: str) -> tuple[str, str, Callable[[], bool]]:
        path = self.resolve(template)
        if path is None:
            raise TemplateNotFound(template)
        key = str(path)
        if key in self.overlays:
            text = self.overlays[key]
            return text, key, lambda: self.overlays.get(key) is text
        text = path.read_text()
        mtime = path.stat().st_mtime_ns
        return text, key, lambda: (key not in self.overlays and path.is_file()
                                   and path.stat().st_mtime_ns == mtime)


