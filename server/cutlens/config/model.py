"""Project config: ``cutlens.toml`` at the workspace root, or ``[tool.cutlens]`` in
``pyproject.toml`` (same keys)."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from cutlens.template import frontmatter

DEFAULT_GLOBS = ["**/*.cu.jinja", "**/*.cuh.jinja", "**/*.cu.j2"]
DEFAULT_EXCLUDE = [".git/**", ".venv/**", "**/node_modules/**", ".cutlens/**", "**/__pycache__/**"]
CHECK_ON = ("save", "change", "off")


class ConfigError(ValueError):
    """A bad project config, at ``file:line``."""

    def __init__(self, message: str, file: str, line: int = 1, column: int = 0) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.message = message
        self.file = file
        self.line = line
        self.column = column


@dataclass
class ProjectConfig:
    """Settings for one workspace root. Paths are absolute once loaded."""

    root: Path = field(default_factory=Path.cwd)
    file: Path | None = None
    nvcc: str | None = None
    arch: str = "sm_90a"
    std: str = "c++17"
    include_dirs: list[str] = field(default_factory=list)
    cutlass: bool = True
    #: Override for the CUTLASS include dirs (default: the nvidia-cutlass wheel's).
    cutlass_include_dirs: list[str] | None = None
    defines: list[str] = field(default_factory=list)
    extra_flags: list[str] = field(default_factory=list)
    globs: list[str] = field(default_factory=lambda: list(DEFAULT_GLOBS))
    exclude: list[str] = field(default_factory=lambda: list(DEFAULT_EXCLUDE))
    #: Extra directories Jinja searches for ``{% include %}``/``{% import %}`` names.
    search_path: list[str] = field(default_factory=list)
    jobs: int = 0
    check_on: str = "save"
    render_timeout_s: float = 5.0
    compile_timeout_s: float = 600.0
    template_class: str | None = None
    kernel_class: str | None = None
    line_directives: bool = False
    #: nvcc flags front matter may pass although they run programs or write files
    #: (``true``: all; a list: these, e.g. ``["-ccbin"]``). Project config only: never
    #: taken from editor settings (see :mod:`cutlens.trust`).
    allow_unsafe_flags: bool | list[str] = False
    #: Benchmark settings: devices, warmup_ms, rep_ms, timeout_s.
    bench: dict = field(default_factory=dict)
    #: Per-template tables (front matter for templates that cannot carry one), by path
    #: relative to ``root``.
    template: dict[str, dict] = field(default_factory=dict)
    #: Line index of the config file (for errors in per-template tables).
    index: frontmatter.FrontMatter | None = None
    #: Key prefix of this config's tables in ``index`` (``tool.cutlens.`` in pyproject).
    index_prefix: str = ""

    @property
    def cache_dir(self) -> Path:
        return self.root / ".cutlens"

    def effective_jobs(self) -> int:
        return self.jobs if self.jobs > 0 else (os.cpu_count() or 1)

    def template_table(self, path: Path) -> tuple[dict | None, str]:
        """The per-template table for ``path`` and its key prefix in the config index."""
        try:
            rel = path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            rel = path.as_posix()
        for key in (rel, path.as_posix(), path.name):
            if key in self.template:
                return self.template[key], f"{self.index_prefix}template.{key}"
        return None, ""

    def config_line(self, table: str, key: str | None = None) -> int:
        """Line of ``[table] key`` in the config file (1 when unknown)."""
        if self.index is None:
            return 1
        return self.index.line_of(table, key, default=1)


_KNOWN = {f.name for f in fields(ProjectConfig)} - {"root", "file", "index", "index_prefix"}
#: Keys only a project config file may set (editor settings are not a trust anchor).
PROJECT_ONLY = {"allow_unsafe_flags"}
_PATH_LISTS = ("include_dirs", "search_path")


def apply(cfg: ProjectConfig, data: dict, where: str = "settings") -> ProjectConfig:
    """Apply a table of settings (config file, LSP initializationOptions) onto ``cfg``."""
    aliases = {"checkOn": "check_on", "includeDirs": "include_dirs", "templateGlobs": "globs",
               "extraFlags": "extra_flags", "benchmark": "bench", "templates": "globs"}
    for raw_key, value in data.items():
        key = aliases.get(raw_key, raw_key)
        if key not in _KNOWN or (key in PROJECT_ONLY and where == "settings"):
            continue
        if value is None:
            continue
        if key == "check_on" and value not in CHECK_ON:
            raise ConfigError(f"check_on must be one of {', '.join(CHECK_ON)}, not {value!r}",
                              where, cfg.config_line(cfg.index_prefix.rstrip("."), raw_key))
        if key in _PATH_LISTS:
            value = [str((cfg.root / v).resolve()) for v in value]
        if key == "cutlass_include_dirs" and value is not None:
            value = [str((cfg.root / v).resolve()) for v in value]
        if key == "nvcc" and value and ("/" in value):
            value = str((cfg.root / value).resolve())
        setattr(cfg, key, value)
    return cfg


def _read(path: Path) -> tuple[dict, str]:
    text = path.read_text()
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(str(e), str(path), getattr(e, "lineno", 1) or 1,
                          getattr(e, "colno", 0) or 0) from None


def find_root(start: Path) -> Path:
    """The nearest directory above ``start`` holding ``cutlens.toml`` or a ``pyproject.toml``
    with ``[tool.cutlens]``; else ``start`` itself (or its directory)."""
    start = start.resolve()
    base = start if start.is_dir() else start.parent
    for d in [base, *base.parents]:
        if (d / "cutlens.toml").is_file():
            return d
        pp = d / "pyproject.toml"
        if pp.is_file():
            try:
                if "cutlens" in tomllib.loads(pp.read_text()).get("tool", {}):
                    return d
            except tomllib.TOMLDecodeError:
                continue
    return base


def load(root: Path) -> ProjectConfig:
    """Load the project config of a workspace root (defaults when there is none)."""
    root = root.resolve()
    cfg = ProjectConfig(root=root)
    path = root / "cutlens.toml"
    data: dict = {}
    if path.is_file():
        data, text = _read(path)
        cfg.file, cfg.index = path, frontmatter.index(text, 1)
    elif (root / "pyproject.toml").is_file():
        pp, text = _read(root / "pyproject.toml")
        if "cutlens" in pp.get("tool", {}):
            data = pp["tool"]["cutlens"]
            cfg.file, cfg.index = root / "pyproject.toml", frontmatter.index(text, 1)
            cfg.index_prefix = "tool.cutlens."
    template = data.pop("template", {})
    if not isinstance(template, dict):
        raise ConfigError("'template' must be a table of per-template tables", str(cfg.file))
    apply(cfg, data, str(cfg.file))
    cfg.template = template
    return cfg
