"""Type-checking settings tables against attrs classes, one key at a time.

Each key of a table is structured on its own (a strict cattrs converter: ``"two"`` is no
integer, ``"include"`` no list of strings), so that one bad key costs only that key: the
others still apply, and every problem becomes a :class:`~cutlens.diagnostics.Diagnostic` on
the line that holds the key. Unknown keys are warnings that suggest the nearest known one.
"""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, Literal, cast, get_args, get_origin

import attrs
import cattrs

from cutlens.config.toml_index import TomlIndex
from cutlens.diagnostics import Diagnostic


def describe(value: Any) -> str:
    """``the string 'two'``, ``the integer 5``, ``a table``: how a wrong value is named."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, str):
        short = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {short!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


_KIND = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
         Path: "a path (a string)"}


def type_name(tp: Any) -> str:
    """``a list of strings``, ``an integer or nothing``: how an expected type is named."""
    if tp in _KIND:
        return _KIND[tp]
    origin, args = get_origin(tp), get_args(tp)
    if origin is list:
        inner = type_name(args[0]) if args else "values"
        return "a list of " + _plural(inner)
    if origin is dict:
        return "a table of " + _plural(type_name(args[1])) if args else "a table"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, UnionType):
        names = [type_name(a) for a in args if a is not NoneType]
        return " or ".join(names)
    if attrs.has(tp):
        return "a table"
    return getattr(tp, "__name__", str(tp))


def _plural(kind: str) -> str:
    word = kind.removeprefix("a ").removeprefix("an ")
    if word.startswith("path"):
        return "paths (strings)"
    if word.startswith("table"):
        return "tables"
    return {"string": "strings", "integer": "integers", "number": "numbers",
            "true or false": "booleans"}.get(word, word)


class _Invalid(TypeError):
    """A value of the wrong type; ``where`` names the element (``[2]``) inside the key."""

    def __init__(self, expected: str, value: Any, where: str = "") -> None:
        super().__init__(f"expected {expected}, not {describe(value)}")
        self.where = where


def _converter() -> cattrs.Converter:
    conv = cattrs.Converter()

    def scalar(tp: type, ok: tuple[type, ...]) -> Callable[[Any, Any], Any]:
        def hook(value: Any, _: Any) -> Any:
            if isinstance(value, bool) and bool not in ok:
                raise _Invalid(type_name(tp), value)
            if not isinstance(value, ok):
                raise _Invalid(type_name(tp), value)
            return tp(value) if tp is not Path else Path(cast(str, value))
        return hook

    conv.register_structure_hook(str, scalar(str, (str,)))
    conv.register_structure_hook(int, scalar(int, (int,)))
    conv.register_structure_hook(float, scalar(float, (int, float)))
    conv.register_structure_hook(bool, scalar(bool, (bool,)))
    conv.register_structure_hook(Path, scalar(Path, (str,)))

    def is_list(tp: Any) -> bool:
        return get_origin(tp) is list

    def list_hook(tp: Any) -> Callable[[Any, Any], Any]:
        (inner,) = get_args(tp) or (Any,)

        def hook(value: Any, _: Any) -> list[Any]:
            if not isinstance(value, list):
                raise _Invalid(type_name(tp), value)
            out = []
            for i, item in enumerate(value):
                try:
                    out.append(conv.structure(item, inner) if inner is not Any else item)
                except _Invalid:
                    raise _Invalid(type_name(inner), item, f"[{i}]") from None
            return out
        return hook

    conv.register_structure_hook_factory(is_list, list_hook)

    def is_dict(tp: Any) -> bool:
        return get_origin(tp) is dict

    def dict_hook(tp: Any) -> Callable[[Any, Any], Any]:
        _, val_t = get_args(tp) or (Any, Any)

        def hook(value: Any, _: Any) -> dict[str, Any]:
            if not isinstance(value, dict):
                raise _Invalid(type_name(tp), value)
            out = {}
            for k, item in value.items():
                try:
                    out[k] = conv.structure(item, val_t) if val_t is not Any else item
                except _Invalid:
                    raise _Invalid(type_name(val_t), item, f".{k}") from None
            return out
        return hook

    conv.register_structure_hook_factory(is_dict, dict_hook)

    def is_union(tp: Any) -> bool:
        return get_origin(tp) in (typing.Union, UnionType) and not (
            len(get_args(tp)) == 2 and NoneType in get_args(tp) and _simple(tp))

    def union_hook(tp: Any) -> Callable[[Any, Any], Any]:
        options = [a for a in get_args(tp) if a is not NoneType]

        def hook(value: Any, _: Any) -> Any:
            if value is None and NoneType in get_args(tp):
                return None
            for opt in options:
                try:
                    return conv.structure(value, opt)
                except (TypeError, ValueError):
                    continue
            raise _Invalid(type_name(tp), value)
        return hook

    conv.register_structure_hook_factory(is_union, union_hook)
    return conv


def _simple(tp: Any) -> bool:
    """``X | None`` where cattrs' own optional handling is right."""
    inner = next(a for a in get_args(tp) if a is not NoneType)
    return inner in (str, int, float, bool, Path) or get_origin(inner) is list


CONVERTER = _converter()


@dataclass
class Where:
    """Where a table's keys live: a file, its line index and the table's key prefix."""

    file: str
    index: TomlIndex | None = None
    prefix: str = ""
    #: How the table is named in messages (``[bench]``, ``cutlens.checkOn``).
    label: str = ""

    def line(self, table: str, key: str | None = None) -> int:
        if self.index is None:
            return 1
        full = ".".join(p for p in (self.prefix.rstrip("."), table) if p)
        return self.index.line_of(full, key, default=self.index.line_of(
            self.prefix.rstrip("."), None, default=1))

    def sub(self, table: str) -> Where:
        return Where(self.file, self.index, ".".join(p for p in (self.prefix.rstrip("."),
                                                                 table) if p), self.label)


