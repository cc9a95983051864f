// The README's code blocks, split by the convention test/integration/readme.test.ts runs them by
// (README.md, "The README runs"): ```sh and ```bash blocks run, in order, in one shell; a shell block
// right after `<!-- not run: <reason> -->` is shown only; any other block (```console, ```text, none)
// is shown only.

export interface ReadmeBlock {
  /** 1-based line of the opening fence */
  line: number;
  lang: string;
  text: string;
  /** why a shell block is not run (its `<!-- not run: … -->` comment); undefined: it runs (when shell) */
  notRun?: string;
}

export const SHELL = new Set(['sh', 'bash']);

/** Every fenced block; throws on an unclosed fence or a `not run` comment without a reason or not followed by a shell block. */
export function readmeBlocks(markdown: string): ReadmeBlock[] {
  const lines = markdown.split('\n');
  const blocks: ReadmeBlock[] = [];
  let pendingSkip: { line: number; reason: string } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const note = lines[i]!.match(/^<!--\s*not run\b:?\s*(.*?)\s*-->\s*$/);
    if (note) {
      if (!note[1]) throw new Error(`README.md:${i + 1}: "not run" needs a reason: <!-- not run: <why the test cannot run it> -->`);
      pendingSkip = { line: i + 1, reason: note[1] };
      continue;
    }
    const open = lines[i]!.match(/^```(\S*)/);
    if (!open) {
      if (pendingSkip && lines[i]!.trim()) throw new Error(`README.md:${pendingSkip.line}: a "not run" comment must be followed by a shell block`);
      continue;
    }
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
    if (i >= lines.length) throw new Error(`README.md:${start + 1}: the block is not closed`);
    const lang = open[1]!;
    if (pendingSkip && !SHELL.has(lang))
      throw new Error(`README.md:${pendingSkip.line}: a "not run" comment must be followed by a shell block (\`\`\`sh or \`\`\`bash)`);
    blocks.push({ line: start + 1, lang, text: body.join('\n'), ...(pendingSkip ? { notRun: pendingSkip.reason } : {}) });
    pendingSkip = undefined;
  }
  return blocks;
}

/** The blocks the README test runs. */
export const runnable = (blocks: ReadmeBlock[]) => blocks.filter((b) => SHELL.has(b.lang) && b.notRun === undefined);
