// Which Python runs `python -m cutlens lsp`: the `cutlens.python` setting, else the Python
// extension's active interpreter when that extension is installed, else `python3`.
import * as path from 'node:path';

export type InterpreterSource = 'setting' | 'python-extension' | 'default';

export interface Interpreter {
  /** The executable to spawn. */
  command: string;
  /** Arguments that come before `-m cutlens lsp` (e.g. `conda run -n env python` splits). */
  args: string[];
  source: InterpreterSource;
}

export interface InterpreterInputs {
  /** `cutlens.python` as configured ('' when unset). */
  setting: string | undefined;
  /** The first workspace folder's path, for `${workspaceFolder}` and relative paths. */
  workspaceFolder?: string;
  /** The user's home directory, for `~`. */
  home?: string;
  /**
   * Asks the Python extension for its active interpreter, as an argv (executable first);
   * undefined when the extension is absent or has none.
   */
  pythonExtension?: () => Promise<string[] | undefined>;
  /**
   * Workspace trust (default true). Untrusted, no interpreter inside the workspace runs (the
   * Python extension's pick is usually the workspace's own `.venv`): a setting that resolves
   * into the workspace folder is skipped, and the Python extension is not asked.
   */
  trusted?: boolean;
}

export const DEFAULT_PYTHON = 'python3';

/** Expands `${workspaceFolder}`, `${userHome}`, `~` and makes a relative path absolute. */
export function expandPath(value: string, workspaceFolder?: string, home?: string): string {
  let v = value.trim();
  if (workspaceFolder) v = v.split('${workspaceFolder}').join(workspaceFolder);
  if (home) {
    v = v.split('${userHome}').join(home);
    if (v === '~' || v.startsWith('~/')) v = home + v.slice(1);
  }
  // A bare command name ("python3") stays as is for PATH lookup; a relative path with a
  // separator ("./.venv/bin/python") is taken from the workspace folder.
  if (workspaceFolder && !path.isAbsolute(v) && /[\\/]/.test(v)) v = path.join(workspaceFolder, v);
  return v;
}

/** True when `command` is a path inside `folder` (a workspace's own program). */
export function insideFolder(command: string, folder?: string): boolean {
  if (!folder || !path.isAbsolute(command)) return false;
  const rel = path.relative(path.resolve(folder), path.resolve(command));
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

export async function resolveInterpreter(inputs: InterpreterInputs): Promise<Interpreter> {
  const trusted = inputs.trusted ?? true;
  const setting = inputs.setting?.trim();
  if (setting) {
    const command = expandPath(setting, inputs.workspaceFolder, inputs.home);
    if (trusted || !insideFolder(command, inputs.workspaceFolder)) return { command, args: [], source: 'setting' };
  }
  if (inputs.pythonExtension && trusted) {
    let argv: string[] | undefined;
    try {
      argv = await inputs.pythonExtension();
    } catch {
      argv = undefined;
    }
    const clean = (argv ?? []).filter((a) => typeof a === 'string' && a !== '');
    if (clean.length > 0) return { command: clean[0], args: clean.slice(1), source: 'python-extension' };
  }
  return { command: DEFAULT_PYTHON, args: [], source: 'default' };
}

/** True when two interpreters run the same argv. */
export function sameInterpreter(a: Interpreter, b: Interpreter): boolean {
  return a.command === b.command && a.args.length === b.args.length && a.args.every((x, i) => x === b.args[i]);
}

export function describeInterpreter(i: Interpreter): string {
  const from = { setting: 'cutlens.python', 'python-extension': 'the Python extension', default: 'default' }[i.source];
  return `${[i.command, ...i.args].join(' ')} (${from})`;
}
