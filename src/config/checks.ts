/**
 * Checks of the configuration file itself, before anything is planned: combinations the schema cannot see
 * (kv_role against role, GPU ids listed twice, CUDA_VISIBLE_DEVICES set by hand) and KV cache paths that overlap
 * pd's own files. Checks that need the planned engines (ports, shared GPUs, flags, side channels) live with the
 * plan (src/stack/plan/checks.ts).
 */
import { dirname, resolve, sep } from 'node:path';
import type { PdConfig } from './schema.js';
import { engineExtraEnv, listEngines } from './engines.js';
import type { Problem } from './problems.js';
import { packageRoot } from '../util/package.js';

export interface ProtectedPath {
  /** What it is, for messages: "the config file's folder", "stateDir", … */
  label: string;
  /** The config field or source that sets it. */
  field: string;
  path: string;
}

/**
 * Folders and files a KV cache path may never equal, contain or sit inside: clearing the cache would delete them,
 * or they would delete (or list) cache entries as their own.
 */
export function protectedPaths(config: PdConfig, configPath: string | null): ProtectedPath[] {
  const list: ProtectedPath[] = [
    { label: 'stateDir', field: 'stateDir', path: config.stateDir },
    { label: 'bench.resultsDir', field: 'bench.resultsDir', path: config.bench.resultsDir },
    { label: 'the bench sheet', field: 'bench.sheet', path: config.bench.sheet },
    { label: "pd's own folder", field: 'pd', path: packageRoot() },
  ];
  if (configPath !== null) list.unshift({ label: "the config file's folder", field: 'config', path: dirname(configPath) });
  return list.map((p) => ({ ...p, path: resolve(p.path) }));
}

function within(child: string, parent: string): boolean {
  return child === parent || (parent === '/' ? true : child.startsWith(parent + sep));
}

/** How a KV path overlaps a protected one ("is", "contains", "is inside"), or null. */
export function overlap(kvPath: string, other: string): 'is' | 'contains' | 'is inside' | null {
  const kv = resolve(kvPath);
  if (kv === other) return 'is';
  if (within(other, kv)) return 'contains';
  if (within(kv, other)) return 'is inside';
  return null;
}

export function checkKvPathOverlap(kvPath: string, protect: readonly ProtectedPath[]): Problem[] {
  const problems: Problem[] = [];
  for (const p of protect) {
    const how = overlap(kvPath, p.path);
    if (how === null) continue;
    problems.push({
      code: 'storage-path-overlap',
      severity: 'error',
      field: 'kv.sharedStoragePath',
      message: `the KV cache path ${resolve(kvPath)} ${how} ${p.label} (${p.path})`,
      hint:
        'Clearing the cache deletes everything inside that folder: give the KV cache a folder of its own, apart from ' +
        'pd\'s files, e.g. "/mnt/pd_kv" (or "/dev/shm/pd_kv" when both engines are on this machine).',
    });
  }
  return problems;
}

/** Checks that need nothing but the configuration. */
export function checkConfig(config: PdConfig): Problem[] {
  const problems: Problem[] = [];
  for (const ref of listEngines(config)) {
    const { role, field, instance, name } = ref;
    if (instance.kvRole !== undefined && role !== 'engine') {
      const wrong = (role === 'producer' && instance.kvRole === 'kv_consumer') || (role === 'consumer' && instance.kvRole === 'kv_producer');
      if (wrong) {
        problems.push({
          code: 'kv-role-mismatch',
          severity: 'error',
          field: `${field}.kvRole`,
          message: `kv_role "${instance.kvRole}" does not fit a ${role}`,
          hint: `Use "${role === 'producer' ? 'kv_producer' : 'kv_consumer'}" (or "kv_both"), or remove kvRole to get the default.`,
        });
      }
    }
    const seen = new Set<number>();
    for (const gpu of instance.gpus) {
      if (seen.has(gpu)) {
        problems.push({
          code: 'gpu-listed-twice',
          severity: 'error',
          field: `${field}.gpus`,
          message: `GPU ${gpu} is listed twice`,
          hint: 'List each GPU id once.',
        });
      }
      seen.add(gpu);
    }
    if (engineExtraEnv(config, ref).CUDA_VISIBLE_DEVICES !== undefined) {
      problems.push({
        code: 'cuda-visible-devices-set',
        severity: 'error',
        field: `${field}.env.CUDA_VISIBLE_DEVICES`,
        message: `CUDA_VISIBLE_DEVICES is set in the env of ${name}`,
        hint: `pd sets CUDA_VISIBLE_DEVICES from ${field}.gpus; set the GPU ids there.`,
      });
    }
  }
  return problems;
}
