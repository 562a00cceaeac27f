"""The one template loader: a file's text and the project config in, a complete
:class:`Template` out — settings from its sources, samples, ``[compile]``, ``[bench]``,
companions, and every sample's variants (generators run here, in a trusted workspace only).
It never raises on bad content: problems are the template's ``errors``."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any

from cutlens import trust
from cutlens.config import ProjectConfig
from cutlens.diagnostics import Diagnostic
from cutlens.template import captured, drivers, frontmatter, settings, sources
from cutlens.template.frontmatter import FrontMatter
from cutlens.template.model import DEFAULT_SAMPLE, Template
from cutlens.template.variants import VariantError, expand_variants, generator_module_file

_CACHE: OrderedDict[tuple[Any, ...], Template] = OrderedDict()
_CACHE_SIZE = 64


def _cache_key(path: Path, source: str, config: ProjectConfig) -> tuple[Any, ...] | None:
    """What a load depends on besides the text below the front matter: the settings' text,
    the config, the trust state and the generator module's file."""
    try:
        text, start, _ = frontmatter.split(source)
    except frontmatter.FrontMatterError:
        return None
    table, _ = config.template_table(path)
    return (str(path), text, start, id(config), repr(table), trust.exec_allowed())


def _captured_file(t: Template) -> Path | None:
    return t.captured.file if t.captured is not None else None


def _generator_stamp(t: Template) -> tuple[Any, ...] | None:
    gen = generator_module_file(t)
    if gen is None:
        return None
    try:
        st = gen.stat()
    except OSError:
        return None
    return (str(gen), st.st_mtime_ns, st.st_size)


def load(path: Path, config: ProjectConfig, source: str | None = None,
         overlays: dict[str, str] | None = None) -> Template:
    """Load the template at ``path`` (``source``: its current text, e.g. unsaved editor
    text; default: read from disk).

    The settings of the last loads are cached by their text: an edit below the front matter
    reuses them (and a generator runs again only when its module's file changed).
    ``overlays``: unsaved editor text of other files (render drivers read them)."""
    path = path.resolve()
    if source is None:
        source = path.read_text()
    if path.suffix == ".py" and (config.driver or config.inductor):  # a driver run: own cache
        return _load(path, config, source, overlays)
    key = _cache_key(path, source, config)
    cached = _CACHE.get(key) if key is not None else None
    if cached is not None and cached.generator_stamp == _generator_stamp(cached) \
            and cached.captured_stamp == captured.stamp(_captured_file(cached)):
        _CACHE.move_to_end(key)  # type: ignore[arg-type]
        return replace(cached, source=source, errors=list(cached.errors))
    t = _load(path, config, source)
    if key is not None:
        _CACHE[key] = t
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
        return replace(t, errors=list(t.errors))
    return t


def _load(path: Path, config: ProjectConfig, source: str,
          overlays: dict[str, str] | None = None) -> Template:
    t = Template(path=path, source=source, config=config)
    merged: dict[str, Any] = {}
    for src in reversed(sources.SOURCES):  # the first source's settings win
        try:
            found = src.settings(path, config, source)
        except frontmatter.FrontMatterError as e:
            t.errors.append(Diagnostic(file=str(path), line=e.line, column=e.column,
                                       message=e.message, source="cutlens",
                                       code="front-matter"))
            t.broken = True
            t.front = FrontMatter(start_line=e.line)
            continue
        if found is None:
            continue
        merged.update(found.settings)
        t.origin, t.engine = found.origin, found.engine
        t.settings_file, t.settings_prefix = found.settings_file, found.prefix
        if found.front is not None:
            t.front = found.front
    t.settings = merged
    if t.engine == "driver":
        drivers.fill(t, overlays)
        return t
    settings.read(t)
    t.captured_stamp = captured.stamp(_captured_file(t))
    _expand(t)
    t.generator_stamp = _generator_stamp(t)
    return t


def _expand(t: Template) -> None:
    """Every sample's variants; a spec that cannot be expanded is one error."""
    if not trust.exec_allowed() and t.python_uses() and "generator" in str(
            t.settings.get("variants", "")):
        t.variants_unknown = (f"the workspace is not trusted: {', '.join(t.python_uses())} "
                              "was not run, so the variants are unknown")
    memo: dict[str, bool] = {}  # skip_if's answers, shared by the samples when it can be
    for s in t.sample_list:
        try:
            t.variant_table[s.name] = expand_variants(t, s if t.samples else None, memo)
        except VariantError as e:
            file, line = t.setting_line(e.table, e.key)
            d = Diagnostic(file=file, line=line, message=str(e), source="cutlens")
            if d not in t.errors:
                t.errors.append(d)
            t.variant_table[s.name] = []
    if not t.samples:
        t.variant_table.setdefault(DEFAULT_SAMPLE, [])
