"""Templates, their samples (IR nodes) and variants, from front matter or the project config."""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cutlens import trust
from cutlens.config.model import ProjectConfig
from cutlens.diagnostics import Diagnostic
from cutlens.template import frontmatter
from cutlens.template.ir import IRError, Node, make_node
from cutlens.template.variants import VariantError, expand_variants

TEMPLATE_KEYS = {"samples", "variants", "variant", "bench", "companions", "template_class",
                 "kernel_class", "kind", "kernel_name", "compile"}
KINDS = ("cutlass", "cuda")


@dataclass
class Sample:
    """Named IR nodes (``None`` for an absent optional input) plus size-symbol hints."""

    name: str
    nodes: dict[str, Node | None] = field(default_factory=dict)
    hints: dict[str, int] = field(default_factory=dict)
    #: Extra template variables for this sample.
    vars: dict[str, Any] = field(default_factory=dict)
    line: int = 0

    def context(self) -> dict[str, Any]:
        return {**self.vars, **self.nodes}


@dataclass
class Variant:
    """One set of template variables (a point of the variant grid, or a generator's dict)."""

    index: int
    name: str
    values: dict[str, Any]
    line: int = 0

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", self.name).strip("-") or f"v{self.index}"

    def to_json(self) -> dict:
        return {"index": self.index, "name": self.name, "values": self.values}


@dataclass
class BenchSpec:
    """``[bench]``: the torch reference and the work counted for TFLOP/s and GB/s."""

    reference: str | None = None
    flops: str | None = None
    bytes: str | None = None
    atol: float | None = None
    rtol: float | None = None
    baseline: bool = True

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class Template:
    """A template file with its settings; ``errors`` holds what could not be loaded."""

    path: Path
    source: str
    config: ProjectConfig
    front: frontmatter.FrontMatter = field(default_factory=frontmatter.FrontMatter)
    settings: dict = field(default_factory=dict)
    #: Where settings came from: the template itself or the project config file.
    settings_file: Path | None = None
    settings_prefix: str = ""
    samples: list[Sample] = field(default_factory=list)
    bench: BenchSpec = field(default_factory=BenchSpec)
    companions: dict[str, Path] = field(default_factory=dict)
    kind: str = "cutlass"
    kernel_name: str = ""
    errors: list[Diagnostic] = field(default_factory=list)
    #: True when the settings could not be read at all (nothing to render against).
    broken: bool = False
    _variant_cache: dict[str, tuple[list[Variant], Diagnostic | None]] = field(
        default_factory=dict, repr=False)

    @property
    def has_settings(self) -> bool:
        """True when front matter or a per-template config table configures it."""
        return bool(self.settings) or self.front.start_line > 0

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()

    def setting_line(self, table: str, key: str | None = None) -> tuple[str, int]:
        """(file, line) of a setting, in the template or in the config file."""
        if self.settings_file is not None and self.settings_file != self.path:
            full = f"{self.settings_prefix}.{table}".strip(".")
            return str(self.settings_file), self.config.config_line(full, key)
        return str(self.path), self.front.line_of(table, key)

    def error(self, message: str, table: str, key: str | None = None,
              source: str = "cutlens", **kw: Any) -> None:
        file, line = self.setting_line(table, key)
        self.errors.append(Diagnostic(file=file, line=line, message=message,
                                      source=source, **kw))  # type: ignore[arg-type]

    def variants(self, sample: Sample | None = None) -> list[Variant]:
        """The variants for a sample (generators and ``skip_if`` may depend on it)."""
        key = sample.name if sample else ""
        if key not in self._variant_cache:
            try:
                self._variant_cache[key] = (expand_variants(self, sample), None)
            except VariantError as e:
                file, line = self.setting_line(e.table, e.key)
                self._variant_cache[key] = ([], Diagnostic(file=file, line=line,
                                                           message=str(e), source="cutlens"))
        variants, error = self._variant_cache[key]
        if error is not None and error not in self.errors:
            self.errors.append(error)
        return variants

    def pairs(self) -> list[tuple[Sample, Variant]]:
        """Every (sample, variant) to render."""
        out = []
        for s in self.samples or [Sample("default")]:
            for v in self.variants(s):
                out.append((s, v))
        return out

    def sample(self, name: str | None) -> Sample:
        samples = self.samples or [Sample("default")]
        if name is None:
            return samples[0]
        for s in samples:
            if s.name == name:
                return s
        raise KeyError(f"no sample {name!r} (have: {', '.join(s.name for s in samples)})")

    def variant(self, sample: Sample, which: str | int | None) -> Variant:
        vs = self.variants(sample)
        if not vs and not trust.exec_allowed() and trust.python_uses(self):
            raise KeyError(f"the workspace is not trusted: {', '.join(trust.python_uses(self))} "
                           "was not run, so the variants are unknown")
        if not vs:
            raise KeyError("this template has no variants for sample " + sample.name)
        if which is None:
            return vs[0]
        for v in vs:
            if str(v.index) == str(which) or v.name == which or v.slug == which:
                return v
        raise KeyError(f"no variant {which!r} (have: {', '.join(v.name for v in vs)})")


