import { describe, expect, it } from 'vitest';
import { createRandom } from './random.ts';
import { BENCHMARKS } from './suite.ts';

/**
 * The CI smoke of `npm run bench`: every benchmark at its quick size. It
 * asserts that each run completed and nothing was lost — never a timing,
 * which on a shared runner says nothing.
 */

describe('npm run bench -- --quick', () => {
  for (const benchmark of BENCHMARKS) {
    it(`${benchmark.id}: every run completes and nothing is lost`, { timeout: 90_000 }, async () => {
      const result = await benchmark.run({ size: 'quick', random: createRandom(1), log: () => undefined });

      expect(result.checks.length).toBeGreaterThan(0);
      expect(result.checks.filter((c) => !c.ok)).toEqual([]);
      for (const f of result.figures) {
        expect(f.runs, f.label).toBeGreaterThan(0);
        expect(f.samples.every(Number.isFinite), f.label).toBe(true);
      }
    });
  }
});
