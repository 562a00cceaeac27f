"""Variants: the cartesian grid of ``[variants]``, ``[[variant]]`` tables, and generators."""

from __future__ import annotations

import inspect
import itertools
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined
from jinja2.exceptions import TemplateError

from cutlens import trust
from cutlens.template.model import Sample, Template, Variant
from cutlens.template.pymodule import ImportFailed, load_attr, module_file
from cutlens.template.symexpr import SympySafeSandbox

RESERVED = {"skip_if", "generator", "generator_args", "name"}
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


def variant_name(values: dict[str, Any], keys: list[str]) -> str:
    """``128x256x64 cooperative`` from the values of the keys that vary."""
    keys = keys or list(values)
    return " ".join(_fmt(k, values[k]) for k in keys if k in values) or "default"


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


def _run_generator(fn: Any, spec: str, sample: Sample | None, args: dict) -> list[dict]:
    kwargs = dict(args)
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


def expand_variants(template: Template, sample: Sample | None) -> list[Variant]:
    """Every variant of ``template`` for ``sample``, ``skip_if`` applied."""
    spec = template.settings.get("variants", {})
    if not isinstance(spec, dict):
        raise VariantError("[variants] must be a table")
    listed = template.settings.get("variant", [])
    if not isinstance(listed, list):
        raise VariantError("[[variant]] must be an array of tables", "variant")

    constants = {k: v for k, v in spec.items() if k not in RESERVED and not isinstance(v, list)}
    axes = {k: v for k, v in spec.items() if k not in RESERVED and isinstance(v, list)}
    for k, v in axes.items():
        if not v:
            raise VariantError(f"variant key {k!r} has an empty list of values", key=k)

    raw: list[tuple[dict, list[str], int]] = []  # (values, varying keys, lens line)
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
    elif axes or constants or not listed:
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
    for index, (values, varying, line) in enumerate(raw):
        if skip_fn is not None:
            ctx = {**(sample.context() if sample else {}), **values}
            try:
                if skip_fn(**ctx):
                    continue
            except Exception as e:
                raise VariantError(f"skip_if {skip!r} failed for {values}: "
                                   f"{type(e).__name__}: {e}", key="skip_if") from None
        if "name" in values:
            name = str(values.pop("name"))
        elif name_tmpl is not None:
            try:
                name = " ".join(name_tmpl.render(**values).split())
            except Exception as e:
                raise VariantError(f"name {name_fmt!r} failed for {values}: "
                                   f"{type(e).__name__}: {e}", key="name") from None
        else:
            name = variant_name(values, varying)
        if name in seen:
            name = f"{name} #{index}"
        seen.add(name)
        out.append(Variant(index=index, name=name, values=values, line=line))
    return out


def axes_first(axes: dict[str, list]) -> dict[str, Any]:
    """Defaults for grid keys when a generator supplies the variants: each key's first value."""
    return {k: v[0] for k, v in axes.items()}
