// Python files are cutlens's only in workspaces whose project config declares a render
// driver (`[[driver]]`, or the built-in Inductor one, `[inductor]`): elsewhere the extension
// stays out of Python files, beside the Python language server.
import * as fs from 'node:fs';
import * as path from 'node:path';

const CONFIG_FILES = ['cutlens.toml', 'pyproject.toml'];

/** True when a `cutlens.toml` (or a `pyproject.toml`'s `[tool.cutlens]`) declares a driver. */
export function declaresDriver(tomlText: string, fileName: string): boolean {
  const prefix = fileName === 'pyproject.toml' ? String.raw`tool\.cutlens\.` : '';
  const table = new RegExp(String.raw`^\s*\[\[\s*${prefix}driver\s*\]\]`, 'm');
  const inductor = new RegExp(String.raw`^\s*\[\s*${prefix}inductor(\.[^\]]*)?\s*\]`, 'm');
  return table.test(tomlText) || inductor.test(tomlText);
}

/** True when a workspace folder's project config declares a render driver. */
export function folderHasDrivers(folder: string): boolean {
  for (const name of CONFIG_FILES) {
    try {
      const text = fs.readFileSync(path.join(folder, name), 'utf8');
      if (declaresDriver(text, name)) return true;
      if (name === 'cutlens.toml') return false; // cutlens.toml wins over pyproject.toml
    } catch {
      // no such file: try the next one
    }
  }
  return false;
}

/** A document filter, as vscode-languageclient takes it. */
export interface DocumentFilter {
  scheme: string;
  language: string;
  pattern?: string;
}

/** The document selector: cutlens templates, plus Python files of folders with drivers. */
export function documentSelector(base: readonly DocumentFilter[], folders: readonly string[]): DocumentFilter[] {
  const python = folders
    .filter(folderHasDrivers)
    .map((f) => ({ scheme: 'file', language: 'python', pattern: `${f.replace(/\\/g, '/')}/**/*.py` }));
  return [...base, ...python];
}
