/**
 * Per-request fault injection from the `X-PD-Sim-Fault` header: a comma-separated list of
 * `status=<code>` (answer with that error), `stall=<ms>` (wait before the first token), `cut=<n>` (cut the stream
 * after n tokens), `slow=<factor>` (this request runs <factor> times slower), `crash` (the engine dies now).
 */
export const FAULT_HEADER = 'x-pd-sim-fault';

export interface RequestFault {
  status?: number;
  stallMs?: number;
  cutAfter?: number;
  slowdown?: number;
  crash?: boolean;
}

export class FaultHeaderError extends Error {}

export function parseFaultHeader(value: string | string[] | undefined): RequestFault {
  if (value === undefined) return {};
  const text = Array.isArray(value) ? value.join(',') : value;
  const f: RequestFault = {};
  for (const part of text.split(',')) {
    const item = part.trim();
    if (item === '') continue;
    const [rawKey, rawVal] = item.split('=', 2) as [string, string | undefined];
    const key = rawKey.trim().toLowerCase();
    const n = rawVal === undefined ? NaN : Number(rawVal.trim());
    const need = (ok: boolean): void => {
      if (!ok) throw new FaultHeaderError(`invalid ${FAULT_HEADER} item '${item}'`);
    };
    switch (key) {
      case 'status':
        need(Number.isInteger(n) && n >= 400 && n <= 599);
        f.status = n;
        break;
      case 'stall':
        need(Number.isFinite(n) && n >= 0);
        f.stallMs = n;
        break;
      case 'cut':
        need(Number.isInteger(n) && n >= 0);
        f.cutAfter = n;
        break;
      case 'slow':
        need(Number.isFinite(n) && n >= 1);
        f.slowdown = n;
        break;
      case 'crash':
        f.crash = true;
        break;
      default:
        need(false);
    }
  }
  return f;
}
