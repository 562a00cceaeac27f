// Entry point of the cutlens VS Code extension.
import * as vscode from 'vscode';
import { activeTemplate, makeInterceptor, registerCommands, trackActiveTemplate } from './commands';
import { onPythonInterpreterChange } from './pythonExtension';
import { RenderedSource } from './rendered';
import { ResultsView } from './resultsView';
import { ServerManager } from './server';
import { RESTART_SETTINGS } from './settings';
import { StatusBar } from './statusBar';
import { registerTemplateGlobs, TEMPLATE_LANGUAGE, workspaceHasTemplates } from './templateGlobs';

let manager: ServerManager | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel('cutlens');
  const status = new StatusBar();
  const server = new ServerManager(output, status);
  manager = server;
  const rendered = new RenderedSource(server);
  const results = new ResultsView(server);
  const deps = { server, rendered, results, output };
  server.setCommandInterceptor(makeInterceptor(deps));

  context.subscriptions.push(
    output,
    status,
    server,
    rendered,
    results,
    registerCommands(deps),
    trackActiveTemplate(),
    registerTemplateGlobs(),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (RESTART_SETTINGS.some((s) => e.affectsConfiguration(s))) {
        if (server.running || vscode.workspace.textDocuments.some((d) => d.languageId === TEMPLATE_LANGUAGE)) {
          void server.restart('cutlens.python changed');
        }
      } else if (e.affectsConfiguration('cutlens')) {
        server.sendSettings();
      }
    }),
    // Trust granted: the server may now run generators, nvcc and benchmarks.
    vscode.workspace.onDidGrantWorkspaceTrust(() => void server.trustGranted()),
    // Start the server once a template is open (activation may come from onStartupFinished).
    vscode.workspace.onDidOpenTextDocument((d) => {
      if (d.languageId === TEMPLATE_LANGUAGE) void server.ensureStarted(true);
    }),
    server.onDidStart(() => {
      const t = activeTemplate();
      if (t) void results.refresh(t);
      rendered.refresh();
    }),
  );

  // Follow the Python extension's interpreter while cutlens.python is unset (hooked on the first
  // start only, so that a window without templates never activates the Python extension).
  let followingPython = false;
  context.subscriptions.push(
    server.onDidStart(() => {
      if (followingPython) return;
      followingPython = true;
      void onPythonInterpreterChange(() => {
        if (!vscode.workspace.getConfiguration('cutlens').get<string>('python') && server.running) {
          void server.restart('the Python extension changed the interpreter');
        }
      }).then((d) => d && context.subscriptions.push(d));
    }),
  );

  // Lazy start: only where there is a template (activation may come from onStartupFinished).
  void (async () => {
    if (vscode.workspace.textDocuments.some((d) => d.languageId === TEMPLATE_LANGUAGE) || (await workspaceHasTemplates())) {
      await server.ensureStarted(true);
    }
  })();
}

export async function deactivate(): Promise<void> {
  await manager?.stop();
  manager = undefined;
}
