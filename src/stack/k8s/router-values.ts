/**
 * Values for llm-d's router chart (oci://ghcr.io/llm-d/charts/llm-d-router-standalone, v0.10.0): one endpoint picker
 * (EPP) with Envoy in its pod, selecting this bundle's pods by the llm-d.ai/guide label. PD follows
 * guides/pd-disaggregation/router/pd-disaggregation.values.yaml with the non-deprecated handler spelling
 * (`deciders.prefill`; `disagg-headers-handler` is deprecated since router v0.9.0); single-stage follows
 * guides/optimized-baseline/router/optimized-baseline.values.yaml. Only plugin types router v0.10.0 registers.
 */
import { stringify } from 'yaml';
import { LABELS, PORTS, EPP_CONFIG_API_VERSION } from './llm-d.js';

export interface EppConfig {
  apiVersion: string;
  kind: 'EndpointPickerConfig';
  plugins: Array<{ type: string; parameters?: Record<string, unknown> }>;
  schedulingProfiles: Array<{ name: string; plugins: Array<{ pluginRef: string }> }>;
}

export interface RouterValues {
  router: {
    extraServicePorts: Array<{ name: string; port: number; protocol: string; targetPort: number }>;
    epp: { replicas: number; pluginsConfigFile: string; pluginsCustomConfig: Record<string, string> };
    modelServers: { matchLabels: Record<string, string> };
  };
}

const refs = (...names: string[]) => names.map((pluginRef) => ({ pluginRef }));

/** Prefill then decode on every request, as pd's proxy does (always-disagg-pd-decider). */
export function pdEppConfig(): EppConfig {
  return {
    apiVersion: EPP_CONFIG_API_VERSION,
    kind: 'EndpointPickerConfig',
    plugins: [
      { type: 'always-disagg-pd-decider' },
      { type: 'disagg-profile-handler', parameters: { deciders: { prefill: 'always-disagg-pd-decider' } } },
      { type: 'prefill-filter' },
      { type: 'decode-filter' },
      { type: 'approx-prefix-cache-producer' },
      { type: 'inflight-load-producer' },
      // peakPrefillThroughput keeps its default (15928 tokens/s); llm-d calibrates it per model and hardware.
      { type: 'prefix-cache-affinity-filter' },
      { type: 'token-load-scorer' },
      { type: 'active-request-scorer' },
      { type: 'max-score-picker' },
    ],
    schedulingProfiles: [
      { name: 'prefill', plugins: refs('prefill-filter', 'prefix-cache-affinity-filter', 'token-load-scorer', 'max-score-picker') },
      { name: 'decode', plugins: refs('decode-filter', 'active-request-scorer', 'max-score-picker') },
    ],
  };
}

/** Whole requests on one pod of the pool (llm-d's optimized-baseline profile). */
export function singleStageEppConfig(): EppConfig {
  return {
    apiVersion: EPP_CONFIG_API_VERSION,
    kind: 'EndpointPickerConfig',
    plugins: [
      { type: 'approx-prefix-cache-producer' },
      { type: 'inflight-load-producer' },
      { type: 'prefix-cache-affinity-filter' },
      { type: 'token-load-scorer' },
    ],
    schedulingProfiles: [{ name: 'default', plugins: refs('prefix-cache-affinity-filter', 'token-load-scorer') }],
  };
}

export const EPP_CONFIG_FILE = { pd: 'pd-config.yaml', single: 'pd-single-stage.yaml' } as const;

export function routerValues(name: string, pd: boolean): { values: RouterValues; epp: EppConfig } {
  const file = pd ? EPP_CONFIG_FILE.pd : EPP_CONFIG_FILE.single;
  const epp = pd ? pdEppConfig() : singleStageEppConfig();
  const values: RouterValues = {
    router: {
      // The EPP Service `<release>-epp` answers on port 80 (Envoy listens on 8081 in the EPP pod).
      extraServicePorts: [{ name: 'http', port: PORTS.eppHttp, protocol: 'TCP', targetPort: PORTS.envoy }],
      epp: {
        // One replica: the in-flight load the scorers read is counted per EPP process.
        replicas: 1,
        pluginsConfigFile: file,
        pluginsCustomConfig: { [file]: stringify(epp, { lineWidth: 0 }) },
      },
      modelServers: { matchLabels: { [LABELS.guide]: name } },
    },
  };
  return { values, epp };
}
