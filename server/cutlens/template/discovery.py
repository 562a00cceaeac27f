"""Finding a project's templates: globs, excludes, and which files are partials."""

from __future__ import annotations

import contextlib
import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path

from cutlens.config import model as config_mod
from cutlens.config.model import ProjectConfig
from cutlens.template.model import Template, load, template_roots, within

_REF_RE = re.compile(r"""\{%-?\s*(?:include|import|extends|from)\s+["']([^"']+)["']""")


def matches(path: Path, root: Path, patterns: list[str]) -> bool:
    """True when ``path`` (relative to ``root``) matches one of the glob ``patterns``."""
    try:
        rel = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        rel = path.name
    for pat in patterns:
        if fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(path.name, pat):
            return True
        if pat.startswith("**/") and fnmatch.fnmatch(rel, pat[3:]):
            return True
    return False


def is_template(path: Path, cfg: ProjectConfig) -> bool:
    return matches(path, cfg.root, cfg.globs) and not matches(path, cfg.root, cfg.exclude)


def referenced_names(source: str) -> list[str]:
    """Template names a source includes, imports or extends (string literals only)."""
    return _REF_RE.findall(source)


@dataclass
class Discovery:
    """Templates to check, and partials (templates only reached through others)."""

    templates: list[Path] = field(default_factory=list)
    partials: list[Path] = field(default_factory=list)


def discover(paths: list[Path], cfg: ProjectConfig) -> Discovery:
    """Templates under ``paths``. A file named explicitly is always checked; a file found
    in a folder is checked when it has front matter or a per-template table, and is a
    partial otherwise."""
    found = Discovery()
    for p in paths:
        p = p.resolve()
        if p.is_file():
            found.templates.append(p)
            continue
        for f in sorted(p.rglob("*")):
            if not f.is_file() or not is_template(f, cfg):
                continue
            table, _ = cfg.template_table(f)
            try:
                head = f.read_text(errors="replace")[:4096]
            except OSError:
                continue
            if table is not None or head.lstrip().startswith(("{#- cutlens", "{# cutlens")):
                found.templates.append(f)
            else:
                found.partials.append(f)
    return found


def load_template(path: Path, cfg: ProjectConfig | None = None,
                  source: str | None = None) -> Template:
    """Load one template with the config of the project it lives in."""
    if cfg is None:
        cfg = config_mod.load(config_mod.find_root(path))
    return load(path, cfg, source)


def dependencies(template: Template) -> set[Path]:
    """Files the template's renders may read: includes/imports (transitively, by name
    against the search path), companions. For re-checks on change."""
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
