// POSIX shell words, as Salt reads a command line or an environment string.
import { fail } from './releaseField.js';

/**
 * Words of a POSIX shell-quoted string, as Python's shlex.split: whitespace separates words,
 * '…' is literal, "…" is literal but for \" and \\, a backslash outside quotes escapes the next
 * character. Nothing is expanded: `$HOME`, `*`, `;` and `#` stay as written.
 */
export function shellWords(s: string, at: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (/\s/.test(ch)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (ch === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) fail(at, 'unterminated single quote');
      word = (word ?? '') + s.slice(i + 1, end);
      i = end;
    } else if (ch === '"') {
      word ??= '';
      for (i++; ; i++) {
        if (i >= s.length) fail(at, 'unterminated double quote');
        const c = s[i]!;
        if (c === '"') break;
        if (c === '\\' && (s[i + 1] === '"' || s[i + 1] === '\\')) word += s[++i];
        else word += c;
      }
    } else if (ch === '\\') {
      if (i + 1 >= s.length) fail(at, 'a trailing backslash escapes nothing');
      word = (word ?? '') + s[++i];
    } else {
      word = (word ?? '') + ch;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}
