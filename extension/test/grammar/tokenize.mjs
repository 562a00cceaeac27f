#!/usr/bin/env node
// Development helper: prints the TextMate tokens of a file with the extension's grammars, e.g.
//   node extension/test/grammar/tokenize.mjs extension/e2e/workspace/saxpy.cu.jinja [cuda-cpp grammar]
// It loads grammars the same way the grammar tests do (vscode-tmgrammar-test's registry).
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { cudaCppGrammars, repoRoot } from './grammars.mjs';

const require = createRequire(import.meta.url);
const { loadConfiguration, createRegistry } = require('vscode-tmgrammar-test/dist/common/index.js');

const [file, cudaCpp] = process.argv.slice(2);
if (!file) {
  console.error('usage: tokenize.mjs FILE [CUDA_CPP_GRAMMAR]');
  process.exit(2);
}
const extra = cudaCpp ? [resolve(cudaCpp)] : [cudaCppGrammars()[0].path];
const { grammars } = loadConfiguration(resolve(repoRoot, 'package.json'), undefined, extra);
const registry = createRegistry(grammars);
const grammar = await registry.loadGrammar('source.cuda-jinja');
let state = null;
readFileSync(file, 'utf8').split(/\r?\n/).forEach((line, i) => {
  const r = grammar.tokenizeLine(line, state);
  state = r.ruleStack;
  console.log(`${i + 1}: ${line}`);
  for (const t of r.tokens) {
    const text = line.slice(t.startIndex, t.endIndex);
    if (text.trim()) console.log(`    ${JSON.stringify(text)}  ${t.scopes.slice(1).join(' ')}`);
  }
});
