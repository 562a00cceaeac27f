"""Code lenses: actions at the top of a template, the last known result on each sample and
variant line of its front matter."""

from __future__ import annotations

from lsprotocol import types as lsp

from cutlens.template.model import Sample, Template, Variant


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "?"
    for unit, size in (("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            v = n / size
            return f"{v:.0f} {unit}" if v >= 10 else f"{v:.1f} {unit}"
    return f"{n} B"


def bench_text(r: dict) -> str:
    """``0.205 ms · 669 TFLOP/s · ws 0 B · ✓`` (or ``✗ <reason>``)."""
    if r.get("error"):
        return f"✗ {r['error']}"
    parts = [f"{r['ms']:.3f} ms"] if r.get("ms") is not None else []
    if r.get("tflops"):
        parts.append(f"{r['tflops']:.0f} TFLOP/s")
    if r.get("gbps"):
        parts.append(f"{r['gbps']:.0f} GB/s")
    if r.get("workspace_bytes") is not None:
        parts.append(f"ws {fmt_bytes(r['workspace_bytes'])}")
    verified = r.get("verified")
    parts.append("✓" if verified else ("✗ wrong result" if verified is False else "?"))
    return " · ".join(parts)


def check_text(c: dict) -> str:
    """``✗ nvcc: 2 errors`` or ``regs 168 · smem 227 KB · 0 spills``."""
    if c.get("errors"):
        n = c["errors"]
        return f"✗ nvcc: {n} error{'s' if n != 1 else ''}"
    if c.get("regs") is None:
        return "✓ nvcc"
    return f"regs {c['regs']} · smem {fmt_bytes(c.get('smem') or 0)} · " \
           f"{c.get('spills') or 0} spills"


def _lens(line0: int, title: str, command: str, args: list) -> lsp.CodeLens:
    pos = lsp.Position(max(line0, 0), 0)
    return lsp.CodeLens(range=lsp.Range(pos, pos),
                        command=lsp.Command(title=title, command=command, arguments=args))


def variant_lens_line(template: Template, v: Variant) -> int:
    """0-based line for a variant's lens: its ``[[variant]]`` table, the ``[variants]``
    header of a grid, else the first line (generator variants)."""
    if template.settings_file is not None and template.settings_file != template.path:
        return 0
    return max(v.line - 1, 0)


def code_lenses(uri: str, template: Template, runs: list[dict], checks: list[dict],
                active_sample: str | None, active_variant: str | None) -> list[lsp.CodeLens]:
    """All lenses of a template. ``runs``: latest bench result per (sample, variant);
    ``checks``: latest check per (sample, variant)."""
    samples = template.samples or [Sample("default")]
    sample = next((s for s in samples if s.name == active_sample), samples[0])
    n_variants = len(template.variants(sample))
    lenses = [
        _lens(0, "▶ Check", "cutlens.check", [uri]),
        _lens(0, f"▶ Benchmark ({n_variants} variant{'s' if n_variants != 1 else ''})",
              "cutlens.benchmark", [uri]),
        _lens(0, "Show rendered", "cutlens.showRendered", [uri]),
    ]
    run_of = {(r.get("sample"), r.get("variant_name")): r for r in runs}
    check_of = {(c.get("sample"), c.get("variant_name")): c for c in checks}
    same_file = template.settings_file in (None, template.path)
    for s in template.samples:
        if not same_file:
            break
        mine = [r for r in runs if r.get("sample") == s.name and not r.get("error")
                and r.get("ms") is not None]
        if mine:
            best = min(mine, key=lambda r: r["ms"])
            title = f"best {best['variant_name']}: {bench_text(best)}"
        else:
            cs = [c for c in checks if c.get("sample") == s.name]
            bad = sum(1 for c in cs if c.get("errors"))
            title = (f"nvcc: {bad}/{len(cs)} variants fail" if bad else
                     f"✓ nvcc ({len(cs)} variants)" if cs else "not checked yet")
        mark = "● " if s.name == sample.name else ""
        lenses.append(_lens(s.line - 1, f"{mark}{s.name}: {title}", "cutlens.selectSample",
                            [uri, s.name]))
    for v in template.variants(sample):
        key = (sample.name, v.name)
        if key in run_of:
            detail = bench_text(run_of[key])
        elif key in check_of:
            detail = check_text(check_of[key])
        else:
            detail = "not checked yet"
        mark = "● " if v.name == active_variant else ""
        lenses.append(_lens(variant_lens_line(template, v), f"{mark}{v.name} · {detail}",
                            "cutlens.selectVariant", [uri, v.name]))
    return lenses
