/**
 * Summaries of repeated measurements. Percentiles use the nearest-rank method
 * on the sorted samples, so every reported figure is one that was observed.
 */

export interface Summary {
  runs: number;
  median: number;
  min: number;
  max: number;
  p95: number;
}

export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  if (p < 0 || p > 100) throw new RangeError('percentile must be from 0 to 100');
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] as number;
}

/** The middle sample, or the mean of the middle two. */
export function median(samples: readonly number[]): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function summarize(samples: readonly number[]): Summary {
  return {
    runs: samples.length,
    median: median(samples),
    min: samples.length === 0 ? Number.NaN : Math.min(...samples),
    max: samples.length === 0 ? Number.NaN : Math.max(...samples),
    p95: percentile(samples, 95),
  };
}

/** Pairwise ratios a[i] / b[i] of measurements taken side by side in the same round. */
export function ratios(numerators: readonly number[], denominators: readonly number[]): number[] {
  return pairwise(numerators, denominators, (n, d) => n / d);
}

/** Each sample of `minuends` less the one taken beside it in `subtrahends` (same round). */
export function differences(minuends: readonly number[], subtrahends: readonly number[]): number[] {
  return pairwise(minuends, subtrahends, (a, b) => a - b);
}

function pairwise(left: readonly number[], right: readonly number[], combine: (a: number, b: number) => number): number[] {
  if (left.length !== right.length) throw new RangeError('paired figures need the same number of samples on both sides');
  return left.map((a, i) => combine(a, right[i] as number));
}
