"""The template model, pure data: a template with its samples (IR nodes), variants, compile
and bench settings, companions, and where each setting's text lives. Sources
(:mod:`cutlens.template.sources`) build it; nothing here calls into other stages."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cutlens.config import CompileTable, ProjectConfig, TemplateBench
from cutlens.diagnostics import Diagnostic
from cutlens.template.frontmatter import FrontMatter
from cutlens.template.ir import Node

#: The sample of a template that declares none.
DEFAULT_SAMPLE = "default"
#: The template's settings (front matter or per-template table) say nothing.
NO_SETTINGS = "file"

BenchSpec = TemplateBench


@dataclass
class Sample:
    """Named IR nodes (``None`` for an absent optional input) plus size-symbol hints."""

    name: str
    nodes: dict[str, Node | None] = field(default_factory=dict)
    hints: dict[str, int] = field(default_factory=dict)
    #: Extra template variables for this sample.
    vars: dict[str, Any] = field(default_factory=dict)
    line: int = 0
    #: Where the sample came from when not written in the template: ``captured`` for a
    #: samples file's (``samples_from``); ``--samples captured`` selects them.
    origin: str | None = None
    #: Its share of the captured run (time, or calls without a GPU): weights the summary.
    weight: float | None = None
    #: What the capture saw (op, count, modules, epilogue), for hovers and reports.
    info: dict[str, Any] = field(default_factory=dict)

    def context(self) -> dict[str, Any]:
        return {**self.vars, **self.nodes}


#: C types a runtime variant parameter may have (the kernel ABI's scalar arguments).
RUNTIME_CTYPES = ("int", "unsigned", "long", "bool", "float", "double", "size_t", "int8_t",
                  "int16_t", "int32_t", "int64_t", "uint8_t", "uint16_t", "uint32_t",
                  "uint64_t")
#: Longest variant name (characters) and file-name slug (bytes) before they are shortened.
MAX_NAME = 96
MAX_SLUG = 80


def short_hash(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def shorten(text: str, limit: int) -> str:
    """``text``, or its first characters plus a hash of the whole when longer than
    ``limit``: still unique, and short enough for a file name or a table cell."""
    if len(text) <= limit:
        return text
    return f"{text[:limit - 12].rstrip()}...{short_hash(text)}"


def slugify(text: str, fallback: str, limit: int = MAX_SLUG) -> str:
    """A file-name-safe form of ``text`` (``[A-Za-z0-9_.-]``), at most ``limit`` bytes."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or fallback
    return shorten(slug, limit)


@dataclass(frozen=True)
class RuntimeParam:
    """A variant key passed to the kernel when it is called instead of rendered into its
    source (``[variants.runtime]``): variants that differ only in such keys share one build.

    The kernel gets it as a scalar argument ``<ctype> <arg>`` after the size arguments;
    ``values`` maps a variant's value (by its text) to the C value passed, for keys whose
    values are names (``raster = "along_m"`` -> ``1``)."""

    key: str
    ctype: str = "int"
    arg: str = ""
    values: tuple[tuple[str, int | float], ...] = ()

    @property
    def name(self) -> str:
        """The C argument's name."""
        return self.arg or self.key

    @property
    def is_float(self) -> bool:
        return self.ctype in ("float", "double")

    def c_value(self, value: Any) -> int | float:
        """The C value passed for a variant's ``value``; ValueError when it has none."""
        if self.values:
            table = dict(self.values)
            text = value if isinstance(value, str) else _toml_text(value)
            if text not in table:
                raise ValueError(f"{value!r} is not one of {', '.join(table)} (the values of "
                                 f"[variants.runtime] {self.key})")
            return table[text]
        if isinstance(value, bool) and self.ctype == "bool":
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value) if self.is_float else value
        if isinstance(value, float) and self.is_float:
            return value
        raise ValueError(f"{value!r} is not a number of C type {self.ctype}; give its C "
                         f"value with [variants.runtime] {self.key} = {{ type = "
                         f"\"{self.ctype}\", values = {{ ... }} }}")


def _toml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass
class Variant:
    """One set of template variables (a point of the variant grid, or a generator's dict).

    ``runtime`` names the keys passed to the kernel at call time (:class:`RuntimeParam`);
    ``values`` holds them too. ``build_name`` names what the variant compiles to: variants
    with the same compile-time values share it (and, rendered alike, one build)."""

    index: int
    name: str
    values: dict[str, Any]
    line: int = 0
    runtime: tuple[str, ...] = ()
    build_name: str = ""

    @property
    def slug(self) -> str:
        return slugify(self.name, f"v{self.index}")

    @property
    def build_slug(self) -> str:
        """The file-name form of :attr:`build_name` (of the name when there is none)."""
        return slugify(self.build_name, f"v{self.index}") if self.build_name else self.slug

    @property
    def build_values(self) -> dict[str, Any]:
        """The values rendered into the source (all but the runtime keys)."""
        return {k: v for k, v in self.values.items() if k not in self.runtime}

    def to_json(self) -> dict[str, Any]:
        out = {"index": self.index, "name": self.name, "values": self.values}
        if self.runtime:
            out["runtime"] = list(self.runtime)
            out["build"] = self.build_name
        return out


