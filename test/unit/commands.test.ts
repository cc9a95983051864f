// Remote commands, the pure parts: a raw command line read as Salt reads it, minionutil.last_logs'
// filters, arguments bound to a command's parameters, the callback signature and the jid.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bind } from '../../src/agent/commands/params.js';
import { queryLog, type LogQuery } from '../../src/agent/commands/lastLogs.js';
import { signature } from '../../src/server/commands/callbackKey.js';
import { jidOf } from '../../src/server/commands/executeJobs.js';
import { parseRawCommand } from '../../src/server/commands/rawCommand.js';
import { ValidationError } from '../../src/shared/errors.js';

describe('execute_raw: a command line', () => {
  test('the first word is the command, key=value a keyword argument, anything else positional', () => {
    assert.deepEqual(parseRawCommand('docker.logs web tail=10'), { command: 'docker.logs', arg: ['web'], kwarg: { tail: 10 } });
    assert.deepEqual(parseRawCommand('  test.ping  '), { command: 'test.ping', arg: [], kwarg: {} });
    assert.deepEqual(parseRawCommand('state.sls docker.release'), { command: 'state.sls', arg: ['docker.release'], kwarg: {} });
  });

  test('values are read as YAML scalars, as Salt reads arguments', () => {
    const { arg, kwarg } = parseRawCommand(
      'mod.fn 7 -3 2.5 True false None null word timestamps=True since=2024-05-01T00:00:00Z tail=all list=\'[1,"a"]\' obj=\'{"k": 2}\' n=\'"10"\' empty=',
    );
    assert.deepEqual(arg, [7, -3, 2.5, true, false, null, null, 'word']);
    assert.deepEqual(kwarg, { timestamps: true, since: '2024-05-01T00:00:00Z', tail: 'all', list: [1, 'a'], obj: { k: 2 }, n: '10', empty: '' });
  });

  test('words are split as a POSIX shell splits them: quotes group, a backslash escapes', () => {
    assert.deepEqual(parseRawCommand(`minionutil.last_logs match='\\[error' until="a b" x\\ y`), {
      command: 'minionutil.last_logs',
      arg: ['x y'],
      kwarg: { match: '\\[error', until: 'a b' },
    });
    // a key must be an identifier: anything else is a positional argument
    assert.deepEqual(parseRawCommand('mod.fn a-b=1 =2').arg, ['a-b=1', '=2']);
  });

  test('what is not a command is refused, naming the field', () => {
    for (const [raw, reason] of [
      ['', /empty command/],
      ['ping', /not a module\.function name/],
      ['docker.logs "web', /unterminated double quote/],
      ["docker.logs 'web", /unterminated single quote/],
    ] as const) {
      assert.throws(
        () => parseRawCommand(raw),
        (err: unknown) => err instanceof ValidationError && err.field === '/command' && reason.test(err.message),
        raw,
      );
    }
  });
});