def _load_samples(t: Template) -> None:
    table = t.settings.get("samples", {})
    if not isinstance(table, dict):
        t.error("[samples] must be a table of samples", "samples")
        return
    for sname, spec in table.items():
        tname = f"samples.{sname}"
        if not isinstance(spec, dict):
            t.error(f"sample {sname!r} must be a table of nodes", tname)
            continue
        sample = Sample(sname, line=t.setting_line(tname)[1])
        ok = True
        hints = spec.get("hints", {})
        if not isinstance(hints, dict) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in hints.values()):
            t.error("hints must be a table of integers, e.g. hints = { M = 1024 }", tname,
                    "hints")
            ok = False
        else:
            sample.hints = dict(hints)
        sample.vars = dict(spec.get("vars", {})) if isinstance(spec.get("vars"), dict) else {}
        for nname, nspec in spec.items():
            if nname in ("hints", "vars"):
                continue
            if nspec is False or nspec is None:
                sample.nodes[nname] = None
                continue
            if not isinstance(nspec, dict):
                t.error(f"{nname}: a node is a table {{ dtype, size, stride?, offset? }} or "
                        f"false for an absent optional input, not {nspec!r}", tname, nname)
                ok = False
                continue
            try:
                sample.nodes[nname] = make_node(nname, nspec)
            except IRError as e:
                t.error(str(e), tname, nname)
                ok = False
        if ok:
            missing = sorted({s.name for n in sample.nodes.values() if n
                              for s in n.free_symbols} - set(sample.hints))
            if missing:
                t.error(f"sample {sname!r}: no hint for size symbol(s) {', '.join(missing)}; "
                        f"add hints = {{ {missing[0]} = ... }}", tname, "hints",
                        severity="warning")
            t.samples.append(sample)
    if table and not t.samples:
        t.broken = True


def _load_bench(t: Template) -> None:
    b = t.settings.get("bench", {})
    if not isinstance(b, dict):
        t.error("[bench] must be a table", "bench")
        return
    unknown = set(b) - set(BenchSpec.__dataclass_fields__)
    for k in sorted(unknown):
        t.error(f"[bench]: unknown key {k!r} (expected reference, flops, bytes, atol, rtol, "
                "baseline)", "bench", k, severity="warning")
    t.bench = BenchSpec(**{k: v for k, v in b.items() if k not in unknown})


