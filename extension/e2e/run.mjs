#!/usr/bin/env node
// End-to-end test of the packaged extension in a real VS Code: code-server (from npm) driven by
// Playwright in Debian's Chromium, as /work/shared/reference/VSCODE-E2E.md describes.
//
//   bash extension/e2e/setup.sh          # once: chromium, code-server, playwright-core → .e2e/
//   npm run build && npm run package     # → cutlens-<version>.vsix
//   CUTLENS_PYTHON=.venv/bin/python node extension/e2e/run.mjs
//
// It installs the .vsix into a fresh user-data dir, opens a workspace with a template that has a
// Jinja error (variant block=256 only) and a C++ error, and asserts from the DOM that
//   1. the editor's language mode is the extension's ("CUDA Jinja"),
//   2. both diagnostics appear on the right lines (Problems panel),
//   3. the server's code lenses render with their titles,
//   4. Show Rendered Source opens the rendered CUDA beside the template,
//   5. the status bar shows the server ready,
//   8. grid.cu.jinja (a [variants] grid whose host-code "kernel" a CPU bench worker runs: no GPU
//      needed) has ONE summary lens on its grid line, before and after a real benchmark, an
//      inlay hint with ptxas' registers there and a document link on #include; the summary lens
//      opens the results view; hovering a grid key shows the results by its values.
// Screenshots go to test-artifacts/ (CUTLENS_E2E_ARTIFACTS). Exit status 0 only if all pass.
//
// Environment: CUTLENS_PYTHON (interpreter with cutlens; default python3), CUTLENS_VSIX (default:
// the newest cutlens-*.vsix in the repository root), CUTLENS_E2E_DIR (default <repo>/.e2e),
// CUTLENS_E2E_KEEP=1 keeps the temporary folders, CUTLENS_E2E_DOCS_SCREENSHOT=path also writes
// the README screenshot there, CUTLENS_E2E_DOCS_GRID_SCREENSHOT=path the grid's (check 8c).
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const e2eDir = resolve(process.env.CUTLENS_E2E_DIR ?? join(repo, '.e2e'));
const artifacts = resolve(process.env.CUTLENS_E2E_ARTIFACTS ?? join(repo, 'test-artifacts'));
// A path (with a slash) is taken from the current directory; a bare name is looked up on PATH.
const pythonEnv = process.env.CUTLENS_PYTHON || 'python3';
const python = pythonEnv.includes('/') ? resolve(pythonEnv) : pythonEnv;
const absPython = python.includes('/') ? python : spawnSync('sh', ['-c', `command -v ${python}`], { encoding: 'utf8' }).stdout.trim() || python;
const keep = process.env.CUTLENS_E2E_KEEP === '1';
const TEMPLATE = 'saxpy.cu.jinja';
const GRID = 'grid.cu.jinja'; // a [variants] grid benchmarked on a CPU bench worker
// 1-based lines in extension/e2e/workspace/saxpy.cu.jinja (checked against the file below).
const JINJA_ERROR_LINE = 22; // {{ tile_config.stages }} — undefined, only when block > 128
const NVCC_ERROR_LINE = 18; // int unused = undeclared_name;

const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
const log = (msg) => console.log(`[e2e ${elapsed()}] ${msg}`);

function fail(msg) {
  throw new Error(msg);
}

function findVsix() {
  if (process.env.CUTLENS_VSIX) return resolve(process.env.CUTLENS_VSIX);
  const found = readdirSync(repo)
    .filter((f) => /^cutlens-.*\.vsix$/.test(f))
    .map((f) => join(repo, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (!found.length) fail('no cutlens-*.vsix in the repository root: run `npm run build && npm run package` first');
  return found[0];
}

function freePort() {
  return new Promise((ok, ko) => {
    const srv = createServer();
    srv.on('error', ko);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

async function waitForHealth(url, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  fail(`code-server did not answer ${url} within ${ms / 1000}s`);
}

/** Checks that the template's lines are where the assertions expect them. */
function checkTemplate(file) {
  const lines = readFileSync(file, 'utf8').split('\n');
  if (!lines[JINJA_ERROR_LINE - 1]?.includes('tile_config')) fail(`${TEMPLATE}:${JINJA_ERROR_LINE} is not the Jinja error line`);
  if (!lines[NVCC_ERROR_LINE - 1]?.includes('undeclared_name')) fail(`${TEMPLATE}:${NVCC_ERROR_LINE} is not the C++ error line`);
}

function findFiles(dir, pred, out = []) {
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) findFiles(p, pred, out);
    else if (pred(p)) out.push(p);
  }
  return out;
}

// Page helpers --------------------------------------------------------------------------------

const nbsp = (s) => (s ?? '').replace(/\u00a0/g, ' ');

// Under load (other processes compiling on the same cores) every step can take seconds:
// the waits below poll for the state they need, with generous limits, and never assume that
// a fixed pause was long enough.

/** Polls `fn` until it returns a truthy value; fails with `what` and the last value after `ms`. */
async function until(page, fn, what, ms = 20000) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) fail(`timed out after ${ms / 1000}s waiting for ${what} (last: ${JSON.stringify(last)})`);
    await page.waitForTimeout(150);
  }
}