@dataclass
class Problems:
    """Diagnostics found while reading settings."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(self, where: Where, table: str, key: str | None, message: str,
            severity: str = "error") -> None:
        self.items.append(Diagnostic(file=where.file, line=where.line(table, key),
                                     message=message, severity=severity,  # type: ignore[arg-type]
                                     source="cutlens", code="config"))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "error"]


def did_you_mean(key: str, known: Iterable[str]) -> str:
    """`` (did you mean 'arch'?)`` for a near miss, else ``""``."""
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def key_name(table: str, key: str) -> str:
    return f"{table}.{key}" if table else key


def unknown_keys(data: dict[str, Any], known: Iterable[str], where: Where, table: str,
                 problems: Problems, what: str = "key") -> None:
    """A warning, with a suggestion, for each key of ``data`` not in ``known``."""
    known = list(known)
    for k in data:
        if k not in known:
            problems.add(where, table, k, f"unknown {what} {key_name(table, k)!r}"
                         f"{did_you_mean(k, known)}", severity="warning")


def check_value(name: str, value: Any, meta: dict[str, Any]) -> str | None:
    """A field's own rules (``choices``, ``min``, ``pattern``): why ``value`` breaks one."""
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        return f"{name} must be one of {', '.join(map(repr, choices))}, not {value!r}"
    each = meta.get("each_choices")
    if each is not None and isinstance(value, list | dict):
        items = list(value.values()) if isinstance(value, dict) else list(value)
        flat = [x for i in items for x in (i if isinstance(i, list) else [i])]
        bad = [x for x in flat if x not in each]
        if bad:
            return f"{name}: {bad[0]!r} is not one of {', '.join(map(repr, each))}"
    lo = meta.get("min")
    if lo is not None and isinstance(value, int | float) and value < lo:
        return f"{name} must be at least {lo}, not {value!r}"
    pattern = meta.get("pattern")
    if pattern is not None and isinstance(value, str) and not re.fullmatch(pattern, value):
        return f"{name} {value!r} is not {meta.get('pattern_doc', 'valid')}"
    return None


def structure(cls: type, data: Any, where: Where, table: str, problems: Problems,
              base: Path | None = None, skip: Iterable[str] = ()) -> Any:
    """``cls`` from the table ``data``: each bad key is a problem on its line and keeps its
    default; unknown keys are warnings. Fields with ``metadata["path"]`` resolve against
    ``base``; ``skip``: keys handled by the caller."""
    return cls(**values(cls, data, where, table, problems, base, skip))


def _attrs_class(tp: Any) -> type | None:
    """The attrs class of a field typed ``C`` or ``C | None``."""
    if attrs.has(tp):
        return tp
    args = [a for a in get_args(tp) if a is not NoneType]
    if get_origin(tp) in (typing.Union, UnionType) and len(args) == 1 and attrs.has(args[0]):
        return args[0]
    return None


def values(cls: type, data: Any, where: Where, table: str, problems: Problems,
           base: Path | None = None, skip: Iterable[str] = ()) -> dict[str, Any]:
    """The valid keys of ``data`` as ``cls``'s field values (nested tables as instances),
    by field name; see :func:`structure`."""
    skip = set(skip)
    if not isinstance(data, dict):
        problems.add(where, table, None, f"[{table}] must be a table, not {describe(data)}")
        return {}
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in attrs.fields(cls) if not f.metadata.get("internal")}
    aliases = {a: f.name for f in fields.values() for a in f.metadata.get("aliases", ())}
    unknown_keys({k: v for k, v in data.items() if k not in skip and k not in aliases},
                 fields, where, table, problems)
    out: dict[str, Any] = {}
    for raw_key, value in data.items():
        name = str(aliases.get(raw_key, raw_key))
        if name not in fields or raw_key in skip:
            continue
        f = fields[name]
        label = key_name(table, raw_key)
        tp = hints[name]
        nested = _attrs_class(tp)
        if nested is not None:
            out[name] = structure(nested, value, where, key_name(table, raw_key), problems,
                                  base)
            continue
        try:
            v = CONVERTER.structure(value, tp)
        except _Invalid as e:
            problems.add(where, table, raw_key, f"{label}{e.where}: {e}")
            continue
        except Exception:  # a shape cattrs did not expect: say what was expected
            problems.add(where, table, raw_key,
                         f"{label}: expected {type_name(tp)}, not {describe(value)}")
            continue
        why = check_value(label, v, dict(f.metadata))
        if why is not None:
            problems.add(where, table, raw_key, why)
            continue
        if f.metadata.get("path") and base is not None and v is not None:
            v = resolve_paths(v, base, label, f.metadata, where, table, raw_key, problems)
            if v is None:
                continue
        out[name] = v
    return out


def resolve_paths(value: Any, base: Path, label: str, meta: dict[str, Any], where: Where,
                  table: str,
                  key: str, problems: Problems) -> Any:
    """Paths made absolute against ``base``; a path that must exist and does not is a
    problem (the value is kept without it)."""
    def one(p: str) -> str | None:
        if meta.get("path") == "command" and "/" not in p:
            return p  # a program name looked up on PATH
        full = (base / p).resolve()
        if meta.get("must_exist", True) and not full.exists():
            problems.add(where, table, key, f"{label}: {p!r} does not exist (paths resolve "
                         f"against {base})")
            return None
        return str(full)

    if isinstance(value, list):
        return [r for r in (one(p) for p in value) if r is not None]
    return one(value)
