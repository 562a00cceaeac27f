// The benchmark results view's content: the sweep from `cutlens/results` as a table (grouped
// by sample, fastest first, the best variant marked) and a latency-per-variant bar chart (SVG).
// Pure string building; the webview panel (resultsView.ts) only hosts the HTML.
import type { CapturedInfo, ResultRow, ResultsResult } from './protocol';

export interface MarkedRow extends ResultRow {
  best: boolean;
}

export interface SampleGroup {
  sample: string;
  rows: MarkedRow[];
}

function usable(r: ResultRow): boolean {
  return !r.error && typeof r.ms === 'number' && Number.isFinite(r.ms) && r.verified !== false;
}

/** The server's best-row rule (cutlens.bench.best) as a fallback: usable and not unstable. */
function canBeBest(r: ResultRow): boolean {
  return usable(r) && r.stable !== false;
}

/** `92% compute` (share of the measured ceiling), or '—'. */
export function formatSol(r: { solPct?: number | null; bound?: string | null }): string {
  if (typeof r.solPct !== 'number' || !Number.isFinite(r.solPct) || !r.bound) return '—';
  return `${r.solPct.toFixed(0)}% ${r.bound}`;
}

/** A finalist's ratio to the reference from the interleaved rounds: `1.041× [1.020–1.050]` or `tie (0.991–1.004×)`. */
export function formatVersus(r: ResultRow): string {
  const f = r.finalist;
  if (!f || typeof f.vs_reference !== 'number') return '—';
  const iv = f.interval;
  if (f.tie && iv) return `tie (${iv[0].toFixed(3)}–${iv[1].toFixed(3)}×)`;
  return `${f.vs_reference.toFixed(3)}×${iv ? ` [${iv[0].toFixed(3)}–${iv[1].toFixed(3)}]` : ''}`;
}

/** Rows with a latency first (fastest first), then failed ones in variant order. */
export function compareRows(a: ResultRow, b: ResultRow): number {
  const ua = usable(a);
  const ub = usable(b);
  if (ua && ub) return (a.ms as number) - (b.ms as number) || a.variant - b.variant;
  if (ua !== ub) return ua ? -1 : 1;
  return a.variant - b.variant;
}

/**
 * Groups rows by sample (in order of first appearance), sorts each group and marks the best
 * row: the server's `best` flag when it set one in the group, else the fastest usable row.
 */
export function groupAndRank(rows: readonly ResultRow[]): SampleGroup[] {
  const groups = new Map<string, ResultRow[]>();
  for (const r of rows) {
    const list = groups.get(r.sample);
    if (list) list.push(r);
    else groups.set(r.sample, [r]);
  }
  return [...groups].map(([sample, list]) => {
    const sorted = [...list].sort(compareRows);
    const serverBest = sorted.some((r) => r.best === true);
    const finalists = sorted.filter((r) => canBeBest(r) && r.finalist);
    const fastest = finalists.length ? finalists[0] : sorted.find(canBeBest);
    return {
      sample,
      rows: sorted.map((r) => ({ ...r, best: serverBest ? r.best === true : r === fastest })),
    };
  });
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/** Latency in ms with 4 significant digits (no padding zeros): 0.2491, 0.0041, 12.35, 123.5. */
export function formatMs(ms: number | null | undefined): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '—';
  if (ms >= 100) return ms.toFixed(1);
  return String(Number(ms.toPrecision(4)));
}

function num(v: number | null | undefined, digits = 1): string {
  return typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '—';
}

export function formatBytes(b: number | null | undefined): string {
  if (typeof b !== 'number' || !Number.isFinite(b)) return '—';
  if (b < 1024) return `${b} B`;
  if (b < 1024 * 1024) return `${(b / 1024).toFixed(1)} KiB`;
  return `${(b / (1024 * 1024)).toFixed(1)} MiB`;
}

export interface PlotOptions {
  width?: number;
  barHeight?: number;
  labelWidth?: number;
}

/**
 * A horizontal bar chart of latency per variant for one sample (bars sorted as the table).
 * Colours come from the VS Code theme through CSS variables, so the chart follows it.
 */
