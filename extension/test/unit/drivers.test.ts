import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { declaresDriver, documentSelector } from '../../src/drivers';

test('a [[driver]] table or an [inductor] table declares a driver', () => {
  assert.equal(declaresDriver('[[driver]]\nentry = "k.cases:cases"\n', 'cutlens.toml'), true);
  assert.equal(declaresDriver('arch = "sm_90a"\n[inductor]\nops = ["x"]\n', 'cutlens.toml'), true);
  assert.equal(declaresDriver('[inductor.samples.square]\n', 'cutlens.toml'), true);
  assert.equal(declaresDriver('arch = "sm_90a"\n# [[driver]] not yet\n', 'cutlens.toml'), false);
  assert.equal(declaresDriver('[tool.cutlens]\n[[tool.cutlens.driver]]\nentry = "a:b"\n', 'pyproject.toml'), true);
  assert.equal(declaresDriver('[[driver]]\n', 'pyproject.toml'), false);
});

test('Python files join the selector only for folders whose config declares a driver', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cutlens-drv-'));
  const withDriver = path.join(dir, 'a');
  const without = path.join(dir, 'b');
  fs.mkdirSync(withDriver);
  fs.mkdirSync(without);
  fs.writeFileSync(path.join(withDriver, 'cutlens.toml'), '[[driver]]\nentry = "k:cases"\n');
  fs.writeFileSync(path.join(without, 'cutlens.toml'), 'arch = "sm_80"\n');
  const base = [{ scheme: 'file', language: 'cuda-jinja' }];
  const sel = documentSelector(base, [withDriver, without]) as { language: string; pattern?: string }[];
  assert.equal(sel.length, 2);
  assert.equal(sel[1].language, 'python');
  assert.equal(sel[1].pattern, `${withDriver}/**/*.py`);
});
