// `cutlens.templateGlobs`: more files to treat as templates (language `cuda-jinja`) besides the
// contributed suffixes. Matching documents are switched to the language when they open.
import * as vscode from 'vscode';

export const TEMPLATE_LANGUAGE = 'cuda-jinja';

function patterns(): vscode.GlobPattern[] {
  const globs = vscode.workspace.getConfiguration('cutlens').get<string[]>('templateGlobs') ?? [];
  const out: vscode.GlobPattern[] = [];
  for (const g of globs) {
    if (typeof g !== 'string' || !g.trim()) continue;
    // "**/x" and absolute globs match anywhere; "templates/*.jinja" is relative to each folder.
    if (g.startsWith('**') || g.startsWith('/')) out.push(g);
    else for (const f of vscode.workspace.workspaceFolders ?? []) out.push(new vscode.RelativePattern(f, g));
  }
  return out;
}

export function matchesTemplateGlobs(doc: vscode.TextDocument): boolean {
  if (doc.uri.scheme !== 'file') return false;
  return patterns().some((pattern) => vscode.languages.match({ pattern }, doc) > 0);
}

async function associate(doc: vscode.TextDocument): Promise<void> {
  if (doc.languageId !== TEMPLATE_LANGUAGE && matchesTemplateGlobs(doc)) {
    await vscode.languages.setTextDocumentLanguage(doc, TEMPLATE_LANGUAGE);
  }
}

export function registerTemplateGlobs(): vscode.Disposable {
  const all = () => vscode.workspace.textDocuments.forEach((d) => void associate(d));
  all();
  return vscode.Disposable.from(
    vscode.workspace.onDidOpenTextDocument((d) => void associate(d)),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('cutlens.templateGlobs')) all();
    }),
  );
}

/** Whether the workspace holds any template (default suffixes or the globs), to start the server lazily. */
export async function workspaceHasTemplates(): Promise<boolean> {
  const defaults = '**/*.{cu.jinja,cuh.jinja,cu.j2}';
  const found = await vscode.workspace.findFiles(defaults, '**/node_modules/**', 1);
  if (found.length) return true;
  for (const p of patterns()) {
    if ((await vscode.workspace.findFiles(p, '**/node_modules/**', 1)).length) return true;
  }
  return false;
}
