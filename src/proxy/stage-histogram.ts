/**
 * A Prometheus histogram with one label whose values are known up front (the proxy's stages), observed on
 * every request. prom-client's Histogram validates and hashes the labels and keys its buckets by the bound
 * printed as a string on every observe(); in the proxy bench the per-request metrics cost ~10 µs of CPU per
 * request that way. Here an observation is a bucket search and two additions into a Float64Array, and the
 * registry (still prom-client's, which formats and serves /metrics) reads the same shape that a prom-client
 * Histogram returns from get().
 */
import type { Registry } from 'prom-client';

export interface HistogramChild {
  observe(value: number): void;
}

interface ExportedValue {
  labels: Record<string, string | number>;
  value: number;
  metricName: string;
}

export class StageHistogram<L extends string> {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly bounds: Float64Array;
  /** Per label value: one count per bucket (non-cumulative), then sum, then count. */
  private readonly data: Float64Array[];
  private readonly children = new Map<L, HistogramChild>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelName: string,
    private readonly labelValues: readonly L[],
    buckets: readonly number[],
    registry: Registry,
  ) {
    const sorted = [...buckets].sort((a, b) => a - b);
    this.bounds = Float64Array.from(sorted);
    this.data = labelValues.map(() => new Float64Array(sorted.length + 2));
    labelValues.forEach((v, i) => {
      const d = this.data[i]!;
      const bounds = this.bounds;
      const n = bounds.length;
      this.children.set(v, {
        observe(value: number): void {
          if (!Number.isFinite(value)) return;
          let b = 0;
          while (b < n && value > bounds[b]!) b++;
          if (b < n) d[b]!++;
          d[n]! += value;
          d[n + 1]!++;
        },
      });
    });
    // prom-client's registry accepts any object with the Metric shape (name, help, type, get, reset).
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** The observer for one label value (fixed at construction). */
  labels(value: L): HistogramChild {
    const c = this.children.get(value);
    if (c === undefined) throw new RangeError(`${this.name}: unknown ${this.labelName} "${value}"`);
    return c;
  }

  /** Label values that have been observed at least once, as prom-client would list them. */
  get(): Promise<{ name: string; help: string; type: 'histogram'; values: ExportedValue[]; aggregator: 'sum' }> {
    const values: ExportedValue[] = [];
    const n = this.bounds.length;
    this.labelValues.forEach((lv, i) => {
      const d = this.data[i]!;
      if (d[n + 1] === 0) return;
      let acc = 0;
      for (let b = 0; b < n; b++) {
        acc += d[b]!;
        values.push({ labels: { le: this.bounds[b]!, [this.labelName]: lv }, value: acc, metricName: `${this.name}_bucket` });
      }
      values.push({ labels: { le: '+Inf', [this.labelName]: lv }, value: d[n + 1]!, metricName: `${this.name}_bucket` });
      values.push({ labels: { [this.labelName]: lv }, value: d[n]!, metricName: `${this.name}_sum` });
      values.push({ labels: { [this.labelName]: lv }, value: d[n + 1]!, metricName: `${this.name}_count` });
    });
    return Promise.resolve({ name: this.name, help: this.help, type: 'histogram', values, aggregator: 'sum' });
  }

  reset(): void {
    for (const d of this.data) d.fill(0);
  }
}
