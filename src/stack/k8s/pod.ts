/**
 * The pod of one engine group, as llm-d's guides write it (see llm-d.ts for the files): container `modelserver`
 * running `vllm serve` with the plan's arguments, port `modelserver` (+ `nixl`), GPUs as nvidia.com/gpu, probes sized
 * for model loading, /dev/shm in memory, credentials only by Secret reference, and on decode pods behind llm-d's
 * router the `routing-proxy` native sidecar.
 */
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IEnvVar } from 'kubernetes-models/v1/EnvVar';
import type { IPodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import type { IVolumeMount } from 'kubernetes-models/v1/VolumeMount';
import type { IContainerPort } from 'kubernetes-models/v1/ContainerPort';
import type { ModelSource } from './checks.js';
import type { EngineGroup } from './groups.js';
import { podNixlPort } from './engine-args.js';
import {
  API_KEY_SECRET_KEY,
  CONTAINERS,
  HF_TOKEN_KEY,
  MODEL_CACHE_PATH,
  PORT_NAMES,
  PORTS,
  PROBES,
  SHM_SIZE,
  SIDECAR_IMAGE,
  sidecarArgs,
} from './llm-d.js';

export interface PodContext {
  image: string;
  model: ModelSource;
  /** Resolved connector class name, or null for single-stage. */
  connector: string | null;
  /** The sidecar's --kv-connector (nixlv2, shared-storage) when the group carries the sidecar. */
  sidecarKvConnector: string | null;
  nixl: boolean;
  nixlBasePort: number;
  /** SharedStorage/ExampleConnector: the RWX claim and where the connector reads and writes. */
  sharedStorage: { claim: string; path: string } | null;
  hfTokenSecret: string;
  /** The Secret holding VLLM_API_KEY when engine.apiKey is set. */
  apiKeySecret: string | null;
  startupFailureThreshold: number;
  /** Only PD prefill pods behind the sidecar get llm-d's keep-alive fix. */
  pd: boolean;
}

const TCP = 'TCP';

function probes(apiKey: boolean): { startupProbe: IProbe; readinessProbe: IProbe; livenessProbe: IProbe } {
  // With an engine key vLLM answers /v1/* with 401 (entrypoints/serve/middleware/authenticate.py guards /v1), while
  // /health stays open: every probe then asks /health.
  const ready = apiKey ? '/health' : '/v1/models';
  const get = (path: string) => ({ httpGet: { path, port: PORT_NAMES.engine } });
  return {
    startupProbe: { ...get(ready), ...PROBES.startup },
    readinessProbe: { ...get(ready), ...PROBES.readiness },
    livenessProbe: { ...get('/health'), ...PROBES.liveness },
  };
}

function engineEnv(group: EngineGroup, ctx: PodContext): IEnvVar[] {
  const env: IEnvVar[] = group.env.map(([name, value]) => ({ name, value }));
  const has = (name: string): boolean => env.some((e) => e.name === name);
  const add = (e: IEnvVar): void => {
    if (!has(e.name)) env.push(e);
  };
  if (ctx.nixl) {
    add({ name: 'VLLM_NIXL_SIDE_CHANNEL_HOST', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } });
    add({ name: 'VLLM_NIXL_SIDE_CHANNEL_PORT', value: String(podNixlPort(group.userEnv, ctx.nixlBasePort)) });
  }
  // llm-d patch-prefill.yaml: vLLM's 5 s keep-alive is shorter than the sidecar's 90 s idle timeout (Go
  // http.Transport), which makes reused connections fail with TCP RSTs.
  if (ctx.pd && group.kind === 'prefill') add({ name: 'VLLM_HTTP_TIMEOUT_KEEP_ALIVE', value: '120' });
  if (ctx.model.kind === 'hub') {
    // Optional so public models need no Secret; gated ones fail in the vLLM log with the hub's 401.
    add({ name: 'HF_TOKEN', valueFrom: { secretKeyRef: { name: ctx.hfTokenSecret, key: HF_TOKEN_KEY, optional: true } } });
    if (ctx.model.cacheClaim !== undefined) add({ name: 'HF_HOME', value: MODEL_CACHE_PATH });
  }
  if (ctx.apiKeySecret !== null) {
    // vLLM reads the key from VLLM_API_KEY when --api-key is absent; a Secret reference keeps it out of the bundle.
    add({ name: 'VLLM_API_KEY', valueFrom: { secretKeyRef: { name: ctx.apiKeySecret, key: API_KEY_SECRET_KEY } } });
  }
  // llm-d components/images/gpu-vllm: vllm-project/vllm#44548, torch 2.11 calls getpass.getuser(), which fails for
  // a container user without a passwd entry (arbitrary UIDs) unless USER is set.
  add({ name: 'USER', value: 'llm-d' });
  return env;
}