async function runCommand(page, quickInput, title) {
  await page.keyboard.press('F1');
  await quickInput.waitFor({ timeout: 20000 });
  await quickInput.fill(`>${title}`);
  // Enter runs the focused row: wait until it is this command (not merely listed).
  await page.waitForSelector(`.quick-input-list .monaco-list-row.focused[aria-label*="${title.split(': ').pop()}"]`, { timeout: 20000 });
  await page.keyboard.press('Enter');
  await quickInput.waitFor({ state: 'hidden', timeout: 20000 });
}

async function gotoLine(page, quickInput, line) {
  await page.keyboard.press('Control+G');
  await quickInput.waitFor({ timeout: 20000 });
  await quickInput.fill(`:${line}`);
  await page.keyboard.press('Enter');
  await quickInput.waitFor({ state: 'hidden', timeout: 20000 });
  await until(page, async () => (await cursorLine(page)) === line, `the cursor on line ${line}`);
}

/** Opens a workspace file through Quick Open and waits for its editor. */
async function openFile(page, quickInput, name) {
  await page.keyboard.press('Control+P');
  await quickInput.waitFor({ timeout: 20000 });
  await quickInput.fill(name);
  await page.waitForSelector(`.quick-input-list .monaco-list-row.focused[aria-label*="${name}"]`, { timeout: 20000 });
  await page.keyboard.press('Enter');
  await page.waitForSelector(`.tab.active[data-resource-name="${name}"], .tab.active[aria-label*="${name}"]`, { timeout: 20000 });
  await page.locator('.editor-instance .view-lines').first().waitFor({ timeout: 20000 });
}

/**
 * Clicks a code lens until `done()` holds; the number of clicks it took. A click that lands
 * while VS Code re-renders the lenses (a refresh) runs a command it has just disposed of
 * ("Actual command not found"): that click is repeated, and its notification cleared.
 */
async function clickLens(page, text, done, what) {
  for (let attempt = 1; ; attempt++) {
    await page.locator('.codelens-decoration a', { hasText: text }).first().click({ timeout: 20000 });
    try {
      await until(page, done, what, 15000);
      return attempt;
    } catch (e) {
      if (attempt >= 3) throw e;
      log(`lens click ${attempt} on ${text} did not take; again`);
    }
  }
}

async function clearNotifications(page, quickInput) {
  if (await page.locator('.notifications-toasts .notification-toast').count()) {
    await runCommand(page, quickInput, 'Notifications: Clear All Notifications');
  }
}

/** The active editor's cursor line (1-based), from the status bar's "Ln X, Col Y". */
async function cursorLine(page) {
  const t = await page.locator('[id="status.editor.selection"]').textContent({ timeout: 20000 });
  const m = /Ln (\d+)/.exec(t ?? '');
  if (!m) fail(`no cursor position in the status bar: ${JSON.stringify(t)}`);
  return Number(m[1]);
}

/** Text of a visible line (1-based) of the focused editor, matched through the line numbers' offsets. */
async function visibleLineText(page, line) {
  return nbsp(
    await page.evaluate((ln) => {
      const ed = document.activeElement?.closest('.monaco-editor');
      if (!ed) return '';
      const num = [...ed.querySelectorAll('.margin-view-overlays .line-numbers')].find((e) => e.textContent?.trim() === String(ln));
      const top = num?.closest('[style*="top"]')?.style.top;
      const row = [...ed.querySelectorAll('.view-lines .view-line')].find((e) => e.style.top === top);
      return row?.textContent ?? '';
    }, line),
  );
}

