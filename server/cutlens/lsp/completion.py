"""Completion inside ``{{ }}`` / ``{% %}``: hooks after ``kernel.`` / ``template.``, node
names, variant keys, macros and Jinja filters."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import cache

from lsprotocol import types as lsp

from cutlens.lsp import jinja_text
from cutlens.render.hooks import KernelContext, TemplateContext
from cutlens.render.renderer import context_classes
from cutlens.template.model import Sample, Template

_HIDDEN = {"rename_indexing"}


@dataclass(frozen=True)
class Member:
    """A hook a template can call."""

    name: str
    signature: str
    doc: str


def members(cls: type) -> list[Member]:
    """Public methods of a context class (with a project's template_class additions)."""
    out = []
    for name, fn in inspect.getmembers(cls, predicate=inspect.isfunction):
        if name.startswith("_") or name in _HIDDEN:
            continue
        try:
            sig = str(inspect.signature(fn)).replace("(self, ", "(").replace("(self)", "()")
        except (TypeError, ValueError):
            sig = "(...)"
        out.append(Member(name, sig, inspect.getdoc(fn) or ""))
    return out


def hook_doc(name: str, cls: type) -> Member | None:
    """The member ``name`` of ``cls``, if it is a hook."""
    for m in members(cls):
        if m.name == name:
            return m
    return None


def context_class(template: Template | None, which: str) -> type:
    """``kernel`` / ``template`` class for a template (its template_class if it sets one)."""
    base: type = KernelContext if which == "kernel" else TemplateContext
    if template is None:
        return base
    if not (template.kernel_class if which == "kernel" else template.template_class):
        return base
    try:
        tcls, kcls = context_classes(template)
    except Exception:
        return base
    return kcls if which == "kernel" else tcls


@cache
def _filters() -> list[str]:
    from jinja2.sandbox import SandboxedEnvironment

    return sorted(SandboxedEnvironment().filters)


def complete(template: Template | None, source: str, line: str,
             col: int) -> list[lsp.CompletionItem]:
    """Completion items at ``col`` of ``line`` (only inside Jinja regions)."""
    region = jinja_text.region_at(line, col)
    if region is None or region.kind == "comment":
        return []
    prefix = jinja_text.prefix_before(line, col)
    before = line[region.start:col]
    items: list[lsp.CompletionItem] = []
    if "." in prefix:
        owner = prefix.rsplit(".", 1)[0]
        if owner in ("kernel", "template"):
            for m in members(context_class(template, owner)):
                items.append(lsp.CompletionItem(
                    label=m.name, kind=lsp.CompletionItemKind.Method,
                    detail=f"{owner}.{m.name}{m.signature}",
                    documentation=lsp.MarkupContent(lsp.MarkupKind.Markdown, m.doc),
                    insert_text=m.name))
            return items
        alias = jinja_text.imports(source).get(owner)
        if alias is not None:
            return items  # macros of an imported module: resolved by the server (needs files)
        return items
    if before[:len(before) - len(prefix)].rstrip().endswith("|"):
        return [lsp.CompletionItem(label=f, kind=lsp.CompletionItemKind.Function,
                                   detail="Jinja filter") for f in _filters()]
    names: dict[str, tuple[lsp.CompletionItemKind, str]] = {
        "kernel": (lsp.CompletionItemKind.Module, "the kernel: def_kernel, size, stride, ptr..."),
        "template": (lsp.CompletionItemKind.Module, "the template: header, globals, cute_int..."),
    }
    if template is not None:
        for s in template.samples:
            for n, node in s.nodes.items():
                names.setdefault(n, (lsp.CompletionItemKind.Variable,
                                     f"node {node.describe() if node else 'None'}"))
        some: list[Sample | None] = [*template.samples] or [None]
        for one in some:
            for v in template.variants(one)[:1]:
                for k, val in v.values.items():
                    names.setdefault(k, (lsp.CompletionItemKind.Constant,
                                         f"variant key, e.g. {val!r}"))
    for name, (_, args) in jinja_text.macros(source).items():
        names.setdefault(name, (lsp.CompletionItemKind.Function, f"macro {name}({args})"))
    for alias in jinja_text.imports(source):
        names.setdefault(alias, (lsp.CompletionItemKind.Module, "imported template"))
    return [lsp.CompletionItem(label=n, kind=k, detail=d) for n, (k, d) in sorted(names.items())]