function volumes(ctx: PodContext): { volumes: IVolume[]; mounts: IVolumeMount[] } {
  const volumes: IVolume[] = [{ name: 'shm', emptyDir: { medium: 'Memory', sizeLimit: SHM_SIZE } }];
  const mounts: IVolumeMount[] = [{ name: 'shm', mountPath: '/dev/shm' }];
  if (ctx.model.kind === 'local') {
    volumes.push({ name: 'model', persistentVolumeClaim: { claimName: ctx.model.claim, readOnly: true } });
    mounts.push({ name: 'model', mountPath: ctx.model.mountPath, readOnly: true });
  } else if (ctx.model.cacheClaim !== undefined) {
    volumes.push({ name: 'model-cache', persistentVolumeClaim: { claimName: ctx.model.cacheClaim } });
    mounts.push({ name: 'model-cache', mountPath: MODEL_CACHE_PATH });
  }
  if (ctx.sharedStorage !== null) {
    volumes.push({ name: 'kv-shared', persistentVolumeClaim: { claimName: ctx.sharedStorage.claim } });
    mounts.push({ name: 'kv-shared', mountPath: ctx.sharedStorage.path });
  }
  return { volumes, mounts };
}

function sidecar(kvConnector: string): IContainer {
  return {
    name: CONTAINERS.sidecar,
    image: SIDECAR_IMAGE,
    imagePullPolicy: 'IfNotPresent',
    args: sidecarArgs(kvConnector),
    ports: [{ name: PORT_NAMES.sidecar, containerPort: PORTS.sidecar, protocol: TCP }],
    resources: {},
    // A native sidecar (Kubernetes >= 1.29): started before vLLM, stopped after it.
    restartPolicy: 'Always',
    securityContext: { allowPrivilegeEscalation: false, runAsNonRoot: true },
  };
}

export function podTemplate(group: EngineGroup, labels: Record<string, string>, ctx: PodContext): IPodTemplateSpec {
  const ports: IContainerPort[] = [{ name: PORT_NAMES.engine, containerPort: group.port, protocol: TCP }];
  if (ctx.nixl) ports.push({ name: PORT_NAMES.nixl, containerPort: podNixlPort(group.userEnv, ctx.nixlBasePort), protocol: TCP });
  const gpu = String(group.gpus);
  const { volumes: vols, mounts } = volumes(ctx);
  const engine: IContainer = {
    name: CONTAINERS.engine,
    image: ctx.image,
    imagePullPolicy: 'IfNotPresent',
    command: ['vllm', 'serve'],
    args: group.args,
    env: engineEnv(group, ctx),
    ports,
    resources: { limits: { 'nvidia.com/gpu': gpu }, requests: { 'nvidia.com/gpu': gpu } },
    ...probes(ctx.apiKeySecret !== null),
    volumeMounts: mounts,
  };
  if (ctx.startupFailureThreshold !== PROBES.startup.failureThreshold) {
    engine.startupProbe = { ...engine.startupProbe, failureThreshold: ctx.startupFailureThreshold };
  }
  return {
    metadata: { labels },
    spec: {
      // The engines never call the Kubernetes API (llm-d's ServiceAccount sets the same).
      automountServiceAccountToken: false,
      ...(group.sidecar && ctx.sidecarKvConnector !== null ? { initContainers: [sidecar(ctx.sidecarKvConnector)] } : {}),
      containers: [engine],
      volumes: vols,
    },
  };
}
