"""Code lenses: actions at the top of a template, the last known result on each sample line,
on each variant that has a line of its own (a ``[[variant]]`` table), and one summary on a
line that several variants share (a ``[variants]`` grid, a generator) — never one lens per
grid point.

Listing is cheap: :func:`list_lenses` reads no results, each lens carries ``data`` and no
command; ``codeLens/resolve`` (:func:`resolve_lens`) fills in the title and command from the
results store (the latest benchmark run and compile check of each sample × variant).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lsprotocol import types as lsp

from cutlens.bench.best import best_row, is_ok
from cutlens.bench.ceilings import ratio_text, sol_text
from cutlens.bench.report import fmt_ms
from cutlens.template.model import Sample, Template, Variant


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "?"
    for unit, size in (("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            v = n / size
            return f"{v:.0f} {unit}" if v >= 10 else f"{v:.1f} {unit}"
    return f"{n} B"


def bench_text(r: dict[str, Any]) -> str:
    """``0.188 ms · 731 TFLOP/s · 92 % of measured peak (compute-bound) · ✓`` (GB/s where
    there is no TFLOP/s; ``⚠ unstable ±14.5 %`` for an unstable timing; ``ws`` for a
    workspace) or ``✗ <reason>``."""
    if r.get("error"):
        return f"✗ {r['error']}"
    parts = [f"{r['ms']:.3f} ms"] if r.get("ms") is not None else []
    if r.get("tflops"):
        parts.append(f"{r['tflops']:.0f} TFLOP/s")
    elif r.get("gbps"):
        parts.append(f"{r['gbps']:.0f} GB/s")
    if sol_text(r):
        parts.append(str(sol_text(r)))
    if r.get("workspace_bytes"):
        parts.append(f"ws {fmt_bytes(r['workspace_bytes'])}")
    verified = r.get("verified")
    parts.append("✓" if verified else ("✗ wrong result" if verified is False else "?"))
    if r.get("stable") is False:
        spread = r.get("spread_pct")
        parts.append("⚠ unstable" + (f" ±{spread:.1f} %" if spread is not None else ""))
    return " · ".join(parts)


def versus_text(r: dict[str, Any]) -> str | None:
    """A finalist's ratio to the reference from the interleaved rounds: ``1.041× torch
    [1.02–1.05]`` or ``tie with torch (0.991–1.004×)``."""
    fin = r.get("finalist") or {}
    return ratio_text(fin.get("vs_reference"), fin.get("interval"), fin.get("tie"))


def check_text(c: dict[str, Any]) -> str:
    """``✗ nvcc: 2 errors`` or ``regs 168 · smem 227 KB · 0 spills``."""
    if c.get("errors"):
        n = c["errors"]
        return f"✗ nvcc: {n} error{'s' if n != 1 else ''}"
    if c.get("regs") is None:
        return "✓ nvcc"
    return f"regs {c['regs']} · smem {fmt_bytes(c.get('smem') or 0)} · " \
           f"{c.get('spills') or 0} spills"


def variant_lens_line(template: Template, v: Variant) -> int:
    """0-based line for a variant's lens: its ``[[variant]]`` table, the ``[variants]``
    header of a grid, the ``generator`` key for generated variants; the first line when
    the settings live in the project config."""
    if template.settings_file is not None and template.settings_file != template.path:
        return 0
    spec = template.settings.get("variants")
    if v.line <= 1 and isinstance(spec, dict) and "generator" in spec:
        return max(template.front.line_of("variants", "generator") - 1, 0)
    return max(v.line - 1, 0)


@dataclass(frozen=True)
class VariantLine:
    """Variants whose lens goes on one line: one (``[[variant]]``) or several (a grid)."""

    line0: int
    variants: tuple[Variant, ...]

    @property
    def shared(self) -> bool:
        return len(self.variants) > 1


def variant_lines(template: Template, sample: Sample) -> list[VariantLine]:
    """The sample's variants grouped by the line their lens goes on, in line order."""
    by_line: dict[int, list[Variant]] = {}
    for v in template.variants(sample):
        by_line.setdefault(variant_lens_line(template, v), []).append(v)
    return [VariantLine(ln, tuple(vs)) for ln, vs in sorted(by_line.items())]


def active_sample(template: Template, name: str | None) -> Sample:
    samples = template.samples or [Sample("default")]
    return next((s for s in samples if s.name == name), samples[0])


def _lens(line0: int, data: dict[str, Any]) -> lsp.CodeLens:
    pos = lsp.Position(max(line0, 0), 0)
    return lsp.CodeLens(range=lsp.Range(pos, pos), data=data)


def list_lenses(uri: str, template: Template, sample_name: str | None) -> list[lsp.CodeLens]:
    """Every lens of a template, unresolved (``data`` only: no results are read)."""
    sample = active_sample(template, sample_name)
    base = {"uri": uri, "sample": sample.name}
    lenses = [_lens(0, {**base, "kind": k}) for k in ("check", "benchmark", "rendered")]
    if template.settings_file in (None, template.path):
        for s in template.samples:
            lenses.append(_lens(s.line - 1, {**base, "kind": "sample", "name": s.name}))
    for vl in variant_lines(template, sample):
        if vl.shared:
            lenses.append(_lens(vl.line0, {**base, "kind": "variants", "line": vl.line0,
                                           "names": [v.name for v in vl.variants]}))
        else:
            lenses.append(_lens(vl.line0, {**base, "kind": "variant",
                                           "name": vl.variants[0].name}))
    return lenses


