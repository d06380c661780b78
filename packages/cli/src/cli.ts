/**
 * Entry point of the `fairkv` executable.
 */
import { createProgram } from './program.js';

createProgram()
  .parseAsync(process.argv)
  .catch((error: unknown) => {
    process.stderr.write(`fairkv: ${(error as Error).message}\n`);
    process.exitCode = 3;
  });
