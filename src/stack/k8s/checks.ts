/**
 * What a cluster refuses that one machine allows: a PD stack with no router to do the prefill hop, connectors whose
 * KV cannot cross nodes (or that llm-d's sidecar cannot drive), a model path pods cannot see, secrets that would land
 * in the bundle, and NIXL prefill engines wider than decode. Each refusal says what to do instead.
 */
import { dirname, isAbsolute, posix } from 'node:path';
import type { PdConfig } from '../../config/schema.js';
import { engineExtraArgs, engineExtraEnv, listEngines } from '../../config/engines.js';
import { hasArg } from '../../util/args.js';
import { ConfigError, UsageError } from '../../util/errors.js';
import type { StackPlan } from '../plan/build.js';
import { isNixlConnector, isP2pNcclConnector, isSharedStorageConnector } from '../plan/kv-transfer-config.js';
import { SIDECAR_KV_CONNECTOR } from './llm-d.js';
import type { RenderOptions } from './options.js';

/** Folders a volume must not be mounted over (the image's own files live there). */
const SYSTEM_DIRS = new Set(['/', '/bin', '/boot', '/dev', '/dev/shm', '/etc', '/lib', '/lib64', '/proc', '/root', '/run', '/sbin', '/sys', '/usr', '/var']);
/** Environment variable names that hold credentials: they go into Secrets, never into the bundle. */
const SECRET_NAME = /(^|_)(TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|ACCESS_KEY|SECRET_KEY|CREDENTIALS)$/i;

export type ModelSource =
  | { kind: 'hub'; id: string; cacheClaim?: string }
  | { kind: 'local'; path: string; claim: string; mountPath: string };

/** A hub id ("Qwen/Qwen3-4B") unless it reads as a filesystem path. */
export function isLocalModel(model: string): boolean {
  return isAbsolute(model) || model.startsWith('.') || model.startsWith('~');
}

export function modelSource(model: string, opts: RenderOptions): ModelSource {
  if (!isLocalModel(model)) return { kind: 'hub', id: model, ...(opts.modelVolumeClaim ? { cacheClaim: opts.modelVolumeClaim } : {}) };
  if (!isAbsolute(model)) {
    throw new UsageError(`model "${model}" is a relative local path, which no pod can resolve`, {
      hint: 'Render with a hub id (--model ORG/NAME), or an absolute path inside a claim (--model /models/NAME --model-volume-claim CLAIM).',
    });
  }
  const mountPath = dirname(posix.normalize(model));
  if (opts.modelVolumeClaim === undefined) {
    throw new UsageError(`model ${model} is a path on this machine; the pods cannot see it`, {
      hint:
        `Pass --model-volume-claim CLAIM: a PersistentVolumeClaim holding the folder ${posix.basename(model)} at its root, ` +
        `mounted read-only at ${mountPath} so the path stays the same; or pass --model ORG/NAME to load a Hugging Face hub id.`,
    });
  }
  if (SYSTEM_DIRS.has(mountPath)) {
    throw new UsageError(`model ${model} would mount its claim over ${mountPath}, a folder of the image itself`, {
      hint: 'Keep the model one folder deeper, e.g. --model /models/NAME with the claim holding NAME at its root.',
    });
  }
  return { kind: 'local', path: model, claim: opts.modelVolumeClaim, mountPath };
}

export function refuseConnector(connector: string): never {
  if (isP2pNcclConnector(connector)) {
    throw new ConfigError('P2pNcclConnector cannot be rendered for a cluster', {
      hint:
        "its engines register with pd's proxy and need request ids naming both ends, a protocol llm-d's routing sidecar " +
        'does not speak; use the nixl-1p1d template (NixlConnector moves KV GPU to GPU across nodes).',
    });
  }
  throw new ConfigError(`kv.connector ${connector} cannot be rendered for a cluster`, {
    hint:
      'pd renders NixlConnector (KV over the network, pod to pod) and SharedStorageConnector/ExampleConnector (KV on a ' +
      'ReadWriteMany claim both roles mount); other connectors need a routing-sidecar protocol pd does not know.',
  });
}

