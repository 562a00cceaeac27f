import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ResultRow } from '../../src/protocol';
import { capturedSummary, escapeHtml, formatBytes, formatMs, formatSol, formatVersus, groupAndRank, latencyPlotSvg, orderGroups, profileLink, resultsHtml } from '../../src/results';

const row = (sample: string, variant: number, ms: number | null, extra: Partial<ResultRow> = {}): ResultRow => ({
  sample,
  variant,
  variantName: `v${variant}`,
  ms,
  ...extra,
});

describe('groupAndRank', () => {
  it('groups by sample in order of appearance and sorts each group fastest first', () => {
    const groups = groupAndRank([row('big', 0, 2.0), row('small', 0, 0.5), row('big', 1, 1.0), row('small', 1, 0.25)]);
    assert.deepEqual(groups.map((g) => g.sample), ['big', 'small']);
    assert.deepEqual(groups[0].rows.map((r) => r.variant), [1, 0]);
    assert.deepEqual(groups[1].rows.map((r) => r.variant), [1, 0]);
  });

  it('marks the fastest usable row best when the server marked none', () => {
    const [g] = groupAndRank([row('s', 0, 0.3), row('s', 1, 0.1, { verified: false }), row('s', 2, 0.2)]);
    assert.deepEqual(g.rows.map((r) => [r.variant, r.best]), [[2, true], [0, false], [1, false]]);
  });

  it("keeps the server's best flag when it set one", () => {
    const [g] = groupAndRank([row('s', 0, 0.1), row('s', 1, 0.2, { best: true })]);
    assert.deepEqual(g.rows.map((r) => [r.variant, r.best]), [[0, false], [1, true]]);
  });

  it('puts failed rows last, in variant order, never best', () => {
    const [g] = groupAndRank([
      row('s', 3, null, { error: 'static_assert failed' }),
      row('s', 1, 0.4),
      row('s', 0, 0.05, { error: 'illegal memory access' }),
    ]);
    assert.deepEqual(g.rows.map((r) => r.variant), [1, 0, 3]);
    assert.deepEqual(g.rows.map((r) => r.best), [true, false, false]);
  });

  it('marks nothing when every row failed', () => {
    const [g] = groupAndRank([row('s', 0, null, { error: 'x' })]);
    assert.equal(g.rows[0].best, false);
  });
});

describe('latencyPlotSvg', () => {
  const [g] = groupAndRank([row('s', 0, 0.2), row('s', 1, 0.1), row('s', 2, null, { error: 'boom' })]);
  const svg = latencyPlotSvg(g, { width: 500, labelWidth: 100, barHeight: 10 });

  it('draws one bar per timed variant, scaled to the slowest', () => {
    const bars = [...svg.matchAll(/<rect x="100" y="(\d+)" width="(\d+)" height="10" class="(bar[^"]*)"/g)];
    assert.equal(bars.length, 2);
    const plotW = 500 - 100 - 90;
    assert.equal(Number(bars[0][2]), Math.round(plotW / 2), 'fastest (0.1 ms) is half as long');
    assert.equal(Number(bars[1][2]), plotW, 'slowest spans the plot');
    assert.equal(bars[0][3], 'bar bar-best');
    assert.equal(bars[1][3], 'bar');
  });

  it('labels variants and values, marks the best and the failed', () => {
    assert.match(svg, /<text[^>]*class="plot-label">v1<\/text>/);
    assert.match(svg, /0\.1 ★/);
    assert.match(svg, /class="plot-failed">failed</);
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.ok(svg.endsWith('</svg>'));
  });

  it('escapes variant names', () => {
    const [h] = groupAndRank([{ ...row('s<1>', 0, 1), variantName: 'tile<128,"64">' }]);
    const s = latencyPlotSvg(h);
    assert.ok(!s.includes('tile<128'));
    assert.match(s, /tile&lt;128,&quot;64&quot;&gt;/);
  });
});

