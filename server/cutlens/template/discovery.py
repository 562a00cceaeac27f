"""Finding a project's templates (every source's), the partials only reached through other
templates, and the files a template's renders read."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cutlens import config as config_mod
from cutlens.config import ProjectConfig
from cutlens.template import sources
from cutlens.template.loader import load
from cutlens.template.model import Template, template_roots, within
from cutlens.template.sources import is_template

_REF_RE = re.compile(r"""\{%-?\s*(?:include|import|extends|from)\s+["']([^"']+)["']""")

__all__ = ["Discovery", "dependencies", "discover", "is_template", "load_template",
           "parents", "referenced_names"]

log = logging.getLogger(__name__)


def referenced_names(source: str) -> list[str]:
    """Template names a source includes, imports or extends (string literals only)."""
    return _REF_RE.findall(source)


@dataclass
class Discovery:
    """Templates to check, and partials (templates only reached through others)."""

    templates: list[Path] = field(default_factory=list)
    partials: list[Path] = field(default_factory=list)


def discover(paths: list[Path], cfg: ProjectConfig) -> Discovery:
    """Templates under ``paths``. A file named explicitly is always checked; under a folder,
    every source's templates are, and other files matching the globs are partials."""
    found = Discovery()
    for p in paths:
        p = p.resolve()
        if p.is_file():
            found.templates.append(p)
            continue
        seen: set[Path] = set()
        for src in sources.SOURCES:
            for f in src.discover(p, cfg):
                if f not in seen:
                    seen.add(f)
                    found.templates.append(f)
        found.templates.sort()
        for f in sorted(p.rglob("*")):
            if f.is_file() and f not in seen and is_template(f, cfg):
                found.partials.append(f)
    return found


def load_template(path: Path, cfg: ProjectConfig | None = None,
                  source: str | None = None) -> Template:
    """Load one template with the config of the project it lives in."""
    if cfg is None:
        cfg = config_mod.load(config_mod.root_for(path))
    return load(path, cfg, source)


def dependencies(template: Template) -> set[Path]:
    """Files the template's renders may read: includes/imports (transitively, by name
    against the search path), companions; for a render driver's template, the modules its
    cases' lines come from. For re-checks on change."""
    if template.engine == "driver":
        return {Path(f) for c in template.cases.values() for f in c.files
                if f.endswith(".py") and Path(f) != template.path}
    search = [template.path.parent, template.config.root,
              *map(Path, template.config.search_path)]
    roots = template_roots(template)
    seen: set[Path] = set()
    todo = [template.source, *[p.read_text() for p in template.companions.values()
                               if p.is_file()]]
    seen.update(template.companions.values())
    while todo:
        src = todo.pop()
        for name in referenced_names(src):
            if "\0" in name:  # no file has such a name (and resolve() raises ValueError)
                continue
            for d in search:
                cand = (d / name).resolve()
                if cand.is_file() and cand not in seen and within(cand, roots):
                    seen.add(cand)
                    with contextlib.suppress(OSError):
                        todo.append(cand.read_text())
                    break
    return seen


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def parents(path: Path, cfg: ProjectConfig,
            text_of: Callable[[Path], str | None] = _read,
            overlays: dict[str, str] | None = None) -> list[Template]:
    """The project's templates whose renders read ``path``: include or import it, or render
    it as a companion (named by its template path in their settings, while their text
    includes the companion's *output* name). A file without settings of its own is checked
    through them. ``text_of``: a file's current text (an editor's unsaved text);
    ``overlays``: the unsaved texts a render driver's worker reads."""
    path = path.resolve()
    out = []
    for tp in discover([cfg.root], cfg).templates:
        if tp.suffix == ".py":
            continue  # a render driver's module: its cases are no Jinja parents
        text = text_of(tp)
        table, _ = cfg.template_table(tp)
        if tp == path or text is None or (path.name not in text and path.name not in repr(table)):
            continue
        try:
            t = load(tp, cfg, text, overlays)
        except Exception:  # a broken sibling must not break this one
            log.exception("loading %s", tp)
            continue
        if path in dependencies(t):
            out.append(t)
    return out
