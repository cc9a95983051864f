// The dashboard's Server-Sent Events reader (web/src/sse.ts, read with fetch so that the token goes in
// a header): events split across chunks, CRLF, comments, multi-line data, ids kept for a resume.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SseParser } from '../../web/src/sse.js';

test('events come out whole however the stream is cut, with their type, id and data', () => {
  const text = ': keep-alive\n\nevent: snapshot\ndata: [1,\ndata: 2]\n\nid: 7\ndata: {"a":1}\n\r\nevent: removed\r\ndata: {"id":"x"}\r\n\r\n';
  for (const size of [1, 2, 3, 5, 8, text.length]) {
    const p = new SseParser();
    const out = [];
    for (let i = 0; i < text.length; i += size) out.push(...p.push(text.slice(i, i + size)));
    assert.deepEqual(
      out,
      [
        { event: 'snapshot', data: '[1,\n2]' },
        { event: 'message', data: '{"a":1}', id: '7' },
        { event: 'removed', data: '{"id":"x"}', id: '7' },
      ],
      `chunks of ${size}`,
    );
  }
});

test('an event is not given before its blank line; a field without a value is empty', () => {
  const p = new SseParser();
  assert.deepEqual(p.push('data: half'), []);
  assert.deepEqual(p.push('\ndata\n'), []);
  assert.deepEqual(p.push('\n'), [{ event: 'message', data: 'half\n' }]);
});