describe('resultsHtml', () => {
  it('renders a sorted table with the best row, the plot and the GPU', () => {
    const html = resultsHtml(
      {
        gpu: 'NVIDIA H100 80GB HBM3',
        rows: [row('small', 0, 0.31, { tflops: 10.5, regs: 96, smemBytes: 49152, verified: true }), row('small', 1, 0.25, { verified: true })],
        baseline: { small: { ms: 0.2, tflops: 12 } },
      },
      { cspSource: 'vscode-resource:', templateName: 'gemm.cu.jinja' },
    );
    assert.match(html, /Benchmark results — gemm\.cu\.jinja on NVIDIA H100 80GB HBM3/);
    assert.ok(html.indexOf('<td>v1</td>') < html.indexOf('<td>v0</td>'), 'fastest row first');
    assert.match(html, /<tr class="best-row"><td><span class="best" title="best">★<\/span><\/td><td>v1<\/td>/);
    assert.match(html, /48\.0 KiB/);
    assert.match(html, /Baseline: 0\.2 ms, 12\.0 TFLOP\/s/);
    assert.match(html, /<svg /);
    assert.match(html, /Content-Security-Policy" content="default-src 'none'/);
    assert.ok(!/<script/i.test(html), 'no scripts in the webview');
  });

  it('shows a notice when there is nothing to show', () => {
    assert.match(resultsHtml({ rows: [] }, { cspSource: 'x', templateName: 't' }), /No benchmark results yet/);
    assert.match(resultsHtml(undefined, { cspSource: 'x', templateName: 't', notice: 'server <down>' }), /server &lt;down&gt;/);
  });

  it('shows error text under a failed row', () => {
    const html = resultsHtml({ rows: [row('s', 0, null, { error: 'ptxas error: too much shared data' })] }, { cspSource: 'x', templateName: 't' });
    assert.match(html, /class="error-row"><td><\/td><td colspan="15">ptxas error: too much shared data/);
  });
});

describe('formatting', () => {
  it('formats latencies, bytes and HTML', () => {
    assert.equal(formatMs(0.24912), '0.2491');
    assert.equal(formatMs(12.3456), '12.35');
    assert.equal(formatMs(0.0041), '0.0041');
    assert.equal(formatMs(123.45), '123.5');
    assert.equal(formatMs(null), '—');
    assert.equal(formatBytes(0), '0 B');
    assert.equal(formatBytes(2048), '2.0 KiB');
    assert.equal(formatBytes(3 * 1024 * 1024), '3.0 MiB');
    assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });
});

