/** Terminal side of `pd up`: the listr2 start-up task list, coloured line prefixes, the ready summary. */
import { Listr } from 'listr2';
import type { ChalkInstance } from 'chalk';
import type { PdConfig } from '../config/schema.js';
import type { Supervisor } from '../stack/supervisor.js';
import type { StackContext } from './stack-options.js';

const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** Start the supervisor while a task list shows each engine's elapsed time and latest state. */
export async function startWithTaskList(supervisor: Supervisor, opts: { interactive: boolean }): Promise<void> {
  type Ctx = Record<string, never>;
  const waiters = new Map<string, { resolve: (ms: number) => void; update: (detail: string, ms: number) => void }>();
  const readyPromises = new Map<string, Promise<number>>();
  for (const e of supervisor.engines) {
    let resolve!: (ms: number) => void;
    readyPromises.set(e.plan.name, new Promise<number>((r) => (resolve = r)));
    waiters.set(e.plan.name, { resolve, update: () => undefined });
  }
  supervisor.addEvents({
    engineProgress: (name, probe, ms) => waiters.get(name)?.update(probe.detail, ms),
    engineReady: (name, ms) => waiters.get(name)?.resolve(ms),
  });

  let startError: unknown = null;
  const started = supervisor.start().catch((e) => {
    startError = e;
  });
  const failedOrReady = (p: Promise<number>): Promise<number> =>
    Promise.race([p, started.then(() => (startError ? Promise.reject(asError(startError)) : new Promise<number>(() => undefined)))]);

  const list = new Listr<Ctx>(
    [
      {
        title: 'engines',
        task: (_ctx, task) =>
          task.newListr(
            supervisor.engines.map((e) => ({
              title: `${e.plan.name} (GPU ${e.plan.gpus.join(',')}, :${e.plan.port})`,
              task: async (_c: Ctx, t) => {
                const base = `${e.plan.name} (GPU ${e.plan.gpus.join(',')}, :${e.plan.port})`;
                let lastDetail = '';
                waiters.get(e.plan.name)!.update = (detail, ms) => {
                  if (opts.interactive) t.title = `${base} ${secs(ms)}`;
                  if (detail !== lastDetail) {
                    lastDetail = detail;
                    if (opts.interactive) t.output = detail;
                  }
                };
                const ms = await failedOrReady(readyPromises.get(e.plan.name)!);
                t.title = `${base} healthy in ${secs(ms)}`;
              },
            })),
            { concurrent: true, exitOnError: true },
          ),
      },
      {
        title: 'proxy',
        task: async (_ctx, task) => {
          await started;
          if (startError) throw asError(startError);
          task.title = `proxy listening on ${supervisor.proxyHandle?.url}`;
        },
      },
    ],
    {
      renderer: (opts.interactive ? 'default' : 'simple') as 'default',
      fallbackRenderer: 'simple',
      exitOnError: true,
      rendererOptions: { collapseSubtasks: false },
    },
  );
  try {
    await list.run();
  } catch (e) {
    await started;
    throw asError(startError ?? e);
  }
  await started;
  if (startError) throw asError(startError);
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

const PALETTE = ['cyan', 'magenta', 'yellow', 'green', 'blue', 'red'] as const;

/** `producer-0 | line` with a stable colour per source. */
export function prefixer(config: PdConfig, colours: ChalkInstance | null): (source: string, line: string) => string {
  const names = [
    ...config.producers.map((_, i) => `producer-${i}`),
    ...config.consumers.map((_, i) => `consumer-${i}`),
    'proxy',
  ];
  const width = Math.max(...names.map((n) => n.length));
  return (source, line) => {
    const i = Math.max(0, names.indexOf(source));
    const label = `${source.padEnd(width)} |`;
    const coloured = colours ? colours[PALETTE[i % PALETTE.length]!](label) : label;
    return `${coloured} ${line}\n`;
  };
}

export function readySummary(ctx: StackContext, url: string, logDir: string, c: ChalkInstance): string {
  const model = ctx.config.servedModelName ?? ctx.config.model;
  const body = JSON.stringify({ model, messages: [{ role: 'user', content: 'Hello!' }], max_tokens: 32 });
  return [
    `${c.green('✔')} PD stack ready${ctx.simulate ? ' (simulated engines)' : ''}: ${c.bold(url)}  (connector ${ctx.connector.name})`,
    `  try:  curl ${url}/v1/chat/completions -H 'Content-Type: application/json' -d '${body}'`,
    `  logs: ${logDir}  (pd logs -f)`,
    '',
  ].join('\n');
}
