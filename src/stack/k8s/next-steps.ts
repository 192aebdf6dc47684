/**
 * The commands that bring a rendered bundle up, benchmark it and tear it down, in order (printed by
 * `pd render k8s`, and the flow docs/kubernetes.md walks through). llm-d's guide does the same steps with its own
 * overlays: guides/pd-disaggregation/README.md (CRDs, namespace and secret, `helm install`, `kubectl apply -k`).
 */
import { shellQuote } from '../../util/shell-quote.js';
import type { Bundle } from './bundle.js';
import { GAIE_CRDS_URL, LABELS, PORTS, ROUTER_CHART, ROUTER_CHART_VERSION } from './llm-d.js';

export interface Step {
  title: string;
  commands: string[];
}

/** Local port the docs forward to (pd's proxy port, so `--target` reads the same as locally). */
export const LOCAL_PORT = 8000;

export function nextSteps(bundle: Bundle, outDir: string, configPath: string | null): Step[] {
  const ns = bundle.namespace === null ? '' : ` -n ${bundle.namespace}`;
  const dir = shellQuote(outDir);
  const steps: Step[] = [];
  if (bundle.router === 'llm-d') {
    steps.push({ title: 'once per cluster: the InferencePool CRDs the router chart needs', commands: [`kubectl apply -f ${GAIE_CRDS_URL}`] });
  }
  if (bundle.namespace !== null) steps.push({ title: 'the namespace', commands: [`kubectl create namespace ${bundle.namespace}`] });
  for (const s of bundle.secrets) {
    const variable = s.key === 'HF_TOKEN' ? 'HF_TOKEN' : 'PD_ENGINE_API_KEY';
    steps.push({
      title: `Secret ${s.name} (${s.why}${s.optional ? '; optional' : ''})`,
      commands: [`kubectl create secret generic ${s.name} --from-literal=${s.key}="$${variable}"${ns}`],
    });
  }
  if (bundle.router === 'llm-d') {
    steps.push({
      title: `llm-d's router (EPP + Envoy), release ${bundle.name}`,
      commands: [`helm install ${bundle.name} ${ROUTER_CHART} --version ${ROUTER_CHART_VERSION} -f ${shellQuote(`${outDir.replace(/\/$/, '')}/router/values.yaml`)}${ns}`],
    });
  }
  steps.push({ title: 'the engines', commands: [`kubectl apply -k ${dir}`] });
  steps.push({
    title: 'wait for every engine (model download and load take minutes)',
    commands: [`kubectl wait --for=condition=Available deployment -l ${LABELS.guide}=${bundle.name} --timeout=60m${ns}`],
  });
  const single = bundle.groups[0]!;
  const forward =
    bundle.router === 'llm-d'
      ? `kubectl port-forward svc/${bundle.name}-epp ${LOCAL_PORT}:${PORTS.eppHttp}${ns}`
      : `kubectl port-forward svc/${single.service} ${LOCAL_PORT}:${single.port}${ns}`;
  const onePod = bundle.router === 'none' && single.replicas > 1;
  steps.push({
    title: onePod
      ? `reach it from this machine (a port-forward reaches one of the ${single.replicas} pods: render with --router llm-d, or benchmark from a pod in the cluster, to load them all)`
      : 'reach it from this machine',
    commands: [forward],
  });
  const config = configPath === null ? '' : ` -c ${shellQuote(configPath)}`;
  steps.push({
    title: 'benchmark it (--keep-cache: the KV cache is in the cluster, not on this machine)',
    commands: [
      `pd bench run${config} --target http://127.0.0.1:${LOCAL_PORT} --keep-cache --rate 8 --duration 60`,
      `pd bench${config} --target http://127.0.0.1:${LOCAL_PORT} --keep-cache`,
    ],
  });
  const teardown = [`kubectl delete -k ${dir}`];
  if (bundle.router === 'llm-d') teardown.push(`helm uninstall ${bundle.name}${ns}`);
  steps.push({ title: 'tear down', commands: teardown });
  return steps;
}
