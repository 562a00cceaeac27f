"""Every setting cutlens reads, as attrs classes: the project config (``cutlens.toml``,
``[tool.cutlens]``), its ``[bench]`` table, and the tables a template's settings hold (front
matter or a per-template table): ``[compile]``, ``[bench]``. Field metadata carries the rules
(``choices``, ``min``, ``pattern``), which fields are paths, and the editor's aliases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

ARCH_PATTERN = r"(?:sm_|compute_)?\d{2,3}[af]?"
MODULE_ATTR_PATTERN = r"[A-Za-z_][\w.]*:[A-Za-z_]\w*"
DEFAULT_GLOBS = ["**/*.cu.jinja", "**/*.cuh.jinja", "**/*.cu.j2"]
DEFAULT_EXCLUDE = [".git/**", ".venv/**", "**/node_modules/**", ".cutlens/**",
                   "**/__pycache__/**"]
#: Folders no watcher reacts to and no search enters (caches, environments, VCS, the
#: end-to-end tests' editor installs).
IGNORED_DIRS = frozenset({".git", ".cutlens", "node_modules", ".venv", "__pycache__", ".e2e"})
CHECK_ON = ("save", "change", "off")
KINDS = ("cutlass", "cuda")


def _meta(**kw: Any) -> dict[str, Any]:
    return kw


def _arch(**kw: Any) -> Any:
    return attrs.field(metadata=_meta(pattern=ARCH_PATTERN,
                                      pattern_doc="an arch such as sm_90a or sm_80"), **kw)


@attrs.define
class BenchConfig:
    """``[bench]`` of the project config: where and how benchmarks run."""

    device: str | int = "cuda"
    devices: list[int | str] | int | None = None
    warmup_ms: float = attrs.field(default=25.0, metadata=_meta(min=0))
    rep_ms: float = attrs.field(default=100.0, metadata=_meta(min=0))
    min_iters: int | None = attrs.field(default=None, metadata=_meta(min=1))
    max_iters: int | None = attrs.field(default=None, metadata=_meta(min=1))
    flush_l2: bool | None = None
    flush_bytes: int | None = attrs.field(default=None, metadata=_meta(min=0))
    #: Steady state, stability and finalists (cutlens.bench.protocol.TimingConfig).
    settle_min_ms: float | None = attrs.field(default=None, metadata=_meta(min=0))
    settle_max_ms: float | None = attrs.field(default=None, metadata=_meta(min=0))
    stable_pct: float | None = attrs.field(default=None, metadata=_meta(min=0))
    finalists: int | None = attrs.field(default=None, metadata=_meta(min=0))
    rounds: int | None = attrs.field(default=None, metadata=_meta(min=1))
    timeout_s: float = attrs.field(default=60.0, metadata=_meta(min=0))
    executor: str = attrs.field(default="local", metadata=_meta(choices=("local", "ray")))
    ray_address: str | None = None
    gpu_resource: str = "GPU"
    workers_per_gpu: int = attrs.field(default=1, metadata=_meta(min=1))

    def timing(self) -> dict[str, Any]:
        """The keys the bench worker's timing takes (those set)."""
        keys = ("warmup_ms", "rep_ms", "min_iters", "max_iters", "flush_l2", "flush_bytes",
                "settle_min_ms", "settle_max_ms", "stable_pct", "finalists", "rounds")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


SIZE_PATTERN = r"\d+(?:\.\d+)?\s*(?:[kKmMgGtT]i?[bB]|[bB])?"
_SIZE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}


