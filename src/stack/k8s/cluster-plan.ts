/**
 * The one stack plan, built for a cluster: the vLLM that matters is the image's, not the local `vllm` (nothing is
 * probed), and the plan checks that only concern one machine (GPU ids, host ports, local folders) do not apply to
 * pods, which each get their own GPUs, IP and filesystem.
 */
import type { PdConfig } from '../../config/schema.js';
import { assertValid, type Problem, type ProblemCode } from '../../config/problems.js';
import { ConfigError, UsageError } from '../../util/errors.js';
import { buildStackPlan, type StackPlan } from '../plan/build.js';
import { chooseConnector, connectorUnsupported, type ConnectorChoice } from '../plan/connector.js';
import { isP2pNcclConnector } from '../plan/kv-transfer-config.js';
import { refuseConnector } from './checks.js';
import type { RenderOptions } from './options.js';

/** Problems of a local stack that a cluster does not have. Policy reads codes, never messages. */
const LOCAL_ONLY: ReadonlySet<ProblemCode> = new Set<ProblemCode>([
  'port-clash', // pods have their own IPs; pd sets the pod ports itself
  'gpu-shared', // the device plugin gives every pod its own GPUs
  'side-channel-port-invalid', // one NIXL port per pod (5600), see llm-d.ts
  'side-channel-port-clash',
  'storage-path-overlap', // the KV folder is a claim in the pod, not next to the config or state dir
  'engine-exposed-without-key', // about engines bound beyond loopback on the local machine
]);

/** The vLLM version of a vllm/vllm-openai image tag (docker.io/vllm/vllm-openai:v0.26.0 → 0.26.0), else null. */
export function imageVllmVersion(image: string): string | null {
  const m = /(?:^|\/)vllm\/vllm-openai:v?(\d+\.\d+(?:\.\d+)?)$/.exec(image);
  return m ? m[1]! : null;
}

export interface ClusterPlan {
  plan: StackPlan;
  /** The image's vLLM version (--vllm-version, else the image tag), or null when unknown. */
  vllmVersion: string | null;
  /** Warnings to print (the plan's, for the cluster). */
  warnings: Problem[];
}

function clusterConnector(config: PdConfig, opts: RenderOptions, version: string | null): ConnectorChoice {
  const configured = config.kv.connector;
  if (config.topology !== 'pd') return chooseConnector(configured, version);
  // A connector the cluster cannot drive at all is refused for that reason first, whatever the image's version.
  if (isP2pNcclConnector(configured)) refuseConnector(configured);
  if (configured === 'auto') {
    if (version === null) {
      throw new UsageError(`kv.connector is "auto" but the vLLM version of image ${opts.image} is unknown`, {
        hint:
          'vLLM 0.13.0 renamed SharedStorageConnector to ExampleConnector; pass --vllm-version X.Y.Z (the version in ' +
          'the image), use a vllm/vllm-openai:vX.Y.Z image, or set kv.connector explicitly.',
      });
    }
    return chooseConnector(configured, version);
  }
  const why = version === null ? null : connectorUnsupported(configured, version);
  if (why !== null) {
    throw new ConfigError(`kv.connector: ${why}, so the pods of this bundle would fail to start`, {
      hint: `Set kv.connector to "auto" (pd picks the name vLLM ${version} accepts), or render for another image with --image.`,
    });
  }
  return chooseConnector(configured, version);
}

export function buildClusterPlan(config: PdConfig, configPath: string | null, opts: RenderOptions): ClusterPlan {
  const vllmVersion = opts.vllmVersion?.replace(/^v/, '') ?? imageVllmVersion(opts.image);
  const connector = clusterConnector(config, opts, vllmVersion);
  const plan = buildStackPlan(config, { configPath, connector, vllmVersion, simulate: false });
  const relevant = plan.problems.filter((p) => !LOCAL_ONLY.has(p.code));
  assertValid(relevant, configPath ?? 'the configuration');
  return { plan, vllmVersion, warnings: relevant.filter((p) => p.severity === 'warning') };
}
