// The patterns of minionutil.last_logs on RE2: the same answers as JavaScript's RegExp on the
// syntax they share, grep's and Python's forms, refusals by name for what RE2 cannot do in linear
// time, catastrophic patterns that return at once, and a work budget for large patterns.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { queryLog, type LogQuery } from '../../src/agent/commands/lastLogs.js';
import { LogPattern, MAX_PATTERN_LENGTH, PatternError, PatternTooCostly } from '../../src/agent/commands/logPattern.js';
import { ValidationError } from '../../src/shared/errors.js';

const unlimited = () => ({ left: Number.MAX_SAFE_INTEGER });

/** A small deterministic generator (the same texts every run). */
function texts(seed: number, count: number, alphabet: string, maxLen: number): string[] {
  let x = seed;
  const next = () => (x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  return Array.from({ length: count }, () =>
    Array.from({ length: Math.floor(next() * (maxLen + 1)) }, () => alphabet[Math.floor(next() * alphabet.length)]).join(''),
  );
}

describe('log patterns: the answers of RegExp', () => {
  // written in the syntax both read alike
  const patterns = [
    'a',
    'ab|cd',
    '^a',
    'a$',
    '^$',
    '',
    '(a+)+$',
    'a.c',
    '[a-c]+d',
    '[^abc]',
    '\\d{2,3}x',
    'x{2}',
    'x{0,1}y',
    'a{3,}',
    '(a{1,3}){2}',
    '(?:ab)*c',
    '(?<n>ab)+',
    '\\bab\\b',
    '\\Bb',
    '\\[error',
    'a|',
    '(a|b)*abb',
    'colou?r',
    'a.*b.*c',
    '\\s+\\S',
    '[\\]a]',
    '[a\\-z]',
    '\\x41',
    'A',
    '[A-Z]+',
    '\\w+@\\w+',
    '.',
    'a*?b',
    'a+?',
    '\\.',
    '[.]',
    '\\W\\D',
    '[\\d\\s]x',
    '^(a|ab)(c|bcd)$',
    '(a*)*b',
    '(x+x+)+y',
  ];
  const corpus = texts(7, 600, 'abcdxyrABC01 .@-]_\t[', 14);

  for (const ignoreCase of [false, true]) {
    test(`${ignoreCase ? 'ignoring' : 'minding'} case, over ${corpus.length} texts each`, () => {
      for (const p of patterns) {
        const js = new RegExp(p, ignoreCase ? 'i' : '');
        const safe = new LogPattern(p, { ignoreCase });
        for (const t of corpus) assert.equal(safe.test(t, unlimited()), js.test(t), `/${p}/${ignoreCase ? 'i' : ''} on ${JSON.stringify(t)}`);
      }
    });
  }

  test("grep's and Python's forms: [[:class:]], \\A \\Z, (?P<name>…), {,m}", () => {
    const t = (p: string, s: string, ignoreCase = false) => new LogPattern(p, { ignoreCase }).test(s, unlimited());
    assert.equal(t('[[:digit:]]+x', 'ab12x'), true);
    assert.equal(t('^[[:alpha:]]+$', 'ab1'), false);
    assert.equal(t('\\Aab\\Z', 'ab'), true);
    assert.equal(t('\\Aab\\Z', 'xab'), false);
    assert.equal(t('\\Aab\\Z', 'abx'), false);
    assert.equal(t('(?P<lvl>ERROR)', '[error ]', true), true);
    assert.equal(t('^a{,2}$', 'aa'), true);
    assert.equal(t('^a{,2}$', 'aaa'), false);
  });

  test('translated only outside classes, escapes and \\Q…\\E: there they stay literal', () => {
    const t = (p: string, s: string) => new LogPattern(p).test(s, unlimited());
    assert.equal(t('^a\\{,2}$', 'a{,2}'), true);
    assert.equal(t('^[{,2}]+$', '{,2}'), true);
    assert.equal(t('^[]{,2}]+$', ']{,2}'), true);
    assert.equal(t('^[[:digit:]{,]+$', '1{,'), true);
    assert.equal(t('^\\Qa{,2}\\E$', 'a{,2}'), true);
    assert.equal(t('^\\Q\\<\\E$', '\\<'), true);
    assert.equal(t('^[\\<]$', '<'), true);
    assert.equal(t('^\\\\Z$', '\\Z'), true);
  });
});

describe('log patterns: what it refuses, by name', () => {
  for (const [p, why] of [
    ['(', /missing closing \)/],
    [')', /unexpected \)/],
    ['[a', /missing closing \]/],
    ['a**', /invalid nested repetition/],
    ['*a', /missing argument to repetition/],
    ['(a)\\1', /backreferences are not supported/],
    ['(?P<x>a)(?P=x)', /backreferences are not supported/],
    ['a(?=b)', /lookaround is not supported/],
    ['a(?!b)', /lookaround is not supported/],
    ['(?<=a)b', /lookaround is not supported/],
    ['(?<!a)b', /lookaround is not supported/],
    ['\\<web\\>', /\\< and \\> are not supported: use \\b/],
    ['web\\>', /\\< and \\> are not supported/],
    ['\\q', /invalid escape sequence/],
    ['a{1001}', /invalid repeat count/],
    ['a{3,2}', /invalid repeat count/],
    ['[z-a]', /invalid character class range/],
    ['[[:nope:]]', /invalid character class range/],
    ['((a{1,100}){1,100}){1,100}', /invalid repeat count/],
    ['a'.repeat(MAX_PATTERN_LENGTH + 1), /longer than/],
  ] as const) {
    test(JSON.stringify(p.length > 40 ? `${p.slice(0, 40)}…` : p), () => {
      assert.throws(
        () => new LogPattern(p),
        (err: unknown) => err instanceof PatternError && why.test(err.message),
      );
    });
  }
});