def parse_size(value: str | int) -> int:
    """Bytes of ``"4GB"`` (10^9 per GB), ``"500MiB"`` (2^20 per MiB), ``"1.5 GB"`` or an
    integer number of bytes. Raises ValueError on anything else."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        return value
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(value))
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _SIZE_UNITS:
        raise ValueError(f"not a size: {value!r} (like '4GB', '500MiB' or bytes)")
    return int(float(m.group(1)) * _SIZE_UNITS[unit])


@attrs.define
class CacheConfig:
    """``[cache]`` of the project config: the build cache under ``.cutlens/build``."""

    #: Past this size the least recently used entries are evicted (never one in use);
    #: ``0``: no bound. ``"4GB"`` (10^9 bytes per GB), ``"500MiB"``, or bytes.
    max_size: str | int = attrs.field(default="4GB", metadata=_meta(
        min=0, pattern=SIZE_PATTERN,
        pattern_doc="a size such as '4GB', '500MiB' or a number of bytes (0: no bound)"))

    @property
    def max_bytes(self) -> int:
        """The bound in bytes (0: none)."""
        try:
            return parse_size(self.max_size)
        except ValueError:  # validated when read; a default never fails
            return parse_size("4GB")


@attrs.define
class CompileTable:
    """``[compile]`` of a template (front matter or per-template table): adds to or
    overrides the project's compiler settings. Paths resolve against the folder of the file
    that holds the table."""

    arch: str | None = _arch(default=None)
    std: str | None = attrs.field(default=None, metadata=_meta(pattern=r"c\+\+\d\d",
                                                               pattern_doc="like c++17"))
    include_dirs: list[str] = attrs.field(factory=list, metadata=_meta(path=True))
    #: Include dirs passed as ``-isystem``: the compilers say nothing about their headers'
    #: warnings (FlashInfer passes every include dir this way).
    system_include_dirs: list[str] = attrs.field(factory=list, metadata=_meta(path=True))
    defines: list[str] = attrs.Factory(list)
    extra_flags: list[str] = attrs.Factory(list)
    #: What cutlens adds for CUTLASS by default (the nvidia-cutlass wheel's include dirs and
    #: Inductor's CUTLASS defines); false drops both, never dirs or defines the user set.
    cutlass: bool | None = None
    #: The CUTLASS defines (Inductor's, by default); [] drops them. Independent of the
    #: CUTLASS include dirs.
    cutlass_defines: list[str] | None = None
    #: Warnings to leave out, by the code cutlens shows: an EDG number (``3357`` or
    #: ``3357-D``, also passed to nvcc as ``--diag-suppress``), a gcc flag
    #: (``-Wdeprecated-declarations``), ``spill`` (ptxas's spill warnings).
    diag_suppress: list[str] = attrs.Factory(list)
    timeout_s: float | None = attrs.field(default=None, metadata=_meta(min=0))


@attrs.define
class TemplateBench:
    """``[bench]`` of a template: the torch reference and the work for TFLOP/s and GB/s."""

    reference: str | None = None
    flops: str | int | None = None
    bytes: str | int | None = None
    atol: float | None = attrs.field(default=None, metadata=_meta(min=0))
    rtol: float | None = attrs.field(default=None, metadata=_meta(min=0))
    baseline: bool = True
    #: Compile each sample's sizes in (no shape-generic builds): ``cutlens bench
    #: --static-sizes`` for one run.
    static_sizes: bool | None = None

    def to_json(self) -> dict[str, Any]:
        """What a bench worker needs (how the run is built is not its business)."""
        return {k: v for k, v in attrs.asdict(self).items()
                if v is not None and k != "static_sizes"}


#: The ops a samples file holds (``cutlens capture``) and the layouts of a node's last two
#: dims (row: stride 1 last; col: stride 1 before it).
CAPTURED_OPS = ("mm", "addmm", "bmm", "baddbmm", "_scaled_mm", "_int_mm")
NODE_LAYOUTS = ("row", "col", "any")


@attrs.define
class AcceptsTable:
    """``[accepts]`` of a template: which captured samples (``samples_from``) it can run —
    their op, dtypes and layouts — and which captured node each of its nodes is."""

    ops: list[str] = attrs.field(factory=list, metadata=_meta(each_choices=CAPTURED_OPS))
    dtypes: list[str] = attrs.Factory(list)
    #: Template node -> captured node (``X = "mat1"``; the result is ``out``).
    nodes: dict[str, str] = attrs.Factory(dict)
    #: Template node -> the layouts it takes (``row``, ``col``, ``any``).
    layouts: dict[str, list[str]] = attrs.field(factory=dict, metadata=_meta(
        each_choices=NODE_LAYOUTS))


@attrs.define
class TemplateSettings:
    """A template's settings (front matter, or a per-template table in the project config).
    The contents of ``samples``, ``variants`` and ``[[variant]]`` are read by the template
    stage (:mod:`cutlens.template.settings`, :mod:`cutlens.template.variants`)."""

    samples: dict[str, Any] = attrs.Factory(dict)
    variants: dict[str, Any] = attrs.Factory(dict)
    variant: list[dict[str, Any]] = attrs.Factory(list)
    bench: TemplateBench = attrs.Factory(TemplateBench)
    #: Output name -> template path (relative to the template's folder or the root).
    companions: dict[str, str] = attrs.Factory(dict)
    template_class: str | None = attrs.field(default=None, metadata=_meta(
        pattern=MODULE_ATTR_PATTERN, pattern_doc="'module:Class'"))
    kernel_class: str | None = attrs.field(default=None, metadata=_meta(
        pattern=MODULE_ATTR_PATTERN, pattern_doc="'module:Class'"))
    kind: str = attrs.field(default="cutlass", metadata=_meta(choices=KINDS))
    kernel_name: str | None = attrs.field(default=None, metadata=_meta(
        pattern=r"[A-Za-z_]\w*", pattern_doc="a C identifier"))
    compile: CompileTable = attrs.Factory(CompileTable)
    #: A samples file of ``cutlens capture`` (``"captured"``: ``.cutlens/captured.toml``
    #: under the project root; else a path from this file's folder).
    samples_from: str | None = None
    accepts: AcceptsTable | None = None


#: The tables and keys of a template's settings.
TEMPLATE_KEYS = tuple(f.name for f in attrs.fields(TemplateSettings))


@attrs.define
class DriverConfig:
    """``[[driver]]``: a render driver, a Python function that yields cases (rendered
    translation units) from templates that live in ``.py`` modules."""

    #: ``package.module:function``, imported from the project root.
    entry: str = attrs.field(default="", metadata=_meta(
        pattern=MODULE_ATTR_PATTERN, pattern_doc="'package.module:function'"))
    #: A driver still running after this is stopped (its cases are lost, an error says so).
    timeout_s: float = attrs.field(default=120.0, metadata=_meta(min=0))


@attrs.define
class InductorConfig:
    """``[inductor]``: check PyTorch Inductor's own CUTLASS GEMM templates, rendered by
    Inductor's classes (the built-in ``inductor`` render driver)."""

    #: The template module: an edited copy or a PyTorch checkout's file (default: the
    #: installed torch's ``torch/_inductor/codegen/cutlass/gemm_template.py``).
    source: str | None = attrs.field(default=None, metadata=_meta(path=True))
    #: Template classes to render (default: every CUTLASS GEMM template class it defines).
    templates: list[str] = attrs.Factory(list)
    #: Substrings of op names to check (default: the sampling rule, ``max_ops`` per class).
    ops: list[str] = attrs.Factory(list)
    max_ops: int = attrs.field(default=4, metadata=_meta(min=1))
    #: The runtime swizzles each op is benchmarked with (one build for all).
    swizzles: list[int] = attrs.field(factory=lambda: [1, 2, 4, 8])
    #: Inductor's ``config.cuda.arch`` (default: from the project's ``arch``: sm_90a -> 90).
    arch: str | None = attrs.field(default=None, metadata=_meta(
        pattern=r"\d{2,3}", pattern_doc="a number such as 90"))
    timeout_s: float = attrs.field(default=900.0, metadata=_meta(min=0))
    #: Sample problems: nodes X, W, Y (front-matter node syntax), checked by the loader.
    samples: dict[str, Any] = attrs.Factory(dict)


