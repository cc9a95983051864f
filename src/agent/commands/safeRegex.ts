// Regular expressions from callers (`minionutil.last_logs`'s `match` and `until`), matched in time
// linear in the text: JavaScript's engine backtracks, so a pattern such as `(a+)+$` over a long
// line takes exponential time and would freeze the agent. This is a Thompson NFA (as grep and RE2
// run them): every state of the pattern advances together, one character at a time, and each
// search has a work budget besides. It takes what grep, Python and JavaScript patterns share:
// literals, `.`, classes (`[a-z]`, `[^…]`, `[[:alpha:]]`, `\d \w \s` and their negations), anchors
// (`^ $ \b \B`, `\A \Z`, grep's `\< \>`), groups (`(…)`, `(?:…)`, named), `|`, and `* + ? {n}
// {n,} {n,m} {,m}` (lazy forms too: for a yes/no match they are the same). Backreferences and
// lookaround, which no linear-time matcher can offer, are refused by name.

export const MAX_PATTERN_LENGTH = 256;
/** `{n,m}` copies the repeated part: bounded, as is the whole program. */
const MAX_REPEAT = 100;
const MAX_STATES = 2000;

/** A pattern that cannot be compiled; `message` says why. */
export class PatternError extends Error {}

/** A search that ran out of its work budget (a costly pattern over a long log). */
export class PatternTooCostly extends Error {}

/** What searches may still spend, in state visits; shared by the searches of one request. */
export interface Budget {
  left: number;
}

type Pred = (c: number) => boolean;
type Anchor = '^' | '$' | 'b' | 'B';
type Node =
  | { t: 'char'; p: Pred }
  | { t: 'assert'; a: Anchor }
  | { t: 'cat'; items: Node[] }
  | { t: 'alt'; items: Node[] }
  | { t: 'rep'; n: Node; min: number; max: number };

const CHAR = 0;
const SPLIT = 1;
const ASSERT = 2;
const MATCH = 3;
type Inst = { op: typeof CHAR; p: Pred; next: number } | { op: typeof SPLIT; x: number; y: number } | { op: typeof ASSERT; a: Anchor; next: number } | { op: typeof MATCH };

const range = (lo: number, hi: number): Pred => (c) => c >= lo && c <= hi;
const any = (...ps: Pred[]): Pred => (c) => ps.some((p) => p(c));
const not = (p: Pred): Pred => (c) => !p(c);
const code = (ch: string) => ch.charCodeAt(0);

const DIGIT = range(48, 57);
const WORD = any(DIGIT, range(65, 90), range(97, 122), (c) => c === 95);
// JavaScript's \s
const SPACE: Pred = (c) => (c >= 9 && c <= 13) || c === 32 || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff;
const NEWLINE: Pred = (c) => c === 10 || c === 13 || c === 0x2028 || c === 0x2029;
const CLASS_ESCAPES: Record<string, Pred> = { d: DIGIT, D: not(DIGIT), w: WORD, W: not(WORD), s: SPACE, S: not(SPACE) };
const CHAR_ESCAPES: Record<string, number> = { n: 10, t: 9, r: 13, f: 12, v: 11, '0': 0 };
const UPPER = range(65, 90);
const LOWER = range(97, 122);
const POSIX: Record<string, Pred> = {
  alpha: any(UPPER, LOWER),
  digit: DIGIT,
  alnum: any(UPPER, LOWER, DIGIT),
  upper: UPPER,
  lower: LOWER,
  space: SPACE,
  blank: (c) => c === 32 || c === 9,
  punct: any(range(33, 47), range(58, 64), range(91, 96), range(123, 126)),
  xdigit: any(DIGIT, range(65, 70), range(97, 102)),
  word: WORD,
};

const lowerOf = (c: number) => {
  if (c < 128) return c >= 65 && c <= 90 ? c + 32 : c;
  const s = String.fromCharCode(c).toLowerCase();
  return s.length === 1 ? s.charCodeAt(0) : c;
};
const upperOf = (c: number) => {
  if (c < 128) return c >= 97 && c <= 122 ? c - 32 : c;
  const s = String.fromCharCode(c).toUpperCase();
  return s.length === 1 ? s.charCodeAt(0) : c;
};
const folded = (p: Pred): Pred => (c) => p(c) || p(lowerOf(c)) || p(upperOf(c));

