"""A profile's summary in words: the lines ``cutlens profile`` prints and the hover shows."""

from __future__ import annotations

from typing import Any


def _pct(x: Any) -> str:
    return f"{x:.1f} %" if isinstance(x, int | float) else "?"


def _bytes(n: Any) -> str:
    if not isinstance(n, int | float):
        return "?"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def summary_lines(s: dict[str, Any]) -> list[str]:
    """Speed of light, occupancy, resources, memory and the top stalls of a summary."""
    ms = s.get("duration_ns")
    kernels = s.get("kernels") or []
    name = str(s.get("kernel") or "?")
    head = f"kernel {name if len(name) <= 160 else name[:157] + '...'}"
    if len(kernels) > 1:
        head += f" (the longest of {len(kernels)} launches)"
    lines = [head]
    if isinstance(ms, int | float):
        lines.append(f"duration {ms / 1e6:.4f} ms")
    lines.append(f"speed of light: SM {_pct(s.get('sm_pct'))} · memory "
                 f"{_pct(s.get('memory_pct'))} (DRAM {_pct(s.get('dram_pct'))})")
    lines.append(f"occupancy: achieved {_pct(s.get('achieved_occupancy_pct'))} of "
                 f"theoretical {_pct(s.get('theoretical_occupancy_pct'))} · "
                 f"{s.get('registers') if s.get('registers') is not None else '?'} registers "
                 f"· shared memory {_bytes(s.get('smem_bytes'))}/block")
    lines.append(f"memory: L2 hit rate {_pct(s.get('l2_hit_pct'))} · DRAM "
                 f"{_bytes(s.get('dram_bytes'))}")
    stalls = s.get("top_stalls") or []
    if stalls:
        lines.append("top stalls (cycles per issued instruction): " + ", ".join(
            f"{x['reason']} {x['cycles_per_issue']:.2f}" for x in stalls))
    return lines


def profile_lines(p: dict[str, Any]) -> list[str]:
    """A profile (:meth:`cutlens.bench.profile.Profile.to_json`) as text."""
    build = "cached build" if p.get("build_cached") else f"built in {p.get('build_s', 0):.1f} s"
    out = [f"{p['template']} [{p['sample']}/{p['variant']}]  ({build}, ncu "
           f"{p.get('ncu_s', 0):.1f} s)"]
    out += [f"  {ln}" for ln in summary_lines(p["summary"])]
    out.append(f"  report: {p['report']}")
    return out


def hover_markdown(row: dict[str, Any]) -> str:
    """A stored profile (``ResultStore.profile``) for a hover."""
    lines = summary_lines(row.get("summary") or {})
    report = row.get("report") or ""
    tail = f"\n\nopen: `ncu-ui {report}`" if report else ""
    return "**Nsight Compute**" + (f" ({row['gpu']})" if row.get("gpu") else "") + "\n\n" + \
        "\n".join(f"- {ln}" for ln in lines) + tail
