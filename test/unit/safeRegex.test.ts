// The linear-time matcher behind minionutil.last_logs: the same answers as JavaScript's RegExp on
// the syntax they share, refusals by name for what it cannot do in linear time, and catastrophic
// patterns that return at once instead of freezing the agent.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { queryLog, type LogQuery } from '../../src/agent/commands/lastLogs.js';
import { MAX_PATTERN_LENGTH, PatternError, PatternTooCostly, SafeRegex } from '../../src/agent/commands/safeRegex.js';
import { ValidationError } from '../../src/shared/errors.js';

const unlimited = () => ({ left: Number.MAX_SAFE_INTEGER });

/** A small deterministic generator (the same texts every run). */
function texts(seed: number, count: number, alphabet: string, maxLen: number): string[] {
  let x = seed;
  const next = () => (x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  return Array.from({ length: count }, () => Array.from({ length: Math.floor(next() * (maxLen + 1)) }, () => alphabet[Math.floor(next() * alphabet.length)]).join(''));
}

describe('safe regex: the answers of RegExp', () => {
  // written in the syntax both read alike
  const patterns = [
    'a', 'ab|cd', '^a', 'a$', '^$', '', '(a+)+$', 'a.c', '[a-c]+d', '[^abc]', '\\d{2,3}x', 'x{2}', 'x{0,1}y', 'a{3,}', '(a{1,3}){2}',
    '(?:ab)*c', '(?<n>ab)+', '\\bab\\b', '\\Bb', '\\[error', 'a|', '(a|b)*abb', 'colou?r', 'a.*b.*c', '\\s+\\S', '[\\]a]', '[a\\-z]',
    '\\x41', 'A', '[A-Z]+', '\\w+@\\w+', '.', 'a*?b', 'a+?', '\\.', '[.]', '\\W\\D', '[\\d\\s]x', '^(a|ab)(c|bcd)$', '(a*)*b', '(x+x+)+y',
  ];
  const corpus = texts(7, 600, 'abcdxyrABC01 .@-]_\t[', 14);

  for (const ignoreCase of [false, true]) {
    test(`${ignoreCase ? 'ignoring' : 'minding'} case, over ${corpus.length} texts each`, () => {
      for (const p of patterns) {
        const js = new RegExp(p, ignoreCase ? 'i' : '');
        const safe = new SafeRegex(p, { ignoreCase });
        for (const t of corpus) assert.equal(safe.test(t, unlimited()), js.test(t), `/${p}/${ignoreCase ? 'i' : ''} on ${JSON.stringify(t)}`);
      }
    });
  }

  test("grep's and Python's forms: [[:class:]], \\A \\Z, \\< \\>, (?P<name>…), {,m}", () => {
    const t = (p: string, s: string, ignoreCase = false) => new SafeRegex(p, { ignoreCase }).test(s, unlimited());
    assert.equal(t('[[:digit:]]+x', 'ab12x'), true);
    assert.equal(t('^[[:alpha:]]+$', 'ab1'), false);
    assert.equal(t('\\Aab\\Z', 'ab'), true);
    assert.equal(t('\\Aab\\Z', 'xab'), false);
    assert.equal(t('\\<web\\>', 'service web started'), true);
    assert.equal(t('\\<web\\>', 'webserver'), false);
    assert.equal(t('(?P<lvl>ERROR)', '[error ]', true), true);
    assert.equal(t('^a{,2}$', 'aa'), true);
    assert.equal(t('^a{,2}$', 'aaa'), false);
  });
});

describe('safe regex: what it refuses, by name', () => {
  for (const [p, why] of [
    ['(', /missing \)/],
    [')', /unmatched \)/],
    ['[a', /missing \]/],
    ['a**', /multiple repeat/],
    ['*a', /nothing to repeat/],
    ['^*', /nothing to repeat/],
    ['(a)\\1', /backreferences/],
    ['(?P<x>a)(?P=x)', /backreferences/],
    ['a(?=b)', /lookaround/],
    ['(?<!a)b', /lookaround/],
    ['(?i)a', /unsupported group/],
    ['\\q', /unknown escape/],
    ['a{101}', /above 100/],
    ['a{3,2}', /out of order/],
    ['[z-a]', /bad range/],
    ['[[:nope:]]', /unknown class/],
    ['((a{1,100}){1,100}){1,100}', /too large/],
    ['a'.repeat(MAX_PATTERN_LENGTH + 1), /longer than/],
  ] as const) {
    test(JSON.stringify(p.length > 40 ? `${p.slice(0, 40)}…` : p), () => {
      assert.throws(() => new SafeRegex(p), (err: unknown) => err instanceof PatternError && why.test(err.message));
    });
  }
});

describe('catastrophic patterns finish', () => {
  // RegExp would backtrack exponentially on each of these (a hang, not a slow answer)
  const evil: [string, boolean][] = [['(a+)+$', false], ['^(a+)+$', false], ['(a|a)*c', false], ['(a|aa)+$', false], ['(a*)*c', false], ['(.*a){12}$', false], ['^(\\w+\\s?)*$', true], ['^(\\w+\\s?)*!$', false]];
  const long = `${'a'.repeat(50_000)}b`;

  test('over a 50,000-character line of a… then b: the answer, at once', () => {
    for (const [p, matches] of evil) {
      const started = Date.now();
      assert.equal(new SafeRegex(p).test(long, unlimited()), matches, p);
      // not a speed assertion: a generous bound that proves it did not hang
      assert.ok(Date.now() - started < 20_000, `${p} took ${Date.now() - started} ms`);
    }
  });

  test('a search that would cost more than its budget stops with PatternTooCostly', () => {
    const re = new SafeRegex('(.*a){50}$');
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

  test('a query over the whole log that needs too much work is refused naming the argument, not run for minutes', () => {
    const lines = Array.from({ length: 2000 }, () => long.slice(0, 4000));
    assert.throws(
      () => q(lines, { until: '((.*a){10}){10}$' }),
      (err: unknown) => err instanceof ValidationError && err.field === '/kwarg/until' && /too much work/.test(err.message),
    );
  });
});
