// Fails when a source line is longer than the formatter's width (biome.json `lineWidth`): the
// formatter leaves long strings, comments and regexes as they are, so they are caught here.
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

const width = JSON.parse(readFileSync('biome.json', 'utf8')).formatter.lineWidth;
const files = execFileSync('git', ['ls-files', '--', 'src', 'test', 'scripts', 'bench', 'web'], { encoding: 'utf8' })
  .split('\n')
  .filter((f) => /\.(ts|tsx|mjs|js)$/.test(f));
let long = 0;
for (const file of files) {
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if ([...line].length > width) {
        long++;
        console.error(`${file}:${i + 1}: ${[...line].length} characters (at most ${width}): split the string or move the comment`);
      }
    });
}
process.exit(long ? 1 : 0);
