// Checks the manifest and the language configuration hang together (no VS Code needed).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ServerCommand } from '../../src/protocol';

const root = join(__dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const langConfig = JSON.parse(readFileSync(join(root, 'extension/language-configuration.json'), 'utf8'));

describe('package.json', () => {
  it('contributes the cuda-jinja language for the template suffixes', () => {
    const lang = pkg.contributes.languages.find((l: { id: string }) => l.id === 'cuda-jinja');
    assert.deepEqual(lang.extensions, ['.cu.jinja', '.cuh.jinja', '.cu.j2']);
    assert.ok(existsSync(join(root, lang.configuration)));
  });

  it('points every grammar at a file with the declared scope name', () => {
    for (const g of pkg.contributes.grammars) {
      const grammar = JSON.parse(readFileSync(join(root, g.path), 'utf8'));
      assert.equal(grammar.scopeName, g.scopeName, g.path);
    }
  });

  it('declares the settings of the issue', () => {
    const props = Object.keys(pkg.contributes.configuration.properties);
    for (const k of ['python', 'nvcc', 'arch', 'checkOn', 'jobs', 'benchmark.device', 'trace.server', 'templateGlobs']) {
      assert.ok(props.includes(`cutlens.${k}`), `cutlens.${k}`);
    }
    assert.deepEqual(pkg.contributes.configuration.properties['cutlens.checkOn'].enum, ['save', 'change', 'off']);
  });

  it('runs limited in untrusted workspaces, restricting the settings that name programs', () => {
    const u = pkg.capabilities.untrustedWorkspaces;
    assert.equal(u.supported, 'limited');
    assert.ok(u.description.includes('untrusted'));
    assert.deepEqual(u.restrictedConfigurations, ['cutlens.python', 'cutlens.nvcc']);
    const props = Object.keys(pkg.contributes.configuration.properties);
    for (const k of u.restrictedConfigurations) assert.ok(props.includes(k), k);
  });

  it("never contributes a server command id (vscode-languageclient registers those)", () => {
    const ids: string[] = pkg.contributes.commands.map((c: { command: string }) => c.command);
    for (const serverId of Object.values(ServerCommand)) assert.ok(!ids.includes(serverId), serverId);
    assert.equal(new Set(ids).size, ids.length, 'no duplicate command ids');
    for (const c of pkg.contributes.commands) assert.ok(c.title && c.category === 'cutlens', c.command);
  });

  it('can be packaged without prompts and runs in code-server 4.99 (VS Code 1.99)', () => {
    assert.ok(pkg.publisher && pkg.license && pkg.repository);
    assert.equal(pkg.main, './out/extension.js');
    const m = /^\^1\.(\d+)\.\d+$/.exec(pkg.engines.vscode);
    assert.ok(m && Number(m[1]) <= 99, pkg.engines.vscode);
    const types = /^(\d+)\.(\d+)/.exec(pkg.devDependencies['@types/vscode']);
    assert.ok(types && Number(types[2]) <= Number(m?.[1]), '@types/vscode must not be newer than engines.vscode');
  });
});

describe('language configuration', () => {
  const start = new RegExp(langConfig.folding.markers.start);
  const end = new RegExp(langConfig.folding.markers.end);

  it('folds {% block/macro/for/if %} … {% end… %}', () => {
    for (const l of ['{% block mainloop %}', '  {%- macro epilogue(x) %}', '{% for i in range(4) %}', '{% if big -%}']) {
      assert.ok(start.test(l), l);
    }
    for (const l of ['{% endblock %}', '  {%- endmacro %}', '{% endfor %}', '{%- endif %}']) assert.ok(end.test(l), l);
  });

  it('does not open a fold on a one-line {% if %}…{% endif %}', () => {
    assert.ok(!start.test('{% if x %}a{% endif %}'));
    assert.ok(!start.test('int x; // {% if %}'));
  });

  it('has the three comment styles: //, /* */ and {# #} (inside Jinja tags)', () => {
    assert.equal(langConfig.comments.lineComment, '//');
    assert.deepEqual(langConfig.comments.blockComment, ['/*', '*/']);
    const jinja = pkg.contributes.languages.find((l: { id: string }) => l.id === 'cutlens-jinja');
    const jinjaConfig = JSON.parse(readFileSync(join(root, jinja.configuration), 'utf8'));
    assert.deepEqual(jinjaConfig.comments.blockComment, ['{#', '#}']);
    assert.equal(pkg.contributes.grammars[0].embeddedLanguages['meta.embedded.block.jinja'], 'cutlens-jinja');
  });

  it('auto-closes {% and {# inside the { } pair', () => {
    const pairs = langConfig.autoClosingPairs.map((p: { open: string; close: string }) => [p.open, p.close]);
    assert.deepEqual(pairs.find((p: string[]) => p[0] === '{%'), ['{%', ' %']);
    assert.deepEqual(pairs.find((p: string[]) => p[0] === '{#'), ['{#', ' #']);
  });
});
