/**
 * A latency histogram with log buckets 1 % wide, from 1 µs to ~100 s: small enough
 * to send between processes, exact enough for p99.9 (error below 1 %).
 */
const GROWTH = Math.log(1.01);
const BUCKETS = 1900;

/** A histogram as sent between processes: sparse bucket counts. */
export interface HistogramData {
  counts: Record<string, number>;
  n: number;
  sumUs: number;
  maxUs: number;
}

export class Histogram {
  private readonly counts = new Uint32Array(BUCKETS);
  n = 0;
  sumUs = 0;
  maxUs = 0;

  /** Records one value in ms. */
  recordMs(ms: number): void {
    const us = ms * 1000;
    this.n++;
    this.sumUs += us;
    if (us > this.maxUs) this.maxUs = us;
    const i = us <= 1 ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(us) / GROWTH));
    this.counts[i]++;
  }

  /** Adds another histogram's counts. */
  merge(d: HistogramData): void {
    for (const [k, v] of Object.entries(d.counts)) this.counts[Number(k)] += v;
    this.n += d.n;
    this.sumUs += d.sumUs;
    if (d.maxUs > this.maxUs) this.maxUs = d.maxUs;
  }

  /** The p-th percentile (0..100) in ms, the upper edge of its bucket; NaN when empty. */
  percentileMs(p: number): number {
    if (this.n === 0) return NaN;
    const rank = Math.max(1, Math.ceil((p / 100) * this.n));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(Math.exp(i * GROWTH), this.maxUs) / 1000;
    }
    return this.maxUs / 1000;
  }

  meanMs(): number {
    return this.n === 0 ? NaN : this.sumUs / this.n / 1000;
  }

  toData(): HistogramData {
    const counts: Record<string, number> = {};
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i]) counts[i] = this.counts[i];
    return { counts, n: this.n, sumUs: this.sumUs, maxUs: this.maxUs };
  }

  static from(...data: HistogramData[]): Histogram {
    const h = new Histogram();
    for (const d of data) h.merge(d);
    return h;
  }
}

/** The median of the finite values; NaN when there is none. */
export function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}