@attrs.define
class ProjectConfig:
    """The settings of one project root, typed. Paths are absolute once loaded: in the
    config file they resolve against the file's folder (the root); in editor settings,
    against the root too."""

    #: The project root (the config file's folder).
    root: Path = attrs.field(factory=Path.cwd, metadata=_meta(internal=True))
    #: The config file (``cutlens.toml`` or ``pyproject.toml``), None without one.
    file: Path | None = attrs.field(default=None, metadata=_meta(internal=True))
    #: nvcc (a path, or a name looked up on PATH); checked when a compile needs it.
    nvcc: str | None = attrs.field(default=None, metadata=_meta(path="command",
                                                                must_exist=False))
    arch: str = _arch(default="sm_90a")
    std: str = attrs.field(default="c++17", metadata=_meta(pattern=r"c\+\+\d\d",
                                                          pattern_doc="like c++17"))
    include_dirs: list[str] = attrs.field(factory=list, metadata=_meta(
        path=True, aliases=("includeDirs",)))
    #: Include dirs passed as ``-isystem`` (no warnings from their headers).
    system_include_dirs: list[str] = attrs.field(factory=list, metadata=_meta(path=True))
    #: What cutlens adds for CUTLASS by default: the nvidia-cutlass wheel's include dirs and
    #: Inductor's CUTLASS defines (false: neither; dirs and defines you set stay).
    cutlass: bool = True
    #: The CUTLASS include dirs (default: the nvidia-cutlass wheel's). Only replaces the dirs:
    #: the CUTLASS defines are ``cutlass_defines``.
    cutlass_include_dirs: list[str] | None = attrs.field(default=None, metadata=_meta(
        path=True, must_exist=False))
    #: The CUTLASS defines (default Inductor's; [] none); a template's [compile] may
    #: override them.
    cutlass_defines: list[str] | None = None
    #: Warnings to leave out by code, for every template (see CompileTable.diag_suppress).
    diag_suppress: list[str] = attrs.Factory(list)
    defines: list[str] = attrs.Factory(list)
    extra_flags: list[str] = attrs.field(factory=list, metadata=_meta(aliases=("extraFlags",)))
    globs: list[str] = attrs.field(factory=lambda: list(DEFAULT_GLOBS))
    exclude: list[str] = attrs.field(factory=lambda: list(DEFAULT_EXCLUDE))
    #: Extra directories Jinja searches for ``{% include %}``/``{% import %}`` names.
    search_path: list[str] = attrs.field(factory=list, metadata=_meta(
        path=True, aliases=("searchPath",)))
    jobs: int = attrs.field(default=0, metadata=_meta(min=0))
    check_on: str = attrs.field(default="save", metadata=_meta(choices=CHECK_ON,
                                                              aliases=("checkOn",)))
    render_timeout_s: float = attrs.field(default=5.0, metadata=_meta(min=0))
    compile_timeout_s: float = attrs.field(default=600.0, metadata=_meta(min=0))
    template_class: str | None = attrs.field(default=None, metadata=_meta(
        pattern=MODULE_ATTR_PATTERN, pattern_doc="'module:Class'"))
    kernel_class: str | None = attrs.field(default=None, metadata=_meta(
        pattern=MODULE_ATTR_PATTERN, pattern_doc="'module:Class'"))
    line_directives: bool = False
    #: nvcc flags front matter may pass although they run programs or write files
    #: (``true``: all; a list: these, e.g. ``["-ccbin"]``). Project config only: never
    #: taken from editor settings (see :mod:`cutlens.config.flags`).
    allow_unsafe_flags: bool | list[str] = attrs.field(default=False, metadata=_meta(
        project_only=True))
    bench: BenchConfig = attrs.Factory(BenchConfig)
    #: The samples file every template with ``[accepts]`` takes samples from (``captured``:
    #: ``.cutlens/captured.toml``); a template's own ``samples_from`` wins.
    samples_from: str | None = None
    #: Render drivers (``[[driver]]``): templates that live in Python.
    driver: list[DriverConfig] = attrs.field(factory=list, metadata=_meta(internal=True))
    #: Inductor's own CUTLASS templates (``[inductor]``), None when not configured.
    inductor: InductorConfig | None = None
    cache: CacheConfig = attrs.Factory(CacheConfig)
    #: Per-template tables (settings for templates that cannot carry front matter), by
    #: path relative to ``root``; their contents are checked when the template loads.
    template: dict[str, dict[str, Any]] = attrs.field(factory=dict, metadata=_meta(internal=True))
    #: Where the config file's keys are (for diagnostics on its lines).
    index: Any = attrs.field(default=None, metadata=_meta(internal=True))
    #: Key prefix of this config's tables in ``index`` (``tool.cutlens`` in pyproject).
    index_prefix: str = attrs.field(default="", metadata=_meta(internal=True))
    #: What was wrong with the config file or the editor settings.
    problems: list[Any] = attrs.field(factory=list, metadata=_meta(internal=True))

    @property
    def cache_dir(self) -> Path:
        return self.root / ".cutlens"

    def config_line(self, table: str, key: str | None = None) -> int:
        """Line of ``[table] key`` in the config file (1 when unknown)."""
        if self.index is None:
            return 1
        full = ".".join(p for p in (self.index_prefix.rstrip("."), table) if p)
        return int(self.index.line_of(full, key, default=1))

    def template_table(self, path: Path) -> tuple[dict[str, Any] | None, str]:
        """The per-template table for ``path`` and its key prefix in the config index."""
        try:
            rel = path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            rel = path.as_posix()
        for key in (rel, path.as_posix(), path.name):
            if key in self.template:
                return self.template[key], ".".join(p for p in (
                    self.index_prefix.rstrip("."), "template", key) if p)
        return None, ""

    def template_table_files(self) -> list[Path]:
        """The files the per-template tables name (those that exist)."""
        out = []
        for key in self.template:
            p = (self.root / key).resolve()
            if p.is_file():
                out.append(p)
        return out
