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
CHECK_ON = ("save", "change", "off")
KINDS = ("cutlass", "cuda")


def _meta(**kw: Any) -> dict:
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
    timeout_s: float = attrs.field(default=60.0, metadata=_meta(min=0))
    executor: str = attrs.field(default="local", metadata=_meta(choices=("local", "ray")))
    ray_address: str | None = None
    gpu_resource: str = "GPU"
    workers_per_gpu: int = attrs.field(default=1, metadata=_meta(min=1))

    def timing(self) -> dict[str, Any]:
        """The keys the bench worker's timing takes (those set)."""
        keys = ("warmup_ms", "rep_ms", "min_iters", "max_iters", "flush_l2", "flush_bytes")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


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

    def to_json(self) -> dict:
        return {k: v for k, v in attrs.asdict(self).items() if v is not None}


#: The tables and keys of a template's settings (front matter or per-template table); their
#: contents are read by the template stage (:mod:`cutlens.template.settings`).
TEMPLATE_KEYS = ("samples", "variants", "variant", "bench", "companions", "template_class",
                 "kernel_class", "kind", "kernel_name", "compile")


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
    search_path: list[str] = attrs.field(factory=list, metadata=_meta(path=True))
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
    #: taken from editor settings (see :mod:`cutlens.nvcc.flags`).
    allow_unsafe_flags: bool | list[str] = attrs.field(default=False, metadata=_meta(
        project_only=True))
    bench: BenchConfig = attrs.Factory(BenchConfig)
    #: Per-template tables (settings for templates that cannot carry front matter), by
    #: path relative to ``root``; their contents are checked when the template loads.
    template: dict[str, dict] = attrs.field(factory=dict, metadata=_meta(internal=True))
    #: Where the config file's keys are (for diagnostics on its lines).
    index: Any = attrs.field(default=None, metadata=_meta(internal=True))
    #: Key prefix of this config's tables in ``index`` (``tool.cutlens`` in pyproject).
    index_prefix: str = attrs.field(default="", metadata=_meta(internal=True))
    #: What was wrong with the config file or the editor settings.
    problems: list = attrs.field(factory=list, metadata=_meta(internal=True))

    @property
    def cache_dir(self) -> Path:
        return self.root / ".cutlens"

    def effective_jobs(self) -> int:
        import os

        return self.jobs if self.jobs > 0 else (os.cpu_count() or 1)

    def config_line(self, table: str, key: str | None = None) -> int:
        """Line of ``[table] key`` in the config file (1 when unknown)."""
        if self.index is None:
            return 1
        full = ".".join(p for p in (self.index_prefix.rstrip("."), table) if p)
        return self.index.line_of(full, key, default=1)

    def template_table(self, path: Path) -> tuple[dict | None, str]:
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
