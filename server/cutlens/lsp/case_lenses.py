"""Code lenses of a ``.py`` file that hosts render-driver templates: on each template
constant (``NAME = jinja2.Template(``), the cases that use it with their last check or
benchmark; on a driver module, one per case on the line that yields it."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from lsprotocol import types as lsp

from cutlens.bench.best import best_row
from cutlens.lsp.lenses import bench_text, check_text
from cutlens.template.model import Template


def _status(names: list[str], runs: dict[str, dict[str, Any]], checks: dict[str, dict[str, Any]],
            inductor: dict[str, dict[str, Any]] | None = None) -> str:
    benched = [runs[n] for n in names if n in runs]
    best = best_row(benched)
    if best is not None:
        text = f"best {best['variant_name']}: {bench_text(best)}"
        theirs = [inductor[n] for n in names if inductor and n in inductor]
        if theirs:  # Inductor's own max-autotune of the same GEMM
            pick = min(theirs, key=lambda r: r["ms"])
            text += f" · Inductor autotune best {pick['variant_name']}: {pick['ms']:.4f} ms"
        return text
    checked = [checks[n] for n in names if n in checks]
    if not checked:
        return "not checked yet"
    bad = sum(1 for c in checked if c.get("errors"))
    return f"✗ nvcc: {bad}/{len(checked)} fail" if bad else f"✓ nvcc ({len(checked)})"


def _lens(line0: int, title: str, command: str, args: list[Any]) -> lsp.CodeLens:
    pos = lsp.Position(max(line0, 0), 0)
    return lsp.CodeLens(range=lsp.Range(pos, pos),
                        command=lsp.Command(title=title, command=command, arguments=args))


def code_lenses(uri: str, t: Template, runs: list[dict[str, Any]], checks: list[dict[str, Any]],
                inductor: list[dict[str, Any]] | None = None) -> list[lsp.CodeLens]:
    """The lenses of a render-driver template (``t.engine == "driver"``); ``inductor``:
    Inductor's own autotune timings of the same cases."""
    names = [v.name for s in t.sample_list for v in t.variants(s)]
    if not names:
        return []
    run_of = {str(r.get("variant_name")): r for r in runs}
    check_of = {str(c.get("variant_name")): c for c in checks}
    ind_of = {str(r.get("variant_name")): r for r in inductor or [] if r.get("ms") is not None}
    out = [_lens(0, "▶ Check", "cutlens.check", [uri]),
           _lens(0, f"▶ Benchmark ({len(names)} case{'s' if len(names) != 1 else ''})",
                 "cutlens.benchmark", [uri])]
    path = str(t.path)
    by_constant: dict[int, list[str]] = defaultdict(list)
    for case in t.cases.values():
        for file, line in case.templates:
            if file == path:
                by_constant[line].append(case.name)
    if by_constant:  # a module whose template constants the cases use
        for line, used in sorted(by_constant.items()):
            sample = t.cases[used[0]].sample
            shown = ", ".join(used[:3]) + (f" +{len(used) - 3}" if len(used) > 3 else "")
            out.append(_lens(line - 1, f"{len(used)} case{'s' if len(used) != 1 else ''} "
                             f"({shown}) · {_status(used, run_of, check_of, ind_of)}",
                             "cutlens.showRendered", [uri, sample, used[0]]))
        return out
    for s in t.sample_list:  # the driver module: a lens on each case's line
        for v in t.variants(s):
            detail = bench_text(run_of[v.name]) if v.name in run_of else \
                check_text(check_of[v.name]) if v.name in check_of else "not checked yet"
            out.append(_lens(v.line - 1, f"{v.name} · {detail}", "cutlens.showRendered",
                             [uri, s.name, v.name]))
    return out
