/** Terminal output helpers: colours that respect NO_COLOR / FORCE_COLOR and non-TTY streams. */
import chalk, { Chalk, type ChalkInstance } from 'chalk';

function colourLevel(stream: NodeJS.WriteStream): 0 | 1 | 2 | 3 {
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '') return 0;
  if (process.env.FORCE_COLOR !== undefined) return process.env.FORCE_COLOR === '0' ? 0 : 1;
  if (!stream.isTTY) return 0;
  return chalk.level === 0 ? 1 : chalk.level;
}

/** Colours for stdout. */
export const out: ChalkInstance = new Chalk({ level: colourLevel(process.stdout) });
/** Colours for stderr. */
export const err: ChalkInstance = new Chalk({ level: colourLevel(process.stderr) });

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export function warn(message: string): void {
  process.stderr.write(`${err.yellow('warning:')} ${message}\n`);
}

export function info(message: string): void {
  process.stderr.write(`${message}\n`);
}
