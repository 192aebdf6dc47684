/**
 * An engine's `vllm serve` arguments and environment in a pod: the plan's own, with only what a pod changes.
 * - `--host` is dropped: vLLM then binds every interface of the pod, which the sidecar, the EPP and the other role
 *   reach by pod IP (llm-d's guides pass no --host either).
 * - `--port` becomes the pod's port (prefill and single-stage 8000 = the InferencePool target; decode 8200 behind the
 *   sidecar), so engines of one group are identical replicas.
 * - NixlConnector: `engine_id` is dropped so every pod gets vLLM's own uuid4 (vllm/config/kv_transfer.py
 *   __post_init__): the decode side keys remote NIXL agents by engine_id (nixl worker start_load_kv,
 *   `if remote_engine_id not in self._remote_agents`), so replicas or a restarted pod sharing one id would be read
 *   at a stale agent. `kv_load_failure_policy: "fail"` is set so a failed transfer errors instead of silently
 *   recomputing the prompt on decode (vLLM KVTransferConfig field; PR 34896 made it the default, an explicit value
 *   also pins older images).
 * - CUDA_VISIBLE_DEVICES is never rendered (the device plugin picks the GPUs), nor the per-engine side-channel port
 *   pd spreads over one host, nor a key's value (VLLM_API_KEY comes from a Secret).
 */
import type { EnginePlan } from '../plan/engines.js';
import { stringifyKvTransferConfig } from '../plan/kv-transfer-config.js';
import { isNixlConnector } from '../plan/kv-transfer-config.js';

/** Variables pd sets for one machine that a pod must not get. */
const LOCAL_ENV = new Set(['CUDA_VISIBLE_DEVICES', 'VLLM_NIXL_SIDE_CHANNEL_PORT', 'VLLM_API_KEY', 'VLLM_HOST_IP']);

/** The kv-transfer-config a pod gets (null when the engine has none). */
export function podKvTransferConfig(engine: EnginePlan): Record<string, unknown> | null {
  const kv = engine.kvTransferConfig;
  if (kv === null) return null;
  const out: Record<string, unknown> = { ...kv };
  if (isNixlConnector(String(kv.kv_connector))) {
    delete out.engine_id;
    out.kv_load_failure_policy ??= 'fail';
  }
  return out;
}

/**
 * The arguments after `vllm serve` (model first), exactly as planned but for --host, --port and the pod's
 * kv-transfer-config. `commandLength` is the number of argv words before `serve`.
 */
export function podArgs(engine: EnginePlan, commandLength: number, podPort: number): string[] {
  const planned = engine.argv.slice(commandLength + 1);
  const out: string[] = [];
  for (let i = 0; i < planned.length; i++) {
    const a = planned[i]!;
    if (a === '--host') {
      i++;
      continue;
    }
    if (a === '--port') {
      out.push('--port', String(podPort));
      i++;
      continue;
    }
    if (a === '--kv-transfer-config') {
      const kv = podKvTransferConfig(engine);
      out.push(a, kv === null ? planned[i + 1]! : stringifyKvTransferConfig(kv));
      i++;
      continue;
    }
    out.push(a);
  }
  return out;
}

/** The plain (non-secret) variables of the plan a pod keeps, in the plan's order. */
export function podPlainEnv(engine: EnginePlan): Array<[string, string]> {
  return Object.entries(engine.env).filter(([k]) => !LOCAL_ENV.has(k));
}

/** The NIXL side-channel port of a pod: an explicit VLLM_NIXL_SIDE_CHANNEL_PORT in the config, else vLLM's 5600. */
export function podNixlPort(userEnv: Record<string, string>, fallback: number): number {
  const v = userEnv.VLLM_NIXL_SIDE_CHANNEL_PORT;
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : fallback;
}
