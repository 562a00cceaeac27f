"""``cutlens variants TEMPLATE``: its samples (nodes, hints) and variants, as text or JSON.
The JSON gives each variant the compiled ``unit`` it uses (the id of its build: the same
across samples that share a shape-generic build) and whether its sizes are arguments of the
kernel (``shapes``) or compiled in (``static_sizes`` says why); with ``--validity``, whether
it can compile (``valid``) and, when not, why (``reason``, ``file``, ``line``, ``keys``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cutlens import trust
from cutlens.check import formats
from cutlens.check.grid_validity import GridValidity, grid_validity, jobs_of
from cutlens.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    load_one,
    pairs_or_usage,
    relative,
    selection,
    use_color,
)
from cutlens.nvcc.frontend import FrontEndUnavailable
from cutlens.nvcc.options import compile_options, job_for, unit_id
from cutlens.nvcc.toolchain import Mode, NvccNotFound
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
    validity: GridValidity | None = None
    if getattr(args, "validity", False) and not t.broken:
        if not trust.exec_allowed():
            sys.stderr.write("cutlens: --validity runs nvcc, which an untrusted workspace "
                             "does not\n")
            return EXIT_USAGE
        try:
            validity = grid_validity(t, Renderer(), sel, t.config.cache_dir / "build",
                                     jobs=args.jobs or jobs_of(t))
        except (NvccNotFound, FrontEndUnavailable) as e:
            sys.stderr.write(f"cutlens: {e}\n")
            return EXIT_USAGE
    rows = {(r.sample, id(r.variant)): r for r in validity.rows} if validity else {}

    def row_json(s: object, v: object) -> dict[str, Any]:
        name = getattr(s, "name", "default")
        r = rows.get((name, id(v)))
        if r is None:
            return v.to_json()  # type: ignore[attr-defined, no-any-return]
        out = r.to_json()
        out.pop("sample", None)
        if r.file:
            out["file"] = relative(r.file)
        return out

    def chosen(s: object) -> list[Variant]:
        return [v for ps, v in pairs if ps is s or (s is None and not t.samples)]

    status = EXIT_PROBLEMS if t.broken or (validity and validity.invalid) else EXIT_OK
    if args.format == "json":
        units = _units(t, pairs)
        doc: dict[str, Any] = {"template": str(t.path), "samples": [
            {"name": s.name, "hints": s.hints,
             "nodes": {k: (n.describe() if n else None) for k, n in s.nodes.items()},
             "variants": [{**row_json(s, v), **units.get((s.name, v.index), {})}
                          for v in chosen(s)]} for s in samples]}
        if not t.samples:
            doc["variants"] = [row_json(s, v) for s, v in pairs]
        if validity is not None:
            st = validity.stats
            doc["validity"] = {"invalid": len(validity.invalid), "variants": len(validity.rows),
                               "cpu_s": round(st.cpu_s, 3), "front_end_runs": st.runs,
                               "rounds": st.rounds, "cached_builds": st.cached_units,
                               "alone_builds": st.alone_units}
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
        if key in shown and validity is None:
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
            r = rows.get((one.name if one is not None else "default", id(v)))
            mark = "" if r is None else "  ok" if r.valid else \
                f"  INVALID ({relative(r.file)}:{r.line}: {r.reason})" if r.valid is False \
                else f"  unknown ({r.reason})"
            print(f"  [{v.index}] {v.name}  {json.dumps(v.values)}{mark}")
    if validity is not None:
        st = validity.stats
        print(f"{len(validity.invalid)} of {len(validity.rows)} variant(s) cannot compile "
              f"(nvcc front end: {st.runs} run(s), {st.cpu_s:.1f} s CPU)")
    if t.variants_unknown and not pairs:
        sys.stderr.write(f"{t.path.name}: {t.variants_unknown}\n")
    return status
