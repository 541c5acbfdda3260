import { benchAgentOverhead } from './agent-overhead.ts';
import { benchApprovalLatency } from './approval-latency.ts';
import { benchConcurrentConsents, consentsBenchmarkId, type ConcurrentConsentsOptions } from './concurrent-consents.ts';
import { benchHrApiOverhead } from './hr-api-overhead.ts';
import type { Random } from './random.ts';
import type { BenchmarkResult } from './report.ts';
import { benchSoak } from './soak.ts';
import { benchStartup } from './startup.ts';
import { benchTelemetryOverhead } from './telemetry-overhead.ts';

/**
 * The benchmarks `npm run bench` runs, in order, each at two sizes: `full`
 * for the published figures and `quick` for the CI smoke, which checks that
 * every run completes and nothing is lost. Every load is bounded in count
 * and time and goes to loopback only.
 */

export type Size = 'full' | 'quick';

export interface BenchContext {
  size: Size;
  random: Random;
  log: (line: string) => void;
}

export interface Benchmark {
  id: string;
  run(context: BenchContext): Promise<BenchmarkResult>;
}

/**
 * The thousand concurrent consents: poll and ping, on a quiet and on a busy machine, with the agent's work
 * in memory and in the embedded database (as `npm run sandbox` keeps it); quiet, in PostgreSQL; and ping with
 * the approvals paced.
 */
const CONSENT_LOADS: readonly Pick<ConcurrentConsentsOptions, 'mode' | 'busy' | 'store' | 'pacedPerSecond'>[] = [
  { mode: 'poll', busy: false, store: 'memory' },
  { mode: 'ping', busy: false, store: 'memory' },
  // The same with its approvals paced at about half the rate the load above sends them (87–98 a second on 2
  // cores): the latency left once approvals do not outrun the CPU, in memory and in the embedded database.
  { mode: 'ping', busy: false, store: 'memory', pacedPerSecond: 50 },
  { mode: 'ping', busy: false, store: 'embedded', pacedPerSecond: 50 },
  { mode: 'poll', busy: true, store: 'memory' },
  { mode: 'ping', busy: true, store: 'memory' },
  { mode: 'ping', busy: false, store: 'embedded' },
  { mode: 'poll', busy: false, store: 'embedded' },
  { mode: 'ping', busy: true, store: 'embedded' },
  { mode: 'poll', busy: true, store: 'embedded' },
  { mode: 'ping', busy: false, store: 'postgres' },
  { mode: 'poll', busy: false, store: 'postgres' },
];

export const BENCHMARKS: readonly Benchmark[] = [
  {
    id: 'startup',
    run: ({ size, log }) => benchStartup({ runs: size === 'full' ? 5 : 1, log }),
  },
  {
    id: 'approval-latency',
    run: ({ size, random, log }) =>
      benchApprovalLatency({ runs: size === 'full' ? 7 : 1, warmups: size === 'full' ? 1 : 0, random, log }),
  },
  ...CONSENT_LOADS.map(
    (load): Benchmark => ({
      id: consentsBenchmarkId(load),
      run: ({ size, random, log }) =>
        // Every quiet load that approves flat out runs three batches, in memory, embedded or on PostgreSQL: one
        // batch of the same code read 0.64 s or 3.0 s of p95 (embedded ping, 2026-12-07), so one batch that met a
        // noisy moment of the machine must not decide the median its floors are judged on.
        benchConcurrentConsents({
          consents: size === 'full' ? 1000 : 20,
          waitingMs: size === 'full' ? 5_000 : 1_000,
          runs: size === 'full' && !load.busy && load.pacedPerSecond === undefined ? 3 : 1,
          ...load,
          random,
          log,
        }),
    }),
  ),
  {
    id: 'soak',
    run: ({ size, log }) =>
      benchSoak(size === 'full' ? { rate: 5, warmupMs: 30_000, durationMs: 150_000, log } : { rate: 5, warmupMs: 2_000, durationMs: 3_000, log }),
  },
  {
    id: 'hr-api-overhead',
    run: ({ size, log }) =>
      benchHrApiOverhead(
        size === 'full'
          ? { rounds: 5, durationMs: 2000, warmupMs: 1000, concurrency: 32, log }
          : { rounds: 1, durationMs: 300, warmupMs: 100, concurrency: 8, log },
      ),
  },
  {
    id: 'telemetry-overhead',
    run: ({ size, log }) =>
      benchTelemetryOverhead(
        size === 'full'
          ? // Many short paired samples: one approval or one load window is noisy on a shared 2-core machine, their median is not.
            { runs: 61, warmups: 3, rounds: 45, durationMs: 800, warmupMs: 1000, concurrency: 32, log }
          : { runs: 1, warmups: 0, rounds: 1, durationMs: 300, warmupMs: 100, concurrency: 8, log },
      ),
  },
  {
    id: 'agent-overhead',
    run: ({ size, log }) =>
      benchAgentOverhead(size === 'full' ? { rounds: 5, calls: 40, warmupCalls: 20, log } : { rounds: 1, calls: 5, warmupCalls: 2, log }),
  },
];
