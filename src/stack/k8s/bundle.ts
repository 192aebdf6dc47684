/**
 * `pd render k8s`: the stack plan rendered as a kustomize bundle for Kubernetes and llm-d's router. Pure: it reads
 * no file and runs nothing; write.ts puts the files on disk.
 *
 *   kustomization.yaml     resources (+ namespace when --namespace is given)
 *   <component>.yaml       one Deployment and its Service per engine group (prefill, decode, or engine)
 *   router/values.yaml     --router llm-d: values for llm-d's router chart (not a kustomize resource)
 */
import { basename } from 'node:path';
import { stringify } from 'yaml';
import type { PdConfig } from '../../config/schema.js';
import { RuntimeError } from '../../util/errors.js';
import { isNixlConnector, isSharedStorageConnector } from '../plan/kv-transfer-config.js';
import { buildClusterPlan } from './cluster-plan.js';
import { checkForCluster, modelSource, type ModelSource } from './checks.js';
import { groupEngines, type EngineGroup } from './groups.js';
import { KNOWN_EPP_PLUGINS, PROBES, SIDECAR_KV_CONNECTOR } from './llm-d.js';
import { commonLabels, deployment, objectName, service } from './objects.js';
import { defaultBundleName, type RenderOptions } from './options.js';
import type { PodContext } from './pod.js';
import { routerValues, type EppConfig, type RouterValues } from './router-values.js';
import { assertBundleValid, type KubeObject } from './validate.js';

/** First line of every file pd writes; write.ts overwrites or removes only files that start with it. */
export const MARKER = '# Rendered by `pd render k8s`';

export interface BundleFile {
  /** Relative to the bundle folder, with '/' separators. */
  path: string;
  text: string;
}

export interface BundleGroup {
  component: string;
  kind: EngineGroup['kind'];
  role: 'prefill' | 'decode';
  deployment: string;
  service: string;
  replicas: number;
  gpusPerPod: number;
  parallel: EngineGroup['parallel'];
  port: number;
  sidecar: boolean;
  engines: string[];
}

export interface Bundle {
  name: string;
  namespace: string | null;
  topology: 'pd' | 'aggregated';
  connector: string | null;
  router: RenderOptions['router'];
  image: string;
  vllmVersion: string | null;
  model: ModelSource;
  groups: BundleGroup[];
  objects: KubeObject[];
  routerValues: RouterValues | null;
  files: BundleFile[];
  warnings: string[];
  /** Secrets the user creates before applying (never in the bundle). */
  secrets: Array<{ name: string; key: string; why: string; optional: boolean }>;
}

const YAML_OPTS = { lineWidth: 0, aliasDuplicateObjects: false } as const;

function header(configPath: string | null, what: string): string {
  const from = configPath === null ? 'the built-in default configuration' : basename(configPath);
  return `${MARKER} from ${from}: ${what}.\n# Re-render rather than edit; layer cluster-specific changes with kustomize patches.\n`;
}

function yamlDocs(docs: readonly unknown[]): string {
  return docs.map((d) => stringify(d, YAML_OPTS)).join('---\n');
}

/** The router values must select every pod of the bundle and only use plugin types router v0.10.0 registers. */
function checkRouterValues(values: RouterValues, epp: EppConfig, objects: readonly KubeObject[]): void {
  for (const o of objects) {
    if (o.kind !== 'Deployment') continue;
    const labels = o.spec?.template.metadata?.labels ?? {};
    for (const [k, v] of Object.entries(values.router.modelServers.matchLabels)) {
      if (labels[k] !== v) throw new RuntimeError(`router/values.yaml selects ${k}=${v}, which the pods of Deployment/${o.metadata?.name} lack`);
    }
  }
  const types = new Set(epp.plugins.map((p) => p.type));
  for (const type of types) {
    if (!(KNOWN_EPP_PLUGINS as readonly string[]).includes(type)) throw new RuntimeError(`router/values.yaml uses plugin ${type}, unknown to router v0.10.0`);
  }
  for (const profile of epp.schedulingProfiles) {
    for (const { pluginRef } of profile.plugins) {
      if (!types.has(pluginRef)) throw new RuntimeError(`router/values.yaml profile ${profile.name} refers to ${pluginRef}, which is not in its plugins`);
    }
  }
}