def _load_companions(t: Template) -> None:
    c = t.settings.get("companions", {})
    if not isinstance(c, dict):
        t.error("[companions] must map output names to template paths", "companions")
        return
    roots = template_roots(t)
    for out_name, rel in c.items():
        out = Path(out_name)
        if not out_name or out.is_absolute() or ".." in out.parts:
            t.error(f"companion output {out_name!r} must be a relative name without '..': "
                    "companions are written into the build directory only", "companions",
                    out_name)
            continue
        candidates = [t.path.parent / str(rel), t.config.root / str(rel)]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            t.error(f"companion {out_name!r}: template {rel!r} not found", "companions",
                    out_name)
            continue
        if not within(found.resolve(), roots):
            t.error(f"companion {out_name!r}: template {rel!r} is outside the project's "
                    "template roots (the project root and search_path)", "companions",
                    out_name)
            continue
        t.companions[out_name] = found.resolve()


def template_roots(t: Template) -> list[Path]:
    """Directories the template's includes, imports and companions may be read from."""
    return [p.resolve() for p in (t.path.parent, t.config.root, *map(Path,
                                                                    t.config.search_path))]


def within(path: Path, roots: list[Path]) -> bool:
    """True when the (resolved) ``path`` lies inside one of ``roots``."""
    return any(path.is_relative_to(r) for r in roots)


def default_kernel_name(path: Path) -> str:
    stem = path.name.split(".")[0]
    return "cutlens_" + re.sub(r"\W+", "_", stem)


_CACHE: OrderedDict[tuple, Template] = OrderedDict()
_CACHE_SIZE = 64


def _settings_key(path: Path, source: str, config: ProjectConfig) -> tuple | None:
    try:
        text, start, _ = frontmatter.split(source)
    except frontmatter.FrontMatterError:
        return None
    table, _ = config.template_table(path)
    return (str(path), text, start, id(config), repr(table))


def load(path: Path, config: ProjectConfig, source: str | None = None) -> Template:
    """Load a template; problems become ``errors`` (it never raises on bad content).

    The settings (front matter, samples, variants) of the last loads are cached by their
    text: an edit below the front matter reuses them.
    """
    path = path.resolve()
    if source is None:
        source = path.read_text()
    key = _settings_key(path, source, config)
    cached = _CACHE.get(key) if key is not None else None
    if cached is not None:
        _CACHE.move_to_end(key)  # type: ignore[arg-type]
        generated = "generator" in cached.settings.get("variants", {})
        return replace(cached, source=source, errors=list(cached.errors),
                       _variant_cache={} if generated else cached._variant_cache)
    t = _load(path, config, source)
    if key is not None:
        _CACHE[key] = t
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return replace(t, errors=list(t.errors)) if key is not None else t


def _load(path: Path, config: ProjectConfig, source: str) -> Template:
    t = Template(path=path, source=source, config=config)
    table, prefix = config.template_table(path)
    settings: dict = dict(table or {})
    if table is not None:
        t.settings_file, t.settings_prefix = config.file, prefix
    try:
        t.front = frontmatter.parse(source)
    except frontmatter.FrontMatterError as e:
        t.errors.append(Diagnostic(file=str(path), line=e.line, column=e.column,
                                   message=e.message, source="cutlens", code="front-matter"))
        t.broken = True
        t.front = frontmatter.FrontMatter(start_line=e.line)
    if t.front.data:
        settings.update(t.front.data)
        t.settings_file, t.settings_prefix = path, ""
    t.settings = settings
    for k in sorted(set(settings) - TEMPLATE_KEYS):
        t.error(f"unknown front-matter table {k!r} (expected one of "
                f"{', '.join(sorted(TEMPLATE_KEYS))})", k, severity="warning")
    t.kind = str(settings.get("kind", "cutlass"))
    if t.kind not in KINDS:
        t.error(f"kind must be one of {', '.join(KINDS)}, not {t.kind!r}", "", "kind")
        t.kind = "cutlass"
    t.kernel_name = str(settings.get("kernel_name") or default_kernel_name(path))
    trust.check_front_matter_flags(t)
    _load_samples(t)
    _load_bench(t)
    _load_companions(t)
    return t
