// Owns the language client: resolves the interpreter, starts `python -m cutlens lsp` over stdio,
// forwards settings, routes `cutlens/status` to the status bar, and restarts on request.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import {
  CloseAction,
  type CloseHandlerResult,
  DidChangeConfigurationNotification,
  ErrorAction,
  type ErrorHandlerResult,
  ExecuteCommandRequest,
  LanguageClient,
  type LanguageClientOptions,
  type Middleware,
  type ServerOptions,
  State,
} from 'vscode-languageclient/node';
import { documentSelector } from './drivers';
import { describeInterpreter, type Interpreter, resolveInterpreter, sameInterpreter } from './interpreter';
import { StatusNotification, type StatusParams } from './protocol';
import { pythonExtensionInterpreter } from './pythonExtension';
import { buildServerSettings, settingValue, withTrust } from './settings';
import type { StatusBar } from './statusBar';

export const DOCUMENT_SELECTOR = [
  { scheme: 'file', language: 'cuda-jinja' },
  { scheme: 'untitled', language: 'cuda-jinja' },
];

/** Intercepts server commands (code lenses) that need a local action; `send` runs one on the server. */
export type CommandInterceptor = (
  command: string,
  args: unknown[],
  send: (command: string, args: unknown[]) => Promise<unknown>,
) => Promise<unknown>;

/**
 * The settings as the server takes them: only values the user set, plus the workspace's trust
 * (untrusted: the server runs no workspace code, and workspace values of `cutlens.nvcc` are
 * ignored).
 */
export function currentServerSettings(scope?: vscode.ConfigurationScope) {
  const cfg = vscode.workspace.getConfiguration('cutlens', scope);
  const trusted = vscode.workspace.isTrusted;
  return withTrust(
    buildServerSettings((key) => settingValue(key, cfg.inspect(key), trusted)),
    trusted,
  );
}

function firstFolder(): string | undefined {
  return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
}

const RESTART_WINDOW_MS = 3 * 60 * 1000;
const MAX_RESTARTS = 3;