export function renderK8s(config: PdConfig, configPath: string | null, opts: RenderOptions): Bundle {
  const name = opts.name ?? defaultBundleName(configPath);
  const { plan, vllmVersion, warnings: planWarnings } = buildClusterPlan(config, configPath, opts);
  const warnings = [...planWarnings.map((p) => `${p.field}: ${p.message}`), ...checkForCluster(plan, opts)];
  const model = modelSource(plan.model, opts);
  const connector = plan.connector?.name ?? null;
  const pd = plan.topology === 'pd';
  const nixl = connector !== null && isNixlConnector(connector);
  const shared = connector !== null && isSharedStorageConnector(connector);
  const apiKeySecret = config.engine.apiKey !== undefined ? (opts.apiKeySecret ?? `${name}-engine-api-key`) : null;
  const ctx: PodContext = {
    image: opts.image,
    model,
    connector,
    sidecarKvConnector: pd && connector !== null ? (SIDECAR_KV_CONNECTOR[connector] ?? null) : null,
    nixl,
    nixlBasePort: config.kv.nixlSideChannelBasePort,
    sharedStorage: shared && opts.sharedStorageClaim !== undefined ? { claim: opts.sharedStorageClaim, path: config.kv.sharedStoragePath } : null,
    hfTokenSecret: opts.hfTokenSecret,
    apiKeySecret,
    // pd's own start-up deadline (health.timeoutSeconds) when it is longer than llm-d's hour.
    startupFailureThreshold: Math.max(PROBES.startup.failureThreshold, Math.ceil(config.health.timeoutSeconds / PROBES.startup.periodSeconds)),
    pd,
  };

  const common = commonLabels(name, plan.model);
  const groups = groupEngines(plan, opts.router);
  const objects: KubeObject[] = [];
  const files: BundleFile[] = [];
  for (const g of groups) {
    const d = deployment(name, g, common, ctx);
    const s = service(name, g, common);
    objects.push(d, s);
    const what = `${g.kind === 'engine' ? 'the engines' : `the ${g.kind} engines`} ${g.engines.map((e) => e.name).join(', ')}`;
    files.push({ path: `${g.component}.yaml`, text: header(configPath, what) + yamlDocs([d, s]) });
  }
  assertBundleValid(objects);

  const kustomization: Record<string, unknown> = {
    apiVersion: 'kustomize.config.k8s.io/v1beta1',
    kind: 'Kustomization',
    ...(opts.namespace !== undefined ? { namespace: opts.namespace } : {}),
    resources: files.map((f) => f.path),
  };
  files.unshift({ path: 'kustomization.yaml', text: header(configPath, `${plan.topology === 'pd' ? 'PD' : 'single-stage'} stack "${name}"`) + stringify(kustomization, YAML_OPTS) });

  let values: RouterValues | null = null;
  if (opts.router === 'llm-d') {
    const router = routerValues(name, pd);
    values = router.values;
    checkRouterValues(values, router.epp, objects);
    files.push({ path: 'router/values.yaml', text: header(configPath, `values for llm-d's router chart (release "${name}")`) + stringify(values, YAML_OPTS) });
  }

  const secrets: Bundle['secrets'] = [];
  if (model.kind === 'hub') secrets.push({ name: opts.hfTokenSecret, key: 'HF_TOKEN', why: `Hugging Face token for ${model.id} (gated models)`, optional: true });
  if (apiKeySecret !== null) secrets.push({ name: apiKeySecret, key: 'VLLM_API_KEY', why: 'engine.apiKey: the key every engine requires', optional: false });

  return {
    name,
    namespace: opts.namespace ?? null,
    topology: plan.topology,
    connector,
    router: opts.router,
    image: opts.image,
    vllmVersion,
    model,
    groups: groups.map((g) => ({
      component: g.component,
      kind: g.kind,
      role: g.llmdRole,
      deployment: objectName(name, g),
      service: objectName(name, g),
      replicas: g.engines.length,
      gpusPerPod: g.gpus,
      parallel: g.parallel,
      port: g.port,
      sidecar: g.sidecar,
      engines: g.engines.map((e) => e.name),
    })),
    objects,
    routerValues: values,
    files,
    warnings,
    secrets,
  };
}
