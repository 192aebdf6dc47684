import { cacheFolder } from '../../cache/cache-path.js';
import type { Command } from 'commander';
import { isAbsolute } from 'node:path';
import { action } from '../run-command.js';
import { out, printJson, warn } from '../output.js';
import { UsageError } from '../../util/errors.js';
import { loadConfig } from '../../config/load.js';
import { cacheStats, type CacheStats } from '../../cache/stats.js';
import { formatAgo, formatBytes, formatCount } from '../../util/format.js';
import type { KvCacheBudget } from '../../config/schema.js';
import { addClearOptions, runClearCache } from './clear-cache.js';

interface StatsFlags {
  simulate?: boolean;
  config?: string;
  path?: string;
  json?: boolean;
  top?: string;
}

function parseTop(text: string | undefined): number {
  if (text === undefined) return 10;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) {
    throw new UsageError(`--top ${JSON.stringify(text)} must be a whole number (0 or more)`, {
      hint: 'For example --top 20 lists the 20 largest entries.',
    });
  }
  return n;
}

function when(ms: number, now: number): string {
  return `${formatAgo(ms, now)} (${new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z')})`;
}

function printHuman(s: CacheStats, budget: KvCacheBudget): void {
  const now = Date.now();
  const w = (label: string, value: string): void => void process.stdout.write(`  ${label.padEnd(8)} ${value}\n`);
  process.stdout.write(out.bold(`KV cache at ${s.path}`) + '\n');
  if (!s.exists) {
    process.stdout.write('  (folder does not exist yet: the engines create it on their first request)\n');
    return;
  }
  w('entries', formatCount(s.entries));
  w('files', formatCount(s.files));
  let size = `${formatBytes(s.totalBytes)} (${formatCount(s.totalBytes)} bytes)`;
  if (budget.maxBytes !== undefined) {
    size += `, ${((100 * s.totalBytes) / budget.maxBytes).toFixed(0)}% of maxBytes ${formatBytes(budget.maxBytes)}`;
  }
  w('size', size);
  if (s.incomplete.entries > 0) {
    const left = s.incomplete.entries - s.incomplete.writing;
    const parts = [
      ...(left > 0 ? [`${formatCount(left)} left by a failed write (the janitor removes them; \`pd clear-cache\` too)`] : []),
      ...(s.incomplete.writing > 0 ? [`${formatCount(s.incomplete.writing)} being written`] : []),
    ];
    w('partial', `${formatCount(s.incomplete.entries)} (${formatBytes(s.incomplete.bytes)}): ${parts.join(', ')}`);
    for (const e of s.incomplete.list) process.stdout.write(out.dim(`           ${e.name}: ${e.reason}, written ${formatAgo(e.mtimeMs, now)}\n`));
  }
  if (s.oldest) w('oldest', `${s.oldest.name} written ${when(s.oldest.mtimeMs, now)}`);
  if (s.newest) w('newest', `${s.newest.name} written ${when(s.newest.mtimeMs, now)}`);
  if (s.largest.length > 0) {
    process.stdout.write(out.bold(`Largest ${s.largest.length === 1 ? 'entry' : `${s.largest.length} entries`}:`) + '\n');
    const sizes = s.largest.map((e) => formatBytes(e.bytes));
    const files = s.largest.map((e) => formatCount(e.files));
    const sw = Math.max(4, ...sizes.map((x) => x.length));
    const fw = Math.max(5, ...files.map((x) => x.length));
    process.stdout.write(out.dim(`  ${'SIZE'.padStart(sw)}  ${'FILES'.padStart(fw)}  WRITTEN          NAME`) + '\n');
    s.largest.forEach((e, i) => {
      process.stdout.write(
        `  ${sizes[i]!.padStart(sw)}  ${files[i]!.padStart(fw)}  ${formatAgo(e.mtimeMs, now).padEnd(15)}  ${e.name}\n`,
      );
    });
  }
}

async function runStats(flags: StatsFlags): Promise<number> {
  const top = parseTop(flags.top);
  const { config } = await loadConfig({ ...(flags.config !== undefined ? { configPath: flags.config } : {}) });
  const path = flags.path ?? (await cacheFolder(config, { simulate: flags.simulate }));
  if (!isAbsolute(path)) {
    throw new UsageError(`cache path ${JSON.stringify(path)} is not an absolute path`, {
      hint: 'Use an absolute path, e.g. --path /mnt/pd_kv (kv.sharedStoragePath must be absolute too).',
    });
  }
  let stats: CacheStats;
  try {
    stats = await cacheStats(path, { largest: top });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') throw new UsageError(`${path} is not a folder`, { hint: 'Point --path (or kv.sharedStoragePath) at the KV folder.' });
    if (code === 'EACCES' || code === 'EPERM') {
      throw new UsageError(`cannot read ${path} (${code})`, { hint: `The engines may have created it as root: sudo chown -R $USER ${path}` });
    }
    throw e;
  }
  if (flags.json) printJson(stats);
  else printHuman(stats, config.kv.cache);
  if (stats.errors.length > 0) {
    warn(`${stats.errors.length} path(s) could not be read and are left out, e.g. ${stats.errors[0]!.path} (${stats.errors[0]!.code})`);
  }
  return 0;
}

export function register(program: Command): void {
  const cache = program.command('cache').description('inspect or clear the KV cache under kv.sharedStoragePath');
  cache
    .command('stats', { isDefault: true })
    .description('entry count, total size, oldest/newest and the largest entries')
    .option('--path <dir>', 'folder to inspect (default: kv.sharedStoragePath)')
    .option('--top <n>', 'how many of the largest entries to list', '10')
    .option('--simulate', 'the folder `pd up --simulate` uses (when no stack is running)')
    .option('--json', 'print the figures as JSON')
    .action(action(async (_opts: unknown, cmd: Command) => runStats(cmd.optsWithGlobals<StatsFlags>())));
  addClearOptions(cache.command('clear').description('same as `pd clear-cache`')).action(
    action(async (_opts: unknown, cmd: Command) => runClearCache(cmd.optsWithGlobals())),
  );
}
