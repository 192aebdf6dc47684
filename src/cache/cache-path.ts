/**
 * Which folder the cache commands work on: the one the engines of this state dir really write to. While a stack
 * runs that is the path in its state file (a temp folder under `pd up --simulate`); with --simulate and no stack,
 * the folder `pd up --simulate` uses; otherwise kv.sharedStoragePath.
 */
import type { PdConfig } from '../config/schema.js';
import { activeStoragePath } from '../stack/state.js';
import { simulateConfig } from '../stack/simulate.js';

export async function cacheFolder(config: PdConfig, opts: { simulate?: boolean } = {}): Promise<string> {
  const running = await activeStoragePath(config.stateDir, config.kv.sharedStoragePath);
  if (running !== null && running !== config.kv.sharedStoragePath) return running;
  if (opts.simulate) return simulateConfig(config, false).kv.sharedStoragePath;
  return config.kv.sharedStoragePath;
}