export function latencyPlotSvg(group: SampleGroup, opts: PlotOptions = {}): string {
  const width = opts.width ?? 640;
  const barH = opts.barHeight ?? 18;
  const labelW = opts.labelWidth ?? 180;
  const valueW = 90;
  const gap = 6;
  const top = 24;
  const plotW = Math.max(40, width - labelW - valueW);
  const rows = group.rows;
  const max = Math.max(0, ...rows.filter(usable).map((r) => r.ms as number));
  const height = top + rows.length * (barH + gap) + 4;
  const title = `Latency per variant — ${group.sample} (ms, lower is better)`;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeHtml(title)}">`,
    `<title>${escapeHtml(title)}</title>`,
    `<text x="0" y="14" class="plot-title">${escapeHtml(title)}</text>`,
  ];
  rows.forEach((r, i) => {
    const y = top + i * (barH + gap);
    const label = r.variantName || `#${r.variant}`;
    parts.push(
      `<text x="${labelW - 8}" y="${y + barH * 0.72}" text-anchor="end" class="plot-label">${escapeHtml(label)}</text>`,
    );
    if (usable(r) && max > 0) {
      const w = Math.max(1, Math.round(((r.ms as number) / max) * plotW));
      parts.push(
        `<rect x="${labelW}" y="${y}" width="${w}" height="${barH}" class="bar${r.best ? ' bar-best' : ''}"><title>${escapeHtml(`${label}: ${formatMs(r.ms)} ms`)}</title></rect>`,
        `<text x="${labelW + w + 6}" y="${y + barH * 0.72}" class="plot-value">${escapeHtml(formatMs(r.ms))}${r.best ? ' ★' : ''}</text>`,
      );
    } else {
      const why = r.error ? 'failed' : r.verified === false ? 'wrong result' : 'no timing';
      parts.push(`<text x="${labelW}" y="${y + barH * 0.72}" class="plot-failed">${why}</text>`);
    }
  });
  parts.push('</svg>');
  return parts.join('');
}

export interface ResultsPageOptions {
  /** The webview's `cspSource`. */
  cspSource: string;
  templateName: string;
  /** The template's URI: with it each row gets its Profile / Compare actions (command links). */
  templateUri?: string;
  /** Shown instead of the table when there is nothing to show (no sweep yet, or an error). */
  notice?: string;
}

const COLUMNS = ['', 'variant', 'ms', 'min ms', 'spread', 'TFLOP/s', 'GB/s', 'of measured peak', 'vs torch', 'regs', 'smem', 'spills', 'workspace', 'verified', 'ncu SM / mem', ''];

/** A `command:` link to the server's `cutlens.profile` (the webview allows that command only). */
export function profileLink(uri: string, sample: string, variant: string, baseline?: string): string {
  const args = [uri, variant, sample, ...(baseline !== undefined ? [baseline] : [])];
  return `command:cutlens.profile?${encodeURIComponent(JSON.stringify(args))}`;
}

function profileCell(r: MarkedRow): string {
  const p = r.profile;
  if (!p || typeof p.smPct !== 'number') return '—';
  const stalls = (p.topStalls ?? []).map((s) => `${s.reason} ${s.cycles_per_issue.toFixed(2)}`).join(', ');
  const tip = `achieved occupancy ${num(p.occupancyPct)}%, L2 hit ${num(p.l2HitPct)}%, DRAM ${formatBytes(p.dramBytes)}${stalls ? `; stalls: ${stalls}` : ''}${p.report ? `\n${p.report}` : ''}`;
  return `<span title="${escapeHtml(tip)}">${num(p.smPct)}% / ${num(p.memoryPct)}%</span>`;
}

function actionsCell(r: MarkedRow, uri: string | undefined, best: MarkedRow | undefined): string {
  if (!uri || r.error) return '';
  const profile = `<a href="${escapeHtml(profileLink(uri, r.sample, r.variantName))}" title="Profile this variant with Nsight Compute">Profile</a>`;
  if (!best || best === r) return profile;
  const cmp = `<a href="${escapeHtml(profileLink(uri, r.sample, r.variantName, best.variantName))}" title="Profile it against the best variant (${escapeHtml(best.variantName)})">vs best</a>`;
  return `${profile} · ${cmp}`;
}

