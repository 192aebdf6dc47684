/**
 * Builds the commander program. Each verb's module (src/cli/commands/<verb>.ts) is imported only when that verb
 * runs (or for the full help), so `pd status` does not pay for loading the proxy, the bench or the simulator.
 */
import { Command, Help, type Option } from 'commander';
import { readFileSync } from 'node:fs';

type Register = (program: Command) => void;

/** Verb → its module; the order is the order of `pd --help`. */
export const VERBS: Record<string, () => Promise<{ register: Register }>> = {
  init: () => import('./commands/init.js'),
  plan: () => import('./commands/plan.js'),
  up: () => import('./commands/up.js'),
  down: () => import('./commands/down.js'),
  status: () => import('./commands/status.js'),
  logs: () => import('./commands/logs.js'),
  doctor: () => import('./commands/doctor.js'),
  proxy: () => import('./commands/proxy.js'),
  'clear-cache': () => import('./commands/clear-cache.js'),
  cache: () => import('./commands/cache.js'),
  bench: () => import('./commands/bench.js'),
  config: () => import('./commands/config.js'),
  render: () => import('./commands/render.js'),
  sim: () => import('./commands/sim.js'),
};

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** The first non-option argument, skipping the values of the root's own options. */
export function verbOf(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-c' || a === '--config') {
      i++;
      continue;
    }
    if (a.startsWith('-')) continue;
    return a;
  }
  return undefined;
}

/** The flags an option answers to (`-n, --num-prompts <n>` → -n, --num-prompts; `--no-x` → --no-x). */
const flagsOf = (o: Option): string[] => [o.short, o.long].filter((f): f is string => f !== undefined);

/**
 * The "Global Options" of a command's help: pd's own (-c, --verbose …), each flag once. An intermediate verb's
 * options (`pd bench`'s sprint flags) do not apply to its sub-verbs and are not listed there, and a flag the
 * command declares itself is left out of the global list (commander would otherwise list it under both headings).
 */
function globalOptionsOnce(this: Help, cmd: Command): Option[] {
  let root: Command = cmd;
  while (root.parent) root = root.parent;
  const rootOptions = new Set(root.options);
  const seen = new Set(this.visibleOptions(cmd).flatMap(flagsOf));
  return Help.prototype.visibleGlobalOptions.call(this, cmd).filter((o) => {
    if (!rootOptions.has(o)) return false;
    const flags = flagsOf(o);
    if (flags.some((f) => seen.has(f))) return false;
    for (const f of flags) seen.add(f);
    return true;
  });
}

export async function buildProgram(args: string[] = []): Promise<Command> {
  const program = new Command('pd')
    .description('Launch, supervise and benchmark a vLLM prefill/decode (PD) disaggregated serving stack.')
    .version(packageVersion(), '-V, --version', 'print the pd version')
    .option('-c, --config <path>', 'config file (default: ./pd.config.json if present, else built-in defaults)')
    .option('--verbose', 'show stack traces and debug output')
    .showSuggestionAfterError(true)
    .configureHelp({ sortSubcommands: false, showGlobalOptions: true, visibleGlobalOptions: globalOptionsOnce });

  const verb = verbOf(args);
  const versionOnly = verb === undefined && args.some((a) => a === '-V' || a === '--version');
  const wanted = versionOnly ? [] : verb !== undefined && verb in VERBS ? [verb] : Object.keys(VERBS);
  for (const name of wanted) (await VERBS[name]!()).register(program);

  // Usage errors exit 2 with a message, never a stack trace.
  const exitOverride = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.commands.forEach(exitOverride);
  };
  exitOverride(program);
  return program;
}