describe('minionutil.last_logs: limit, match, until', () => {
  const lines = [
    '2024-05-01T10:00:00.000Z [INFO    ] Agent started (device abc)',
    '2024-05-01T10:00:01.000Z [INFO    ] Downloading image app:v1',
    '2024-05-01T10:00:02.000Z [ERROR   ] Apply failed: engine gone',
    '2024-05-01T10:00:03.000Z [WARN    ] Commands not fetched: timeout',
    '2024-05-01T10:00:04.000Z [INFO    ] Killing service web',
    '2024-05-01T10:00:05.000Z [ERROR   ] Pull failed: no space',
    '2024-05-01T10:00:06.000Z [INFO    ] Starting service web',
  ];
  const q = (over: Partial<LogQuery>) => queryLog(lines, { until: '$', match: '.*', count: 0, before: 0, after: 0, limit: 100, ...over });

  test("AutoPi's defaults: every line, oldest first", () => {
    assert.deepEqual(q({}), lines);
  });

  test('limit keeps the newest lines; 0 keeps all', () => {
    assert.deepEqual(q({ limit: 2 }), lines.slice(-2));
    assert.deepEqual(q({ limit: 0 }), lines);
  });

  test('match selects lines, ignoring case (grep -i)', () => {
    assert.deepEqual(q({ match: '\\[error' }), [lines[2], lines[5]]);
    assert.deepEqual(q({ match: 'SERVICE WEB' }), [lines[4], lines[6]]);
    assert.deepEqual(q({ match: '\\[error', limit: 1 }), [lines[5]]);
  });

  test('until selects lines too, minding case (sed), and both must match', () => {
    assert.deepEqual(q({ until: 'failed' }), [lines[2], lines[5]]);
    assert.deepEqual(q({ until: 'Failed' }), []);
    assert.deepEqual(q({ until: 'web', match: 'start' }), [lines[6]]);
  });

  test('count keeps the newest matches; before and after add context lines', () => {
    assert.deepEqual(q({ match: 'error', count: 1 }), [lines[5]]);
    assert.deepEqual(q({ match: 'error', count: 1, before: 1, after: 1 }), lines.slice(4, 7));
    assert.deepEqual(q({ match: 'Apply', after: 1 }), lines.slice(2, 4));
  });

  test('a pattern that is not a regular expression is refused by name', () => {
    assert.throws(
      () => q({ match: '[' }),
      (err: unknown) => err instanceof ValidationError && err.field === '/kwarg/match',
    );
    assert.throws(
      () => q({ until: '(' }),
      (err: unknown) => err instanceof ValidationError && err.field === '/kwarg/until',
    );
  });
});

describe("a command's arguments, bound as Salt binds them", () => {
  const params = [
    { name: 'name', type: 'string', required: true },
    { name: 'tail', type: 'integer' },
    { name: 'timestamps', type: 'boolean' },
  ] as const;
  const call = (arg: unknown[], kwarg: Record<string, unknown> = {}) => ({ command: 'docker.logs', arg, kwarg });
  const refused = (c: ReturnType<typeof call>, field: string, why: RegExp) =>
    assert.throws(
      () => bind(c, params),
      (err: unknown) => err instanceof ValidationError && err.field === field && why.test(err.message),
    );

  test('positional in order, keyword by name, converted to the parameter type', () => {
    assert.deepEqual(bind(call(['web', '10']), params), { name: 'web', tail: 10 });
    assert.deepEqual(bind(call([7], { timestamps: 'True', tail: 5 }), params), { name: '7', tail: 5, timestamps: true });
  });

  test('unknown, doubled, missing, extra or mistyped arguments are refused by name', () => {
    refused(call(['web'], { follow: true }), '/kwarg/follow', /unexpected keyword argument \(it takes name, tail, timestamps\)/);
    refused(call(['web'], { name: 'db' }), '/kwarg/name', /both as a positional and as a keyword/);
    refused(call([]), '/arg/0', /missing the required argument name/);
    refused(call(['web', 1, true, 'x']), '/arg/3', /at most 3 positional arguments/);
    refused(call(['web'], { tail: 'ten' }), '/kwarg/tail', /tail must be an integer/);
    refused(call(['web'], { timestamps: 'yes' }), '/kwarg/timestamps', /must be true or false/);
  });
});

test('the callback signature is HMAC-SHA256 of the body under the key, in hex', () => {
  // RFC 4231-style known answer (HMAC-SHA256 of the pangram with key "key")
  assert.equal(signature('key', 'The quick brown fox jumps over the lazy dog'), 'sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8');
  assert.notEqual(signature('key', '{"a":1}'), signature('key2', '{"a":1}'));
});

test("a jid has Salt's 20 digits: the UTC time, then the command sequence", () => {
  const at = new Date('2024-05-01T12:34:56.789Z');
  assert.equal(jidOf(at, 17), '20240501123456789017');
  assert.equal(jidOf(at, 123_456), '20240501123456789456');
});
