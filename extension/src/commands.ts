// Commands. The server's own ids (cutlens.check, cutlens.benchmark, cutlens.showRendered,
// cutlens.selectSample, cutlens.selectVariant, cutlens.results — what the code lenses carry)
// are registered by vscode-languageclient from the server's capabilities; `interceptServerCommand`
// adds the local part (open the rendered view, show a picker, open or refresh the results view).
// Palette commands use distinct ids and go through the same interception.
import * as vscode from 'vscode';
import {
  type ChoicesResult,
  type ProfileResult,
  SelectionRequest,
  type SelectionResult,
  ServerCommand,
  type VariantInfo,
} from './protocol';
import type { RenderedSource } from './rendered';
import { parseRenderedUri } from './rendered';
import type { ResultsView } from './resultsView';
import type { ServerManager } from './server';
import { SHOW_LOG_COMMAND } from './statusBar';
import { TEMPLATE_LANGUAGE } from './templateGlobs';

export const PaletteCommand = {
  checkFile: 'cutlens.checkFile',
  // not 'cutlens.checkWorkspace': that id is the server's own command
  checkWorkspace: 'cutlens.checkWorkspaceTemplates',
  benchmarkTemplate: 'cutlens.benchmarkTemplate',
  benchmarkVariant: 'cutlens.benchmarkVariant',
  profileVariant: 'cutlens.profileVariant',
  showRenderedSource: 'cutlens.showRenderedSource',
  pickSample: 'cutlens.pickSample',
  pickVariant: 'cutlens.pickVariant',
  showResults: 'cutlens.showResults',
  restartServer: 'cutlens.restartServer',
  showLog: SHOW_LOG_COMMAND,
} as const;

interface Deps {
  server: ServerManager;
  rendered: RenderedSource;
  results: ResultsView;
  output: vscode.OutputChannel;
}

let lastTemplate: vscode.Uri | undefined;

/** Tracks the last focused template so commands run from the rendered view or results still find it. */
export function trackActiveTemplate(): vscode.Disposable {
  const note = (e: vscode.TextEditor | undefined) => {
    if (e?.document.languageId === TEMPLATE_LANGUAGE) lastTemplate = e.document.uri;
  };
  note(vscode.window.activeTextEditor);
  return vscode.window.onDidChangeActiveTextEditor(note);
}

export function activeTemplate(): vscode.Uri | undefined {
  const doc = vscode.window.activeTextEditor?.document;
  if (doc?.languageId === TEMPLATE_LANGUAGE) return doc.uri;
  const q = doc && parseRenderedUri(doc.uri);
  if (q) return vscode.Uri.parse(q.uri);
  return lastTemplate;
}

function toUri(arg: unknown): vscode.Uri | undefined {
  if (arg instanceof vscode.Uri) return arg;
  if (typeof arg === 'string' && arg) return vscode.Uri.parse(arg);
  return undefined;
}

function variantLabel(v: VariantInfo): string {
  return v.name || `#${v.index}`;
}

/** Picker for `selectSample` / `selectVariant` without a name; undefined when dismissed. */
async function pick(
  deps: Deps,
  command: string,
  uri: string,
  send: (c: string, a: unknown[]) => Promise<unknown>,
  title: string,
): Promise<string | number | undefined> {
  const isSample = command === ServerCommand.selectSample;
  let items: (vscode.QuickPickItem & { value: string | number })[] = [];
  try {
    const sel = await deps.server.request<SelectionResult>(SelectionRequest, { uri });
    items = isSample
      ? sel.samples.map((s) => ({ label: s, value: s, description: s === sel.active.sample ? 'active' : undefined }))
      : sel.variants.map((v) => ({
          label: variantLabel(v),
          value: v.index,
          description: v.name === sel.active.variant ? 'active' : undefined,
          detail: v.values ? Object.entries(v.values).map(([k, x]) => `${k}=${JSON.stringify(x)}`).join('  ') : undefined,
        }));
  } catch {
    // Older servers: ask the command itself for the choices.
    const res = (await send(command, [uri])) as ChoicesResult | undefined;
    items = (res?.choices ?? []).map((c) =>
      typeof c === 'string' ? { label: c, value: c } : { label: variantLabel(c), value: c.index },
    );
  }
  if (!items.length) {
    void vscode.window.showInformationMessage(`cutlens: this template has no ${isSample ? 'samples' : 'variants'}.`);
    return undefined;
  }
  const choice = await vscode.window.showQuickPick(items, { title, placeHolder: title });
  return choice?.value;
}