describe('captured samples', () => {
  const data = {
    rows: [row('own', 0, 1.0), row('c_fc', 0, 0.5), row('c_fc', 1, 0.4), row('c_attn', 0, 2.0), row('lm_head', 0, null, { error: 'failed' })],
    baseline: { c_fc: { ms: 0.6 }, c_attn: { ms: 1.0 }, lm_head: { ms: 1.0 }, own: { ms: 1.0 } },
    captured: {
      c_attn: { weight: 0.3, op: 'addmm', count: 24, timeMs: 0.75, modules: ['transformer.h.0.attn.c_attn', 'transformer.h.1.attn.c_attn'] },
      c_fc: { weight: 0.5, op: 'mm', count: 24, timeMs: 1.25, modules: ['transformer.h.0.mlp.c_fc'] },
      lm_head: { weight: 0.2, op: 'mm', count: 12 },
    },
    capturedWeightBy: 'time',
  };

  it('puts captured samples first, heaviest first', () => {
    const groups = orderGroups(groupAndRank(data.rows), data.captured);
    assert.deepEqual(groups.map((g) => g.sample), ['c_fc', 'c_attn', 'lm_head', 'own']);
  });

  it('weights the ratio against torch by the captured share, over the samples measured', () => {
    const s = capturedSummary(data, groupAndRank(data.rows));
    assert.ok(s);
    // c_fc: 0.4 vs 0.6 ms, weight 0.5/0.8; c_attn: 2.0 vs 1.0 ms, weight 0.3/0.8
    assert.ok(Math.abs(s.vsTorch - 1 / (0.625 * (0.4 / 0.6) + 0.375 * 2.0)) < 1e-9);
    assert.ok(Math.abs(s.vsTorchWinners - 1 / (0.625 * (0.4 / 0.6) + 0.375)) < 1e-9);
    assert.ok(Math.abs(s.covered - 0.8) < 1e-9);
    assert.equal(s.weightBy, 'time');
    assert.equal(capturedSummary({ rows: data.rows }, groupAndRank(data.rows)), undefined);
  });

  it('heads each captured group with its op, weight and module, and the page with the summary', () => {
    const html = resultsHtml(data, { cspSource: 'x', templateName: 'gemm.cu.jinja' });
    assert.match(html, /On this model's GEMMs: <strong>[0-9.]+×<\/strong> torch, weighted by time \(80% of the captured time benchmarked\)/);
    assert.match(html, /Captured sample <code>c_fc<\/code><\/h2><p class="captured">mm — 50\.0% of the captured time, 24 calls \(1\.25 ms\)/);
    assert.match(html, /<code>transformer\.h\.0\.attn\.c_attn<\/code> \+1/);
    assert.match(html, /<h2>Sample <code>own<\/code><\/h2>/);
    assert.ok(html.indexOf('c_fc') < html.indexOf('Sample <code>own'));
  });
});

describe('profile actions', () => {
  it('links each row to cutlens.profile, and the others against the best', () => {
    const uri = 'file:///w/gemm.cu.jinja';
    const html = resultsHtml(
      {
        rows: [
          row('square', 0, 0.2, { variantName: 'fast & wide', best: true, profile: { smPct: 81.53, memoryPct: 38.74, report: '/w/.cutlens/profiles/a.ncu-rep' } }),
          row('square', 1, 0.4),
          row('square', 2, null, { error: 'nvcc: 1 error(s)' }),
        ],
      },
      { cspSource: 'x', templateName: 'gemm.cu.jinja', templateUri: uri },
    );
    assert.ok(html.includes('81.5% / 38.7%'), 'the profile column of the profiled row');
    assert.equal(profileLink(uri, 'square', 'v1', 'fast & wide'), `command:cutlens.profile?${encodeURIComponent(JSON.stringify([uri, 'v1', 'square', 'fast & wide']))}`);
    assert.ok(html.includes(escapeHtml(profileLink(uri, 'square', 'fast & wide'))));
    assert.ok(html.includes(escapeHtml(profileLink(uri, 'square', 'v1', 'fast & wide'))), 'v1 against the best');
    assert.ok(!html.includes(escapeHtml(profileLink(uri, 'square', 'v2'))), 'a failed row has no Profile action');
    assert.ok(!resultsHtml({ rows: [row('s', 0, 0.1)] }, { cspSource: 'x', templateName: 't' }).includes('command:'));
  });
});

describe('speed of light, stability and finalists (issue 22)', () => {
  it('never marks an unstable row best, and prefers the finalists when there are some', () => {
    const [g] = groupAndRank([row('s', 0, 0.1, { stable: false }), row('s', 1, 0.2), row('s', 2, 0.3)]);
    assert.deepEqual(g.rows.map((r) => [r.variant, r.best]), [[0, false], [1, true], [2, false]]);
    const [f] = groupAndRank([row('s', 0, 0.19), row('s', 1, 0.2, { finalist: { vs_reference: 1.01 } })]);
    assert.deepEqual(f.rows.map((r) => [r.variant, r.best]), [[0, false], [1, true]]);
  });

  it('formats the share of the measured peak and the ratio from the rounds', () => {
    assert.equal(formatSol({ solPct: 91.6, bound: 'compute' }), '92% compute');
    assert.equal(formatSol({ solPct: null, bound: null }), '—');
    assert.equal(formatVersus(row('s', 0, 1, { finalist: { vs_reference: 1.0, interval: [0.991, 1.004], tie: true } })), 'tie (0.991–1.004×)');
    assert.equal(formatVersus(row('s', 0, 1, { finalist: { vs_reference: 1.041, interval: [1.02, 1.05], tie: false } })), '1.041× [1.020–1.050]');
  });

  it('shows unstable rows, the peak share and the GPU state in the page', () => {
    const html = resultsHtml(
      { baseline: { s: { ms: 0.19, solPct: 95, bound: 'compute' } }, rows: [row('s', 0, 0.2, { solPct: 92, bound: 'compute', gpuState: { sm_clock_mhz: 1755, temp_c: 61, power_w: 690, throttle: ['sw_power_cap'] } }), row('s', 1, 0.1, { stable: false, spreadPct: 14.5 })] },
      { cspSource: 'x', templateName: 't' },
    );
    assert.match(html, /92% compute/);
    assert.match(html, /⚠ unstable/);
    assert.match(html, /SM 1755 MHz · 61 °C · 690 W · throttle: sw_power_cap/);
    assert.match(html, /Baseline: 0\.19 ms, 95% compute of measured peak/);
  });
});
