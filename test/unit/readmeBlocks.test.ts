import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { readmeBlocks, runnable } from '../readmeBlocks.js';

test('sh and bash blocks run; console, text and untagged blocks and shell blocks marked "not run: <reason>" are shown only', () => {
  const md = [
    '# x',
    '```sh',
    'echo one',
    '```',
    '<!-- not run: starts a server that runs until stopped -->',
    '```sh',
    'npm start',
    '```',
    '```console',
    '$ echo shown',
    '```',
    '```',
    'plain',
    '```',
    '```bash',
    'echo two',
    'echo three',
    '```',
  ].join('\n');
  const blocks = readmeBlocks(md);
  assert.deepEqual(
    blocks.map((b) => [b.line, b.lang, b.notRun]),
    [
      [2, 'sh', undefined],
      [6, 'sh', 'starts a server that runs until stopped'],
      [9, 'console', undefined],
      [12, '', undefined],
      [15, 'bash', undefined],
    ],
  );
  assert.deepEqual(
    runnable(blocks).map((b) => b.text),
    ['echo one', 'echo two\necho three'],
  );
});

test('a "not run" comment needs a reason and a shell block right after it; a fence must close', () => {
  assert.throws(() => readmeBlocks('<!-- not run -->\n```sh\nx\n```'), /README.md:1: "not run" needs a reason/);
  assert.throws(() => readmeBlocks('<!-- not run: why -->\nsome text\n```sh\nx\n```'), /README.md:1: a "not run" comment must be followed by a shell block/);
  assert.throws(() => readmeBlocks('<!-- not run: why -->\n```console\nx\n```'), /must be followed by a shell block/);
  assert.throws(() => readmeBlocks('```sh\nx'), /README.md:1: the block is not closed/);
});

test("the repository's README follows the convention, and has blocks that run", () => {
  const blocks = readmeBlocks(fs.readFileSync('README.md', 'utf8'));
  assert.ok(runnable(blocks).length >= 3);
});
