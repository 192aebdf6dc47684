/** `pd plan`: the plan as copy-pasteable shell lines, or as JSON. Secrets are never printed. */
import { shellCommandLine } from '../../util/shell-quote.js';
import type { EnginePlan } from './engines.js';
import type { StackPlan } from './build.js';

/** Environment variables whose values are secrets: shown as a placeholder naming where the value comes from. */
const SECRET_ENV: Record<string, string> = { VLLM_API_KEY: '<engine.apiKey>' };

export function redactedEnv(env: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) out[k] = SECRET_ENV[k] ?? v;
  return out;
}

export function engineCommandLine(engine: EnginePlan): string {
  return shellCommandLine(redactedEnv(engine.env), engine.argv);
}

function engineHeader(e: EnginePlan): string {
  const parts = [e.kvRole ?? 'whole requests', `GPU ${e.gpus.join(',')}`];
  const { tensor, pipeline, data } = e.parallel;
  if (tensor * pipeline * data > 1) parts.push(`TP ${tensor} x PP ${pipeline} x DP ${data}`);
  parts.push(e.url);
  if (e.kvAddress) parts.push(`kv ${e.kvAddress}`);
  parts.push(`log ${e.logFile}`);
  return `# ${e.name}: ${parts.join(', ')}`;
}

export function formatPlan(plan: StackPlan): string {
  const lines: string[] = [];
  lines.push(`# model: ${plan.model}`);
  if (plan.connector) lines.push(`# connector: ${plan.connector.name} (${plan.connector.reason})`);
  else lines.push('# topology: aggregated (no KV connector; the proxy balances whole requests)');
  if (plan.sharedStoragePath) lines.push(`# shared storage: ${plan.sharedStoragePath}`);
  for (const e of plan.engines) {
    lines.push('');
    lines.push(engineHeader(e));
    lines.push(engineCommandLine(e));
  }
  lines.push('');
  lines.push(`# proxy: ${plan.proxy.url} (binds ${plan.proxy.host}:${plan.proxy.port})`);
  const width = Math.max(...plan.proxy.routes.map((r) => `${r.method} ${r.path}`.length));
  for (const r of plan.proxy.routes) lines.push(`#   ${`${r.method} ${r.path}`.padEnd(width)}  ${r.description}`);
  return lines.join('\n') + '\n';
}

/** `pd plan --json`: the same as data (without the configuration, which `pd config print` shows). */
export function planToJson(plan: StackPlan): unknown {
  return {
    topology: plan.topology,
    model: plan.model,
    connector: plan.connector,
    vllmVersion: plan.vllmVersion,
    sharedStoragePath: plan.sharedStoragePath,
    engines: plan.engines.map((e) => ({ ...e, env: redactedEnv(e.env), commandLine: engineCommandLine(e) })),
    proxy: plan.proxy,
    problems: plan.problems,
  };
}
