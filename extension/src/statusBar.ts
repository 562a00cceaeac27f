// The status-bar item: server state (starting / ready / compiling N / benchmarking N / error);
// clicking it opens the server log.
import * as vscode from 'vscode';
import type { StatusParams } from './protocol';
import { type ClientPhase, type StatusView, statusFromClient, statusFromServer } from './statusText';

export const SHOW_LOG_COMMAND = 'cutlens.showLog';

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private last: StatusView | undefined;

  constructor() {
    this.item = vscode.window.createStatusBarItem('cutlens.status', vscode.StatusBarAlignment.Left, 10);
    this.item.name = 'cutlens';
    this.item.command = SHOW_LOG_COMMAND;
  }

  /** The text shown now (for tests and logs). */
  get text(): string {
    return this.last?.text ?? '';
  }

  fromServer(params: StatusParams): void {
    this.apply(statusFromServer(params));
  }

  fromClient(phase: ClientPhase, message?: string): void {
    this.apply(statusFromClient(phase, message));
  }

  private apply(view: StatusView): void {
    this.last = view;
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor =
      view.severity === 'error'
        ? new vscode.ThemeColor('statusBarItem.errorBackground')
        : view.severity === 'warning'
          ? new vscode.ThemeColor('statusBarItem.warningBackground')
          : undefined;
    this.item.show();
  }

  dispose(): void {
    this.item.dispose();
  }
}
