import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildServerSettings, RESTRICTED_SETTINGS, settingValue, withTrust } from '../../src/settings';

const from = (o: Record<string, unknown>) => buildServerSettings((k) => o[k]);

describe('buildServerSettings', () => {
  it('sends nothing the user did not set, so the project config decides', () => {
    assert.deepEqual(from({}), {});
    assert.deepEqual(from({ nvcc: '', arch: '  ', jobs: null, 'benchmark.device': null, templateGlobs: [] }), {});
  });

  it('maps every setting to the protocol shape', () => {
    assert.deepEqual(
      from({
        nvcc: '/usr/local/cuda/bin/nvcc',
        arch: 'sm_90a',
        checkOn: 'change',
        jobs: 4,
        'benchmark.device': 1,
        templateGlobs: ['**/templates/*.jinja', ''],
        python: '/ignored/python',
      }),
      {
        nvcc: '/usr/local/cuda/bin/nvcc',
        arch: 'sm_90a',
        checkOn: 'change',
        jobs: 4,
        benchmark: { device: 1 },
        templateGlobs: ['**/templates/*.jinja'],
      },
    );
  });

  it('accepts a device name and drops invalid values', () => {
    assert.deepEqual(from({ 'benchmark.device': 'cuda:1' }), { benchmark: { device: 'cuda:1' } });
    assert.deepEqual(from({ checkOn: 'sometimes', jobs: 0, 'benchmark.device': -1 }), {});
    assert.deepEqual(from({ jobs: 2.5 }), {});
  });
});

describe('workspace trust', () => {
  const scopes = { globalValue: '/usr/local/cuda/bin/nvcc', workspaceValue: './evil-nvcc' };

  it('sends the trust state with the settings (initializationOptions and didChangeConfiguration)', () => {
    assert.deepEqual(withTrust(from({ arch: 'sm_80' }), false), { arch: 'sm_80', trusted: false });
    assert.deepEqual(withTrust({}, true), { trusted: true });
  });

  it('ignores workspace values of the settings that name programs when untrusted', () => {
    assert.deepEqual([...RESTRICTED_SETTINGS], ['python', 'nvcc']);
    assert.equal(settingValue('nvcc', scopes, false), '/usr/local/cuda/bin/nvcc');
    assert.equal(settingValue('python', { workspaceFolderValue: '.venv/bin/python' }, false), undefined);
    assert.equal(settingValue('nvcc', scopes, true), './evil-nvcc');
    assert.equal(settingValue('arch', { workspaceValue: 'sm_80', globalValue: 'sm_90a' }, false), 'sm_80');
    assert.equal(settingValue('arch', undefined, true), undefined);
  });
});
