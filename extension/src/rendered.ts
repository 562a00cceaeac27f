// "Show Rendered Source": a read-only virtual document (scheme `cutlens-rendered`) with the
// rendered CUDA of a sample × variant, opened beside the template. Cursor moves in either
// editor reveal the mapped line in the other (source map from `cutlens/rendered`).
import * as vscode from 'vscode';
import { RenderedRequest, type RenderedParams, type RenderedResult } from './protocol';
import type { ServerManager } from './server';
import { RenderedLineMap, sameUri } from './sourceMap';

export const RENDERED_SCHEME = 'cutlens-rendered';

interface RenderedQuery {
  uri: string;
  sample?: string;
  variant?: string;
}

interface Entry {
  result: RenderedResult;
  map: RenderedLineMap;
}

/** `cutlens-rendered:/path/to/t.cu.jinja.cu?uri=…[&sample=…&variant=…]`; the `.cu` suffix selects CUDA C++. */
export function renderedUri(template: vscode.Uri, sample?: string, variant?: string | number): vscode.Uri {
  const q = new URLSearchParams({ uri: template.toString() });
  if (sample !== undefined && sample !== null && sample !== '') q.set('sample', String(sample));
  if (variant !== undefined && variant !== null && variant !== '') q.set('variant', String(variant));
  return vscode.Uri.from({ scheme: RENDERED_SCHEME, path: `${template.path}.cu`, query: q.toString() });
}

export function parseRenderedUri(uri: vscode.Uri): RenderedQuery | undefined {
  if (uri.scheme !== RENDERED_SCHEME) return undefined;
  const q = new URLSearchParams(uri.query);
  const template = q.get('uri');
  if (!template) return undefined;
  return { uri: template, sample: q.get('sample') ?? undefined, variant: q.get('variant') ?? undefined };
}

function variantParam(v: string | undefined): string | number | undefined {
  if (v === undefined) return undefined;
  return /^\d+$/.test(v) ? Number(v) : v;
}

