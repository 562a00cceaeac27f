#!/usr/bin/env node
// `npm run package`: packs cutlens-<version>.vsix with @vscode/vsce from a staging folder
// (build/vsix) that holds only what the extension ships. vsce would otherwise walk the whole
// working tree — .venv and .e2e are tens of thousands of files — matching each against
// .vscodeignore, which takes ~30 s; staged, it takes a few seconds. .vscodeignore still applies
// inside the staging folder.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const stage = join(repo, 'build', 'vsix');
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));
const out = join(repo, `${pkg.name}-${pkg.version}.vsix`);

if (!existsSync(join(repo, 'out/extension.js'))) {
  console.error('out/extension.js is missing: run `npm run build` first');
  process.exit(1);
}

rmSync(stage, { recursive: true, force: true });
mkdirSync(join(stage, 'extension/syntaxes'), { recursive: true });
const copy = (rel) => {
  if (existsSync(join(repo, rel))) cpSync(join(repo, rel), join(stage, rel), { recursive: true });
};
for (const f of ['package.json', 'README.md', 'CHANGELOG.md', 'LICENSE', '.vscodeignore', 'out/extension.js']) copy(f);
for (const f of readdirSync(join(repo, 'extension')).filter((n) => n.endsWith('language-configuration.json'))) copy(`extension/${f}`);
for (const f of readdirSync(join(repo, 'extension/syntaxes')).filter((n) => n.endsWith('.tmLanguage.json'))) copy(`extension/syntaxes/${f}`);
if (pkg.icon) copy(pkg.icon);

const require = createRequire(import.meta.url);
const vsce = join(dirname(require.resolve('@vscode/vsce/package.json')), 'vsce');
const r = spawnSync(process.execPath, [vsce, 'package', '--no-dependencies', '--out', out, ...process.argv.slice(2)], {
  cwd: stage,
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
