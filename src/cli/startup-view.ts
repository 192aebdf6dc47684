/**
 * The start-up view of `pd up` (foreground and -d alike): one task per engine with its elapsed time and its latest
 * log line (model download, weight loading, compilation …), then the proxy. It only shows progress; it never owns
 * the stack's lifetime, and it is finished before the stack is handed to the serving view.
 */
import { Listr } from 'listr2';

export interface StartupEngine {
  name: string;
  gpus: number[];
  port: number;
}

/** Where progress comes from: the supervisor's events (foreground) or the state and log files (-d). */
export interface StartupSource {
  engines: StartupEngine[];
  /** Settles when the stack is ready (with the proxy's URL), or rejects with the start-up error. */
  done: Promise<string>;
  onProgress(listener: {
    line(engine: string, line: string): void;
    probe(engine: string, detail: string, elapsedMs: number): void;
    ready(engine: string, elapsedMs: number): void;
  }): void;
}

const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** One line, printable: no control characters, at most `width` columns. */
export function oneLine(text: string, width: number): string {
  // eslint-disable-next-line no-control-regex -- stripping terminal escapes and controls is the point
  const clean = text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/[\x00-\x1f\x7f]/g, ' ').trim();
  return clean.length > width ? `${clean.slice(0, Math.max(0, width - 1))}…` : clean;
}

export async function showStartup(source: StartupSource, opts: { interactive: boolean }): Promise<string> {
  const waiters = new Map<string, { resolve: (ms: number) => void; update: (ms: number) => void; latest: string }>();
  const readies = new Map<string, Promise<number>>();
  for (const e of source.engines) {
    let resolve!: (ms: number) => void;
    readies.set(e.name, new Promise<number>((r) => (resolve = r)));
    waiters.set(e.name, { resolve, update: () => undefined, latest: '' });
  }
  source.onProgress({
    line: (name, line) => {
      const w = waiters.get(name);
      if (w && line.trim() !== '' && !/GET \/(health|v1\/models) HTTP/.test(line)) w.latest = line;
    },
    probe: (name, _detail, ms) => waiters.get(name)?.update(ms),
    ready: (name, ms) => waiters.get(name)?.resolve(ms),
  });
  // A failure ends every task; a task that is still waiting must not keep the list open.
  let failure: Error | null = null;
  const failed = source.done.then(
    () => new Promise<number>(() => undefined),
    (e: unknown) => {
      failure = e instanceof Error ? e : new Error(String(e));
      throw failure;
    },
  );
  failed.catch(() => undefined);
  const columns = Math.max(40, (process.stderr.columns ?? 100) - 6);

  const list = new Listr(
    [
      {
        title: 'engines',
        task: (_ctx, task) =>
          task.newListr(
            source.engines.map((e) => {
              const base = `${e.name} (GPU ${e.gpus.join(',')}, :${e.port})`;
              return {
                title: base,
                task: async (_c: unknown, t) => {
                  const w = waiters.get(e.name)!;
                  w.update = (ms) => {
                    if (!opts.interactive) return;
                    t.title = `${base} ${secs(ms)}`;
                    if (w.latest) t.output = oneLine(w.latest, columns);
                  };
                  const ms = await Promise.race([readies.get(e.name)!, failed]);
                  t.title = `${base} healthy in ${secs(ms)}`;
                },
              };
            }),
            { concurrent: true, exitOnError: true },
          ),
      },
      {
        title: 'proxy',
        task: async (_ctx, task) => {
          const url = await source.done;
          task.title = `proxy listening on ${url}`;
        },
      },
    ],
    {
      renderer: opts.interactive ? 'default' : 'simple',
      fallbackRenderer: 'simple',
      exitOnError: true,
      // pd handles Ctrl+C itself (a clean stop, exit 130); listr2's own handler would exit 127 mid-start.
      registerSignalListeners: false,
      rendererOptions: { collapseSubtasks: false },
    },
  );
  try {
    await list.run();
  } catch (e) {
    throw failure ?? e;
  }
  return source.done;
}
