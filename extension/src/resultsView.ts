// The benchmark results view: a webview beside the template with the sweep table (fastest first,
// best marked) and the latency-per-variant plot, from `cutlens/results`.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { ResultsRequest, type ResultsResult, ServerCommand } from './protocol';
import { resultsHtml } from './results';
import type { ServerManager } from './server';

export class ResultsView implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private template: vscode.Uri | undefined;

  constructor(private readonly server: ServerManager) {}

  /** Shows (or refreshes) the results of a template. */
  async show(template: vscode.Uri, reveal = true): Promise<void> {
    this.template = template;
    const name = path.posix.basename(template.path);
    if (!this.panel) {
      this.panel = vscode.window.createWebviewPanel(
        'cutlens.results',
        `Results: ${name}`,
        { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
        // command links: only the server's profile command (a row's Profile / vs best)
        { enableScripts: false, retainContextWhenHidden: false, enableCommandUris: [ServerCommand.profile] },
      );
      this.panel.onDidDispose(() => {
        this.panel = undefined;
      });
      this.panel.onDidChangeViewState((e) => {
        if (e.webviewPanel.visible && this.template) void this.render(this.template);
      });
    } else if (reveal) {
      this.panel.reveal(undefined, true);
    }
    this.panel.title = `Results: ${name}`;
    await this.render(template);
  }

  /** Refreshes the panel if it shows this template. */
  async refresh(template: vscode.Uri): Promise<void> {
    if (this.panel && this.template?.toString() === template.toString()) await this.render(template);
  }

  private async render(template: vscode.Uri): Promise<void> {
    const panel = this.panel;
    if (!panel) return;
    const templateName = path.posix.basename(template.path);
    let data: ResultsResult | undefined;
    let notice: string | undefined;
    try {
      data = await this.server.request<ResultsResult>(ResultsRequest, { uri: template.toString() });
    } catch (e) {
      notice = `Could not get results: ${e instanceof Error ? e.message : String(e)}`;
    }
    if (this.panel === panel) panel.webview.html = resultsHtml(data, { cspSource: panel.webview.cspSource, templateName, templateUri: template.toString(), notice });
  }

  dispose(): void {
    this.panel?.dispose();
  }
}
