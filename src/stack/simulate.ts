/** `--simulate`: the project's vLLM simulator stands in for `vllm`, with the same argv, env and ports. */
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultConfig, type PdConfig } from '../config/schema.js';
import { lastVersionWith } from './plan/connector.js';

/**
 * The simulator is started like vLLM, as a separate program (pd never imports it): dist/sim/main.js, the sibling of
 * this file's folder once built; from src/ under tsx, the built copy (run `npm run build` first).
 */
export function simulatorCommand(): string[] {
  const fromSource = import.meta.url.endsWith('.ts');
  return [process.execPath, fileURLToPath(new URL(fromSource ? '../../dist/sim/main.js' : '../sim/main.js', import.meta.url))];
}

/** The schema's default (the reference /mnt/pd_kv), read from the schema so there is one source of truth. */
export const DEFAULT_SHARED_STORAGE_PATH = defaultConfig().kv.sharedStoragePath;

/** A per-state-dir temp folder, so `pd plan --simulate` shows the path `pd up --simulate` will use. */
export function simulatedStoragePath(stateDir: string): string {
  const tag = createHash('sha1').update(stateDir).digest('hex').slice(0, 10);
  return join(tmpdir(), `pd-sim-kv-${tag}`);
}

/**
 * Apply --simulate to a loaded config: keep everything, but never write to the real /mnt/pd_kv, and simulate a vLLM
 * release that still registers the configured connector (the simulator reports the newest release by default).
 */
export function simulateConfig(config: PdConfig, storageGiven: boolean): PdConfig {
  let out = config;
  if (!storageGiven && config.kv.sharedStoragePath === DEFAULT_SHARED_STORAGE_PATH) {
    out = { ...out, kv: { ...out.kv, sharedStoragePath: simulatedStoragePath(config.stateDir) } };
  }
  const pinned = lastVersionWith(config.kv.connector);
  if (pinned !== null && config.engine.env.PD_SIM_VLLM_VERSION === undefined) {
    out = { ...out, engine: { ...out.engine, env: { ...out.engine.env, PD_SIM_VLLM_VERSION: pinned } } };
  }
  return out;
}
