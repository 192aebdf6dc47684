/** Options shared by the verbs that build the stack (plan, up, doctor): overrides and --simulate. */
import type { Command } from 'commander';
import { loadForCommand } from './context.js';
import { numberArg } from './context.js';
import type { PdConfig } from '../config/schema.js';
import { simulateConfig, simulatorCommand } from '../stack/simulate.js';
import { resolveConnector, type ConnectorChoice } from '../stack/connector.js';
import { splitCommand } from '../stack/engine-plan.js';

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

export interface StackContext {
  config: PdConfig;
  configPath: string | null;
  connector: ConnectorChoice;
  /** argv prefix that replaces the vLLM executable, or undefined for the configured one. */
  command?: string[];
  simulate: boolean;
}

export async function loadStack(cmd: Command, flags: StackFlags): Promise<StackContext> {
  const { config: loaded, path } = await loadForCommand(cmd, {
    model: flags.model,
    'proxy.port': flags.port,
    'kv.sharedStoragePath': flags.sharedStorage,
    'kv.connector': flags.connector,
    allowSharedGpus: flags.allowSharedGpus ? true : undefined,
  });
  const simulate = flags.simulate === true;
  const config = simulate ? simulateConfig(loaded, flags.sharedStorage !== undefined) : loaded;
  const command = simulate ? simulatorCommand() : undefined;
  const connector = await resolveConnector(config.kv.connector, command ?? splitCommand(config.engine.command));
  return { config, configPath: path, connector, command, simulate };
}