function checkPd(plan: StackPlan, opts: RenderOptions): void {
  if (opts.router === 'none') {
    throw new UsageError('a PD stack needs a router that sends each request to prefill and then to decode; --router none has none', {
      hint:
        "Use --router llm-d (the default): llm-d's decode sidecar does the prefill hop that pd's proxy does locally. " +
        'Without it every request would run whole on a decode pod and the numbers would not be PD at all.',
    });
  }
  const connector = plan.connector!.name;
  if (SIDECAR_KV_CONNECTOR[connector] === undefined) refuseConnector(connector);
  if (isSharedStorageConnector(connector)) {
    if (opts.sharedStorageClaim === undefined) {
      throw new UsageError(`${connector} keeps KV in a folder that prefill writes and decode reads, but pods on different nodes share no folder`, {
        hint:
          `Pass --shared-storage-claim CLAIM: a ReadWriteMany PersistentVolumeClaim (NFS, CephFS, Filestore …) mounted at ` +
          `${plan.config.kv.sharedStoragePath} in every pod; or use NixlConnector (template nixl-1p1d).`,
      });
    }
    if (SYSTEM_DIRS.has(posix.normalize(plan.config.kv.sharedStoragePath))) {
      throw new ConfigError(`kv.sharedStoragePath ${plan.config.kv.sharedStoragePath} is a folder of the image itself`, {
        hint: 'Point kv.sharedStoragePath at a folder of its own, such as /mnt/pd_kv.',
      });
    }
  }
  if (isNixlConnector(connector)) {
    // vLLM's NIXL handshake asserts decode TP >= prefill TP (nixl base_worker._validate_remote_agent_handshake);
    // llm-d docs/operations/disaggregation/vllm.md "Known NIXL Connector Issues". The EPP may pair any prefill pod
    // with any decode pod, so the widest prefill must fit the narrowest decode.
    const prefill = plan.engines.filter((e) => e.role === 'producer');
    const decode = plan.engines.filter((e) => e.role === 'consumer');
    const widest = prefill.reduce((a, b) => (b.parallel.tensor > a.parallel.tensor ? b : a));
    const narrowest = decode.reduce((a, b) => (b.parallel.tensor < a.parallel.tensor ? b : a));
    if (widest.parallel.tensor > narrowest.parallel.tensor) {
      throw new ConfigError(
        `${widest.field} (prefill) has tensor parallel size ${widest.parallel.tensor} but ${narrowest.field} (decode) has ` +
          `${narrowest.parallel.tensor}; NixlConnector needs decode TP >= prefill TP`,
        { hint: 'Give decode at least the tensor parallel size of prefill (the decode engine fails its NIXL handshake otherwise).' },
      );
    }
  }
}

/** Refuse what the cluster cannot run; return warnings for what it ignores. */
export function checkForCluster(plan: StackPlan, opts: RenderOptions): string[] {
  const warnings: string[] = [];
  const config: PdConfig = plan.config;
  if (plan.topology === 'pd') checkPd(plan, opts);
  if (opts.sharedStorageClaim !== undefined && (plan.connector === null || !isSharedStorageConnector(plan.connector.name))) {
    warnings.push(`--shared-storage-claim ${opts.sharedStorageClaim} is ignored: only SharedStorageConnector/ExampleConnector keep KV in a folder`);
  }
  for (const ref of listEngines(config)) {
    if (hasArg(engineExtraArgs(config, ref), '--api-key')) {
      throw new ConfigError(`--api-key is in the args of ${ref.name}, so the key would be written into the bundle`, {
        hint: 'Remove it and set engine.apiKey: pd renders VLLM_API_KEY from a Secret (--api-key-secret) instead.',
      });
    }
    for (const name of Object.keys(engineExtraEnv(config, ref))) {
      if (!SECRET_NAME.test(name)) continue;
      throw new ConfigError(`${name} in the env of ${ref.name} looks like a credential; pd does not write credentials into a bundle`, {
        hint:
          name.toUpperCase() === 'HF_TOKEN'
            ? `Remove it: pd renders HF_TOKEN from the Secret named by --hf-token-secret (key ${'HF_TOKEN'}).`
            : 'Remove it from the config, keep it in a Secret and add it with a kustomize patch (env valueFrom.secretKeyRef).',
      });
    }
  }
  if (config.proxy.apiKey !== undefined) {
    warnings.push(
      'proxy.apiKey is not rendered: the cluster has no pd proxy and llm-d\'s router checks no key; set engine.apiKey to make the engines require one',
    );
  }
  for (const e of plan.engines) {
    const gpus = e.parallel.tensor * e.parallel.pipeline * e.parallel.data;
    if (gpus > 8) warnings.push(`${e.name} needs ${gpus} GPUs in one pod (TP x PP x DP): it is scheduled only on a node with that many`);
  }
  return warnings;
}
