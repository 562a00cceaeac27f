import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildServerSettings } from '../../src/settings';

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
