"""Reading the project config once: ``cutlens.toml`` at the root, or ``[tool.cutlens]`` in
``pyproject.toml``, then the editor's settings on top. Nothing here raises on bad content:
every problem is a diagnostic on the config file's line (``config.problems``), and a bad key
keeps its default."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import attrs

from cutlens.config.editor import SERVER_SETTINGS
from cutlens.config.schema import (
    BenchConfig,
    DriverConfig,
    ProjectConfig,
    TemplateSettings,
)
from cutlens.config.toml_index import TomlIndex, index
from cutlens.config.validate import (
    Problems,
    Where,
    describe,
    did_you_mean,
    values,
)
from cutlens.diagnostics import Diagnostic

#: Editor setting names that are not config keys or their aliases (camelCase, as the VS Code
#: extension sends them) -> config keys.
SETTING_ALIASES = {"benchmark": "bench", "templateGlobs": "globs", "templates": "globs"}


_TOML_POS_RE = re.compile(r"\(at line (\d+), column (\d+)\)")


class ConfigError(ValueError):
    """A config that cannot be used: the first error, at ``file:line``."""

    def __init__(self, message: str, file: str, line: int = 1, column: int = 0) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.message = message
        self.file = file
        self.line = line
        self.column = column

    @classmethod
    def of(cls, d: Diagnostic) -> ConfigError:
        return cls(d.message, d.file, d.line, d.column)


def _toml(path: Path) -> tuple[dict[str, Any] | None, str, Diagnostic | None]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        return None, "", Diagnostic(file=str(path), line=1, message=f"cannot read: {e}",
                                    source="cutlens", code="config")
    try:
        return tomllib.loads(text), text, None
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        pos = _TOML_POS_RE.search(msg)
        line, col = (int(pos.group(1)), int(pos.group(2))) if pos else \
            (text.rstrip().count("\n") + 1, 0)
        msg = _TOML_POS_RE.sub("", msg).replace("(at end of document)", "at the end").strip()
        return None, text, Diagnostic(file=str(path), line=line, column=col,
                                      message=f"not valid TOML: {msg}", source="cutlens",
                                      code="config")


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
            except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError):
                continue
    return base


def root_for(path: Path) -> Path:
    """The project root of ``path``; a file outside any project (an installed module the
    project checks, e.g. torch's gemm_template.py) belongs to the current directory's."""
    root = find_root(path)
    if not has_config(root):
        here = find_root(Path.cwd())
        if has_config(here):
            return here
    return root


def has_config(root: Path) -> bool:
    if (root / "cutlens.toml").is_file():
        return True
    pp = root / "pyproject.toml"
    try:
        return pp.is_file() and "cutlens" in tomllib.loads(pp.read_text()).get("tool", {})
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError):
        return False


def load(root: Path) -> ProjectConfig:
    """The config of a project root (defaults where there is no file or a key is bad);
    ``problems`` lists what was wrong, each on its line."""
    root = root.resolve()
    cfg = ProjectConfig(root=root)
    data: dict[str, Any] = {}
    path = root / "cutlens.toml"
    if path.is_file():
        parsed, text, err = _toml(path)
        cfg.file = path
        if err is not None:
            cfg.problems.append(err)
            return cfg
        data, cfg.index = parsed or {}, index(text, 1)
    elif (root / "pyproject.toml").is_file():
        pp, text, err = _toml(root / "pyproject.toml")
        tool = (pp or {}).get("tool", {})
        if err is not None and "cutlens" in text:
            cfg.file = root / "pyproject.toml"
            cfg.problems.append(err)
            return cfg
        if isinstance(tool, dict) and "cutlens" in tool:
            cfg.file, cfg.index, cfg.index_prefix = root / "pyproject.toml", index(text, 1), \
                "tool.cutlens"
            data = tool["cutlens"]
            if not isinstance(data, dict):
                cfg.problems.append(Diagnostic(file=str(cfg.file), line=cfg.config_line(""),
                                               message="[tool.cutlens] must be a table",
                                               source="cutlens", code="config"))
                return cfg
    if cfg.file is None:
        return cfg
    problems = Problems()
    where = Where(str(cfg.file), cfg.index, cfg.index_prefix)
    _apply(cfg, data, where, problems, from_file=True)
    cfg.problems = problems.items
    return cfg


def _apply(cfg: ProjectConfig, data: dict[str, Any], where: Where, problems: Problems,
           from_file: bool) -> None:
    """Set the keys of ``data`` on ``cfg`` (each checked; a bad one keeps its value)."""
    template = data.get("template")
    drivers = data.get("driver")
    rest = {k: v for k, v in data.items() if k not in ("template", "driver")}
    if not from_file:
        for k in [k for k in rest if _project_only(k)]:
            problems.add(where, "", k, f"{k} can only be set in the project config file "
                         "(cutlens.toml or [tool.cutlens]), not in editor settings")
            rest.pop(k)
    for name, value in values(ProjectConfig, rest, where, "", problems, base=cfg.root).items():
        if name == "bench" and not from_file:  # editor settings set only what they say
            given = rest.get("bench") or {}
            value = attrs.evolve(cfg.bench, **{k: getattr(value, k) for k in given
                                               if k in attrs.fields_dict(BenchConfig)})
        setattr(cfg, name, value)
    if template is not None:
        cfg.template = _template_tables(template, cfg, where, problems)
    if drivers is not None:
        if not from_file:
            problems.add(where, "", "driver", "render drivers can only be declared in the "
                         "project config file (cutlens.toml or [tool.cutlens])")
        else:
            cfg.driver = _drivers(drivers, cfg, where, problems)


def _project_only(key: str) -> bool:
    f = attrs.fields_dict(ProjectConfig).get(key)
    return f is not None and bool(f.metadata.get("project_only"))


def _template_tables(data: Any, cfg: ProjectConfig, where: Where,
                     problems: Problems) -> dict[str, dict[str, Any]]:
    """Per-template tables: each a table naming an existing file, with known keys."""
    if not isinstance(data, dict):
        problems.add(where, "", "template", "'template' must be a table of per-template "
                     f"tables ([template.\"path/to/t.jinja\"]), not {describe(data)}")
        return {}
    out = {}
    for name, table in data.items():
        label = f"template.{name}"
        if not isinstance(table, dict):
            problems.add(where, label, None, f"[template.{name!r}] must be a table of the "
                         f"template's settings, not {describe(table)}")
            continue
        target = (cfg.root / name)
        if not target.is_file():
            problems.add(where, label, None, f"[template.{name!r}]: no file {name!r}"
                         f"{_near_file(cfg.root, name)} (per-template tables name a template "
                         f"by its path relative to {cfg.root})")
            continue
        values(TemplateSettings, table, where, label, problems, base=cfg.root)
        out[name] = table
    return out


def _drivers(data: Any, cfg: ProjectConfig, where: Where,
             problems: Problems) -> list[DriverConfig]:
    """``[[driver]]`` entries: each needs an ``entry`` whose module exists under the root."""
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        problems.add(where, "", "driver", "drivers are declared as [[driver]] tables "
                     f"(entry = \"package.module:function\"), not {describe(data)}")
        return []
    lines = cfg.index.array_lines(".".join(p for p in (cfg.index_prefix, "driver") if p)) \
        if cfg.index is not None else []
    out = []
    for i, table in enumerate(data):
        line = lines[i] if i < len(lines) else 1
        at = Where(where.file, TomlIndex(lines={("driver", None): line}), "")
        before = len(problems.items)
        vals = values(DriverConfig, table, at, "driver", problems)
        for d in problems.items[before:]:
            d.line = line  # an array-of-tables entry: its [[driver]] line
        if "entry" not in vals:
            if "entry" not in table:
                problems.add(at, "driver", None, "[[driver]] needs entry = "
                             "\"package.module:function\"")
            continue
        if driver_module_file(cfg.root, vals["entry"]) is None:
            problems.add(at, "driver", None, f"driver {vals['entry']!r}: no module "
                         f"{vals['entry'].split(':')[0]!r} under {cfg.root}")
            continue
        out.append(DriverConfig(**vals))
    return out


def driver_module_file(root: Path, entry: str) -> Path | None:
    """The file of a driver entry's module (``pkg/mod.py`` or ``pkg/mod/__init__.py``)."""
    mod = entry.split(":", 1)[0].replace(".", "/")
    for cand in (root / f"{mod}.py", root / mod / "__init__.py"):
        if cand.is_file():
            return cand.resolve()
    return None
def _near_file(root: Path, name: str) -> str:
    """`` (did you mean 'kernel.cu.jinja'?)`` for a file of a similar name in the folder the
    table names (only that folder is listed: a project can be large)."""
    folder = (root / name).parent
    try:
        names = [p.name for p in folder.iterdir() if p.is_file()]
    except OSError:
        return ""
    hint = did_you_mean(Path(name).name, names)
    parent = Path(name).parent.as_posix()
    if hint and parent != ".":
        hint = hint.replace("mean '", f"mean '{parent}/")
    return hint


def apply_settings(cfg: ProjectConfig, settings: dict[str, Any]) -> list[Diagnostic]:
    """Apply the editor's settings (LSP initialization options / configuration) onto
    ``cfg``; returns their problems (file ``settings``: they have no lines)."""
    problems = Problems()
    where = Where("settings", label="settings")
    data: dict[str, Any] = {}
    for raw, value in settings.items():
        if raw in SERVER_SETTINGS or value is None or value == "":
            continue
        key = SETTING_ALIASES.get(raw, raw)
        if key == "globs" and raw != "globs" and isinstance(value, list):
            value = list(dict.fromkeys([*cfg.globs, *value]))  # more globs, besides these
        data[key] = value
    _apply(cfg, data, where, problems, from_file=False)
    for d in problems.items:
        d.message = "cutlens setting " + d.message
    return problems.items
