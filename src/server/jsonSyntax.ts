// Where a JSON text stops being JSON, for a 400 that says where (JSON.parse's messages give a
// position only sometimes, and never a line). A scanner of RFC 8259's grammar that stops at the first
// byte that cannot continue the text; called only once JSON.parse has refused the text.

export interface JsonSyntaxProblem {
  /** UTF-16 offset of the offending character (the text's length when it ends too soon) */
  position: number;
  line: number;
  column: number;
  reason: string;
}

class Stop extends Error {}

/** The first syntax error of `text`, or undefined when it is valid JSON (or nested too deep to scan). */
export function jsonSyntaxProblem(text: string): JsonSyntaxProblem | undefined {
  let i = 0;
  let reason = '';
  const fail = (why: string): never => {
    reason = why;
    throw new Stop();
  };
  const describe = () => (i >= text.length ? 'the text ends too soon' : `unexpected ${JSON.stringify(text[i])}`);
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const literal = (word: string) => {
    for (const ch of word) if (text[i++] !== ch) i--, fail(describe());
  };
  const string = () => {
    i++; // the opening quote
    for (;;) {
      if (i >= text.length) fail('a string is not closed');
      const c = text.charCodeAt(i);
      if (c === 0x22) return void i++;
      if (c < 0x20) fail(c === 0x0a ? 'a line break inside a string (write \\n, or end the string before the break)' : 'a control character inside a string');
      if (c === 0x5c) {
        i++;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) i++, fail('a \\u escape needs 4 hex digits');
          i += 5;
        } else if (text[i] !== undefined && '"\\/bfnrt'.includes(text[i]!)) i++;
        else fail('an unknown escape in a string');
      } else i++;
    }
  };
  const digits = () => {
    const start = i;
    while (i < text.length && text[i]! >= '0' && text[i]! <= '9') i++;
    if (i === start) fail(`a number needs a digit here: ${describe()}`);
  };
  const number = () => {
    if (text[i] === '-') i++;
    if (text[i] === '0') i++;
    else digits();
    if (text[i] === '.') i++, digits();
    if (text[i] === 'e' || text[i] === 'E') {
      i++;
      if (text[i] === '+' || text[i] === '-') i++;
      digits();
    }
  };
  const list = (close: string, item: () => void) => {
    i++;
    ws();
    if (text[i] === close) return void i++;
    for (;;) {
      item();
      ws();
      if (text[i] === ',') {
        i++;
        ws();
        if (text[i] === close) fail(`a trailing comma before ${JSON.stringify(close)}`);
        continue;
      }
      if (text[i] === close) return void i++;
      fail(`expected "," or ${JSON.stringify(close)}: ${describe()}`);
    }
  };
  const member = () => {
    if (text[i] !== '"') fail(`expected a property name in double quotes: ${describe()}`);
    string();
    ws();
    if (text[i] !== ':') fail(`expected ":" after a property name: ${describe()}`);
    i++;
    value();
  };
  const value = () => {
    ws();
    const c = text[i];
    if (c === '{') list('}', member);
    else if (c === '[') list(']', value);
    else if (c === '"') string();
    else if (c === 't') literal('true');
    else if (c === 'f') literal('false');
    else if (c === 'n') literal('null');
    else if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) number();
    else fail(`expected a value: ${describe()}`);
  };
  try {
    value();
    ws();
    if (i < text.length) fail(`unexpected text after the JSON value: ${JSON.stringify(text[i])}`);
    return undefined;
  } catch (err) {
    if (err instanceof RangeError) return undefined; // nested too deep to scan: JSON.parse's own message stands
    if (!(err instanceof Stop)) throw err;
    const before = text.slice(0, i);
    const line = before.split('\n').length;
    return { position: i, line, column: i - before.lastIndexOf('\n'), reason };
  }
}
