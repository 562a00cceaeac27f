import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DEFAULT_PYTHON,
  describeInterpreter,
  expandPath,
  insideFolder,
  resolveInterpreter,
  sameInterpreter,
} from '../../src/interpreter';

describe('resolveInterpreter', () => {
  it('prefers the cutlens.python setting over the Python extension', async () => {
    let asked = false;
    const i = await resolveInterpreter({
      setting: '/opt/env/bin/python',
      pythonExtension: async () => {
        asked = true;
        return ['/usr/bin/python3.12'];
      },
    });
    assert.deepEqual(i, { command: '/opt/env/bin/python', args: [], source: 'setting' });
    assert.equal(asked, false, 'the Python extension is not consulted when the setting is set');
  });

  it('falls back to the Python extension when the setting is empty or blank', async () => {
    for (const setting of [undefined, '', '   ']) {
      const i = await resolveInterpreter({ setting, pythonExtension: async () => ['/venv/bin/python'] });
      assert.deepEqual(i, { command: '/venv/bin/python', args: [], source: 'python-extension' });
    }
  });

  it('keeps extra argv words from the Python extension (e.g. conda run)', async () => {
    const i = await resolveInterpreter({ setting: '', pythonExtension: async () => ['conda', 'run', '-n', 'k', 'python'] });
    assert.equal(i.command, 'conda');
    assert.deepEqual(i.args, ['run', '-n', 'k', 'python']);
  });

  it('falls back to python3 without a setting or an interpreter from the Python extension', async () => {
    assert.deepEqual(await resolveInterpreter({ setting: '' }), { command: DEFAULT_PYTHON, args: [], source: 'default' });
    assert.equal((await resolveInterpreter({ setting: '', pythonExtension: async () => undefined })).command, 'python3');
    assert.equal((await resolveInterpreter({ setting: '', pythonExtension: async () => [] })).command, 'python3');
    const throwing = async (): Promise<string[]> => {
      throw new Error('extension failed');
    };
    assert.equal((await resolveInterpreter({ setting: '', pythonExtension: throwing })).source, 'default');
  });

  it('expands ${workspaceFolder}, ~ and relative paths in the setting', async () => {
    const base = { workspaceFolder: '/ws', home: '/home/u' };
    assert.equal((await resolveInterpreter({ ...base, setting: '${workspaceFolder}/.venv/bin/python' })).command, '/ws/.venv/bin/python');
    assert.equal((await resolveInterpreter({ ...base, setting: '~/envs/c/bin/python' })).command, '/home/u/envs/c/bin/python');
    assert.equal((await resolveInterpreter({ ...base, setting: '.venv/bin/python' })).command, '/ws/.venv/bin/python');
    assert.equal((await resolveInterpreter({ ...base, setting: 'python3.11' })).command, 'python3.11', 'a bare name stays for PATH lookup');
  });
});

describe('expandPath / describeInterpreter', () => {
  it('leaves absolute paths alone', () => {
    assert.equal(expandPath('/usr/bin/python3', '/ws', '/home/u'), '/usr/bin/python3');
    assert.equal(expandPath('${userHome}/x/python', undefined, '/h'), '/h/x/python');
  });
  it('says where the interpreter came from', () => {
    assert.equal(describeInterpreter({ command: '/p', args: [], source: 'setting' }), '/p (cutlens.python)');
    assert.equal(describeInterpreter({ command: 'python3', args: [], source: 'default' }), 'python3 (default)');
  });
});

describe('an untrusted workspace', () => {
  const base = { workspaceFolder: '/ws', home: '/home/u', trusted: false };

  it('never runs an interpreter inside the workspace nor asks the Python extension', async () => {
    let asked = false;
    const ext = async () => {
      asked = true;
      return ['/ws/.venv/bin/python'];
    };
    for (const setting of ['${workspaceFolder}/.venv/bin/python', '.venv/bin/python', '/ws/bin/python']) {
      const i = await resolveInterpreter({ ...base, setting, pythonExtension: ext });
      assert.deepEqual(i, { command: DEFAULT_PYTHON, args: [], source: 'default' }, setting);
    }
    assert.equal(asked, false);
  });

  it('keeps an interpreter outside the workspace', async () => {
    const i = await resolveInterpreter({ ...base, setting: '~/envs/c/bin/python' });
    assert.deepEqual(i, { command: '/home/u/envs/c/bin/python', args: [], source: 'setting' });
    assert.equal((await resolveInterpreter({ ...base, setting: '/ws2/bin/python' })).command, '/ws2/bin/python');
  });

  it('tells a workspace path from a neighbour and compares interpreters', () => {
    assert.ok(insideFolder('/ws/.venv/bin/python', '/ws'));
    assert.ok(insideFolder('/ws/../ws/x', '/ws'));
    assert.ok(!insideFolder('/ws2/python', '/ws'));
    assert.ok(!insideFolder('python3', '/ws'));
    const a = { command: 'conda', args: ['run', '-n', 'k'], source: 'setting' as const };
    assert.ok(sameInterpreter(a, { ...a, source: 'python-extension' }));
    assert.ok(!sameInterpreter(a, { ...a, args: ['run', '-n', 'j'] }));
  });
});