async function activeLineText(page) {
  return visibleLineText(page, await cursorLine(page));
}

// ---------------------------------------------------------------------------------------------

const codeServer = join(e2eDir, 'node_modules/code-server/out/node/entry.js');
if (!existsSync(codeServer)) fail(`code-server is not installed under ${e2eDir}: run extension/e2e/setup.sh`);
const require = createRequire(join(e2eDir, 'package.json'));
const { chromium } = require('playwright-core');

const vsix = findVsix();
const tmp = mkdtempSync(join(tmpdir(), 'cutlens-e2e-'));
const userData = join(tmp, 'user-data');
const extensions = join(tmp, 'extensions');
const workspace = join(tmp, 'workspace');
const config = join(tmp, 'config.yaml');
mkdirSync(join(userData, 'User'), { recursive: true });
mkdirSync(extensions, { recursive: true });
mkdirSync(artifacts, { recursive: true });
cpSync(join(here, 'workspace'), workspace, { recursive: true });
checkTemplate(join(workspace, TEMPLATE));
writeFileSync(config, 'auth: none\ncert: false\n');
const userSettings = {
  'telemetry.telemetryLevel': 'off',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'security.workspace.trust.enabled': false,
  'chat.commandCenter.enabled': false,
  'editor.minimap.enabled': false,
  'window.zoomLevel': 0,
  'cutlens.python': python,
  'cutlens.trace.server': 'messages',
};
writeFileSync(join(userData, 'User/settings.json'), JSON.stringify(userSettings, null, 2));

const common = ['--config', config, '--user-data-dir', userData, '--extensions-dir', extensions];
let server;
let browser;
let ok = false;
let page;

async function shot(name) {
  if (!page) return undefined;
  const file = join(artifacts, name);
  try {
    await page.screenshot({ path: file });
    log(`screenshot: ${file}`);
    return file;
  } catch (e) {
    log(`screenshot failed: ${e.message}`);
    return undefined;
  }
}

