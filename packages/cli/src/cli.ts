/**
 * Entry point of the `fairkv` executable: runs the command line and exits with its status
 * (0 ok, 1 usage, 2 input, 3 runtime; see cli-error.ts).
 */
import { runCli } from './run-cli.js';

void runCli(process.argv).then((code) => {
  // Device worker threads, the glpk.js worker and open handles must not keep a finished command alive;
  // exiting after an empty write lets piped stdout drain first.
  process.stdout.write('', () => process.exit(code));
});
