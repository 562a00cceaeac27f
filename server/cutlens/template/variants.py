"""Variants: the cartesian grid of ``[variants]``, ``[[variant]]`` tables, and generators;
their names; and the runtime parameters of ``[variants.runtime]``.

A variant is named after the keys that vary (``128x256x64 cooperative``), or by ``name``;
a single point (a table of constants) is ``default``. Names are one line, and long ones are
shortened with a hash of the whole (they become file names and table cells). The
``build_name`` is the same over the compile-time keys only: variants that differ in runtime
keys alone share it, and the build.
"""

from __future__ import annotations

import inspect
import itertools
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, meta
from jinja2.exceptions import TemplateError

from cutlens import trust
from cutlens.template.model import (
    MAX_NAME,
    RUNTIME_CTYPES,
    RuntimeParam,
    Sample,
    Template,
    Variant,
    shorten,
)
from cutlens.template.pymodule import ImportFailed, load_attr, module_file
from cutlens.template.symexpr import SympySafeSandbox

RESERVED = {"skip_if", "generator", "generator_args", "name", "runtime"}
_C_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Integer ranges of the runtime C types (None: not an integer type).
_INT_RANGE = {"bool": (0, 1), "int8_t": (-2**7, 2**7 - 1), "uint8_t": (0, 2**8 - 1),
              "int16_t": (-2**15, 2**15 - 1), "uint16_t": (0, 2**16 - 1),
              "int": (-2**31, 2**31 - 1), "int32_t": (-2**31, 2**31 - 1),
              "unsigned": (0, 2**32 - 1), "uint32_t": (0, 2**32 - 1),
              "long": (-2**63, 2**63 - 1), "int64_t": (-2**63, 2**63 - 1),
              "size_t": (0, 2**64 - 1), "uint64_t": (0, 2**64 - 1)}
_EXPR_ENV = SympySafeSandbox(undefined=StrictUndefined)


class VariantError(ValueError):
    """A variant spec that cannot be expanded; ``table``/``key`` locate it."""

    def __init__(self, message: str, table: str = "variants", key: str | None = None) -> None:
        super().__init__(message)
        self.table = table
        self.key = key


def _fmt(key: str, value: Any) -> str:
    if isinstance(value, list | tuple):
        return "x".join(str(v) for v in value)
    if isinstance(value, bool):
        return key if value else f"no-{key}"
    if isinstance(value, str):
        return value
    return f"{key}={value}"


@lru_cache(maxsize=256)
def _compile_expression(source: str) -> Any:
    return _EXPR_ENV.compile_expression(source)


@lru_cache(maxsize=256)
def _names_in(source: str) -> frozenset[str]:
    """The variables an expression reads."""
    return frozenset(meta.find_undeclared_variables(_EXPR_ENV.parse(f"{{{{ {source} }}}}")))


def variant_name(values: dict[str, Any], keys: list[str]) -> str:
    """``128x256x64 cooperative`` from the values of the keys that vary; ``default`` when
    none does (a single point needs no name)."""
    return " ".join(_fmt(k, values[k]) for k in keys if k in values) or "default"


def clean_name(name: str) -> str:
    """A name on one line (whitespace runs, newlines included, become one space; other
    control characters go), at most :data:`~cutlens.template.model.MAX_NAME` characters
    (longer ones keep their start and a hash of the whole)."""
    one_line = " ".join(name.split())
    one_line = "".join(c for c in one_line if c.isprintable())
    return shorten(one_line, MAX_NAME) or "default"


def load_generator(spec: str, template: Template) -> Any:
    """Import the generator ``module:function`` from the template's folder or the project
    root."""
    try:
        fn = load_attr(spec, generator_folders(template))
    except ImportFailed as e:
        raise VariantError(f"generator {spec!r}: {e}", key="generator") from None
    if not callable(fn):
        raise VariantError(f"generator {spec!r}: {spec.split(':', 1)[1]} is not a function",
                           key="generator")
    return fn


def generator_folders(template: Template) -> list[Path]:
    """Where a template's generator module is imported from."""
    return [template.path.parent, template.config.root]


def generator_module_file(template: Template) -> Path | None:
    """The source file of the template's generator module (for file watching)."""
    variants = template.settings.get("variants")
    spec = variants.get("generator") if isinstance(variants, dict) else None
    if not isinstance(spec, str):
        return None
    return module_file(spec, generator_folders(template))


def _run_generator(fn: Any, spec: str, sample: Sample | None, args: dict[str, Any]
                   ) -> list[dict[str, Any]]:
    kwargs = dict(args)
    params: Mapping[str, inspect.Parameter]
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    if "sample" in params:
        kwargs["sample"] = sample
    if sample is not None:
        for name, node in sample.nodes.items():
            if name in params and name not in kwargs:
                kwargs[name] = node
    try:
        out = fn(**kwargs)
    except Exception as e:
        raise VariantError(f"generator {spec!r} raised {type(e).__name__}: {e}",
                           key="generator") from None
    try:
        items = list(out)
    except TypeError:
        raise VariantError(f"generator {spec!r} must return a list of dicts, "
                           f"not {type(out).__name__}", key="generator") from None
    for i, it in enumerate(items):
        if not isinstance(it, dict):
            raise VariantError(f"generator {spec!r}: item {i} is {type(it).__name__}, "
                               f"not a dict", key="generator")
    return items