try {
  log(`vsix: ${vsix}`);
  log(`python: ${python}`);
  const inst = spawnSync(process.execPath, [codeServer, ...common, '--install-extension', vsix], { encoding: 'utf8' });
  if (inst.status !== 0 || !/successfully installed/i.test(inst.stdout + inst.stderr)) {
    fail(`installing the .vsix failed:\n${inst.stdout}\n${inst.stderr}`);
  }
  log('extension installed');

  const port = await freePort();
  server = spawn(
    process.execPath,
    [codeServer, ...common, '--bind-addr', `127.0.0.1:${port}`, '--auth', 'none', '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', workspace],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const serverLog = [];
  server.stdout.on('data', (d) => serverLog.push(String(d)));
  server.stderr.on('data', (d) => serverLog.push(String(d)));
  await waitForHealth(`http://127.0.0.1:${port}/healthz`, 90000);
  log(`code-server up on port ${port} (pid ${server.pid})`);

  browser = await chromium.launch({
    executablePath: process.env.CUTLENS_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
  });
  page = await browser.newPage({ viewport: { width: 1600, height: 900 } });
  await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`);
  await page.waitForSelector('.monaco-workbench', { timeout: 90000 });
  await page.waitForSelector('.explorer-folders-view .monaco-list-row', { timeout: 90000 });
  log('workbench up');

  // Open the template through Quick Open.
  const quickInput = page.locator('.quick-input-widget .quick-input-box input');
  await openFile(page, quickInput, TEMPLATE);
  log('template open');

  const results = [];
  let serverReady = false;
  // needsServer: skipped (and failed) once the server is known not to be ready, instead of
  // waiting out every timeout.
  const check = async (name, fn, needsServer = true) => {
    if (needsServer && !serverReady) {
      results.push({ name, ok: false, detail: 'skipped: the server never got ready' });
      log(`FAIL ${name} — skipped: the server never got ready`);
      return;
    }
    const start = Date.now();
    try {
      const detail = await fn();
      results.push({ name, ok: true, detail });
      log(`PASS ${name}${detail ? ` — ${detail}` : ''} (${((Date.now() - start) / 1000).toFixed(1)}s)`);
    } catch (e) {
      results.push({ name, ok: false, detail: e.message });
      log(`FAIL ${name} — ${e.message}`);
    }
  };

  // 1. Language mode.
  await check('1 language mode is CUDA Jinja', async () => {
    const mode = page.locator('[id="status.editor.mode"]');
    await page.waitForFunction(
      () => document.querySelector('[id="status.editor.mode"]')?.textContent?.includes('CUDA Jinja'),
      null,
      { timeout: 10000 },
    );
    return (await mode.textContent())?.trim();
  }, false);

  // 5 (first, since everything else needs the server). Status bar says ready.
  await check('5 status bar shows the server ready', async () => {
    await page.waitForFunction(
      () => [...document.querySelectorAll('.statusbar-item')].some((e) => /cutlens: ready/.test(e.textContent ?? '')),
      null,
      { timeout: 120000 },
    );
    const texts = await page.locator('.statusbar-item').allTextContents();
    serverReady = true;
    return texts.find((t) => t.includes('cutlens'))?.trim();
  }, false);

  // 3. Code lenses with their titles.
  await check('3 code lenses render with their titles', async () => {
    await page.waitForFunction(
      () => {
        const t = [...document.querySelectorAll('.codelens-decoration')].map((e) => e.textContent ?? '').join(' | ');
        return /Check/.test(t) && /Benchmark/.test(t) && /Show rendered/i.test(t);
      },
      null,
      { timeout: 60000 },
    );
    const texts = await page.locator('.codelens-decoration').allTextContents();
    return texts.map((t) => t.trim()).filter(Boolean).join(' | ');
  });

  // 2. Both diagnostics, on the right lines, from the Problems panel. The Jinja tier comes on
  // open; the nvcc tier too when the server checks on open, else (checkOn = save) after
  // "cutlens: Check File". Then Check File runs once more from the palette: it must succeed and
  // leave both diagnostics in place.
  await check('2 Jinja and nvcc diagnostics on the right lines', async () => {
    await page.keyboard.press('Control+Shift+M');
    await page.waitForSelector('.markers-panel', { timeout: 10000 });
    const rowsText = () =>
      page.evaluate(() =>
        [...document.querySelectorAll('.markers-panel .monaco-list-row')].map((r) => r.getAttribute('aria-label') || r.textContent || ''),
      );
    // A row's aria-label reads "Error: <message> at line N and character C. generated by <source>".
    const rowRe = (needle, line, source) => new RegExp(`${needle}.* at line ${line} and character \\d+\\. generated by ${source}`);
    const want = [
      { what: 'Jinja', re: rowRe('tile_config', JINJA_ERROR_LINE, 'cutlens-jinja') },
      { what: 'nvcc', re: rowRe('undeclared_name', NVCC_ERROR_LINE, 'cutlens-nvcc') },
    ];
    const waitRows = async (ms) => {
      const end = Date.now() + ms;
      let rows = [];
      while (Date.now() < end) {
        rows = await rowsText();
        if (want.every((w) => rows.some((r) => w.re.test(r)))) break;
        await page.waitForTimeout(250);
      }
      return { rows, missing: want.filter((w) => !rows.some((r) => w.re.test(r))).map((w) => w.what) };
    };
    const checkFile = async () => {
      // An earlier result message (shown for 5 s) must not count for this run.
      await page.waitForFunction(
        () => ![...document.querySelectorAll('.statusbar-item')].some((e) => /cutlens: check —/.test(e.textContent ?? '')),
        null,
        { timeout: 20000 },
      );
      await page.locator('.editor-instance .view-lines').first().click();
      await runCommand(page, quickInput, 'cutlens: Check File');
      // The extension reports the result in the status bar ("cutlens: check — diagnostics N, …")
      // or a "cutlens: check failed: …" notification.
      await page.waitForFunction(
        () =>
          [...document.querySelectorAll('.statusbar-item, .notifications-toasts .notification-list-item-message')].some((e) =>
            /cutlens: check (—|failed)/.test(e.textContent ?? ''),
          ),
        null,
        { timeout: 240000 },
      );
      const toasts = await page.locator('.notifications-toasts .notification-list-item-message').allTextContents();
      const failedToast = toasts.find((t) => /cutlens: check failed/.test(t));
      if (failedToast) fail(`Check File failed: ${failedToast.trim()}`);
    };
    let { rows, missing } = await waitRows(30000);
    const onOpen = missing.length === 0;
    if (!onOpen) {
      await checkFile();
      ({ rows, missing } = await waitRows(60000));
      if (missing.length) fail(`missing ${missing.join(' and ')} diagnostic after Check File; Problems rows: ${JSON.stringify(rows)}`);
    }
    await checkFile();
    ({ rows, missing } = await waitRows(30000));
    if (missing.length) fail(`missing ${missing.join(' and ')} diagnostic after a second Check File; Problems rows: ${JSON.stringify(rows)}`);
    const extra = rows.filter((r) => /generated by cutlens/.test(r) && !want.some((w) => w.re.test(r)));
    if (extra.length) fail(`unexpected diagnostics: ${JSON.stringify(extra)}`);
    return `${onOpen ? 'on open' : 'after Check File'}: ${rows.filter((r) => want.some((w) => w.re.test(r))).join(' || ')}`;
  });

  // 4. Show Rendered Source (the code lens) opens the rendered CUDA beside the template.
  await check('4 Show rendered opens the rendered CUDA', async () => {
    await clickLens(
      page,
      /Show rendered/i,
      () => page.locator(`.tab[data-resource-name="${TEMPLATE}.cu"], .tab[aria-label*="${TEMPLATE}.cu"]`).count(),
      'the rendered view\'s tab',
    );
    const editor = page.locator('.editor-group-container', { has: page.locator(`.tab.active[aria-label*="${TEMPLATE}.cu"]`) });
    await page.waitForFunction(
      () => [...document.querySelectorAll('.editor-instance .view-lines')].some((v) => /saxpy_kernel/.test(v.textContent ?? '') && /PT_EXPORT\s+int/.test(v.textContent ?? '')),
      null,
      { timeout: 60000 },
    );
    const text = (await editor.locator('.view-lines').first().textContent()) ?? '';
    if (/\{\{|\{%/.test(text)) fail('the rendered view still has Jinja delimiters');
    return `tab ${TEMPLATE}.cu, ${text.length} chars visible, no Jinja left`;
  });

  // Extra: a cursor move in the template selects the mapped line in the rendered view.
  await check('4b template cursor moves follow the source map', async () => {
    await gotoLine(page, quickInput, NVCC_ERROR_LINE);
    // The rendered view follows asynchronously (a round trip through the extension): focus
    // it (the group to the right) and read its cursor line until it has moved there.
    let ln = 0;
    let lineText = '';
    await until(
      page,
      async () => {
        await page.keyboard.press('Control+2');
        ln = await cursorLine(page);
        lineText = await visibleLineText(page, ln);
        if (/undeclared_name/.test(lineText)) return true;
        await page.keyboard.press('Control+1');
        return false;
      },
      `the rendered view's cursor on undeclared_name (at line ${ln}: ${JSON.stringify(lineText)})`,
    );
    await page.keyboard.press('Control+1');
    return `template line ${NVCC_ERROR_LINE} → rendered line ${ln}: ${lineText.trim()}`;
  });

  // The screenshot (test artifact; CUTLENS_E2E_DOCS_SCREENSHOT also writes the README's copy):
  // template with lenses and squiggles, Problems panel, rendered view beside, status bar.
  await shot('e2e-vscode.png');
  if (process.env.CUTLENS_E2E_DOCS_SCREENSHOT) {
    await page.screenshot({ path: resolve(process.env.CUTLENS_E2E_DOCS_SCREENSHOT) });
    log(`docs screenshot: ${process.env.CUTLENS_E2E_DOCS_SCREENSHOT}`);
  }

  // Extra: a settings change reaches the server; changing cutlens.python restarts it.
  await check('7 settings: sent on change; cutlens.python restarts the server', async () => {
    const cutlensLog = () => {
      const f = findFiles(join(userData, 'logs'), (p) => /cutlens\.log$/.test(p))[0];
      return f ? readFileSync(f, 'utf8') : '';
    };
    const waitLog = async (re, what) => {
      const end = Date.now() + 60000;
      while (Date.now() < end) {
        if (re.test(cutlensLog())) return;
        await page.waitForTimeout(250);
      }
      fail(`no ${what} in the cutlens log`);
    };
    // Edit settings.json in the editor, as a user would (code-server does not notice a change
    // made to the file behind its back).
    const editSettings = async (extra) => {
      await runCommand(page, quickInput, 'Preferences: Open User Settings (JSON)');
      await page.waitForSelector('.tab.active[aria-label*="settings.json"]', { timeout: 20000 });
      // typing goes where the focus is: wait until it is in the settings editor
      await until(
        page,
        () =>
          page.evaluate(() => {
            const el = document.activeElement;
            const tab = el?.closest('.editor-group-container')?.querySelector('.tab.active');
            return !!el?.closest('.monaco-editor') && /settings\.json/.test(tab?.getAttribute('aria-label') ?? '');
          }),
        'the focus in settings.json',
      );
      await page.keyboard.press('Control+A');
      await page.keyboard.press('Delete');
      // One line: no auto-indentation or bracket auto-closing gets a say.
      const want = { ...userSettings, ...extra };
      await page.keyboard.insertText(JSON.stringify(want));
      await page.keyboard.press('Control+S');
      const file = join(userData, 'User/settings.json');
      const end = Date.now() + 30000;
      let saved;
      while (Date.now() < end) {
        try {
          saved = JSON.parse(readFileSync(file, 'utf8'));
          if (JSON.stringify(saved) === JSON.stringify(want)) break;
        } catch {
          saved = undefined;
        }
        await page.waitForTimeout(100);
      }
      if (JSON.stringify(saved) !== JSON.stringify(want)) fail(`settings.json was not saved as typed: ${readFileSync(file, 'utf8')}`);
      await page.keyboard.press('Control+W');
    };
    await editSettings({ 'cutlens.checkOn': 'change' });
    await waitLog(/settings → server: \{"checkOn":"change","trusted":true\}[\s\S]*Sending notification 'workspace\/didChangeConfiguration'/, 'didChangeConfiguration');
    // Same interpreter, spelled differently: the setting changed, so the server restarts.
    await editSettings({ 'cutlens.checkOn': 'change', 'cutlens.python': `${dirname(absPython)}/./${basename(absPython)}` });
    await waitLog(/restarting the server: cutlens\.python changed[\s\S]*server started/, 'restart');
    await page.waitForFunction(
      () => [...document.querySelectorAll('.statusbar-item')].some((e) => /cutlens: ready/.test(e.textContent ?? '')),
      null,
      { timeout: 120000 },
    );
    return 'didChangeConfiguration sent; restarted and ready again';
  });

  // Extra: language configuration in the editor ({% auto-closes; Ctrl+/ on a Jinja tag uses {# #}).
  await check('6 editing: {% auto-closes, comment toggle on a Jinja line uses {# #}', async () => {
    await page.keyboard.press('Control+1'); // the template's editor group
    await gotoLine(page, quickInput, JINJA_ERROR_LINE - 1);
    const original = await activeLineText(page);
    await page.keyboard.press('Control+/');
    // the editor renders an edit on its next frame: poll the line, don't read it at once
    const commentedRe = /^\s*\{#\s*\{% if block > 128 %\}\s*#\}\s*$/;
    let commented = '';
    try {
      await until(page, async () => commentedRe.test((commented = await activeLineText(page))), 'the commented line', 10000);
    } catch {
      fail(`Ctrl+/ gave ${JSON.stringify(commented)}`);
    }
    await page.keyboard.press('Control+z');
    await until(page, async () => (await activeLineText(page)) === original, 'the undo');
    await page.keyboard.press('End');
    await page.keyboard.press('Enter');
    const newLine = JINJA_ERROR_LINE;
    await until(page, async () => (await cursorLine(page)) === newLine, 'the new line');
    await page.keyboard.type('{% if x', { delay: 60 });
    const typedRe = /^\s*\{% if x %\}\s*$/;
    let typed = '';
    try {
      await until(page, async () => typedRe.test((typed = await activeLineText(page))), 'the auto-closed tag', 10000);
    } catch {
      fail(`typing "{% if x" gave ${JSON.stringify(typed)}`);
    } finally {
      await runCommand(page, quickInput, 'File: Revert File');
    }
    return `${commented.trim()}  /  ${typed.trim()}`;
  }, false);

  // 8. A [variants] grid after a real benchmark (a CPU bench worker runs grid.cu.jinja's host
  // "kernel"): one summary lens on the grid's line, a click opens the results view, hovering a
  // grid key shows its values' results; ptxas' registers as an inlay hint on the grid line,
  // #include as a document link. (checkOn is "change" since check 7: opening it compiles it.)
  // the grid template's editor (saxpy's, in a background tab, has a [variants] line too);
  // Monaco renders spaces as U+00A0, which \s matches
  const gridEditor = () =>
    page.locator('.editor-group-container', { has: page.locator(`.tab.active[data-resource-name="${GRID}"]`) }).locator('.editor-instance');
  const gridLine = () => gridEditor().locator('.view-line', { hasText: /^\[variants\]/ }).first();
  const lensesOn = (needle) =>
    page.evaluate(
      ([n, grid]) => {
        const group = [...document.querySelectorAll('.editor-group-container')].find((g) =>
          g.querySelector(`.tab.active[data-resource-name="${grid}"]`),
        );
        const deco = [...(group?.querySelectorAll('.codelens-decoration') ?? [])].find((d) => (d.textContent ?? '').includes(n));
        return deco ? [...deco.querySelectorAll('a')].map((a) => (a.textContent ?? '').replace(/\u00a0/g, ' ')) : [];
      },
      [needle, GRID],
    );
  await check('8a grid template: one summary lens, ptxas inlay hint, #include link', async () => {
    await page.keyboard.press('Escape');
    await page.keyboard.press('Control+1');
    // the Problems panel (check 2) would take half the height of the screenshot
    if (await page.locator('.part.panel').isVisible()) {
      await page.keyboard.press('Control+J');
      await until(page, async () => !(await page.locator('.part.panel').isVisible()), 'the panel to close');
    }
    await openFile(page, quickInput, GRID);
    await until(page, async () => (await lensesOn('Benchmark (6 variants)')).length > 0, 'the Benchmark lens', 60000);
    // before a benchmark the grid's line has one summary too (its compile check), not 6 lenses
    const before = await until(page, async () => {
      const l = await lensesOn('6 variants ·');
      return l.length && l;
    }, 'the grid summary lens', 60000);
    if (before.length !== 1) fail(`the [variants] line has ${before.length} lenses: ${JSON.stringify(before)}`);
    // the nvcc tier's full pass gives ptxas' figures: an inlay hint at the end of [variants]
    const hinted = await until(
      page,
      async () => {
        const t = nbsp(await gridLine().textContent());
        return /regs \d+/.test(t) && t;
      },
      'an inlay hint with registers on the [variants] line',
      240000,
    );
    const links = await gridEditor().locator('.detected-link', { hasText: 'cuda_runtime.h' }).count();
    if (!links) fail('#include <cuda_runtime.h> is no document link');
    return `${before[0].trim()} | ${hinted.trim()}; #include <cuda_runtime.h> is a link`;
  });

  let summary = '';
  await check('8b benchmark: one summary lens on the grid line, results view opens', async () => {
    await runCommand(page, quickInput, 'cutlens: Benchmark Template');
    await page.waitForSelector(`.tab[aria-label*="Results: ${GRID}"]`, { timeout: 300000 });
    const lenses = await until(
      page,
      async () => {
        const l = await lensesOn('6 variants ·');
        return l.some((t) => /6 variants · best .+ ms · spread .+ · 6 ✓ · 0 ✗/.test(t)) && l;
      },
      'the grid summary lens after the benchmark',
      120000,
    );
    if (lenses.length !== 1) fail(`the [variants] line has ${lenses.length} lenses: ${JSON.stringify(lenses)}`);
    const perVariant = await page.locator('.codelens-decoration a', { hasText: /^(● )?unroll=\d/ }).count();
    if (perVariant) fail(`${perVariant} per-variant lenses on a grid`);
    summary = lenses[0].trim();
    return summary;
  });

  await check('8c the summary lens opens the results view', async () => {
    const tab = page.locator(`.tab[aria-label*="Results: ${GRID}"]`);
    await tab.click();
    await page.keyboard.press('Control+W');
    await until(page, async () => (await tab.count()) === 0, 'the results view to close');
    await page.keyboard.press('Control+1');
    const clicks = await clickLens(page, /6 variants · best/, async () => (await tab.count()) > 0, 'the results view');
    const frameText = await until(
      page,
      async () => {
        for (const f of page.frames()) {
          const t = await f.evaluate(() => document.body?.innerText ?? '').catch(() => '');
          if (/unroll=1 no-approx/.test(t) && /★/.test(t)) return t;
        }
        return '';
      },
      'the results table in the webview',
      60000,
    );
    // the screenshot of a grid after a benchmark: its one summary lens and inlay hint, the
    // results view beside (the mouse away from the editor: no hover over the lens)
    await clearNotifications(page, quickInput);
    await page.mouse.move(5, 400);
    await shot('e2e-grid-lenses.png');
    if (process.env.CUTLENS_E2E_DOCS_GRID_SCREENSHOT) {
      await page.screenshot({ path: resolve(process.env.CUTLENS_E2E_DOCS_GRID_SCREENSHOT) });
      log(`docs screenshot: ${process.env.CUTLENS_E2E_DOCS_GRID_SCREENSHOT}`);
    }
    return `results view (${clicks} click(s)): ${frameText.split('\n').filter((l) => /unroll=/.test(l)).length} variant rows`;
  });

  await check('8d hover on a grid key shows its values\' results', async () => {
    await clearNotifications(page, quickInput);
    await page.keyboard.press('Control+1');
    const line = gridEditor().locator('.view-line', { hasText: /^unroll\s*=\s*\[1,\s*2,\s*4\]/ }).first();
    const box = await line.boundingBox();
    if (!box) fail('the unroll line is not visible');
    const hover = page.locator('.monaco-hover:not(.hidden)', { hasText: 'best variant' });
    // rest the mouse on the key (each move restarts the editor's hover delay), retrying from
    // elsewhere if no hover came
    for (let attempt = 1; ; attempt++) {
      await page.mouse.move(box.x + 200, box.y - 60);
      await page.mouse.move(box.x + 16, box.y + box.height / 2, { steps: 4 });
      try {
        await hover.first().waitFor({ state: 'visible', timeout: 10000 });
        break;
      } catch (e) {
        if (attempt >= 3) fail(`no hover with the grid's results on the unroll key: ${e.message.split('\n')[0]}`);
      }
    }
    const text = nbsp(await hover.first().innerText());
    for (const v of ['unroll', '1', '2', '4', 'best ms']) if (!text.includes(v)) fail(`hover lacks ${v}: ${text}`);
    await shot('e2e-grid-hover.png');
    return text.split('\n').slice(0, 3).join(' / ');
  });

  const failed = results.filter((r) => !r.ok);
  ok = failed.length === 0;
  log(ok ? `all ${results.length} checks passed` : `${failed.length} of ${results.length} checks failed`);
  writeFileSync(join(artifacts, 'e2e-results.json'), JSON.stringify({ ok, elapsed: elapsed(), results }, null, 2));
  if (!ok) {
    await shot('e2e-vscode-failure.png');
    const logs = findFiles(join(userData, 'logs'), (p) => /cutlens\.log$|exthost\.log$/.test(p));
    for (const f of logs) {
      console.log(`----- ${f.slice(userData.length + 1)} (last 60 lines)`);
      console.log(readFileSync(f, 'utf8').split('\n').slice(-60).join('\n'));
    }
    console.log(`----- code-server output (last 30 lines)\n${serverLog.join('').split('\n').slice(-30).join('\n')}`);
  }
} catch (e) {
  console.error(`[e2e ${elapsed()}] ERROR ${e.stack ?? e}`);
  await shot('e2e-vscode-failure.png');
  ok = false;
} finally {
  await browser?.close().catch(() => undefined);
  if (server?.pid && server.exitCode === null) {
    // code-server's node process; its extension host (and the language server under it) exit
    // when it goes.
    const exited = new Promise((r) => server.once('exit', r));
    server.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (server.exitCode === null) server.kill('SIGKILL');
  }
  if (keep) log(`kept ${tmp}`);
  else rmSync(tmp, { recursive: true, force: true });
  log(ok ? 'e2e passed' : 'e2e FAILED');
  process.exit(ok ? 0 : 1);
}
