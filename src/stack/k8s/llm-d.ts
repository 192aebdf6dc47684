/**
 * What llm-d's prefill/decode deployment uses, copied exactly so a bundle pd renders is one llm-d's router can drive.
 * Pinned to the llm-d v0.9.0 release (llm-d/llm-d commit e3dbeca1 "Update env for release v0.9.0"), which pins the
 * router chart and endpoint picker v0.10.0, the disagg sidecar v0.10.0 and vLLM v0.26.0. Sources, in llm-d/llm-d:
 * - guides/env.sh: chart, versions, GAIE CRDs;
 * - guides/pd-disaggregation/modelserver/gpu/vllm/base/{kustomization,patch-prefill,patch-decode}.yaml: labels,
 *   ports, probes, /dev/shm, NIXL env, VLLM_HTTP_TIMEOUT_KEEP_ALIVE on prefill;
 * - guides/recipes/modelserver/base/single-host/default/decode-deployment.yaml: container `modelserver`, its port
 *   name and probe paths; .../single-host/pd/base/kustomization.yaml: decode on 8200, port `nixl` 5600;
 * - guides/recipes/modelserver/base/single-host/pd/vllm/patch-sidecar.yaml: the `routing-proxy` native sidecar;
 * - guides/recipes/modelserver/components/images/gpu-vllm/release/kustomization.yaml: image, USER workaround;
 * - guides/recipes/modelserver/components/model-cache/kustomization.yaml: HF_HOME=/model-cache on a claim;
 * - guides/pd-disaggregation/router/pd-disaggregation.values.yaml and
 *   guides/optimized-baseline/router/optimized-baseline.values.yaml: router values and plugin names.
 * In llm-d/llm-d-router v0.10.0: pkg/sidecar/proxy/options.go (sidecar flags),
 * pkg/epp/framework/plugins/scheduling/filter/bylabel/roles.go (role label values), cmd/epp/runner/runner.go
 * (plugin types), config/charts (Service `<release>-epp`, InferencePool targetPorts 8000).
 */

export const LLMD_RELEASE = 'v0.9.0';
export const ROUTER_CHART = 'oci://ghcr.io/llm-d/charts/llm-d-router-standalone';
export const ROUTER_CHART_VERSION = 'v0.10.0';
export const SIDECAR_IMAGE = 'ghcr.io/llm-d/llm-d-router-disagg-sidecar:v0.10.0';
/** The vLLM image llm-d v0.9.0 runs (components/images/gpu-vllm/release). */
export const DEFAULT_VLLM_IMAGE = 'docker.io/vllm/vllm-openai:v0.26.0';
/** Gateway API Inference Extension CRDs (InferencePool): the router chart creates a pool, so they must exist. */
export const GAIE_CRDS_URL = 'https://github.com/kubernetes-sigs/gateway-api-inference-extension/releases/download/v1.5.0/v1-manifests.yaml';
/** The EPP config API version router v0.10.0 accepts (pkg/epp/config/loader/configloader.go decodes strictly). */
export const EPP_CONFIG_API_VERSION = 'llm-d.ai/v1alpha1';

export const LABELS = {
  /** The pool key: router values `modelServers.matchLabels` select pods by it. */
  guide: 'llm-d.ai/guide',
  /** prefill-filter / decode-filter read it (bylabel/roles.go RoleLabel). */
  role: 'llm-d.ai/role',
  model: 'llm-d.ai/model',
  engineType: 'llm-d.ai/engine-type',
  acceleratorVendor: 'llm-d.ai/accelerator-vendor',
  acceleratorVariant: 'llm-d.ai/accelerator-variant',
} as const;

/** Container names of the guides (the router repo's dev manifests say vllm/routing-sidecar; the guides win). */
export const CONTAINERS = { engine: 'modelserver', sidecar: 'routing-proxy' } as const;

export const PORT_NAMES = { engine: 'modelserver', sidecar: 'sidecar', nixl: 'nixl' } as const;

export const PORTS = {
  /** The InferencePool's target port (chart default targetPorts [{number: 8000}]): what the EPP sends traffic to. */
  poolTarget: 8000,
  /** Prefill vLLM and single-stage vLLM listen on the pool port: the EPP hands `<prefill pod IP>:8000` to the sidecar. */
  prefill: 8000,
  /** Decode vLLM moves to 8200 so the sidecar can own 8000 on decode pods. */
  decode: 8200,
  sidecar: 8000,
  /** vLLM's default VLLM_NIXL_SIDE_CHANNEL_PORT; every pod has its own IP, so one port for all. */
  nixl: 5600,
  /** The EPP Service port the pd values add (Envoy in the EPP pod listens on 8081). */
  eppHttp: 80,
  envoy: 8081,
} as const;

/** Probe budgets of the guides' patches: startup ≈ 60 min (15 s + 120 x 30 s) for model download and load. */
export const PROBES = {
  startup: { initialDelaySeconds: 15, periodSeconds: 30, timeoutSeconds: 5, failureThreshold: 120 },
  readiness: { periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 3 },
  liveness: { periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 },
} as const;

/** /dev/shm of the guides: memory-backed, 20Gi. */
export const SHM_SIZE = '20Gi';
/** components/model-cache: a hub model downloads into HF_HOME on a claim. */
export const MODEL_CACHE_PATH = '/model-cache';
/** llm-d's HF token Secret and key (guides/pd-disaggregation/README.md). */
export const DEFAULT_HF_TOKEN_SECRET = 'llm-d-hf-token';
export const HF_TOKEN_KEY = 'HF_TOKEN';
export const API_KEY_SECRET_KEY = 'VLLM_API_KEY';

/** llm-d-router v0.10.0 sidecar --kv-connector values per vLLM connector (router docs/disaggregation.md). */
export const SIDECAR_KV_CONNECTOR: Readonly<Record<string, string>> = {
  NixlConnector: 'nixlv2',
  SharedStorageConnector: 'shared-storage',
  ExampleConnector: 'shared-storage',
};

/**
 * Sidecar flags that work on both v0.9.0 and v0.10.0 sidecars: --vllm-port (a deprecated alias of
 * --model-server-port on 0.10, whose default 8200 differs from 0.9's 8001, so it is always passed) and
 * --secure-proxy=false (plain HTTP inside the pod, as the guide).
 */
export function sidecarArgs(kvConnector: string): string[] {
  return [`--port=${PORTS.sidecar}`, `--vllm-port=${PORTS.decode}`, `--kv-connector=${kvConnector}`, '--zap-log-level=1', '--secure-proxy=false'];
}

/** Plugin types router v0.10.0 registers (runner.go registerInTreePlugins); pd's values use only these. */
export const KNOWN_EPP_PLUGINS = [
  'always-disagg-pd-decider',
  'prefix-based-pd-decider',
  'disagg-profile-handler',
  'prefill-filter',
  'decode-filter',
  'queue-scorer',
  'kv-cache-utilization-scorer',
  'prefix-cache-scorer',
  'active-request-scorer',
  'token-load-scorer',
  'max-score-picker',
  'approx-prefix-cache-producer',
  'inflight-load-producer',
  'prefix-cache-affinity-filter',
  'label-selector-filter',
] as const;
