/** The lines `pd up` prints once the stack is ready (foreground and -d). */
import type { ChalkInstance } from 'chalk';
import type { StackPlan } from '../stack/plan/build.js';

export function readySummary(plan: StackPlan, url: string, c: ChalkInstance): string {
  const body = JSON.stringify({ model: plan.modelId, messages: [{ role: 'user', content: 'Hello!' }], max_tokens: 32 });
  const what = plan.topology === 'pd' ? 'PD stack' : 'stack';
  const how = plan.connector ? `connector ${plan.connector.name}` : `${plan.engines.length} engine(s), single-stage proxy`;
  return [
    `${c.green('✔')} ${what} ready${plan.simulate ? ' (simulated engines)' : ''}: ${c.bold(url)}  (${how})`,
    `  try:  curl ${url}/v1/chat/completions -H 'Content-Type: application/json' -d '${body}'`,
    `  logs: ${plan.logDir}  (pd logs -f)`,
    '',
  ].join('\n');
}
