import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_PYTHON, describeInterpreter, expandPath, resolveInterpreter } from '../../src/interpreter';

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