function rowHtml(r: MarkedRow, uri?: string, best?: MarkedRow): string {
  const cells = [
    r.best ? '<span class="best" title="best">★</span>' : '',
    escapeHtml(r.variantName || `#${r.variant}`),
    formatMs(r.ms),
    formatMs(r.msMin),
    (typeof r.spreadPct === 'number' ? `${num(r.spreadPct)}%` : '—') +
      (r.stable === false ? ' <span class="unstable" title="spread above the threshold after re-measuring: never the best row">⚠ unstable</span>' : ''),
    num(r.tflops),
    num(r.gbps),
    formatSol(r),
    escapeHtml(formatVersus(r)),
    typeof r.regs === 'number' ? String(r.regs) : '—',
    formatBytes(r.smemBytes),
    typeof r.spills === 'number' ? String(r.spills) : '—',
    formatBytes(r.workspaceBytes),
    r.verified === true ? '✓' : r.verified === false ? '✗' : '—',
    profileCell(r),
    actionsCell(r, uri, best),
  ];
  const tds = cells.map((c, i) => `<td${i >= 2 && i < cells.length - 1 ? ' class="num"' : ''}>${c}</td>`).join('');
  const err = r.error ? `<tr class="error-row"><td></td><td colspan="${COLUMNS.length - 1}">${escapeHtml(r.error)}</td></tr>` : '';
  const gs = r.gpuState;
  const state = gs ? ` title="${escapeHtml(`SM ${gs.sm_clock_mhz ?? '?'} MHz · ${gs.temp_c ?? '?'} °C · ${gs.power_w ?? '?'} W${gs.throttle?.length ? ` · throttle: ${gs.throttle.join(', ')}` : ''}`)}"` : '';
  return `<tr class="${r.best ? 'best-row' : ''}${r.error ? ' failed' : ''}${r.stable === false ? ' unstable-row' : ''}"${state}>${tds}</tr>${err}`;
}

/** Captured samples first, heaviest first; the template's own samples after, as they came. */
export function orderGroups(groups: SampleGroup[], captured: Record<string, CapturedInfo> | undefined): SampleGroup[] {
  if (!captured) return groups;
  const cap = groups.filter((g) => captured[g.sample]).sort((a, b) => captured[b.sample].weight - captured[a.sample].weight);
  return [...cap, ...groups.filter((g) => !captured[g.sample])];
}

export interface CapturedSummary {
  /** The captured GEMM time with the template's best variants, against torch alone. */
  vsTorch: number;
  /** The same with each shape's winner (the template or torch). */
  vsTorchWinners: number;
  /** The share of the captured weight both were measured on. */
  covered: number;
  weightBy: string;
}

/**
 * The weighted ratio over the captured samples (as `cutlens bench --samples captured` prints
 * it): 1 / Σ w·(best / torch), the weights renormalized over the samples with both figures.
 */
export function capturedSummary(data: ResultsResult, groups: SampleGroup[]): CapturedSummary | undefined {
  const captured = data.captured ?? {};
  let total = 0;
  const parts: { w: number; rel: number }[] = [];
  for (const g of groups) {
    const info = captured[g.sample];
    const best = g.rows.find((r) => r.best && usable(r));
    const torch = data.baseline?.[g.sample]?.ms;
    if (!info || !best || typeof torch !== 'number' || !(torch > 0)) continue;
    parts.push({ w: info.weight, rel: (best.ms as number) / torch });
    total += info.weight;
  }
  if (!parts.length || !(total > 0)) return undefined;
  const rel = parts.reduce((acc, p) => acc + (p.w / total) * p.rel, 0);
  const relWin = parts.reduce((acc, p) => acc + (p.w / total) * Math.min(1, p.rel), 0);
  return { vsTorch: 1 / rel, vsTorchWinners: 1 / relWin, covered: total, weightBy: data.capturedWeightBy ?? 'count' };
}

function capturedHeading(sample: string, info: CapturedInfo, weightBy: string): string {
  const runs = typeof info.count === 'number' ? `, ${info.count} calls` : '';
  const time = typeof info.timeMs === 'number' ? ` (${formatMs(info.timeMs)} ms)` : '';
  const mods = info.modules?.length ? ` · <code>${escapeHtml(info.modules[0])}</code>${info.modules.length > 1 ? ` +${info.modules.length - 1}` : ''}` : '';
  return `<h2>Captured sample <code>${escapeHtml(sample)}</code></h2><p class="captured">${escapeHtml(info.op ?? '')} — ${(info.weight * 100).toFixed(1)}% of the captured ${escapeHtml(weightBy)}${runs}${time}${mods}</p>`;
}

