#!/usr/bin/env node
// Grammar tests: runs vscode-tmgrammar-test on cases/*.test.cu.jinja against the grammars that
// package.json contributes, once per available source.cuda-cpp (see grammars.mjs).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cudaCppGrammars, repoRoot } from './grammars.mjs';

const require = createRequire(import.meta.url);
const cli = join(dirname(require.resolve('vscode-tmgrammar-test/package.json')), 'dist/unit.js');
const cases = relative(repoRoot, join(dirname(fileURLToPath(import.meta.url)), 'cases', '*.test.cu.jinja'));

let failed = false;
for (const { label, path } of cudaCppGrammars()) {
  console.log(`grammar tests with ${label}`);
  const r = spawnSync(process.execPath, [cli, '--config', 'package.json', '-g', path, cases], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  // The real grammar embeds SQL, GLSL, assembly... which the tests do not load.
  const noise = /^grammar not found for "/;
  const out = `${r.stdout}${r.stderr}`.split('\n').filter((l) => !noise.test(l)).join('\n');
  process.stdout.write(out.endsWith('\n') ? out : `${out}\n`);
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