class Parser {
  private i = 0;

  constructor(
    private readonly s: string,
    private readonly ignoreCase: boolean,
  ) {}

  parse(): Node {
    const node = this.alternation();
    if (this.i < this.s.length) throw new PatternError(`unmatched ) at position ${this.i}`);
    return node;
  }

  private alternation(): Node {
    const items = [this.sequence()];
    while (this.s[this.i] === '|') {
      this.i++;
      items.push(this.sequence());
    }
    return items.length === 1 ? items[0]! : { t: 'alt', items };
  }

  private sequence(): Node {
    const items: Node[] = [];
    while (this.i < this.s.length && this.s[this.i] !== '|' && this.s[this.i] !== ')') items.push(this.repeated());
    return { t: 'cat', items };
  }

  private repeated(): Node {
    const at = this.i;
    const atom = this.atom();
    const q = this.quantifier();
    if (!q) return atom;
    if (atom.t === 'assert') throw new PatternError(`nothing to repeat at position ${at}`);
    if (this.s[this.i] === '?') this.i++;
    if (this.quantifier(true)) throw new PatternError(`multiple repeat at position ${this.i}`);
    return { t: 'rep', n: atom, ...q };
  }

  /** `* + ? {n} {n,} {,m} {n,m}` at the current position (consumed unless `peek`); a `{` that is none of them is a literal. */
  private quantifier(peek = false): { min: number; max: number } | undefined {
    const ch = this.s[this.i];
    const simple = ch === '*' ? { min: 0, max: Infinity } : ch === '+' ? { min: 1, max: Infinity } : ch === '?' ? { min: 0, max: 1 } : undefined;
    if (simple) {
      if (!peek) this.i++;
      return simple;
    }
    const m = /^\{(\d*)(,?)(\d*)\}/.exec(this.s.slice(this.i));
    if (!m || (m[1] === '' && m[3] === '') || (m[1] === '' && m[2] === '')) return undefined;
    const min = m[1] ? Number(m[1]) : 0;
    const max = m[2] ? (m[3] ? Number(m[3]) : Infinity) : min;
    if (min > MAX_REPEAT || (max !== Infinity && max > MAX_REPEAT)) throw new PatternError(`a repeat count above ${MAX_REPEAT} at position ${this.i}`);
    if (max < min) throw new PatternError(`a repeat range out of order at position ${this.i}`);
    if (!peek) this.i += m[0].length;
    return { min, max };
  }

  private atom(): Node {
    const at = this.i;
    const ch = this.s[this.i++]!;
    switch (ch) {
      case '(':
        return this.group(at);
      case '[':
        return { t: 'char', p: this.charClass() };
      case '.':
        return { t: 'char', p: not(NEWLINE) };
      case '^':
        return { t: 'assert', a: '^' };
      case '$':
        return { t: 'assert', a: '$' };
      case '\\':
        return this.escape();
      case '*':
      case '+':
      case '?':
        throw new PatternError(`nothing to repeat at position ${at}`);
      case '{':
        this.i--;
        if (this.quantifier(true)) throw new PatternError(`nothing to repeat at position ${at}`);
        this.i++;
        return this.literal(ch);
      default:
        return this.literal(ch);
    }
  }

  private group(at: number): Node {
    if (this.s[this.i] === '?') {
      const rest = this.s.slice(this.i + 1);
      if (rest.startsWith(':')) this.i += 2;
      else if (/^(=|!|<=|<!)/.test(rest)) throw new PatternError(`lookaround is not supported (position ${at})`);
      else if (rest.startsWith('P=')) throw new PatternError(`backreferences are not supported (position ${at})`);
      else {
        const named = /^P?<[A-Za-z_][A-Za-z0-9_]*>/.exec(rest);
        if (!named) throw new PatternError(`unsupported group syntax at position ${at}`);
        this.i += 1 + named[0].length;
      }
    }
    const inner = this.alternation();
    if (this.s[this.i] !== ')') throw new PatternError(`missing ) for the group at position ${at}`);
    this.i++;
    return inner;
  }

