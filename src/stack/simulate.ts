/** `--simulate`: the project's vLLM simulator stands in for `vllm`, with the same argv, env and ports. */
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simEntryPath } from '../sim/entry.js';
import { defaultConfig, type PdConfig } from '../config/schema.js';

export function simulatorCommand(): string[] {
  return [process.execPath, simEntryPath()];
}

/** The schema's default (the reference /mnt/pd_kv), read from the schema so there is one source of truth. */
export const DEFAULT_SHARED_STORAGE_PATH = defaultConfig().kv.sharedStoragePath;

/** A per-state-dir temp folder, so `pd plan --simulate` shows the path `pd up --simulate` will use. */
export function simulatedStoragePath(stateDir: string): string {
  const tag = createHash('sha1').update(stateDir).digest('hex').slice(0, 10);
  return join(tmpdir(), `pd-sim-kv-${tag}`);
}

/** Apply --simulate to a loaded config: keep everything, but never write to the real /mnt/pd_kv. */
export function simulateConfig(config: PdConfig, storageGiven: boolean): PdConfig {
  if (storageGiven || config.kv.sharedStoragePath !== DEFAULT_SHARED_STORAGE_PATH) return config;
  return { ...config, kv: { ...config.kv, sharedStoragePath: simulatedStoragePath(config.stateDir) } };
}
