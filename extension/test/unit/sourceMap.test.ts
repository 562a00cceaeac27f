import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LineOrigin } from '../../src/protocol';
import { normalizeUri, RenderedLineMap, sameUri } from '../../src/sourceMap';

const T = 'file:///ws/saxpy.cu.jinja';
const H = 'file:///ws/common.cuh.jinja';
const at = (line: number, uri = T): LineOrigin => ({ uri, line });

// Template:                          Rendered:
//  0-6  front matter ({#- cutlens})   0  #include <cuda_runtime.h>   ← 7
//  7    #include <cuda_runtime.h>     1  (header text, generated)    ← null
//  8    {{ template.header() }}       2  // from the included header ← H:3
//  9    {% for i in range(2) %}       3  int x0;                      ← 10
// 10    int x{{ i }};                 4  int x1;                      ← 10
// 11    {% endfor %}                  5  __global__ void k() {        ← 12
// 12    __global__ void k() {         6  }                            ← 13
// 13    }
const lines = [at(7), null, at(3, H), at(10), at(10), at(12), at(13)];

describe('RenderedLineMap', () => {
  const map = new RenderedLineMap(lines, T);

  it('maps rendered lines back by indexing', () => {
    assert.deepEqual(map.toTemplate(0), at(7));
    assert.equal(map.toTemplate(1), null);
    assert.deepEqual(map.toTemplate(2), at(3, H));
    assert.equal(map.toTemplate(99), null);
    assert.equal(map.renderedLineCount, 7);
  });

  it('inverts the map: a loop body line has several rendered lines', () => {
    assert.deepEqual(map.toRendered(10), [3, 4]);
    assert.deepEqual(map.toRendered(12), [5]);
    assert.deepEqual(map.renderedLinesOf(7), [0]);
  });

  it('ignores lines that came from another file', () => {
    assert.deepEqual(map.renderedLinesOf(3), []);
  });

  it('maps a line without output to the nearest line with some, the following one on a tie', () => {
    assert.deepEqual(map.toRendered(0), [0], 'front matter → first output line');
    assert.deepEqual(map.toRendered(9), [3, 4], '{% for %}: line 10 is 1 away, line 7 is 2 away');
    assert.deepEqual(map.toRendered(11), [5], '{% endfor %}: 10 and 12 are both 1 away → the following one');
    assert.deepEqual(map.toRendered(8), [0], '{{ template.header() }} rendered from H only: 7 is 1 away, 10 is 2 away');
    assert.deepEqual(map.toRendered(40), [6], 'past the end → the last line with output');
  });

  it('returns nothing when the template produced no output', () => {
    assert.deepEqual(new RenderedLineMap([null, at(1, H)], T).toRendered(4), []);
    assert.deepEqual(new RenderedLineMap([], T).toRendered(0), []);
  });

  it('matches URIs spelled with or without %-escapes', () => {
    const m = new RenderedLineMap([{ uri: 'file:///ws/my%20kernels/a.cu.jinja', line: 2 }], 'file:///ws/my kernels/a.cu.jinja');
    assert.deepEqual(m.toRendered(2), [0]);
  });
});

describe('sameUri', () => {
  it('ignores escapes and drive-letter case', () => {
    assert.ok(sameUri('file:///c%3A/x/a.cu.jinja', 'file:///C:/x/a.cu.jinja'));
    assert.ok(!sameUri('file:///ws/a.cu.jinja', 'file:///ws/b.cu.jinja'));
    assert.equal(normalizeUri('file:///D:/k'), 'file:///d:/k');
  });
});