def runtime_params(spec: dict[str, Any]) -> dict[str, RuntimeParam]:
    """The ``[variants.runtime]`` table: key -> :class:`RuntimeParam`. A key is a C type
    (``swizzle = "int"``) or a table ``{ type, values?, arg? }``; ``values`` maps each
    value the key takes (by its text) to the C value passed."""
    table = spec.get("runtime", {})
    if not isinstance(table, dict):
        raise VariantError('[variants.runtime] must be a table: key = "C type" or '
                           'key = { type = "int", values = { name = 0, ... } }',
                           "variants.runtime")
    out: dict[str, RuntimeParam] = {}
    for key, entry in table.items():
        where = {"table": "variants.runtime", "key": key}
        if key in RESERVED:
            raise VariantError(f"{key!r} is not a variant key", **where)
        if isinstance(entry, str):
            entry = {"type": entry}
        if not isinstance(entry, dict):
            raise VariantError(f'runtime key {key!r}: expected a C type ("int") or a table '
                               f'{{ type, values, arg }}, not {entry!r}', **where)
        unknown = sorted(set(entry) - {"type", "values", "arg"})
        if unknown:
            raise VariantError(f"runtime key {key!r}: unknown field(s) {', '.join(unknown)} "
                               "(expected type, values, arg)", **where)
        ctype = entry.get("type", "int")
        if ctype not in RUNTIME_CTYPES:
            raise VariantError(f"runtime key {key!r}: type {ctype!r} is not one of "
                               f"{', '.join(RUNTIME_CTYPES)}", **where)
        arg = entry.get("arg", key)
        if not isinstance(arg, str) or not _C_IDENT.match(arg):
            raise VariantError(f"runtime key {key!r}: arg {arg!r} is not a C identifier",
                               **where)
        values = entry.get("values", {})
        if not isinstance(values, dict):
            raise VariantError(f"runtime key {key!r}: values must map each value to its C "
                               "value, e.g. values = { along_m = 1, along_n = 2 }", **where)
        mapped = []
        for name, c in values.items():
            if isinstance(c, bool) or not isinstance(c, int | float) or (
                    isinstance(c, float) and ctype not in ("float", "double")):
                raise VariantError(f"runtime key {key!r}: the C value of {name!r} must be "
                                   f"a number of type {ctype}, not {c!r}", **where)
            mapped.append((str(name), c))
        param = RuntimeParam(key=key, ctype=ctype, arg=arg, values=tuple(mapped))
        for _, c in mapped:
            _check_range(param, c)
        out[key] = param
    args = [p.name for p in out.values()]
    dup = sorted({a for a in args if args.count(a) > 1})
    if dup:
        raise VariantError(f"runtime keys share the C argument name {dup[0]!r}",
                           "variants.runtime", dup[0])
    return out


def _check_range(param: RuntimeParam, c: int | float) -> None:
    lo_hi = _INT_RANGE.get(param.ctype)
    if lo_hi is not None and not (lo_hi[0] <= c <= lo_hi[1]):
        raise VariantError(f"runtime key {param.key!r}: {c} does not fit a {param.ctype}",
                           "variants.runtime", param.key)


