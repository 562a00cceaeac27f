// Where the grammar tests find `source.cuda-cpp`, which the cuda-jinja grammar includes.
//
// VS Code ships it (extensions/cpp/syntaxes/cuda-cpp.tmLanguage.json, ~480 kB); it is not on
// npm, so the tests always run against a small stand-in written for this test only
// (stub-cuda-cpp.tmLanguage.json: strings, comments, preprocessor lines, blocks — the C++
// contexts Jinja must be highlighted inside). When VS Code's real grammar is on disk (the e2e
// setup installs code-server, or CUTLENS_CUDA_CPP_GRAMMAR names the file) the same cases run
// against it too.
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '../../..');

export function cudaCppGrammars() {
  const found = [{ label: 'stub source.cuda-cpp', path: resolve(here, 'stub-cuda-cpp.tmLanguage.json') }];
  const real = [
    process.env.CUTLENS_CUDA_CPP_GRAMMAR,
    resolve(
      process.env.CUTLENS_E2E_DIR ?? resolve(repoRoot, '.e2e'),
      'node_modules/code-server/lib/vscode/extensions/cpp/syntaxes/cuda-cpp.tmLanguage.json',
    ),
  ].find((p) => p && existsSync(p));
  if (real) found.push({ label: `VS Code's source.cuda-cpp (${real})`, path: real });
  return found;
}