/** The local half of server commands (code lenses and palette alike). */
export function makeInterceptor(deps: Deps) {
  return async (command: string, args: unknown[], send: (c: string, a: unknown[]) => Promise<unknown>): Promise<unknown> => {
    const uriArg = args[0];
    switch (command) {
      case ServerCommand.showRendered: {
        const uri = toUri(uriArg) ?? activeTemplate();
        if (!uri) return undefined;
        const sample = typeof args[1] === 'string' ? args[1] : undefined;
        const variant = typeof args[2] === 'string' || typeof args[2] === 'number' ? args[2] : undefined;
        await deps.rendered.open(uri, sample, variant);
        return undefined;
      }
      case ServerCommand.selectSample:
      case ServerCommand.selectVariant: {
        const uri = toUri(uriArg) ?? activeTemplate();
        if (!uri) return undefined;
        let value = args[1];
        if (value === undefined || value === null) {
          const title = command === ServerCommand.selectSample ? 'cutlens: select the active sample' : 'cutlens: select the active variant';
          value = await pick(deps, command, uri.toString(), send, title);
          if (value === undefined) return undefined;
        }
        const result = await send(command, [uri.toString(), value]);
        deps.rendered.refresh(uri);
        return result;
      }
      case ServerCommand.results: {
        // A grid's summary lens: the results view has every variant of the sweep.
        const uri = toUri(uriArg) ?? activeTemplate();
        if (!uri) return undefined;
        await deps.results.show(uri);
        return undefined;
      }
      case ServerCommand.benchmark: {
        const uri = toUri(uriArg) ?? activeTemplate();
        if (!uri) return undefined;
        const result = await send(command, [uri.toString(), ...args.slice(1)]);
        await deps.results.show(uri);
        return result;
      }
      case ServerCommand.profile: {
        // A Profile lens, a results row's Profile / vs best link, the palette.
        const uri = toUri(uriArg) ?? activeTemplate();
        if (!uri) return undefined;
        const result = (await vscode.window.withProgress(
          { location: vscode.ProgressLocation.Notification, title: 'cutlens: profiling with Nsight Compute…' },
          () => send(command, [uri.toString(), ...args.slice(1)]),
        )) as ProfileResult | undefined;
        await showProfile(deps, uri, result);
        return result;
      }
      default:
        return send(command, args);
    }
  };
}

/** `ncu wide: SM 82% · mem 39% · occupancy 19% (vs narrow: SM +3.1)`, for a notification. */
export function profileMessage(r: ProfileResult): string {
  const p = r.profile;
  if (!p) return r.error ?? 'no profile';
  const pct = (x: number | null | undefined) => (typeof x === 'number' ? `${x.toFixed(0)}%` : '?');
  const s = p.summary;
  let text = `ncu ${p.variant}: SM ${pct(s.sm_pct)} · mem ${pct(s.memory_pct)} · occupancy ${pct(s.achieved_occupancy_pct)}`;
  const stall = s.top_stalls?.[0];
  if (stall) text += ` · top stall ${stall.reason}`;
  const d = r.comparison?.difference;
  if (r.baseline && d) {
    const delta = (k: string) => (d[k] ? `${d[k].delta >= 0 ? '+' : ''}${d[k].delta.toFixed(1)}` : '?');
    text += ` (vs ${r.baseline.variant}: SM ${delta('sm_pct')}, mem ${delta('memory_pct')})`;
  }
  return text;
}

async function showProfile(deps: Deps, uri: vscode.Uri, r: ProfileResult | undefined): Promise<void> {
  if (!r) return;
  if (r.error || !r.profile) {
    void vscode.window.showErrorMessage(`cutlens profile: ${r.error ?? 'no profile'}`);
    return;
  }
  await deps.results.refresh(uri);
  const open = 'Open in Nsight Compute';
  const choice = await vscode.window.showInformationMessage(profileMessage(r), open);
  if (choice === open && r.open) {
    const term = vscode.window.createTerminal('Nsight Compute');
    term.show();
    term.sendText(r.open);
  }
}

