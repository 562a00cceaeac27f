// The Python extension's active interpreter (ms-python.python), when it is installed. Only the
// parts of its public API that cutlens reads are typed here.
import * as vscode from 'vscode';

interface EnvironmentPath {
  id: string;
  path: string;
}
interface ResolvedEnvironment {
  executable?: { uri?: vscode.Uri };
}
interface PythonApi {
  environments?: {
    getActiveEnvironmentPath(resource?: vscode.Uri): EnvironmentPath | undefined;
    resolveEnvironment(env: EnvironmentPath | string): Promise<ResolvedEnvironment | undefined>;
    onDidChangeActiveEnvironmentPath?: vscode.Event<unknown>;
  };
  settings?: {
    getExecutionDetails?(resource?: vscode.Uri): { execCommand?: string[] } | undefined;
  };
}

const PYTHON_EXTENSION_ID = 'ms-python.python';

async function api(): Promise<PythonApi | undefined> {
  const ext = vscode.extensions.getExtension<PythonApi>(PYTHON_EXTENSION_ID);
  if (!ext) return undefined;
  try {
    return ext.isActive ? ext.exports : await ext.activate();
  } catch {
    return undefined;
  }
}

/** The active interpreter as an argv, or undefined when there is no Python extension or no interpreter. */
export async function pythonExtensionInterpreter(resource?: vscode.Uri): Promise<string[] | undefined> {
  const py = await api();
  if (!py) return undefined;
  const envs = py.environments;
  if (envs?.getActiveEnvironmentPath) {
    const active = envs.getActiveEnvironmentPath(resource);
    if (active) {
      const resolved = await envs.resolveEnvironment(active);
      const exe = resolved?.executable?.uri?.fsPath ?? active.path;
      if (exe) return [exe];
    }
  }
  const cmd = py.settings?.getExecutionDetails?.(resource)?.execCommand;
  return cmd && cmd.length ? cmd : undefined;
}

/** Fires when the user picks another interpreter in the Python extension. */
export async function onPythonInterpreterChange(listener: () => void): Promise<vscode.Disposable | undefined> {
  const py = await api();
  return py?.environments?.onDidChangeActiveEnvironmentPath?.(() => listener());
}
