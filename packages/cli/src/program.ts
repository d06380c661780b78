import { Command } from 'commander';
import { version } from './version.js';

/**
 * Builds the `fairkv` command tree. Exported so tests and docs generation can inspect the command
 * definitions without spawning a process.
 */
export function createProgram(): Command {
  const program = new Command('fairkv')
    .description('FairKV: balanced multi-GPU LLM inference under per-head KV-cache compression')
    .version(version, '-V, --version', 'print the fairkv version')
    .showHelpAfterError('(add --help for usage)')
    .configureOutput({ outputError: (text, write) => write(text) });
  return program;
}
