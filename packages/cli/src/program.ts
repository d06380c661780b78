import { Command } from 'commander';
import { registerBenchCommand } from './commands/bench-command.js';
import { registerDemoCommand } from './commands/demo-command.js';
import { registerGenerateCommand } from './commands/generate-command.js';
import { registerInspectCommand } from './commands/inspect-command.js';
import { registerPlanCommand } from './commands/plan-command.js';
import { registerProfileCommand } from './commands/profile-command.js';
import { version } from './version.js';

/** Formats commander's own errors (unknown flag, missing value...) as one `fairkv: ...` line. */
function formatCommanderError(text: string): string {
  const message = text
    .replace(/^error:\s*/, '')
    .trim()
    .split(/\r?\n/)
    .join('; ');
  return `fairkv: ${message} (add --help for usage)\n`;
}

/**
 * Builds the `fairkv` command tree. Exported so tests and docs generation can inspect the command
 * definitions without spawning a process. Commander errors throw (exitOverride) instead of exiting,
 * so the entry point decides the exit status.
 */
export function createProgram(): Command {
  const program = new Command('fairkv')
    .description(
      'FairKV: balanced multi-device LLM inference under per-head KV-cache compression (arXiv 2502.15804). ' +
        'Plan head placements, measure head loads, generate text and benchmark on sharded CPU devices.',
    )
    .version(version, '-V, --version', 'print the fairkv version')
    .helpOption('-h, --help', 'show help')
    .configureOutput({ outputError: (text, write) => write(formatCommanderError(text)) })
    .exitOverride()
    .showSuggestionAfterError(true);
  registerDemoCommand(program);
  registerPlanCommand(program);
  registerProfileCommand(program);
  registerGenerateCommand(program);
  registerBenchCommand(program);
  registerInspectCommand(program);
  program.addHelpText(
    'after',
    '\nExit status: 0 ok, 1 usage error, 2 input error (bad file or value), 3 runtime failure. ' +
      'Environment: FAIRKV_MODEL (default model file or folder), FAIRKV_CACHE_DIR (where the default model is generated), NO_COLOR.\n',
  );
  return program;
}
