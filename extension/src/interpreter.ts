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

export async function resolveInterpreter(inputs: InterpreterInputs): Promise<Interpreter> {
  const setting = inputs.setting?.trim();
  if (setting) {
    return { command: expandPath(setting, inputs.workspaceFolder, inputs.home), args: [], source: 'setting' };
  }
  if (inputs.pythonExtension) {
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

export function describeInterpreter(i: Interpreter): string {
  const from = { setting: 'cutlens.python', 'python-extension': 'the Python extension', default: 'default' }[i.source];
  return `${[i.command, ...i.args].join(' ')} (${from})`;
}
