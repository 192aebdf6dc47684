/**
 * The gate every generation request passes before any engine sees it: one rate-limit token, then one admission
 * slot (waiting in line for either when configured to). Cheap requests (GET /v1/models, /health, /metrics) do
 * not pass through it.
 */
import type { TokenBucket } from './token-bucket.js';
import { Admission, AdmissionRejected } from './admission.js';
import type { AbortLike } from './abort-flag.js';
import { ProxyFailure, clientGone } from './failures.js';
import type { ProxyMetrics } from './metrics.js';

export interface GateOptions {
  bucket: TokenBucket | null;
  onRateLimit: 'wait' | 'reject';
  admission: Admission;
  queueMs: number;
  metrics: ProxyMetrics;
}

export class Gate {
  constructor(private readonly o: GateOptions) {}

  get admission(): Admission {
    return this.o.admission;
  }

  /**
   * Take a rate-limit token and an admission slot, waiting in line when needed. Returns undefined when both
   * were free (the common case, with no promise to await), else a promise that settles when the request may go.
   * The caller releases the slot with release() once it was admitted.
   */
  enter(signal: AbortLike): Promise<void> | undefined {
    const bucket = this.o.bucket;
    const token = bucket === null || bucket.tryTake() === 0;
    if (token && this.o.admission.tryAcquire()) return undefined;
    return this.enterSlow(signal, !token);
  }

  release(): void {
    this.o.admission.release();
  }

  private async enterSlow(signal: AbortLike, needToken: boolean): Promise<void> {
    if (needToken) await this.rateLimit(signal);
    await this.admit(signal);
  }

  /** Wait for a rate-limit token (or refuse) after tryTake() found none. */
  private async rateLimit(signal: AbortLike): Promise<void> {
    const { metrics, queueMs } = this.o;
    const bucket = this.o.bucket!;
    const waitMs = bucket.tryTake();
    if (waitMs === 0) return;
    if (this.o.onRateLimit === 'reject') {
      metrics.reject('rate_limit');
      throw new ProxyFailure(
        'rate_limit',
        `Rate limit of ${bucket.rate} requests/s exceeded; retry later.`,
        { retryAfter: Math.max(1, Math.ceil(waitMs / 1000)) },
      );
    }
    const reserved = bucket.reserve(queueMs);
    if (reserved === null) {
      metrics.reject('rate_limit');
      throw new ProxyFailure(
        'rate_limit',
        `Rate limit of ${bucket.rate} requests/s exceeded and the wait for a token would be longer than ${queueMs} ms.`,
        { retryAfter: Math.max(1, Math.ceil(queueMs / 1000)) },
      );
    }
    metrics.rateLimitWaits.inc();
    if (reserved === 0) return;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, reserved);
      const onAbort = (): void => {
        clearTimeout(t);
        bucket.refund();
        reject(clientGone());
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  private async admit(signal: AbortLike): Promise<void> {
    const { admission: adm, metrics, queueMs } = this.o;
    if (adm.tryAcquire()) return;
    const t = performance.now();
    try {
      await adm.acquire(signal);
    } catch (e) {
      const reason = e instanceof AdmissionRejected ? e.reason : 'queue_full';
      if (reason === 'aborted') {
        metrics.queueWaits.inc({ outcome: 'aborted' });
        throw clientGone();
      }
      if (reason === 'queue_timeout') metrics.queueWaits.inc({ outcome: 'timeout' });
      metrics.reject(reason);
      throw new ProxyFailure(
        reason,
        reason === 'queue_timeout'
          ? `The proxy is at its concurrency limit and the request waited ${queueMs} ms in the queue (proxy.timeouts.queueMs).`
          : reason === 'closed'
            ? 'The proxy is shutting down.'
            : `The proxy is at its concurrency limit (${adm.inFlight} in flight) and its queue is full (${adm.queued} waiting).`,
        { retryAfter: 1 },
      );
    }
    const waited = performance.now() - t;
    metrics.queueWaits.inc({ outcome: 'admitted' });
    metrics.queueWaitSeconds.observe(waited / 1000);
  }
}