function baselineHtml(data: ResultsResult, sample: string): string {
  const b = data.baseline?.[sample];
  if (!b || typeof b.ms !== 'number') return '';
  const sol = formatSol(b);
  return `<p class="baseline">Baseline: ${formatMs(b.ms)} ms${typeof b.tflops === 'number' ? `, ${num(b.tflops)} TFLOP/s` : ''}${typeof b.gbps === 'number' ? `, ${num(b.gbps)} GB/s` : ''}${sol !== '—' ? `, ${sol} of measured peak` : ''}</p>`;
}

export function resultsHtml(data: ResultsResult | undefined, opts: ResultsPageOptions): string {
  const groups = data ? orderGroups(groupAndRank(data.rows ?? []), data.captured) : [];
  const summary = data ? capturedSummary(data, groups) : undefined;
  const head = `<tr>${COLUMNS.map((c, i) => `<th${i >= 2 ? ' class="num"' : ''}>${c}</th>`).join('')}</tr>`;
  let body: string;
  if (opts.notice || groups.length === 0) {
    body = `<p class="notice">${escapeHtml(opts.notice ?? 'No benchmark results yet: run “Benchmark Template”.')}</p>`;
  } else {
    const info = (data as ResultsResult).captured ?? {};
    const weightBy = (data as ResultsResult).capturedWeightBy ?? 'count';
    const top = summary
      ? `<p class="summary">On this model's GEMMs: <strong>${summary.vsTorch.toFixed(2)}×</strong> torch, weighted by ${escapeHtml(summary.weightBy)} ` +
        `(${(summary.covered * 100).toFixed(0)}% of the captured ${escapeHtml(summary.weightBy)} benchmarked); with per-shape winners ${summary.vsTorchWinners.toFixed(2)}×</p>`
      : '';
    body = top + groups
      .map(
        (g) =>
          `<section class="sample">${info[g.sample] ? capturedHeading(g.sample, info[g.sample], weightBy) : `<h2>Sample <code>${escapeHtml(g.sample)}</code></h2>`}${baselineHtml(data as ResultsResult, g.sample)}` +
          `<table><thead>${head}</thead><tbody>${g.rows.map((r) => rowHtml(r, opts.templateUri, g.rows.find((x) => x.best))).join('')}</tbody></table>` +
          `<div class="plot-box">${latencyPlotSvg(g)}</div></section>`,
      )
      .join('');
  }
  const gpu = data?.gpu ? ` on ${escapeHtml(data.gpu)}` : '';
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src ${opts.cspSource} 'unsafe-inline'; img-src ${opts.cspSource} data:;">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>cutlens results</title>
<style>
body { font-family: var(--vscode-font-family); color: var(--vscode-foreground); padding: 0 16px 16px; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
table { border-collapse: collapse; margin: 8px 0 12px; }
th, td { padding: 3px 10px; border-bottom: 1px solid var(--vscode-editorWidget-border, #8884); text-align: left; white-space: nowrap; }
th { color: var(--vscode-descriptionForeground); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.best-row td { font-weight: 600; background: var(--vscode-editor-selectionHighlightBackground, #8882); }
tr.failed td { color: var(--vscode-disabledForeground, #888); }
tr.error-row td { color: var(--vscode-errorForeground); white-space: pre-wrap; font-family: var(--vscode-editor-font-family); font-size: 0.9em; }
.best { color: var(--vscode-charts-yellow, #cca700); }
.unstable { color: var(--vscode-editorWarning-foreground, #cca700); }
.notice, .baseline, .captured { color: var(--vscode-descriptionForeground); }
.plot { max-width: 100%; height: auto; }
.plot text { fill: var(--vscode-foreground); font-size: 12px; font-family: var(--vscode-font-family); }
.plot .plot-title { font-weight: 600; }
.plot .plot-failed { fill: var(--vscode-errorForeground); }
.plot .bar { fill: var(--vscode-charts-blue, #3794ff); }
.plot .bar-best { fill: var(--vscode-charts-green, #89d185); }
</style></head>
<body><h1>Benchmark results — ${escapeHtml(opts.templateName)}${gpu}</h1>${body}</body></html>`;
}