def _cmd(title: str, command: str, *arguments: Any) -> lsp.Command:
    return lsp.Command(title=title, command=command, arguments=list(arguments))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def sample_text(name: str, runs: list[dict[str, Any]], checks: list[dict[str, Any]]) -> str:
    best = best_row(r for r in runs if r.get("sample") == name)
    if best is not None:
        vs = versus_text(best)
        return f"best {best['variant_name']}: {bench_text(best)}" + (f" · {vs}" if vs else "")
    cs = [c for c in checks if c.get("sample") == name]
    bad = sum(1 for c in cs if c.get("errors"))
    return (f"nvcc: {bad}/{len(cs)} variants fail" if bad else
            f"✓ nvcc ({len(cs)} variants)" if cs else "not checked yet")


def summary_text(names: list[str], runs: Mapping[str, dict[str, Any]],
                 checks: Mapping[str, dict[str, Any]]) -> tuple[str, bool]:
    """The summary of variants sharing a line, and whether any has a benchmark result:
    ``6 variants · best unroll=4 0.0123 ms · spread 0.0123–0.0456 ms (3.7×) · 5 ✓ · 1 ✗``.
    ``runs``/``checks``: by variant name, for the active sample."""
    head = _plural(len(names), "variant")
    ran = [runs[n] for n in names if n in runs]
    if ran:
        ok = [r for r in ran if is_ok(r)]
        parts = [head]
        best = best_row(ok)
        if best is not None:
            worst = max(ok, key=lambda r: r["ms"])
            parts.append(f"best {best['variant_name']} {fmt_ms(best['ms'])} ms")
            if sol_text(best):
                parts.append(str(sol_text(best)))
            if len(ok) > 1 and best["ms"] > 0:
                parts.append(f"spread {fmt_ms(best['ms'])}–{fmt_ms(worst['ms'])} ms "
                             f"({worst['ms'] / best['ms']:.1f}×)")
        verified = sum(1 for r in ok if r.get("verified"))
        counts = [f"{verified} ✓"]
        unstable = sum(1 for r in ok if r.get("stable") is False)
        if unstable:
            counts.append(f"{unstable} ⚠ unstable")
        if len(ok) > verified:
            counts.append(f"{len(ok) - verified} unverified")
        counts.append(f"{len(ran) - len(ok)} ✗")
        if len(ran) < len(names):
            counts.append(f"{len(names) - len(ran)} not run")
        return " · ".join(parts + counts), True
    checked = [checks[n] for n in names if n in checks]
    if not checked:
        return f"{head} · not checked yet", False
    bad = sum(1 for c in checked if c.get("errors"))
    regs = sorted(c["regs"] for c in checked if c.get("regs") is not None)
    text = f"{head} · nvcc {'✗ ' + str(bad) + '/' + str(len(checked)) if bad else '✓'}"
    if regs:
        text += f" · regs {regs[0]}" + (f"–{regs[-1]}" if regs[-1] != regs[0] else "")
    if len(checked) < len(names):
        text += f" · {len(names) - len(checked)} not checked"
    return text, False


def resolve_lens(lens: lsp.CodeLens, template: Template, runs: list[dict[str, Any]],
                 checks: list[dict[str, Any]], active_variant: str | None) -> lsp.CodeLens:
    """Fill in a listed lens's title and command. ``runs``: the latest benchmark result per
    (sample, variant); ``checks``: the latest compile check per (sample, variant)."""
    data: dict[str, Any] = lens.data if isinstance(lens.data, dict) else {}
    uri, kind = str(data.get("uri", "")), data.get("kind")
    sample = active_sample(template, data.get("sample"))
    if kind == "check":
        cmd = _cmd("▶ Check", "cutlens.check", uri)
    elif kind == "benchmark":
        n = len(template.variants(sample))
        cmd = _cmd(f"▶ Benchmark ({_plural(n, 'variant')})", "cutlens.benchmark", uri)
    elif kind == "rendered":
        cmd = _cmd("Show rendered", "cutlens.showRendered", uri)
    elif kind == "sample":
        name = str(data.get("name"))
        mark = "● " if name == sample.name else ""
        cmd = _cmd(f"{mark}{name}: {sample_text(name, runs, checks)}", "cutlens.selectSample",
                   uri, name)
    else:
        run_of = {str(r.get("variant_name")): r for r in runs if r.get("sample") == sample.name}
        check_of = {str(c.get("variant_name")): c for c in checks
                    if c.get("sample") == sample.name}
        if kind == "variants":
            names = [str(n) for n in data.get("names") or []]
            title, ran = summary_text(names, run_of, check_of)
            # after a benchmark: the results view; before: the variant picker
            cmd = _cmd(title, "cutlens.results", uri) if ran else \
                _cmd(title, "cutlens.selectVariant", uri)
        else:
            name = str(data.get("name"))
            if name in run_of:
                detail = bench_text(run_of[name])
            elif name in check_of:
                detail = check_text(check_of[name])
            else:
                detail = "not checked yet"
            mark = "● " if name == active_variant else ""
            cmd = _cmd(f"{mark}{name} · {detail}", "cutlens.selectVariant", uri, name)
    return lsp.CodeLens(range=lens.range, command=cmd, data=lens.data)
