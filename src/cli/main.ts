#!/usr/bin/env node
/**
 * pd — launch, supervise and benchmark a vLLM prefill/decode disaggregated stack.
 * This file only wires commander; every verb lives in src/cli/commands/<verb>.ts and its logic in a module.
 */
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { reportError } from './run-command.js';
import { UsageError } from '../errors.js';
import { register as registerInit } from './commands/init.js';
import { register as registerPlan } from './commands/plan.js';
import { register as registerConfig } from './commands/config.js';
import { register as registerUp } from './commands/up.js';
import { register as registerDown } from './commands/down.js';
import { register as registerStatus } from './commands/status.js';
import { register as registerLogs } from './commands/logs.js';
import { register as registerDoctor } from './commands/doctor.js';
import { register as registerProxy } from './commands/proxy.js';
import { register as registerClearCache } from './commands/clear-cache.js';
import { register as registerCache } from './commands/cache.js';
import { register as registerBench } from './commands/bench.js';
import { register as registerSim } from './commands/sim.js';

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export function buildProgram(): Command {
  const program = new Command('pd')
    .description('Launch, supervise and benchmark a vLLM prefill/decode (PD) disaggregated serving stack.')
    .version(packageVersion(), '-V, --version', 'print the pd version')
    .option('-c, --config <path>', 'config file (default: ./pd.config.json if present, else built-in defaults)')
    .option('--verbose', 'show stack traces and debug output')
    .showSuggestionAfterError(true)
    .configureHelp({ sortSubcommands: false, showGlobalOptions: true });

  registerInit(program);
  registerPlan(program);
  registerUp(program);
  registerDown(program);
  registerStatus(program);
  registerLogs(program);
  registerDoctor(program);
  registerProxy(program);
  registerClearCache(program);
  registerCache(program);
  registerBench(program);
  registerConfig(program);
  registerSim(program);

  // Usage errors exit 2 with a message, never a stack trace.
  const exitOverride = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.commands.forEach(exitOverride);
  };
  exitOverride(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander already printed its message; help/version are successes.
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') {
        process.exitCode = 0;
      } else {
        process.exitCode = 2;
      }
      return;
    }
    process.exitCode = reportError(e instanceof Error ? e : new UsageError(String(e)));
  }
}

await main(process.argv);
