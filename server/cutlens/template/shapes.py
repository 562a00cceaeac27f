"""Shape-generic samples: a sample's concrete sizes as size symbols (with the concrete values
as their hints), so that samples whose units differ only in problem sizes render one text
and share one build, the sizes becoming arguments of the kernel as a symbolic size is.

Symbols are given per (node, dimension) of samples of the same *structure* (node names,
dtypes, ranks, which nodes are absent): dimensions equal in every sample of that structure
share one symbol (a GEMM's M, N and K across square, large and skinny samples), so a
template comparing two of them (``X.get_size()[-1] == W.get_size()[0]``) sees equal
symbols. Dimensions of extent 1 (broadcasts) stay literal. A stride of a dense layout (any
dimension order) becomes the product of the symbols of the dimensions inside it; a padded
stride keeps its value, as do offsets. Whether a template may render with the symbols is
the renderer's question (it compares the renders): this module only builds the sample.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import sympy

from cutlens.template.ir import Layout, Node, symbol
from cutlens.template.model import Sample, Template

#: Prefix of the symbols made here (the kernel's size arguments are named after them).
PREFIX = "s"


#: Around text a hook printed from size symbols: ``OPEN index MID generic CLOSE``; the
#: index names the text the static render prints there (:func:`concrete_text`).
OPEN, MID, CLOSE = "\ue010", "\ue011", "\ue012"
_MARK_RE = re.compile(f"{OPEN}(\\d+){MID}([^{OPEN}{CLOSE}]*){CLOSE}")


class SizeMarks:
    """The texts of one render that a static render prints differently."""

    def __init__(self) -> None:
        self.concrete: list[str] = []

    def mark(self, generic: str, concrete: str) -> str:
        """``generic``, remembered to read ``concrete`` in the static render."""
        if generic == concrete:
            return generic
        self.concrete.append(concrete)
        return f"{OPEN}{len(self.concrete) - 1}{MID}{generic}{CLOSE}"

    def concrete_text(self, text: str) -> str:
        """The text with each mark as the static render prints it."""
        return _MARK_RE.sub(lambda m: self.concrete[int(m.group(1))], text)


def generic_text(text: str) -> str:
    """The text with each mark as its generic form (the unit compiled)."""
    return _MARK_RE.sub(lambda m: m.group(2), text)


class ShapeNode(Node):
    """A node with symbolic sizes standing for a concrete one (``concrete_node``); in a
    render with :class:`SizeMarks` its ``describe()`` is marked as the concrete one's."""

    def __init__(self, name: str, layout: Layout, concrete: Node) -> None:
        super().__init__(name, layout)
        self.concrete_node = concrete
        self.marks: SizeMarks | None = None

    def describe(self) -> str:
        text = super().describe()
        return text if self.marks is None else self.marks.mark(
            text, self.concrete_node.describe())


def marked_sample(generic: Sample, marks: SizeMarks) -> Sample:
    """``generic`` with nodes of its own that mark what they describe into ``marks``."""
    nodes: dict[str, Node | None] = {}
    for k, n in generic.nodes.items():
        if isinstance(n, ShapeNode):
            n = ShapeNode(k, n.layout, n.concrete_node)
            n.marks = marks
        nodes[k] = n
    return replace(generic, nodes=nodes)


def shape_hints(sample: Sample, generic: Sample) -> dict[str, int]:
    """The hints ``generic`` adds to ``sample``'s: its size symbols' concrete values."""
    return {k: v for k, v in generic.hints.items() if k not in sample.hints}


def structure(sample: Sample) -> tuple[Any, ...]:
    """What samples must share for their dimensions to be matched: node names, dtypes,
    ranks and absent nodes, and the sample's variables."""
    nodes = tuple((k, None if n is None else (n.get_dtype().name, len(n.get_size())))
                  for k, n in sample.nodes.items())
    return nodes, tuple(sorted((k, repr(v)) for k, v in sample.vars.items()))


def _positions(sample: Sample) -> dict[tuple[str, int], int]:
    """(node, dim) -> extent, for each concrete dimension of extent > 1."""
    out = {}
    for k, n in sample.nodes.items():
        if n is None:
            continue
        for d, s in enumerate(n.get_size()):
            if s.is_number and int(s) > 1:
                out[(k, d)] = int(s)
    return out


def generic_samples(template: Template) -> dict[str, Sample]:
    """Each sample with concrete sizes, made shape-generic (samples with none are left out)."""
    groups: dict[tuple[Any, ...], list[Sample]] = {}
    for s in template.samples:
        groups.setdefault(structure(s), []).append(s)
    out = {}
    for members in groups.values():
        classes = _classes([_positions(s) for s in members])
        for s in members:
            made = _generic(s, classes)
            if made is not None:
                out[s.name] = made
    return out


def _classes(positions: list[dict[tuple[str, int], int]]) -> dict[tuple[str, int], int]:
    """(node, dim) -> class number: positions whose extents are equal in every sample (and
    concrete in each) share a class."""
    common = set.intersection(*(set(p) for p in positions)) if positions else set()
    order = sorted(common, key=lambda kd: list(positions[0]).index(kd))
    signature = {kd: tuple(p[kd] for p in positions) for kd in order}
    classes: dict[tuple[int, ...], int] = {}
    return {kd: classes.setdefault(signature[kd], len(classes)) for kd in order}


def _generic(sample: Sample, classes: dict[tuple[str, int], int]) -> Sample | None:
    if not classes:
        return None
    taken = {str(h) for h in sample.hints}
    for n in sample.nodes.values():
        if n is not None:
            taken |= {s.name for s in n.free_symbols}
    names: dict[int, sympy.Symbol] = {}
    hints = dict(sample.hints)
    i = 0

    def sym(c: int, value: int) -> sympy.Symbol:
        nonlocal i
        if c not in names:
            while f"{PREFIX}{i}" in taken:
                i += 1
            names[c] = symbol(f"{PREFIX}{i}")
            hints[names[c].name] = value
            i += 1
        return names[c]

    nodes: dict[str, Node | None] = {}
    for k, n in sample.nodes.items():
        if n is None:
            nodes[k] = None
            continue
        size = [sym(classes[(k, d)], int(s)) if (k, d) in classes else s
                for d, s in enumerate(n.get_size())]
        stride = _strides(n, size)
        nodes[k] = ShapeNode(k, replace(n.layout, size=size, stride=stride), n)
    return replace(sample, nodes=nodes, hints=hints)


def _strides(node: Node, size: list[sympy.Expr]) -> list[sympy.Expr]:
    """The node's strides over ``size``: a dense layout's as products of its sizes (in the
    order of its strides), anything else as it is."""
    concrete_size, stride = node.get_size(), node.get_stride()
    if not all(e.is_number for e in [*concrete_size, *stride]):
        return list(stride)
    order = sorted(range(len(stride)), key=lambda d: (int(stride[d]), d))
    out: list[sympy.Expr] = list(stride)
    acc_c, acc_s = 1, sympy.Integer(1)
    for d in order:
        if int(concrete_size[d]) == 1:
            continue  # any stride fits a dimension of extent 1: left as it is
        if int(stride[d]) != acc_c:
            return list(stride)
        out[d] = acc_s
        acc_c *= int(concrete_size[d])
        acc_s = acc_s * size[d]
    return out