  private escape(): Node {
    const at = this.i - 1;
    const ch = this.s[this.i++];
    if (ch === undefined) throw new PatternError('a trailing backslash');
    const cls = CLASS_ESCAPES[ch];
    if (cls) return { t: 'char', p: this.ignoreCase ? folded(cls) : cls };
    if (ch === 'b' || ch === '<' || ch === '>') return { t: 'assert', a: 'b' };
    if (ch === 'B') return { t: 'assert', a: 'B' };
    if (ch === 'A') return { t: 'assert', a: '^' };
    if (ch === 'Z' || ch === 'z') return { t: 'assert', a: '$' };
    if (/[1-9]/.test(ch)) throw new PatternError(`backreferences are not supported (position ${at})`);
    return this.literalCode(this.escapedCode(ch, at));
  }

  /** The character an escape stands for (`\n`, `\x41`, `\u0041`, `\.`); an unknown letter is refused. */
  private escapedCode(ch: string, at: number): number {
    if (ch in CHAR_ESCAPES) return CHAR_ESCAPES[ch]!;
    const hex = ch === 'x' ? /^[0-9A-Fa-f]{2}/.exec(this.s.slice(this.i)) : ch === 'u' ? /^[0-9A-Fa-f]{4}/.exec(this.s.slice(this.i)) : undefined;
    if (hex) {
      this.i += hex[0].length;
      return parseInt(hex[0], 16);
    }
    if (/[A-Za-z0-9]/.test(ch)) throw new PatternError(`unknown escape \\${ch} at position ${at}`);
    return code(ch);
  }

  /** `[…]` after its `[`: a `]` first is a literal (as grep and Python read it). */
  private charClass(): Pred {
    const at = this.i - 1;
    const negate = this.s[this.i] === '^';
    if (negate) this.i++;
    const parts: Pred[] = [];
    for (let first = true; ; first = false) {
      if (this.i >= this.s.length) throw new PatternError(`missing ] for the class at position ${at}`);
      if (this.s[this.i] === ']' && !first) {
        this.i++;
        break;
      }
      const posix = /^\[:([a-z]+):\]/.exec(this.s.slice(this.i));
      if (posix) {
        const p = POSIX[posix[1]!];
        if (!p) throw new PatternError(`unknown class [:${posix[1]}:] at position ${this.i}`);
        parts.push(p);
        this.i += posix[0].length;
        continue;
      }
      const lo = this.classAtom();
      if (typeof lo === 'number' && this.s[this.i] === '-' && this.i + 1 < this.s.length && this.s[this.i + 1] !== ']') {
        this.i++;
        const hi = this.classAtom();
        if (typeof hi !== 'number' || hi < lo) throw new PatternError(`a bad range in the class at position ${at}`);
        parts.push(range(lo, hi));
      } else {
        parts.push(typeof lo === 'number' ? (c) => c === lo : lo);
      }
    }
    const member = this.ignoreCase ? folded(any(...parts)) : any(...parts);
    return negate ? not(member) : member;
  }

  private classAtom(): number | Pred {
    const ch = this.s[this.i++]!;
    if (ch !== '\\') return code(ch);
    const at = this.i - 1;
    const e = this.s[this.i++];
    if (e === undefined) throw new PatternError('a trailing backslash');
    if (CLASS_ESCAPES[e]) return CLASS_ESCAPES[e];
    if (e === 'b') return 8;
    return this.escapedCode(e, at);
  }

  private literal(ch: string): Node {
    return this.literalCode(code(ch));
  }

  private literalCode(c: number): Node {
    if (!this.ignoreCase) return { t: 'char', p: (x) => x === c };
    const lo = lowerOf(c);
    const up = upperOf(c);
    return { t: 'char', p: (x) => x === c || x === lo || x === up };
  }
}

/** Builds the program backwards: each node is compiled knowing the state it continues to. */
class Compiler {
  readonly prog: Inst[] = [{ op: MATCH }];

  emit(inst: Inst): number {
    if (this.prog.length >= MAX_STATES) throw new PatternError('the pattern is too large (its repeats expand to too many states)');
    this.prog.push(inst);
    return this.prog.length - 1;
  }