def expand_variants(template: Template, sample: Sample | None,
                    memo: dict[str, bool] | None = None) -> list[Variant]:
    """Every variant of ``template`` for ``sample``, ``skip_if`` applied. ``memo`` keeps
    ``skip_if``'s answers for the next sample (used only when it reads no sample node or
    var: a large grid is then judged once, not once per sample)."""
    spec = template.settings.get("variants", {})
    if not isinstance(spec, dict):
        raise VariantError("[variants] must be a table")
    listed = template.settings.get("variant", [])
    if not isinstance(listed, list):
        raise VariantError("[[variant]] must be an array of tables", "variant")
    runtime = runtime_params(spec)
    template.runtime = runtime

    constants = {k: v for k, v in spec.items() if k not in RESERVED and not isinstance(v, list)}
    axes = {k: v for k, v in spec.items() if k not in RESERVED and isinstance(v, list)}
    for k, v in axes.items():
        if not v:
            raise VariantError(f"variant key {k!r} has an empty list of values", key=k)

    raw: list[tuple[dict[str, Any], list[str], int]] = []  # (values, varying keys, lens line)
    grid_line = template.front.line_of("variants") if template.front.start_line else 0
    if "generator" in spec and not trust.exec_allowed():
        pass  # untrusted: the generator's variants are unknown (trust.untrusted_notice)
    elif "generator" in spec:
        gspec = str(spec["generator"])
        fn = load_generator(gspec, template)
        gargs = spec.get("generator_args", {})
        if not isinstance(gargs, dict):
            raise VariantError("generator_args must be a table", key="generator_args")
        items = _run_generator(fn, gspec, sample, gargs)
        keys = sorted({k for it in items for k in it if k != "name"})
        varying = [k for k in keys if len({repr(it.get(k)) for it in items}) > 1]
        for it in items:
            raw.append(({**constants, **axes_first(axes), **it}, varying, 1))
    elif axes or not listed:
        # The grid: the product of the list-valued keys, each point with the constants. With
        # [[variant]] tables and no list, the constants are shared by those tables, not a
        # variant of their own.
        for combo in itertools.product(*axes.values()):
            raw.append(({**constants, **dict(zip(axes, combo, strict=True))}, list(axes),
                        grid_line))
    for i, item in enumerate(listed):
        if not isinstance(item, dict):
            raise VariantError(f"[[variant]] #{i + 1} must be a table", "variant")
        line = template.front.variant_list_lines[i] if i < len(
            template.front.variant_list_lines) else grid_line
        raw.append(({**constants, **item}, [k for k in item if k != "name"], line))

    names = set(sample.context() if sample else {})
    clash = sorted(names & {k for values, _, _ in raw for k in values})
    if clash:
        raise VariantError(f"variant key(s) {', '.join(clash)} clash with node names of "
                           f"sample {sample.name if sample else ''!r}", key=clash[0])

    skip = spec.get("skip_if")
    skip_fn = None
    if skip is not None:
        try:
            skip_fn = _compile_expression(str(skip))
            if memo is not None and sample is not None and \
                    _names_in(str(skip)) & set(sample.context()):
                memo = None  # it depends on the sample
        except TemplateError as e:
            raise VariantError(f"skip_if: {e}", key="skip_if") from None

    name_fmt = spec.get("name")
    name_tmpl = None
    if isinstance(name_fmt, str):
        try:
            name_tmpl = _EXPR_ENV.from_string(name_fmt)
        except TemplateError as e:
            raise VariantError(f"name: {e}", key="name") from None

    out: list[Variant] = []
    seen: set[str] = set()
    base_ctx = sample.context() if sample else {}
    for index, (values, varying, line) in enumerate(raw):
        if skip_fn is not None:
            # the grid's points come in the same order for every sample: the index names one
            key = (f"{skip}\0{index}" if "generator" not in spec else f"{skip}\0{values!r}") \
                if memo is not None else ""
            try:
                skipped = memo.get(key) if memo is not None else None
                if skipped is None:
                    skipped = bool(skip_fn(**{**base_ctx, **values}))
                    if memo is not None:
                        memo[key] = skipped
                if skipped:
                    continue
            except Exception as e:
                raise VariantError(f"skip_if {skip!r} failed for {values}: "
                                   f"{type(e).__name__}: {e}", key="skip_if") from None
        if "name" in values:
            name = str(values.pop("name"))
        elif name_tmpl is not None:
            try:
                name = name_tmpl.render(**values)
            except Exception as e:
                raise VariantError(f"name {name_fmt!r} failed for {values}: "
                                   f"{type(e).__name__}: {e}", key="name") from None
        else:
            name = variant_name(values, varying)
        name = clean_name(name)
        if name in seen:
            name = f"{name} #{index}"
        seen.add(name)
        rt_keys = tuple(k for k in runtime if k in values)
        _check_runtime_values(runtime, rt_keys, values, name)
        out.append(Variant(index=index, name=name, values=values, line=line, runtime=rt_keys))
    if runtime:
        _name_builds(out)
    return out


def _name_builds(variants: list[Variant]) -> None:
    """Each variant's ``build_name``: its compile-time values of the keys that vary among
    the variants (first-seen order), so equal compile-time values give equal names."""
    order: dict[str, None] = {}
    for v in variants:
        order.update(dict.fromkeys(k for k in v.values if k not in v.runtime))
    varying = [k for k in order
               if len({repr(v.values.get(k)) for v in variants}) > 1]
    for v in variants:
        v.build_name = clean_name(variant_name(v.build_values, varying))


def _check_runtime_values(runtime: dict[str, RuntimeParam], keys: tuple[str, ...],
                          values: dict[str, Any], name: str) -> None:
    """Every runtime key has a value, and it converts to its C type."""
    missing = [k for k in runtime if k not in keys]
    if missing:
        raise VariantError(f"variant {name!r} has no value for runtime key {missing[0]!r} "
                           "(a runtime key is an argument of every variant's kernel)",
                           "variants.runtime", missing[0])
    for k in keys:
        p = runtime[k]
        try:
            c = p.c_value(values[k])
        except ValueError as e:
            raise VariantError(f"runtime key {k!r} of variant {name!r}: {e}",
                               "variants.runtime", k) from None
        _check_range(p, c)


def axes_first(axes: dict[str, list[Any]]) -> dict[str, Any]:
    """Defaults for grid keys when a generator supplies the variants: each key's first value."""
    return {k: v[0] for k, v in axes.items()}