@dataclass
class Template:
    """A template: its text, settings and everything derived from them. ``errors`` holds
    what could not be loaded; ``broken`` means there is nothing to render against."""

    path: Path
    source: str
    config: ProjectConfig
    #: Which source built it: ``front-matter``, ``config-table`` or ``file`` (no settings).
    origin: str = NO_SETTINGS
    #: Which renderer renders it (:mod:`cutlens.render`): ``jinja``.
    engine: str = "jinja"
    front: FrontMatter = field(default_factory=FrontMatter)
    #: The settings as written (per-template table, then front matter over it).
    settings: dict[str, Any] = field(default_factory=dict)
    #: Where the settings came from: the template itself or the project config file.
    settings_file: Path | None = None
    settings_prefix: str = ""
    samples: list[Sample] = field(default_factory=list)
    #: Variants by sample name (generators and ``skip_if`` may depend on the sample).
    variant_table: dict[str, list[Variant]] = field(default_factory=dict)
    #: The runtime variant parameters (``[variants.runtime]``), in declaration order.
    runtime: dict[str, RuntimeParam] = field(default_factory=dict)
    #: Why the variants are unknown (e.g. an untrusted workspace ran no generator).
    variants_unknown: str | None = None
    bench: BenchSpec = field(default_factory=BenchSpec)
    compile: CompileTable = field(default_factory=CompileTable)
    companions: dict[str, Path] = field(default_factory=dict)
    kind: str = "cutlass"
    kernel_name: str = ""
    template_class: str | None = None
    kernel_class: str | None = None
    errors: list[Diagnostic] = field(default_factory=list)
    broken: bool = False
    #: The generator module's file stamp when the variants were expanded (cache validity).
    generator_stamp: tuple[Any, ...] | None = None
    #: What it took from a samples file (``samples_from``: a ``captured.Taken``) and that
    #: file's stamp when read (cache validity).
    captured: Any = None
    captured_stamp: tuple[Any, ...] | None = None
    #: Render-driver cases by name (``engine == "driver"``: each variant is one case).
    cases: dict[str, Any] = field(default_factory=dict)
    #: False for a ``.py`` file that hosts no template of any driver (nothing to check).
    hosts_templates: bool = True
    #: A render driver's template: the hash of the whole run, which results are stored under.
    content_hash_of_run: str | None = None

    @property
    def unused_python(self) -> bool:
        """A ``.py`` file no render driver uses (it hosts no template of one): nothing for
        cutlens to check or render."""
        return self.path.suffix == ".py" and not (self.engine == "driver" and
                                                   self.hosts_templates)

    @property
    def has_settings(self) -> bool:
        """True when front matter or a per-template config table configures it."""
        return bool(self.settings) or self.front.start_line > 0

    @property
    def content_hash(self) -> str:
        """What checks and benchmark results of this template are stored under."""
        if self.content_hash_of_run is not None:
            return self.content_hash_of_run
        return hashlib.sha256(self.source.encode()).hexdigest()

    def setting_line(self, table: str, key: str | None = None) -> tuple[str, int]:
        """(file, line) of a setting, in the template or in the config file."""
        if self.settings_file is not None and self.settings_file != self.path:
            full = ".".join(p for p in (self.settings_prefix, table) if p)
            return str(self.settings_file), self.config.index.line_of(full, key, default=1) \
                if self.config.index is not None else 1
        return str(self.path), self.front.line_of(table, key)

    @property
    def sample_list(self) -> list[Sample]:
        """The samples, or the one default sample of a template that declares none."""
        return self.samples or [Sample(DEFAULT_SAMPLE)]

    def sample(self, name: str | None) -> Sample:
        samples = self.sample_list
        if name is None:
            return samples[0]
        for s in samples:
            if s.name == name:
                return s
        raise KeyError(f"no sample {name!r} (have: {', '.join(s.name for s in samples)})")

    def variants(self, sample: Sample | None = None) -> list[Variant]:
        """The variants for a sample (the first sample's when None)."""
        s = sample or self.sample_list[0]
        return self.variant_table.get(s.name, [])

    def variant(self, sample: Sample, which: str | int | None) -> Variant:
        vs = self.variants(sample)
        if not vs:
            raise KeyError(self.variants_unknown or
                           "this template has no variants for sample " + sample.name)
        if which is None:
            return vs[0]
        for v in vs:
            if str(v.index) == str(which) or v.name == which or v.slug == which:
                return v
        raise KeyError(f"no variant {which!r} (have: {', '.join(v.name for v in vs)})")

    def pairs(self) -> list[tuple[Sample, Variant]]:
        """Every (sample, variant) to render."""
        return [(s, v) for s in self.sample_list for v in self.variants(s)]

    def python_uses(self) -> list[str]:
        """The workspace Python the template loads: ``generator 'ops:variants'``..."""
        drivers = [d.entry for d in self.config.driver] + \
            (["inductor"] if self.config.inductor is not None else [])
        out = [f"render driver {d!r}" for d in drivers] if self.engine == "driver" else []
        variants = self.settings.get("variants")
        if isinstance(variants, dict) and variants.get("generator"):
            out.append(f"generator {variants['generator']!r}")
        for key in ("template_class", "kernel_class"):
            spec = getattr(self, key)
            if spec:
                out.append(f"{key} {spec!r}")
        return out


def within(path: Path, roots: list[Path]) -> bool:
    """True when the (resolved) ``path`` lies inside one of ``roots``."""
    return any(path.is_relative_to(r) for r in roots)


def template_roots(t: Template) -> list[Path]:
    """Directories the template's includes, imports and companions may be read from."""
    return [p.resolve() for p in (t.path.parent, t.config.root,
                                  *map(Path, t.config.search_path))]
