"""``cutlens render TEMPLATE``: the rendered CUDA of the selected samples × variants (by
default the first of each), to stdout or into a folder, with a header naming the pair."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cutlens.check import formats
from cutlens.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    load_one,
    pairs_or_usage,
    relative,
    selection,
    use_color,
)
from cutlens.render.renderer import Renderer, RenderFailure
from cutlens.template.selection import Selection


def cmd_render(args: argparse.Namespace) -> int:
    t = load_one(args.template)
    base, color = Path.cwd(), use_color(args.color, sys.stderr)
    if t.broken:
        sys.stderr.write(formats.text([d for d in t.errors if d.severity == "error"], base,
                                      color))
        return EXIT_PROBLEMS
    sel = selection(args)
    if args.all:
        sel = Selection()
    else:
        sel = Selection(sel.samples or ["first"], sel.variants or ["first"])
    pairs = pairs_or_usage(t, sel)
    many = len(pairs) > 1
    renderer = Renderer()
    status = EXIT_OK
    for s, v in pairs:
        r = renderer.render(t, s, v)
        if isinstance(r, RenderFailure):
            sys.stderr.write(formats.text(r.diagnostics, base, color))
            status = EXIT_PROBLEMS
            continue
        body = r.with_line_directives() if args.line_directives else r.text
        text = r.header() + body
        if args.output is None:  # (on a terminal, each text ends its line)
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
            for name, comp in r.companions.items():
                body = comp.text if comp.text.endswith("\n") else comp.text + "\n"
                sys.stdout.write(f"// ---- companion {name} ----\n{body}")
            continue
        out_dir = args.output / f"{s.name}__{v.slug}" if many else args.output
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = t.path.name.split(".")[0]
        (out_dir / f"{stem}.cu").write_text(text)
        for name, comp in r.companions.items():
            (out_dir / name).write_text(comp.text)
        print(relative(out_dir / f"{stem}.cu", base))
    return status
