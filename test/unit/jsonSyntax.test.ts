import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jsonSyntaxProblem } from '../../src/server/jsonSyntax.js';

const parses = (s: string) => {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
};

test('jsonSyntaxProblem finds a problem exactly when JSON.parse refuses the text', () => {
  const samples = [
    '{}',
    ' [ ] ',
    '{"a": [1, -2.5e+3, 0, true, false, null, "x\\n\\u00e9\\"\\\\"]}',
    '"\\ud83d\\ude00"',
    '-0.0E-0',
    '{"a":1,}',
    '[1 2]',
    '01',
    '1.',
    '.5',
    '+1',
    '-',
    '"\\x41"',
    '"\\u12G4"',
    '"a\tb"',
    "{'a': 1}",
    '{"a" 1}',
    'tru',
    'nulls',
    '[',
    '',
    '  ',
    '{"a":1}}',
    '[1e]',
    '{"a":{"b":[{"c":"\\/"}]}}',
  ];
  for (const s of samples) assert.equal(jsonSyntaxProblem(s) === undefined, parses(s), JSON.stringify(s));
});

test('the problem says where, as an editor counts: line and column from 1', () => {
  assert.deepEqual(jsonSyntaxProblem('{\n  "a": 1,\n  "b": }'), {
    position: 19,
    line: 3,
    column: 8,
    reason: 'expected a value: unexpected "}"',
  });
  assert.deepEqual(jsonSyntaxProblem('["x\ny"]'), {
    position: 3,
    line: 1,
    column: 4,
    reason: 'a line break inside a string (write \\n, or end the string before the break)',
  });
  assert.equal(jsonSyntaxProblem('['.repeat(1_000_000)), undefined, 'nested too deep to scan: no answer, no crash');
});
