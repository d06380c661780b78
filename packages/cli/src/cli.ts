/**
 * Entry point of the `fairkv` executable: parses the command line, runs the command, and maps errors
 * to one line on stderr and an exit status (0 ok, 1 usage, 2 input, 3 runtime; see cli-error.ts).
 */
import { CommanderError } from 'commander';
import { EXIT_USAGE, exitCodeOf, oneLineMessage } from './cli-error.js';
import { createProgram } from './program.js';

async function main(): Promise<number> {
  try {
    await createProgram().parseAsync(process.argv);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // commander already printed its message (or the help / version text)
      return error.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    process.stderr.write(`fairkv: ${oneLineMessage(error)}\n`);
    if (process.env.FAIRKV_DEBUG && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
    return exitCodeOf(error);
  }
}

const code = await main();
// Worker threads, the glpk.js worker and open handles must not keep a finished command alive.
process.stdout.write('', () => process.exit(code));
