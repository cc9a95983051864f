// `execute_raw/`: a whole command as one string, read as Salt reads its command line.
import { ValidationError } from '../../shared/errors.js';
import { COMMAND_NAME, type ExecuteCommand } from '../../shared/executeCommand.js';
import { shellWords } from '../targets/shellWords.js';

const NAME_RE = new RegExp(COMMAND_NAME);
const KEYWORD_RE = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s;

/**
 * `module.function arg … key=value …` → `{command, arg, kwarg}`: words split as a POSIX shell (and
 * Python's shlex) splits them, `key=value` (key an identifier) a keyword argument, anything else a
 * positional one, and each value read as Salt reads arguments (YAML scalars): integers, decimals,
 * true/false, null/None, JSON-style lists and objects; anything else stays a string (`"'10'"`
 * quotes a number as a string, as in Salt).
 */
export function parseRawCommand(raw: string): ExecuteCommand {
  let words: string[];
  try {
    words = shellWords(raw, '/command');
  } catch (err) {
    throw err instanceof ValidationError ? new ValidationError('/command', err.reason, 'request body') : err;
  }
  const [command, ...rest] = words;
  if (!command) throw new ValidationError('/command', 'empty command', 'request body');
  if (!NAME_RE.test(command)) throw new ValidationError('/command', `${JSON.stringify(command)} is not a module.function name`, 'request body');
  const arg: unknown[] = [];
  const kwarg: Record<string, unknown> = {};
  for (const word of rest) {
    const kw = KEYWORD_RE.exec(word);
    if (kw) kwarg[kw[1]!] = scalar(kw[2]!);
    else arg.push(scalar(word));
  }
  return { command, arg, kwarg };
}

/** A word as YAML reads a plain or quoted scalar (what Salt does with each argument). */
function scalar(text: string): unknown {
  if (/^[+-]?\d+$/.test(text) && Number.isSafeInteger(Number(text))) return Number(text);
  if (/^[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return Number(text);
  if (/^(true|True|TRUE)$/.test(text)) return true;
  if (/^(false|False|FALSE)$/.test(text)) return false;
  if (/^(null|Null|NULL|None|~)$/.test(text)) return null;
  const quoted = /^'(.*)'$/s.exec(text) ?? /^"(.*)"$/s.exec(text);
  if (quoted) return quoted[1];
  if (/^[[{]/.test(text)) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // not JSON: the text itself
    }
  }
  return text;
}
