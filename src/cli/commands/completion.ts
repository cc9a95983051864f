// `bosun completion bash|zsh`: a completion script made from the command tree itself, so it
// always knows every command and option. Options that take a file complete file names.
import type { Command } from 'commander';
import { CliError, EXIT } from '../errors.js';

interface Entry {
  name: string;
  description: string;
  words: string[];
}

/** Per top-level command: its subcommands' names and every option of it and them. */
function entries(program: Command): Entry[] {
  return program.commands.map((c) => ({
    name: c.name(),
    description: c.description().replace(/['\n]/g, ' '),
    words: [...c.commands.map((s) => s.name()), ...[c, ...c.commands].flatMap((x) => x.options.map((o) => o.long).filter((l): l is string => !!l)), '--help'],
  }));
}

const FILE_OPTIONS = ['--compose'];

function bash(program: Command): string {
  const cases = entries(program)
    .map((e) => `    ${e.name}) words="${[...new Set(e.words)].join(' ')}" ;;`)
    .join('\n');
  return `# bosun completion for bash: eval "$(bosun completion bash)" (e.g. in ~/.bashrc)
_bosun() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" words=""
  if [[ $COMP_CWORD -eq 1 ]]; then
    COMPREPLY=($(compgen -W "${entries(program)
      .map((e) => e.name)
      .join(' ')} --help --version" -- "$cur"))
    return
  fi
  case "$prev" in ${FILE_OPTIONS.join('|')}) COMPREPLY=($(compgen -f -- "$cur")); return ;; esac
  case "\${COMP_WORDS[1]}" in
${cases}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _bosun bosun
`;
}

function zsh(program: Command): string {
  const list = entries(program)
    .map((e) => `    '${e.name}:${e.description}'`)
    .join('\n');
  const cases = entries(program)
    .map((e) => `    ${e.name}) compadd -- ${[...new Set(e.words)].join(' ')} ;;`)
    .join('\n');
  return `#compdef bosun
# bosun completion for zsh: eval "$(bosun completion zsh)" (e.g. in ~/.zshrc, after compinit)
_bosun() {
  local -a cmds
  cmds=(
${list}
  )
  if (( CURRENT == 2 )); then _describe 'command' cmds; return; fi
  case "$words[CURRENT-1]" in ${FILE_OPTIONS.join('|')}) _files; return ;; esac
  case "$words[2]" in
${cases}
  esac
}
compdef _bosun bosun
`;
}

export function completionCommand(program: Command): void {
  program
    .command('completion <shell>')
    .description('print a shell completion script: bash or zsh')
    .action((shell: string) => {
      if (shell === 'bash') process.stdout.write(bash(program));
      else if (shell === 'zsh') process.stdout.write(zsh(program));
      else throw new CliError(`no completion for "${shell}": bash or zsh`, EXIT.USAGE);
    });
}
