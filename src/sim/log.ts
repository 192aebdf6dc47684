/**
 * vLLM-format logging: `(APIServer pid=N) INFO MM-DD HH:MM:SS [file.py:line] msg` on stdout (vLLM's logger writes
 * to sys.stdout), uvicorn's `INFO:     ...` server lines on stderr and its access lines on stdout (uvicorn's default
 * log config), all decorated with the process prefix as vLLM >= 0.10.2 does. Lines are batched per tick so that
 * thousands of access lines per second cost one write each tick; `flushSync()` before exiting.
 */

export type Level = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR';
/** vLLM's process names: APIServer, EngineCore_DP<rank>, Worker_TP<rank> / Worker_PP<p>_TP<t>. */
export type ProcName = string;

const pad = (n: number): string => (n < 10 ? '0' + n : String(n));

export function timestamp(d = new Date()): string {
  return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

class Sink {
  private buf = '';
  private scheduled = false;
  constructor(private readonly stream: NodeJS.WriteStream) {}
  write(line: string): void {
    this.buf += line + '\n';
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }
  flush(): void {
    this.scheduled = false;
    if (this.buf === '') return;
    const data = this.buf;
    this.buf = '';
    // Pipes and files are synchronous on Linux, so this is flushed before exit.
    this.stream.write(data);
  }
}

const stdoutSink = new Sink(process.stdout);
const stderrSink = new Sink(process.stderr);
// Logging must never kill the engine when the reader goes away.
process.stdout.on('error', () => undefined);
process.stderr.on('error', () => undefined);

export class SimLogger {
  /** When false nothing is printed (used by in-process tests). */
  enabled = true;
  constructor(readonly pid: number = process.pid) {}

  prefix(proc: ProcName = 'APIServer'): string {
    return `(${proc} pid=${this.pid}) `;
  }

  /** vLLM logger line, e.g. log('INFO', 'api_server.py:1839', 'vLLM API server version 0.11.0'). */
  log(level: Level, where: string, msg: string, proc: ProcName = 'APIServer'): void {
    if (!this.enabled) return;
    const text = `${this.prefix(proc)}${level} ${timestamp()} [${where}] ${msg}`;
    // Multi-line messages (tracebacks) keep vLLM's behaviour: only the first line is prefixed by the formatter,
    // the process decorator prefixes every line.
    stdoutSink.write(text.includes('\n') ? text.split('\n').join('\n' + this.prefix(proc)) : text);
  }
  info(where: string, msg: string, proc: ProcName = 'APIServer'): void {
    this.log('INFO', where, msg, proc);
  }
  warning(where: string, msg: string, proc: ProcName = 'APIServer'): void {
    this.log('WARNING', where, msg, proc);
  }
  error(where: string, msg: string, proc: ProcName = 'APIServer'): void {
    this.log('ERROR', where, msg, proc);
  }

  /** uvicorn.error logger line (`INFO:     Started server process [123]`), stderr. */
  uvicorn(msg: string, level = 'INFO'): void {
    if (!this.enabled) return;
    stderrSink.write(`${this.prefix()}${(level + ':').padEnd(10)}${msg}`);
  }

  /** uvicorn.access line, stdout: `INFO:     127.0.0.1:5000 - "POST /v1/completions HTTP/1.1" 200 OK`. */
  access(client: string, method: string, path: string, httpVersion: string, status: number, reason: string): void {
    if (!this.enabled) return;
    stdoutSink.write(`${this.prefix()}INFO:     ${client} - "${method} ${path} HTTP/${httpVersion}" ${status} ${reason}`);
  }

  /** Raw text to stderr (Python tracebacks). */
  raw(text: string): void {
    if (!this.enabled) return;
    stderrSink.write(text.replace(/\n$/, ''));
  }

  flushSync(): void {
    stdoutSink.flush();
    stderrSink.flush();
  }
}
