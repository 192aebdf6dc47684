/**
 * The engines a configuration describes, each with its role, name and config field, in one place: every other
 * module (plan, checks, supervisor, status, proxy upstreams) takes names from here.
 */
import type { EngineInstance, EngineRole, PdConfig } from './schema.js';

export interface EngineRef {
  role: EngineRole;
  index: number;
  /** producer-0, consumer-1, engine-0 … */
  name: string;
  /** The config field of this engine: producers[0], consumers[1], engines[0] */
  field: string;
  instance: EngineInstance;
}

const LIST_KEY: Record<EngineRole, 'producers' | 'consumers' | 'engines'> = {
  producer: 'producers',
  consumer: 'consumers',
  engine: 'engines',
};

export function engineName(role: EngineRole, index: number): string {
  return `${role}-${index}`;
}

export function engineField(role: EngineRole, index: number): string {
  return `${LIST_KEY[role]}[${index}]`;
}

/** Every engine of the configured topology, in start order (producers before consumers). */
export function listEngines(config: PdConfig): EngineRef[] {
  const refs = (role: EngineRole, list: readonly EngineInstance[]): EngineRef[] =>
    list.map((instance, index) => ({ role, index, name: engineName(role, index), field: engineField(role, index), instance }));
  if (config.topology === 'aggregated') return refs('engine', config.engines ?? []);
  return [...refs('producer', config.producers), ...refs('consumer', config.consumers)];
}

/** Extra args of one engine: shared, then role, then instance (later ones win in vLLM's argparse). */
export function engineExtraArgs(config: PdConfig, ref: Pick<EngineRef, 'role' | 'instance'>): string[] {
  const roleArgs = ref.role === 'engine' ? [] : config.engine[ref.role].args;
  return [...config.engine.args, ...roleArgs, ...ref.instance.args];
}

/** Environment pd passes to one engine before its own variables: shared, then role, then instance. */
export function engineExtraEnv(config: PdConfig, ref: Pick<EngineRef, 'role' | 'instance'>): Record<string, string> {
  const roleEnv = ref.role === 'engine' ? {} : config.engine[ref.role].env;
  return { ...config.engine.env, ...roleEnv, ...ref.instance.env };
}
