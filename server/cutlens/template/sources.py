"""Template sources: what turns files on disk into :class:`Template` models.

A source answers two questions: which files under a folder are its templates
(:meth:`TemplateSource.discover`), and what a file's settings are (:meth:`TemplateSource.
settings`). Two sources exist today: a per-template table in the project config (for files
that cannot carry front matter) and a file's own front matter; a file may have both (the
front matter's tables win). A new source (Python-hosted templates, Inductor) implements the
same protocol and is added with :func:`register`; the loader (:mod:`cutlens.template.loader`)
and everything after it stay as they are.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cutlens.config import ProjectConfig
from cutlens.template import frontmatter
from cutlens.template.frontmatter import FrontMatter


@dataclass
class Found:
    """What a source says about one file: its settings and where they live."""

    #: The source's name (the template's ``origin``).
    origin: str
    settings: dict[str, Any]
    #: The file holding the settings and the key prefix of their table there.
    settings_file: Path | None = None
    prefix: str = ""
    front: FrontMatter | None = None
    #: Which renderer renders the template.
    engine: str = "jinja"


class TemplateSource(Protocol):
    """Turns files into template settings."""

    name: str

    def discover(self, folder: Path, config: ProjectConfig) -> Iterable[Path]:
        """The templates this source provides under ``folder`` (absolute paths)."""
        ...

    def settings(self, path: Path, config: ProjectConfig, text: str) -> Found | None:
        """The settings of ``path`` (``text``: its current text), or None when this source
        knows nothing of it. May raise :class:`frontmatter.FrontMatterError`."""
        ...


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
    """True when ``path`` matches the project's template globs and no exclude."""
    return matches(path, cfg.root, cfg.globs) and not matches(path, cfg.root, cfg.exclude)


def has_front_matter(text: str) -> bool:
    return text.lstrip().startswith(("{#- cutlens", "{# cutlens"))


class ConfigTableSource:
    """A file named by a ``[template."path"]`` table in the project config: a template
    whatever its name (globs do not matter)."""

    name = "config-table"

    def discover(self, folder: Path, config: ProjectConfig) -> Iterable[Path]:
        folder = folder.resolve()
        return [p for p in config.template_table_files()
                if p == folder or p.is_relative_to(folder)]

    def settings(self, path: Path, config: ProjectConfig, text: str) -> Found | None:
        table, prefix = config.template_table(path)
        if table is None:
            return None
        return Found(self.name, dict(table), config.file, prefix)


class FrontMatterSource:
    """A file matching the project's globs whose text opens with ``{#- cutlens ... #}``."""

    name = "front-matter"

    def discover(self, folder: Path, config: ProjectConfig) -> Iterable[Path]:
        for f in sorted(folder.resolve().rglob("*")):
            if not f.is_file() or not is_template(f, config):
                continue
            try:
                head = f.read_text(errors="replace")[:4096]
            except OSError:
                continue
            if has_front_matter(head):
                yield f

    def settings(self, path: Path, config: ProjectConfig, text: str) -> Found | None:
        front = frontmatter.parse(text)
        if not front.start_line:
            return None
        return Found(self.name, dict(front.data), path, "", front)


SOURCES: list[TemplateSource] = [ConfigTableSource(), FrontMatterSource()]


def register(source: TemplateSource) -> None:
    """Add a template source (before the built-in ones: it is asked first)."""
    if all(s.name != source.name for s in SOURCES):
        SOURCES.insert(0, source)
