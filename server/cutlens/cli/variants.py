"""``cutlens variants TEMPLATE``: its samples (nodes, hints) and variants, as text or JSON.
The JSON gives each variant the compiled ``unit`` it uses (the id of its build: the same
across samples that share a shape-generic build) and whether its sizes are arguments of the
kernel (``shapes``) or compiled in (``static_sizes`` says why)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cutlens import trust
from cutlens.check import formats
from cutlens.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    load_one,
    pairs_or_usage,
    selection,
    use_color,
)
from cutlens.nvcc.options import compile_options, job_for, unit_id
from cutlens.nvcc.toolchain import Mode
from cutlens.render.renderer import Renderer, RenderFailure
from cutlens.render.shapes import render_shape_generic
from cutlens.template.model import Sample, Template, Variant


def _units(t: Template,
           pairs: list[tuple[Sample, Variant]]) -> dict[tuple[str, int], dict[str, Any]]:
    """(sample, variant index) -> its ``unit`` id and ``shapes`` (and ``static_sizes``), or
    the ``render_error`` that keeps it from having a unit."""
    if t.broken or not t.samples or (not trust.exec_allowed() and t.python_uses()):
        return {}
    renderer = Renderer()
    generic = not t.bench.static_sizes
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for s, v in pairs:
        u = (render_shape_generic(renderer, t, s, v) if generic
             else renderer.render(t, s, v))
        if isinstance(u, RenderFailure):
            first = u.diagnostics[0].message if u.diagnostics else "render failed"
            out[(s.name, v.index)] = {"unit": None, "render_error": first}
            continue
        d = {"unit": unit_id(job_for(u, Mode.BUILD, compile_options(t, u))),
             "shapes": u.shapes or "static"}
        if u.static_sizes:
            d["static_sizes"] = u.static_sizes
        out[(s.name, v.index)] = d
    return out


def cmd_variants(args: argparse.Namespace) -> int:
    t = load_one(args.template)
    sys.stderr.write(formats.text(t.errors, Path.cwd(), use_color(args.color, sys.stderr)))
    sel = selection(args)
    pairs = pairs_or_usage(t, sel) if not sel.everything else t.pairs()
    samples = [s for s in t.samples if any(ps is s for ps, _ in pairs)] if t.samples else []

    def chosen(s: object) -> list[Any]:
        return [v for ps, v in pairs if ps is s or (s is None and not t.samples)]

    status = EXIT_PROBLEMS if t.broken else EXIT_OK
    if args.format == "json":
        units = _units(t, pairs)
        doc: dict[str, Any] = {"template": str(t.path), "samples": [
            {"name": s.name, "hints": s.hints,
             "nodes": {k: (n.describe() if n else None) for k, n in s.nodes.items()},
             "variants": [{**v.to_json(), **units.get((s.name, v.index), {})}
                          for v in chosen(s)]} for s in samples]}
        if not t.samples:
            doc["variants"] = [v.to_json() for _, v in pairs]
        print(json.dumps(doc, indent=2))
        return status
    print(f"{t.path.name}: {len(samples)} sample(s)")
    for s in samples:
        hints = f"  hints {s.hints}" if s.hints else ""
        print(f"  sample {s.name}{hints}")
        for name, n in s.nodes.items():
            print(f"    {name}: {n.describe() if n else 'None (optional input absent)'}")
    shown: set[str] = set()
    some: list[Sample | None] = [*samples] or [None]
    for one in some:
        vs = chosen(one) if one is not None else [v for _, v in pairs]
        key = "|".join(v.name for v in vs)
        if key in shown:
            continue
        shown.add(key)
        scope = f" for sample {one.name}" if one is not None and len(samples) > 1 else ""
        builds = ""
        if t.runtime and vs:
            nb = len({v.build_name for v in vs})
            builds = f", {nb} build(s) ({', '.join(t.runtime)} passed at run time)"
        what = "case(s)" if t.engine == "driver" else "variant(s)"
        print(f"{len(vs)} {what}{scope}{builds}")
        for v in vs:
            print(f"  [{v.index}] {v.name}  {json.dumps(v.values)}")
    if t.variants_unknown and not pairs:
        sys.stderr.write(f"{t.path.name}: {t.variants_unknown}\n")
    return status