function needTemplate(): vscode.Uri | undefined {
  const uri = activeTemplate();
  if (!uri) void vscode.window.showWarningMessage('cutlens: open a template (*.cu.jinja, *.cuh.jinja, *.cu.j2) first.');
  return uri;
}

/** `{"templates": 3, "diagnostics": 2}` → "templates 3, diagnostics 2". */
function summarize(result: unknown): string {
  if (!result || typeof result !== 'object' || Array.isArray(result)) return '';
  return Object.entries(result as Record<string, unknown>)
    .filter(([, v]) => typeof v === 'number' || typeof v === 'string')
    .map(([k, v]) => `${k} ${String(v)}`)
    .join(', ');
}

function report(deps: Deps, what: string, p: Promise<unknown>): Promise<unknown> {
  return p.then(
    (r) => {
      const summary = summarize(r);
      if (summary) vscode.window.setStatusBarMessage(`cutlens: ${what} — ${summary}`, 5000);
      return r;
    },
    (e: unknown) => {
      const msg = e instanceof Error ? e.message : String(e);
      deps.output.appendLine(`[client] ${what} failed: ${msg}`);
      void vscode.window.showErrorMessage(`cutlens: ${what} failed: ${msg}`);
      return undefined;
    },
  );
}

export function registerCommands(deps: Deps): vscode.Disposable {
  const { server } = deps;
  const run = (cmd: string, args: unknown[]) => server.executeCommand(cmd, args);
  const reg = (id: string, fn: (...a: unknown[]) => unknown) => vscode.commands.registerCommand(id, fn);
  return vscode.Disposable.from(
    reg(PaletteCommand.checkFile, (arg) => {
      const uri = toUri(arg) ?? needTemplate();
      return uri && report(deps, 'check', run(ServerCommand.check, [uri.toString()]));
    }),
    reg(PaletteCommand.checkWorkspace, () => report(deps, 'check workspace', run(ServerCommand.checkWorkspace, []))),
    reg(PaletteCommand.benchmarkTemplate, (arg) => {
      const uri = toUri(arg) ?? needTemplate();
      return uri && report(deps, 'benchmark', run(ServerCommand.benchmark, [uri.toString()]));
    }),
    reg(PaletteCommand.benchmarkVariant, async (arg) => {
      const uri = toUri(arg) ?? needTemplate();
      if (!uri) return undefined;
      const variant = await pick(deps, ServerCommand.selectVariant, uri.toString(), (c, a) => run(c, a), 'cutlens: benchmark which variant?');
      if (variant === undefined) return undefined;
      return report(deps, 'benchmark', run(ServerCommand.benchmark, [uri.toString(), variant]));
    }),
    reg(PaletteCommand.profileVariant, async (arg) => {
      const uri = toUri(arg) ?? needTemplate();
      if (!uri) return undefined;
      const variant = await pick(deps, ServerCommand.selectVariant, uri.toString(), (c, a) => run(c, a), 'cutlens: profile which variant?');
      if (variant === undefined) return undefined;
      return run(ServerCommand.profile, [uri.toString(), variant]);
    }),
    reg(PaletteCommand.showRenderedSource, (arg) => {
      const uri = toUri(arg) ?? needTemplate();
      return uri && report(deps, 'show rendered source', run(ServerCommand.showRendered, [uri.toString()]));
    }),
    reg(PaletteCommand.pickSample, (arg) => {
      const uri = toUri(arg) ?? needTemplate();
      return uri && report(deps, 'select sample', run(ServerCommand.selectSample, [uri.toString()]));
    }),
    reg(PaletteCommand.pickVariant, (arg) => {
      const uri = toUri(arg) ?? needTemplate();
      return uri && report(deps, 'select variant', run(ServerCommand.selectVariant, [uri.toString()]));
    }),
    reg(PaletteCommand.showResults, (arg) => {
      const uri = toUri(arg) ?? needTemplate();
      return uri && deps.results.show(uri);
    }),
    reg(PaletteCommand.restartServer, () => server.restart('Restart Server command')),
    reg(PaletteCommand.showLog, () => deps.output.show(true)),
  );
}
