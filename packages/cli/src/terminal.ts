/**
 * Terminal output: colour only when the stream is a TTY (and `NO_COLOR` is unset), progress bars
 * only on a TTY stderr and never in `--json` mode, and plain aligned tables.
 *
 * @packageDocumentation
 */
import { SingleBar } from 'cli-progress';

/** Whether ANSI colour may be written to `stream` (a TTY, `NO_COLOR` unset, `TERM` not dumb). */
export function colorEnabled(stream: NodeJS.WriteStream = process.stdout): boolean {
  return stream.isTTY === true && !process.env.NO_COLOR && process.env.TERM !== 'dumb';
}

/** ANSI styles that collapse to plain text when colour is off. */
export interface Styles {
  bold(text: string): string;
  dim(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  red(text: string): string;
  cyan(text: string): string;
}

/** Styles for `stream`: ANSI escapes on a colour TTY, identity functions otherwise. */
export function stylesFor(stream: NodeJS.WriteStream = process.stdout): Styles {
  const on = colorEnabled(stream);
  const wrap = (open: number, close: number) => (text: string) =>
    on ? `\u001b[${open}m${text}\u001b[${close}m` : text;
  return {
    bold: wrap(1, 22),
    dim: wrap(2, 22),
    green: wrap(32, 39),
    yellow: wrap(33, 39),
    red: wrap(31, 39),
    cyan: wrap(36, 39),
  };
}

/** A progress indicator; a no-op when progress is not shown. */
export interface Progress {
  start(total: number, label: string): void;
  update(done: number, label?: string): void;
  stop(): void;
}

const silentProgress: Progress = { start() {}, update() {}, stop() {} };

/**
 * A progress bar on stderr when stderr is a TTY and `quiet` (the `--json` flag) is off; otherwise a
 * no-op, so pipes and machine output never see control characters.
 */
export function createProgress(quiet: boolean): Progress {
  if (quiet || process.stderr.isTTY !== true) return silentProgress;
  const bar = new SingleBar({
    stream: process.stderr,
    format: '{label} [{bar}] {value}/{total} {duration_formatted}',
    barsize: 24,
    hideCursor: true,
    clearOnComplete: true,
  });
  let running = false;
  return {
    start(total, label) {
      if (running) bar.stop();
      bar.start(Math.max(1, total), 0, { label });
      running = true;
    },
    update(done, label) {
      if (running) bar.update(done, label === undefined ? {} : { label });
    },
    stop() {
      if (running) bar.stop();
      running = false;
    },
  };
}

/** Decimal byte count with a unit: `1.23 GB`, `456 kB`, `12 B`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  const digits = unit === 0 ? 0 : value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${units[unit]}`;
}

/** A number with at most `digits` significant digits and thousands kept readable: `1,234`, `5.67`. */
export function formatNumber(value: number, digits = 3): string {
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value) >= 10 ** digits) return Math.round(value).toLocaleString('en-US');
  return Number(value.toPrecision(digits)).toLocaleString('en-US', { maximumFractionDigits: 6 });
}

/** Seconds as `12 ms`, `3.4 s`. */
export function formatSeconds(seconds: number): string {
  if (seconds < 1e-3) return `${formatNumber(seconds * 1e6)} us`;
  if (seconds < 1) return `${formatNumber(seconds * 1e3)} ms`;
  return `${formatNumber(seconds)} s`;
}

/** Column alignment of {@link renderTable}. */
export type Alignment = 'left' | 'right';

/**
 * A plain text table: a header row, a rule, then the rows; columns padded to their widest cell.
 * Numbers should be formatted by the caller; `align` defaults to right for every column but the first.
 */
export function renderTable(header: string[], rows: string[][], align?: Alignment[]): string {
  const widths = header.map((cell, column) => Math.max(cell.length, ...rows.map((row) => (row[column] ?? '').length)));
  const alignment = align ?? header.map((_, column) => (column === 0 ? 'left' : 'right'));
  const line = (cells: string[]) =>
    cells
      .map((cell, column) =>
        alignment[column] === 'left' ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!),
      )
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((width) => '-'.repeat(width)).join('  '), ...rows.map(line)].join('\n');
}