export class RenderedSource implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  private readonly entries = new Map<string, Entry>();
  private readonly disposables: vscode.Disposable[] = [];
  private readonly highlight = vscode.window.createTextEditorDecorationType({
    isWholeLine: true,
    backgroundColor: new vscode.ThemeColor('editor.rangeHighlightBackground'),
  });
  private readonly label = vscode.window.createTextEditorDecorationType({
    after: { color: new vscode.ThemeColor('editorCodeLens.foreground'), margin: '0 0 0 2em', fontStyle: 'italic' },
  });
  private refreshTimer: NodeJS.Timeout | undefined;
  /** Documents whose next selection event is our own move (uri → expiry time). */
  private readonly ownMoves = new Map<string, number>();

  constructor(private readonly server: ServerManager) {
    this.disposables.push(
      vscode.workspace.registerTextDocumentContentProvider(RENDERED_SCHEME, this),
      vscode.window.onDidChangeTextEditorSelection((e) => this.onSelection(e)),
      vscode.workspace.onDidChangeTextDocument((e) => {
        if (e.document.languageId === 'cuda-jinja' && e.contentChanges.length) this.scheduleRefresh(e.document.uri);
        else if (e.document.uri.scheme === RENDERED_SCHEME) this.afterRerender(e.document);
      }),
      vscode.window.onDidChangeVisibleTextEditors(() => this.decorateAll()),
      vscode.workspace.onDidCloseTextDocument((d) => {
        if (d.uri.scheme === RENDERED_SCHEME) this.entries.delete(d.uri.toString());
      }),
      this.changed,
      this.highlight,
      this.label,
    );
  }

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const q = parseRenderedUri(uri);
    if (!q) return '// not a cutlens rendered-source URI\n';
    const params: RenderedParams = { uri: q.uri };
    if (q.sample) params.sample = q.sample;
    const variant = variantParam(q.variant);
    if (variant !== undefined) params.variant = variant;
    try {
      const result = await this.server.request<RenderedResult>(RenderedRequest, params);
      this.entries.set(uri.toString(), { result, map: new RenderedLineMap(result.lines ?? [], q.uri) });
      setTimeout(() => this.decorateAll(), 0);
      return result.text;
    } catch (e) {
      this.entries.delete(uri.toString());
      const msg = e instanceof Error ? e.message : String(e);
      return `// cutlens could not render this template:\n// ${msg.split('\n').join('\n// ')}\n`;
    }
  }

  /** Opens the rendered CUDA beside the template and reveals the line under the template's cursor. */
  async open(template: vscode.Uri, sample?: string, variant?: string | number): Promise<vscode.TextEditor> {
    const uri = renderedUri(template, sample, variant);
    let doc = await vscode.workspace.openTextDocument(uri);
    if (doc.languageId !== 'cuda-cpp') doc = await vscode.languages.setTextDocumentLanguage(doc, 'cuda-cpp');
    const editor = await vscode.window.showTextDocument(doc, {
      viewColumn: vscode.ViewColumn.Beside,
      preserveFocus: true,
      preview: false,
    });
    const source = vscode.window.visibleTextEditors.find((e) => e.document.uri.toString() === template.toString());
    if (source) this.follow(source, editor);
    this.decorateAll();
    return editor;
  }

  /** Re-renders every open rendered view of a template (after an edit or a new active pair). */
  refresh(template?: vscode.Uri): void {
    for (const doc of vscode.workspace.textDocuments) {
      const q = parseRenderedUri(doc.uri);
      if (q && (!template || sameUri(q.uri, template.toString()))) this.changed.fire(doc.uri);
    }
  }

  /** After a re-render, put each view of it back on the line under the template's cursor. */
  private afterRerender(doc: vscode.TextDocument): void {
    const q = parseRenderedUri(doc.uri);
    if (!q) return;
    const source = vscode.window.visibleTextEditors.find((e) => sameUri(e.document.uri.toString(), q.uri));
    for (const target of vscode.window.visibleTextEditors) {
      if (target.document !== doc) continue;
      if (source) this.follow(source, target);
      else target.revealRange(new vscode.Range(0, 0, 0, 0), vscode.TextEditorRevealType.AtTop);
    }
    this.decorateAll();
  }

  private scheduleRefresh(template: vscode.Uri): void {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => this.refresh(template), 400);
  }

  private onSelection(e: vscode.TextEditorSelectionChangeEvent): void {
    const doc = e.textEditor.document;
    // Ignore the selection we just set in the other editor, which would otherwise bounce back.
    const until = this.ownMoves.get(doc.uri.toString());
    if (until !== undefined) {
      this.ownMoves.delete(doc.uri.toString());
      if (Date.now() < until) return;
    }
    if (doc.uri.scheme === RENDERED_SCHEME) {
      this.followBack(e.textEditor);
    } else if (doc.languageId === 'cuda-jinja') {
      for (const target of vscode.window.visibleTextEditors) {
        const q = parseRenderedUri(target.document.uri);
        if (q && sameUri(q.uri, doc.uri.toString())) this.follow(e.textEditor, target);
      }
    }
  }

  /** Template cursor → rendered editor. */
  private follow(source: vscode.TextEditor, target: vscode.TextEditor): void {
    const entry = this.entries.get(target.document.uri.toString());
    if (!entry) return;
    const lines = entry.map.toRendered(source.selection.active.line).filter((l) => l < target.document.lineCount);
    if (!lines.length) {
      // Nothing maps (e.g. the render failed and the view holds the error): show its top.
      target.setDecorations(this.highlight, []);
      target.revealRange(new vscode.Range(0, 0, 0, 0), vscode.TextEditorRevealType.AtTop);
      return;
    }
    const first = target.document.lineAt(lines[0]).range;
    this.moveCursor(target, first.start);
    target.revealRange(first, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
    target.setDecorations(
      this.highlight,
      lines.map((l) => target.document.lineAt(l).range),
    );
  }

  /** Rendered cursor → template editor. */
  private followBack(rendered: vscode.TextEditor): void {
    const entry = this.entries.get(rendered.document.uri.toString());
    if (!entry) return;
    rendered.setDecorations(this.highlight, []);
    const origin = entry.map.toTemplate(rendered.selection.active.line);
    if (!origin) return;
    const target = vscode.window.visibleTextEditors.find((ed) => sameUri(ed.document.uri.toString(), origin.uri));
    if (!target || origin.line >= target.document.lineCount) return;
    const range = target.document.lineAt(origin.line).range;
    this.moveCursor(target, range.start);
    target.revealRange(range, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
    target.setDecorations(this.highlight, [range]);
  }

  private moveCursor(editor: vscode.TextEditor, at: vscode.Position): void {
    if (editor.selection.isEmpty && editor.selection.active.isEqual(at)) return;
    this.ownMoves.set(editor.document.uri.toString(), Date.now() + 500);
    editor.selection = new vscode.Selection(at, at);
  }

  /** Labels each visible rendered view with its sample × variant (an end-of-line note on line 1). */
  private decorateAll(): void {
    for (const ed of vscode.window.visibleTextEditors) {
      const entry = this.entries.get(ed.document.uri.toString());
      if (!entry || ed.document.lineCount === 0) continue;
      const { sample, variant, kernelName } = entry.result;
      const pair = [sample ? `sample ${sample}` : '', variant ? `variant ${variant}` : ''].filter(Boolean).join(' × ');
      if (!pair) {
        ed.setDecorations(this.label, []);
        continue;
      }
      const text = `cutlens: ${pair}${kernelName ? ` — ${kernelName}` : ''} (read-only)`;
      ed.setDecorations(this.label, [{ range: ed.document.lineAt(0).range, renderOptions: { after: { contentText: text } } }]);
    }
  }

  dispose(): void {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    for (const d of this.disposables) d.dispose();
  }
}
