import { Option, type Command } from 'commander';
import { action } from '../run-command.js';
import { out, err, printJson, warn } from '../output.js';
import { UsageError, RuntimeError } from '../../util/errors.js';
import { protectedPaths } from '../../config/checks.js';
import { loadConfig } from '../../config/load.js';
import { readStackState, stateIsLive } from '../../stack/state.js';
import { clearCache, failureHint, type ClearReport } from '../../cache/clear.js';
import { cacheFolder } from '../../cache/cache-path.js';
import { parseDuration } from '../../util/duration.js';
import { assertSafeCachePath } from '../../cache/safety.js';
import { formatAgo, formatBytes, formatCount, formatElapsed } from '../../util/format.js';

interface ClearFlags {
  simulate?: boolean;
  config?: string;
  path?: string;
  dryRun?: boolean;
  force?: boolean;
  olderThan?: string;
  json?: boolean;
  concurrency?: string;
}

const SHOWN = 20;

/** Options shared by `pd clear-cache` and its alias `pd cache clear`. */
export function addClearOptions(cmd: Command): Command {
  return cmd
    .option('--path <dir>', 'the folder to empty; must be the configured kv.sharedStoragePath (default: that path)')
    .option('--dry-run', 'list what would be removed and delete nothing')
    .option('--force', 'clear even while the stack is running (running engines may miss entries)')
    .option('--older-than <duration>', 'only remove entries not used for this long, e.g. 90s, 30m, 2h, 7d')
    .option('--simulate', 'the folder `pd up --simulate` uses (when no stack is running)')
    .option('--json', 'print the report as JSON')
    .addOption(new Option('--concurrency <n>', 'deletion threads (default: CPUs + 1, 2..8)'));
}

function parseConcurrency(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 64) {
    throw new UsageError(`--concurrency ${JSON.stringify(text)} must be a whole number from 1 to 64`, {
      hint: 'Leave it out to use one thread per CPU plus one.',
    });
  }
  return n;
}

function summaryLine(r: ClearReport): string {
  const what = `${formatCount(r.entriesRemoved)} ${r.entriesRemoved === 1 ? 'entry' : 'entries'} (${formatCount(
    r.filesRemoved,
  )} files, ${formatBytes(r.bytesFreed)})`;
  return r.dryRun
    ? `Dry run: would remove ${what} from ${r.path}; nothing was deleted.`
    : `Removed ${what} from ${r.path} in ${formatElapsed(r.durationMs)}.`;
}

function printHuman(r: ClearReport, olderThan: string | undefined): void {
  if (!r.exists) {
    process.stdout.write(`Nothing to clear: ${r.path} does not exist.\n`);
    return;
  }
  if (r.entriesRemoved === 0 && r.entriesFailed === 0 && r.failures.length === 0) {
    process.stdout.write(
      r.kept > 0
        ? `Nothing to clear: all ${formatCount(r.kept)} entries in ${r.path} were used within the last ${olderThan}.\n`
        : `Nothing to clear: ${r.path} is empty.\n`,
    );
    return;
  }
  process.stdout.write(out.bold(summaryLine(r)) + '\n');
  if (r.dryRun && r.entries) {
    const now = Date.now();
    for (const e of r.entries.slice(0, SHOWN)) {
      process.stdout.write(
        `  ${e.name}  ${formatBytes(e.bytes)}, ${formatCount(e.files)} ${e.files === 1 ? 'file' : 'files'}, last used ${formatAgo(e.lastUsedMs, now)}\n`,
      );
    }
    if (r.entries.length > SHOWN) {
      process.stdout.write(out.dim(`  … and ${formatCount(r.entries.length - SHOWN)} more (--json lists them all)\n`));
    }
  }
  if (r.kept > 0) {
    process.stdout.write(`Kept ${formatCount(r.kept)} ${r.kept === 1 ? 'entry' : 'entries'} used within the last ${olderThan}.\n`);
  }
}

function printFailures(r: ClearReport): void {
  if (r.failures.length === 0) return;
  const head = r.dryRun
    ? `could not read ${formatCount(r.failures.length)} path(s) under ${r.path}:`
    : `could not remove ${formatCount(r.entriesFailed)} ${r.entriesFailed === 1 ? 'entry' : 'entries'} ` +
      `(${formatCount(r.failures.length)} path(s) failed); ${formatCount(r.entriesRemoved)} removed, ` +
      `${formatCount(r.entriesFailed)} still in place:`;
  process.stderr.write(`${err.red('error:')} ${head}\n`);
  for (const f of r.failures.slice(0, SHOWN)) process.stderr.write(`  ${f.code} ${f.path}: ${f.message}\n`);
  if (r.failures.length > SHOWN) {
    process.stderr.write(`  … and ${formatCount(r.failures.length - SHOWN)} more (--json lists them all)\n`);
  }
  const hint = failureHint(r.path, r.failures);
  if (hint) process.stderr.write(`${err.cyan('hint:')} ${hint}\n`);
}

/** The whole `pd clear-cache` flow; returns the exit code. */
export async function runClearCache(flags: ClearFlags): Promise<number> {
  const { config, path: configFile } = await loadConfig({ ...(flags.config !== undefined ? { configPath: flags.config } : {}) });
  const configuredPath = await cacheFolder(config, { simulate: flags.simulate });
  const protect = protectedPaths(config, configFile);
  const olderThanMs = flags.olderThan !== undefined ? parseDuration(flags.olderThan, '--older-than') : undefined;
  const concurrency = parseConcurrency(flags.concurrency);
  // Bad paths are refused (exit 2) before anything else is looked at; clearCache checks again.
  assertSafeCachePath(flags.path ?? configuredPath, configuredPath, protect);

  const state = await readStackState(config.stateDir).catch(() => null);
  if (state && stateIsLive(state)) {
    const who = `the stack is running (supervisor pid ${state.supervisorPid}, state in ${config.stateDir})`;
    if (flags.force) {
      warn(`${who}: --force given, clearing anyway. Running engines may miss entries deleted now; requests in flight can fail or recompute their prefill.`);
    } else if (flags.dryRun) {
      warn(`${who}: a real clear would need --force (running engines may miss entries).`);
    } else {
      throw new RuntimeError(`refusing to clear ${flags.path ?? configuredPath}: ${who}`, {
        hint: 'Stop it first with `pd down`, or pass --force to clear anyway (running engines may miss entries).',
      });
    }
  }

  const report = await clearCache({
    path: flags.path ?? configuredPath,
    configuredPath,
    protect,
    dryRun: flags.dryRun ?? false,
    ...(olderThanMs !== undefined ? { olderThanMs } : {}),
    ...(concurrency !== undefined ? { concurrency } : {}),
  });
  if (flags.json) printJson(report);
  else printHuman(report, flags.olderThan);
  if (report.failures.length > 0) {
    if (flags.json) {
      const hint = failureHint(report.path, report.failures);
      process.stderr.write(
        `${err.red('error:')} ${formatCount(report.failures.length)} path(s) could not be ${report.dryRun ? 'read' : 'removed'}` +
          ` (see "failures")\n` + (hint ? `${err.cyan('hint:')} ${hint}\n` : ''),
      );
    } else {
      printFailures(report);
    }
    return 1;
  }
  return 0;
}

export function register(program: Command): void {
  addClearOptions(
    program
      .command('clear-cache')
      .description('delete the KV cache entries under kv.sharedStoragePath (keeps the folder itself)'),
  ).action(
    action(async (_opts: unknown, cmd: Command) => runClearCache(cmd.optsWithGlobals<ClearFlags>())),
  );
}