  compile(node: Node, next: number): number {
    switch (node.t) {
      case 'char':
        return this.emit({ op: CHAR, p: node.p, next });
      case 'assert':
        return this.emit({ op: ASSERT, a: node.a, next });
      case 'cat':
        for (let k = node.items.length - 1; k >= 0; k--) next = this.compile(node.items[k]!, next);
        return next;
      case 'alt': {
        const starts = node.items.map((item) => this.compile(item, next));
        let s = starts[starts.length - 1]!;
        for (let k = starts.length - 2; k >= 0; k--) s = this.emit({ op: SPLIT, x: starts[k]!, y: s });
        return s;
      }
      case 'rep': {
        let tail = next;
        if (node.max === Infinity) {
          const loop = this.emit({ op: SPLIT, x: -1, y: next });
          (this.prog[loop] as { x: number }).x = this.compile(node.n, loop);
          tail = loop;
        } else {
          for (let k = node.min; k < node.max; k++) tail = this.emit({ op: SPLIT, x: this.compile(node.n, tail), y: next });
        }
        for (let k = 0; k < node.min; k++) tail = this.compile(node.n, tail);
        return tail;
      }
    }
  }
}

export class SafeRegex {
  private readonly prog: Inst[];
  private readonly start: number;
  private readonly mark: Uint32Array;
  private gen = 0;
  private readonly lists: [Int32Array, Int32Array];
  private readonly stack: Int32Array;

  constructor(source: string, opts: { ignoreCase?: boolean } = {}) {
    if (source.length > MAX_PATTERN_LENGTH) throw new PatternError(`longer than ${MAX_PATTERN_LENGTH} characters`);
    const compiler = new Compiler();
    this.start = compiler.compile(new Parser(source, opts.ignoreCase === true).parse(), 0);
    this.prog = compiler.prog;
    const n = this.prog.length;
    this.mark = new Uint32Array(n);
    this.lists = [new Int32Array(n), new Int32Array(n)];
    // a closure visits each state once, and a visit pushes at most two (a split's branches)
    this.stack = new Int32Array(2 * n + 2);
  }

  /** Whether the pattern matches somewhere in `text`; throws PatternTooCostly when the budget runs out. */
  test(text: string, budget: Budget): boolean {
    const n = text.length;
    let [cur, nxt] = this.lists;
    let curLen = this.addClosure(this.start, cur, 0, text, 0, budget);
    if (curLen < 0) return true;
    for (let i = 0; i < n; i++) {
      const c = text.charCodeAt(i);
      this.gen++;
      let nxtLen = 0;
      for (let k = 0; k < curLen; k++) {
        const inst = this.prog[cur[k]!] as Extract<Inst, { op: typeof CHAR }>;
        if (inst.p(c)) {
          nxtLen = this.addClosure(inst.next, nxt, nxtLen, text, i + 1, budget, true);
          if (nxtLen < 0) return true;
        }
      }
      // an unanchored search: a match may also start at the next position
      nxtLen = this.addClosure(this.start, nxt, nxtLen, text, i + 1, budget, true);
      if (nxtLen < 0) return true;
      [cur, nxt] = [nxt, cur];
      curLen = nxtLen;
    }
    return false;
  }

  /**
   * Adds `from` and every state reachable from it without reading a character (at position `pos`)
   * to `list`; returns the new length, or -1 once the match state is reached.
   */
  private addClosure(from: number, list: Int32Array, len: number, text: string, pos: number, budget: Budget, sameGen = false): number {
    if (!sameGen) this.gen++;
    const { prog, mark, stack } = this;
    const gen = this.gen;
    let top = 0;
    stack[top++] = from;
    while (top > 0) {
      const s = stack[--top]!;
      if (mark[s] === gen) continue;
      mark[s] = gen;
      if (--budget.left < 0) throw new PatternTooCostly('the pattern needs too much work over this log: make it simpler or narrower');
      const inst = prog[s]!;
      switch (inst.op) {
        case MATCH:
          return -1;
        case CHAR:
          list[len++] = s;
          break;
        case SPLIT:
          stack[top++] = inst.y;
          stack[top++] = inst.x;
          break;
        case ASSERT:
          if (holds(inst.a, text, pos)) stack[top++] = inst.next;
          break;
      }
    }
    return len;
  }
}

function holds(a: Anchor, text: string, pos: number): boolean {
  switch (a) {
    case '^':
      return pos === 0;
    case '$':
      return pos === text.length;
    case 'b':
    case 'B': {
      const boundary = (pos > 0 && WORD(text.charCodeAt(pos - 1))) !== (pos < text.length && WORD(text.charCodeAt(pos)));
      return a === 'b' ? boundary : !boundary;
    }
  }
}
