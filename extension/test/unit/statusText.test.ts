import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { statusFromClient, statusFromServer } from '../../src/statusText';

describe('status-bar text', () => {
  it('shows each server state', () => {
    assert.equal(statusFromServer({ state: 'starting' }).text, '$(loading~spin) cutlens: starting');
    assert.equal(statusFromServer({ state: 'ready', pending: 0 }).text, '$(check) cutlens: ready');
    assert.equal(statusFromServer({ state: 'compiling', pending: 3 }).text, '$(sync~spin) cutlens: compiling 3');
    assert.equal(statusFromServer({ state: 'compiling' }).text, '$(sync~spin) cutlens: compiling');
    assert.equal(statusFromServer({ state: 'benchmarking', pending: 8 }).text, '$(pulse) cutlens: benchmarking 8');
    assert.equal(statusFromServer({ state: 'error', message: 'nvcc not found' }).text, '$(error) cutlens: error');
  });

  it('marks errors and puts the message and the click hint in the tooltip', () => {
    const v = statusFromServer({ state: 'error', pending: 0, message: 'nvcc not found' });
    assert.equal(v.severity, 'error');
    assert.match(v.tooltip, /^nvcc not found\n/);
    assert.match(v.tooltip, /open the cutlens server log/);
    assert.equal(statusFromServer({ state: 'ready' }).severity, 'normal');
  });

  it('ignores a negative or missing pending count', () => {
    assert.equal(statusFromServer({ state: 'compiling', pending: -1 }).text, '$(sync~spin) cutlens: compiling');
  });

  it('survives an unknown state from a newer server', () => {
    const v = statusFromServer({ state: 'indexing' as never });
    assert.equal(v.text, '$(question) cutlens: indexing');
    assert.equal(v.severity, 'warning');
  });

  it('covers the client-side phases', () => {
    assert.equal(statusFromClient('starting').text, '$(loading~spin) cutlens: starting');
    assert.equal(statusFromClient('stopped').text, '$(circle-slash) cutlens: stopped');
    const f = statusFromClient('failed', 'No module named cutlens');
    assert.equal(f.text, '$(error) cutlens: error');
    assert.equal(f.severity, 'error');
    assert.match(f.tooltip, /No module named cutlens/);
  });
});
