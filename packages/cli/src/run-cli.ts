/**
 * Runs the `fairkv` command line and returns its exit status instead of exiting, so the entry point
 * and in-process tests share one path: commander errors exit 1 (commander has printed them), other
 * errors print one `fairkv: ...` line on stderr and exit with {@link exitCodeOf}.
 *
 * @packageDocumentation
 */
import { CommanderError } from 'commander';
import { EXIT_USAGE, exitCodeOf, oneLineMessage } from './cli-error.js';
import { createProgram } from './program.js';

/**
 * Parses `argv` (including the `node` and script entries, as `process.argv`) and runs the command.
 * @returns the exit status: 0 ok, 1 usage, 2 input, 3 runtime
 */
export async function runCli(argv: readonly string[]): Promise<number> {
  try {
    await createProgram().parseAsync([...argv]);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // commander already printed its message (or the help or version text)
      return error.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    process.stderr.write(`fairkv: ${oneLineMessage(error)}\n`);
    if (process.env.FAIRKV_DEBUG && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
    return exitCodeOf(error);
  }
}