describe('catastrophic patterns finish', () => {
  // RegExp would backtrack exponentially on each of these (a hang, not a slow answer)
  const evil: [string, boolean][] = [
    ['(a+)+$', false],
    ['^(a+)+$', false],
    ['(a|a)*c', false],
    ['(a|aa)+$', false],
    ['(a*)*c', false],
    ['(.*a){12}$', false],
    ['^(\\w+\\s?)*$', true],
    ['^(\\w+\\s?)*!$', false],
  ];
  const long = `${'a'.repeat(50_000)}b`;

  test('over a 50,000-character line of a… then b: the answer, at once', () => {
    for (const [p, matches] of evil) {
      const started = Date.now();
      assert.equal(new LogPattern(p).test(long, unlimited()), matches, p);
      // not a speed assertion: a generous bound that proves it did not hang
      assert.ok(Date.now() - started < 20_000, `${p} took ${Date.now() - started} ms`);
    }
  });

  test('a search that would cost more than its budget stops with PatternTooCostly', () => {
    const re = new LogPattern('(.*a){50}$');
    assert.throws(() => re.test(long, { left: 100_000 }), PatternTooCostly);
  });

  const q = (lines: string[], over: Partial<LogQuery>) => queryLog(lines, { until: '$', match: '.*', count: 0, before: 0, after: 0, limit: 100, ...over });

  test('minionutil.last_logs with (a+)+$ over long lines answers (the lines that match, none here)', () => {
    const lines = Array.from({ length: 5 }, (_, i) => `2024-05-01T10:00:${String(i).padStart(2, '0')}.000Z [INFO    ] ${long}`);
    const started = Date.now();
    assert.deepEqual(q(lines, { match: '(a+)+$' }), []);
    assert.deepEqual(q(lines, { match: '(a+)+b$' }), lines);
    assert.ok(Date.now() - started < 60_000, 'answered (generous bound: it did not hang)');
  });

  test('typical patterns over a full log (2,000 messages) are within the budget', () => {
    const lines = Array.from({ length: 2000 }, (_, i) =>
      i % 10
        ? `2024-05-01T10:00:00.000Z [INFO    ] Downloading image registry.example.com/app/web:v${i} for service web`
        : `2024-05-01T10:00:00.000Z [ERROR   ] Failed to pull registry.example.com/app/web:v${i}: no space left on device`,
    );
    for (const match of [
      '\\[error',
      'error|warn',
      'failed to (pull|start) .*: no space',
      '\\d{4}-\\d{2}-\\d{2}T10:\\d{2}.*\\[(ERROR|WARN) *\\] (Failed|Apply)',
    ]) {
      assert.equal(q(lines, { match, limit: 0 }).length, 200, match);
    }
  });

  test('a query over the whole log that needs too much work is refused naming the argument, not run for minutes', () => {
    // 36 repeats of 999: a program of ~36,000 instructions, with ~4,000 threads alive over each line
    const lines = Array.from({ length: 2000 }, () => long.slice(0, 4000));
    assert.throws(
      () => q(lines, { until: `${'[ab]{999}'.repeat(27)}c?$` }),
      (err: unknown) => err instanceof ValidationError && err.field === '/kwarg/until' && /too much work/.test(err.message),
    );
  });
});
