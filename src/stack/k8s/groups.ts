/**
 * Engine groups: the planned engines that become one Deployment. Engines of one role whose pods would be identical
 * (same arguments, environment and GPU count once the pod port is set) are replicas of one group: the two engines
 * of the data-parallel template become `replicas: 2` behind one Service, 2P2D becomes two groups of two.
 */
import type { EngineRole } from '../../config/schema.js';
import { engineExtraEnv, listEngines } from '../../config/engines.js';
import type { StackPlan } from '../plan/build.js';
import type { EnginePlan, ParallelSizes } from '../plan/engines.js';
import { podArgs, podPlainEnv } from './engine-args.js';
import { PORTS } from './llm-d.js';
import type { Router } from './options.js';

export type GroupKind = 'prefill' | 'decode' | 'engine';

export interface EngineGroup {
  /** prefill, decode, engine (prefill-0, prefill-1 … when one role needs several pod shapes). */
  component: string;
  kind: GroupKind;
  /**
   * llm-d.ai/role: prefill or decode. Single-stage pods are `decode` as in llm-d's optimized-baseline guide
   * (decode-filter accepts them; its default profile filters nothing).
   */
  llmdRole: 'prefill' | 'decode';
  engines: EnginePlan[];
  /** Arguments after `vllm serve`. */
  args: string[];
  /** Plain variables of the plan the pod keeps. */
  env: Array<[string, string]>;
  /** The config's own variables for these engines (before pd's additions). */
  userEnv: Record<string, string>;
  parallel: ParallelSizes;
  /** nvidia.com/gpu per pod: TP x PP x DP (DP here is an in-process --data-parallel-size). */
  gpus: number;
  /** The engine's port in the pod. */
  port: number;
  /** The decode pods carry llm-d's routing sidecar. */
  sidecar: boolean;
}

const KIND: Record<EngineRole, GroupKind> = { producer: 'prefill', consumer: 'decode', engine: 'engine' };

export function podPort(kind: GroupKind): number {
  return kind === 'decode' ? PORTS.decode : PORTS.prefill;
}

export function groupEngines(plan: StackPlan, router: Router): EngineGroup[] {
  const userEnvs = new Map(listEngines(plan.config).map((ref) => [ref.name, engineExtraEnv(plan.config, ref)]));
  const groups: EngineGroup[] = [];
  const byKey = new Map<string, EngineGroup>();
  for (const engine of plan.engines) {
    const kind = KIND[engine.role];
    const port = podPort(kind);
    const args = podArgs(engine, plan.command.length, port);
    const env = podPlainEnv(engine);
    const gpus = engine.parallel.tensor * engine.parallel.pipeline * engine.parallel.data;
    const userEnv = userEnvs.get(engine.name) ?? {};
    const key = JSON.stringify([kind, args, env, gpus, userEnv]);
    const existing = byKey.get(key);
    if (existing) {
      existing.engines.push(engine);
      continue;
    }
    const group: EngineGroup = {
      component: kind,
      kind,
      llmdRole: kind === 'prefill' ? 'prefill' : 'decode',
      engines: [engine],
      args,
      env,
      userEnv,
      parallel: { ...engine.parallel },
      gpus,
      port,
      sidecar: kind === 'decode' && router === 'llm-d',
    };
    byKey.set(key, group);
    groups.push(group);
  }
  for (const kind of ['prefill', 'decode', 'engine'] as const) {
    const same = groups.filter((g) => g.kind === kind);
    if (same.length > 1) same.forEach((g, i) => (g.component = `${kind}-${i}`));
  }
  return groups;
}
