// Regular expressions from callers (`minionutil.last_logs`'s `match` and `until`). JavaScript's
// RegExp backtracks: `(a+)+$` over a long line takes exponential time and would freeze the agent.
// They run on re2js, a port of RE2: time linear in the text (and in the pattern's program). RE2's
// syntax is what grep, Python and JavaScript patterns share, with `[[:digit:]]` and `(?P<name>…)`;
// grep's and Python's `{,m}` and `\Z` are translated, and what RE2 cannot do in linear time
// (backreferences, lookaround) or would read differently (grep's `\<`, `\>`) is refused by name.
import { RE2JS, RE2JSException } from 're2js';

export const MAX_PATTERN_LENGTH = 256;

/** A pattern that cannot be compiled; `message` says why. */
export class PatternError extends Error {}

/** A search that would exceed its work budget (a large pattern over a long log). */
export class PatternTooCostly extends Error {}

/** What searches may still spend, in program instructions × characters; shared by one request's searches. */
export interface Budget {
  left: number;
}

export class LogPattern {
  private readonly re: RE2JS;
  private readonly size: number;

  constructor(source: string, opts: { ignoreCase?: boolean } = {}) {
    if (source.length > MAX_PATTERN_LENGTH) throw new PatternError(`longer than ${MAX_PATTERN_LENGTH} characters`);
    try {
      this.re = RE2JS.compile(toRe2(source), opts.ignoreCase ? RE2JS.CASE_INSENSITIVE : 0);
    } catch (err) {
      // RE2's own words: "invalid escape sequence: `\q`", "missing closing ): `(`"
      throw err instanceof RE2JSException ? new PatternError(err.message.replace(/^error parsing regexp: /, '')) : err;
    }
    this.size = this.re.programSize();
  }

  /**
   * Whether the pattern matches somewhere in `text`. Linear is not yet cheap: each of RE2's engines
   * takes up to program size × text length, and the size reaches ~36,000 within the length cap
   * (`a.{999}b.{999}…`), while the event table bounds the number of messages (2,000), not their
   * length; such a pattern over long messages would run for minutes. So that much is charged
   * before the search, and PatternTooCostly thrown once the budget is spent.
   */
  test(text: string, budget: Budget): boolean {
    budget.left -= this.size * (text.length + 1);
    if (budget.left < 0) throw new PatternTooCostly('the pattern needs too much work over this log: make it simpler or narrower (fewer, smaller repeats)');
    return this.re.test(text);
  }
}

/** Groups RE2 has no linear-time form of, refused by what they are. */
const LOOKAROUND = 'lookaround is not supported';
const BACKREFERENCES = 'backreferences are not supported';
const REFUSED_GROUPS: [string, string][] = [
  ['(?=', LOOKAROUND],
  ['(?!', LOOKAROUND],
  ['(?<=', LOOKAROUND],
  ['(?<!', LOOKAROUND],
  ['(?P=', BACKREFERENCES],
];

/**
 * The pattern in RE2's syntax. Scans it as RE2's parser does (escapes, `\Q…\E`, character
 * classes, where `]` first is a literal and `[:name:]` a named class) so that only the syntax
 * outside classes is translated: `\Z` (end of text in Python) becomes `\z`, `{,m}` becomes `{0,m}`
 * (RE2 would read it literally); `\<` and `\>` are refused (RE2 reads them as `<` and `>`, and `\b`
 * is not the same: it also matches where a word ends).
 */
function toRe2(s: string): string {
  let out = '';
  let i = 0;
  const refuse = (why: string) => new PatternError(`${why} (position ${i})`);
  while (i < s.length) {
    const ch = s[i]!;
    if (ch === '\\') {
      const e = s[i + 1];
      if (e === 'Q') {
        const end = s.indexOf('\\E', i + 2);
        const stop = end < 0 ? s.length : end + 2;
        out += s.slice(i, stop);
        i = stop;
        continue;
      }
      if (e === '<' || e === '>') throw refuse(`grep's word anchors \\< and \\> are not supported: use \\b`);
      if (e !== undefined && e >= '1' && e <= '9') throw refuse(BACKREFERENCES);
      out += e === 'Z' ? '\\z' : s.slice(i, i + 2);
      i += 2;
    } else if (ch === '[') {
      const end = classEnd(s, i);
      out += s.slice(i, end);
      i = end;
    } else if (ch === '(') {
      const refused = REFUSED_GROUPS.find(([open]) => s.startsWith(open, i));
      if (refused) throw refuse(refused[1]);
      out += ch;
      i++;
    } else {
      const upTo = ch === '{' ? /^\{,(\d+)\}/.exec(s.slice(i)) : null;
      out += upTo ? `{0,${upTo[1]}}` : ch;
      i += upTo ? upTo[0].length : 1;
    }
  }
  return out;
}

/** Where the class that opens at `start` ends (past its `]`; the text's end if it never does: RE2 refuses that). */
function classEnd(s: string, start: number): number {
  let i = start + 1;
  if (s[i] === '^') i++;
  if (s[i] === ']') i++;
  while (i < s.length && s[i] !== ']') {
    if (s[i] === '\\') i += 2;
    else if (s.startsWith('[:', i) && s.indexOf(':]', i + 2) >= 0) i = s.indexOf(':]', i + 2) + 2;
    else i++;
  }
  return Math.min(i + 1, s.length);
}
