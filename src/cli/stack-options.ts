/**
 * Options shared by the verbs that build a stack plan (plan, up, doctor, config validate, render): overrides and
 * --simulate. The plan is built here once per command — `vllm --version` is asked once — and handed down.
 */
import type { Command } from 'commander';
import { loadForCommand, numberArg } from './context.js';
import { simulateConfig, simulatorCommand } from '../stack/simulate.js';
import { chooseConnector, probeVllmVersion } from '../stack/plan/connector.js';
import { buildStackPlan, type StackPlan } from '../stack/plan/build.js';
import { splitCommand } from '../util/args.js';

export interface StackFlags {
  model?: string;
  port?: number;
  sharedStorage?: string;
  connector?: string;
  simulate?: boolean;
  allowSharedGpus?: boolean;
}

export function addStackOptions(cmd: Command): Command {
  return cmd
    .option('--model <path>', 'model path or id (overrides model)')
    .option('--port <port>', 'proxy port (overrides proxy.port)', numberArg('--port', { integer: true, min: 1, max: 65535 }))
    .option('--shared-storage <path>', 'KV shared storage path (overrides kv.sharedStoragePath)')
    .option('--connector <name>', 'KV connector (overrides kv.connector; "auto" asks `vllm --version`)')
    .option('--simulate', 'use the built-in vLLM simulator instead of vllm (no GPU needed)')
    .option('--allow-shared-gpus', 'allow one GPU to serve two engines');
}

/** Load the configuration with the flags applied, ask the vLLM command its version once, and build the plan. */
export async function loadPlan(cmd: Command, flags: StackFlags): Promise<StackPlan> {
  const { config: loaded, path } = await loadForCommand(cmd, {
    model: flags.model,
    'proxy.port': flags.port,
    'kv.sharedStoragePath': flags.sharedStorage,
    'kv.connector': flags.connector,
    allowSharedGpus: flags.allowSharedGpus ? true : undefined,
  });
  const simulate = flags.simulate === true;
  const config = simulate ? simulateConfig(loaded, flags.sharedStorage !== undefined) : loaded;
  const command = simulate ? simulatorCommand() : splitCommand(config.engine.command);
  const vllmVersion = await probeVllmVersion(command, config.engine.env);
  const connector = chooseConnector(config.kv.connector, vllmVersion);
  return buildStackPlan(config, { configPath: path, connector, vllmVersion, command, simulate });
}