export class ServerManager implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private starting: Promise<LanguageClient | undefined> | undefined;
  private interceptor: CommandInterceptor | undefined;
  /** Set when the last start failed (keeps the status bar on "error" when the client stops). */
  private failed = false;
  private readonly didStart = new vscode.EventEmitter<LanguageClient>();
  /** The interpreter of the running (or starting) server. */
  private py: Interpreter | undefined;
  /** Fires each time a (new) client is running. */
  readonly onDidStart = this.didStart.event;

  constructor(
    private readonly output: vscode.OutputChannel,
    private readonly status: StatusBar,
  ) {}

  setCommandInterceptor(i: CommandInterceptor): void {
    this.interceptor = i;
  }

  get running(): LanguageClient | undefined {
    return this.client?.state === State.Running ? this.client : undefined;
  }

  /**
   * Starts the server if it is not running; resolves to the client, or undefined if it failed.
   * `auto` (a template opened, not a user action) does not retry after a failed start: fixing
   * `cutlens.python` or "Restart Server" does.
   */
  ensureStarted(auto = false): Promise<LanguageClient | undefined> {
    if (this.client && this.client.state !== State.Stopped) return this.starting ?? Promise.resolve(this.client);
    if (auto && this.failed && !this.starting) return Promise.resolve(undefined);
    if (!this.starting) {
      this.starting = this.start().finally(() => {
        this.starting = undefined;
      });
    }
    return this.starting;
  }

  async restart(reason: string): Promise<LanguageClient | undefined> {
    this.log(`restarting the server: ${reason}`);
    await this.stop();
    return this.ensureStarted();
  }

  async stop(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    if (!c) return;
    try {
      if (c.needsStop()) await c.stop(2000);
    } catch (e) {
      this.log(`stopping the server: ${String(e)}`);
    }
    try {
      await c.dispose(1000);
    } catch {
      // already gone
    }
  }

  /** Sends a custom request, starting the server first if needed. */
  async request<R>(method: string, params: unknown): Promise<R> {
    const c = await this.ensureStarted();
    if (!c) throw new Error('the cutlens server is not running (see the cutlens output)');
    return c.sendRequest<R>(method, params);
  }

  /** Runs a server command through the same interception as the code lenses. */
  async executeCommand(command: string, args: unknown[]): Promise<unknown> {
    const send = (cmd: string, a: unknown[]) => this.sendCommand(cmd, a);
    return this.interceptor ? this.interceptor(command, args, send) : send(command, args);
  }

  private async sendCommand(command: string, args: unknown[]): Promise<unknown> {
    const c = await this.ensureStarted();
    if (!c) throw new Error('the cutlens server is not running (see the cutlens output)');
    return c.sendRequest(ExecuteCommandRequest.type, { command, arguments: args });
  }

  /** Pushes the current settings (didChangeConfiguration, `settings.cutlens`). */
  sendSettings(): void {
    const c = this.running;
    if (!c) return;
    const cutlens = currentServerSettings();
    this.log(`settings → server: ${JSON.stringify(cutlens)}`);
    void c.sendNotification(DidChangeConfigurationNotification.type, { settings: { cutlens } });
  }

  /**
   * The user trusted the workspace: tell the server (didChangeConfiguration, `trusted: true`),
   * or restart it when the interpreter changes with trust (a workspace `.venv`).
   */
  async trustGranted(): Promise<void> {
    if (!this.client) return; // not started: the next start sends the trust
    const py = await this.interpreter();
    if (this.running && this.py && sameInterpreter(py, this.py)) this.sendSettings();
    else await this.restart('the workspace was trusted');
  }

  private log(msg: string): void {
    this.output.appendLine(`[client ${new Date().toISOString().slice(11, 23)}] ${msg}`);
  }

  private async interpreter(): Promise<Interpreter> {
    const folder = vscode.workspace.workspaceFolders?.[0];
    const trusted = vscode.workspace.isTrusted;
    const setting = settingValue('python', vscode.workspace.getConfiguration('cutlens', folder).inspect('python'), trusted);
    return resolveInterpreter({
      setting: typeof setting === 'string' ? setting : undefined,
      trusted,
      workspaceFolder: folder?.uri.fsPath,
      home: os.homedir(),
      pythonExtension: () => pythonExtensionInterpreter(folder?.uri),
    });
  }

  private async start(): Promise<LanguageClient | undefined> {
    this.failed = false;
    this.status.fromClient('starting');
    const py = await this.interpreter();
    this.py = py;
    this.log(`python: ${describeInterpreter(py)}${vscode.workspace.isTrusted ? '' : ' (untrusted workspace)'}`);
    if (path.isAbsolute(py.command) && !fs.existsSync(py.command)) {
      this.fail(`The Python interpreter ${py.command} does not exist.`);
      return undefined;
    }
    const serverOptions: ServerOptions = {
      command: py.command,
      // No `transport`: with TransportKind.stdio the client would append `--stdio`, which
      // `cutlens lsp` does not take (it speaks stdio by default).
      args: [...py.args, '-m', 'cutlens', 'lsp'],
      options: { cwd: firstFolder(), env: { ...process.env, PYTHONUNBUFFERED: '1' } },
    };
    let everRunning = false;
    const restarts: number[] = [];
    const clientOptions: LanguageClientOptions = {
      documentSelector: documentSelector(
        DOCUMENT_SELECTOR,
        (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath),
      ),
      outputChannel: this.output,
      traceOutputChannel: this.output,
      initializationOptions: () => currentServerSettings(),
      middleware: this.middleware(),
      initializationFailedHandler: (error) => {
        this.fail(`The cutlens server failed to initialize: ${error instanceof Error ? error.message : String(error)}`);
        return false;
      },
      errorHandler: {
        error: (_e, _m, count): ErrorHandlerResult => ({
          action: (count ?? 0) <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown,
        }),
        closed: (): CloseHandlerResult => {
          if (!everRunning) {
            this.fail(`The cutlens server exited during start-up (${describeInterpreter(py)}).`);
            return { action: CloseAction.DoNotRestart, handled: true };
          }
          const now = Date.now();
          while (restarts.length && now - restarts[0] > RESTART_WINDOW_MS) restarts.shift();
          if (restarts.length >= MAX_RESTARTS) {
            this.fail('The cutlens server stopped several times in a row; it will not be restarted.');
            return { action: CloseAction.DoNotRestart, handled: true };
          }
          restarts.push(now);
          this.log('the server connection closed; restarting');
          return { action: CloseAction.Restart, handled: true };
        },
      },
    };
    const client = new LanguageClient('cutlens', 'cutlens', serverOptions, clientOptions);
    this.client = client;
    client.onDidChangeState((e) => {
      if (this.client !== client) return;
      if (e.newState === State.Starting) this.status.fromClient('starting');
      else if (e.newState === State.Running) {
        everRunning = true;
        this.status.fromServer({ state: 'ready', message: `Python: ${describeInterpreter(py)}` });
      } else if (e.newState === State.Stopped && !this.failed) {
        this.status.fromClient('stopped');
      }
    });
    client.onNotification(StatusNotification, (p: StatusParams) => {
      if (this.client === client) this.status.fromServer(p);
    });
    try {
      await client.start();
    } catch (e) {
      if (this.client === client) {
        this.fail(`The cutlens server did not start: ${e instanceof Error ? e.message : String(e)}`);
        this.client = undefined;
        void client.dispose(1000).catch(() => undefined);
      }
      return undefined;
    }
    if (this.client !== client) return undefined;
    if (client.state !== State.Running) {
      this.fail(`The cutlens server did not start (${describeInterpreter(py)}).`);
      this.client = undefined;
      void client.dispose(1000).catch(() => undefined);
      return undefined;
    }
    this.log(`server started (${client.initializeResult?.serverInfo?.name ?? 'cutlens'} ${client.initializeResult?.serverInfo?.version ?? ''})`);
    this.didStart.fire(client);
    return client;
  }

  private middleware(): Middleware {
    return {
      executeCommand: (command, args, next) => {
        const send = async (cmd: string, a: unknown[]) => next(cmd, a);
        return this.interceptor ? this.interceptor(command, args, send) : next(command, args);
      },
      workspace: {
        configuration: async (params, token, next) => {
          const answer = await next(params, token);
          if (!Array.isArray(answer)) return answer;
          return params.items.map((item, i) =>
            item.section === 'cutlens' ? currentServerSettings(item.scopeUri ? vscode.Uri.parse(item.scopeUri) : undefined) : answer[i],
          );
        },
      },
    };
  }

  /** Reports a failed start once per attempt (log, status bar, one notification). */
  private fail(message: string): void {
    this.log(message);
    if (this.failed) return;
    this.failed = true;
    this.status.fromClient('failed', message);
    const hint =
      'Point the `cutlens.python` setting at an environment that has cutlens installed (pip install cutlens).';
    void vscode.window.showErrorMessage(`${message} ${hint}`, 'Open Log', 'Open Settings').then((pick) => {
      if (pick === 'Open Log') this.output.show(true);
      else if (pick === 'Open Settings') void vscode.commands.executeCommand('workbench.action.openSettings', 'cutlens.python');
    });
  }

  dispose(): void {
    void this.stop();
    this.didStart.dispose();
  }
}
