import type { ResourceLimits } from 'node:worker_threads';

/**
 * The V8 limits of a service's background threads (the embedded database's, storage/pglite-thread.ts, and the
 * span exporter's, telemetry/export-thread.ts). Each holds little for long, but V8 gives a thread's young
 * generation the same room as a process's (16 MiB semi-spaces), and under load both filled it: at a thousand
 * concurrent consents the tenant's database thread grew to 29 MiB of heap and its exporter to 17 MiB, the
 * agent's exporter to 28 MiB. With 2 MiB semi-spaces they peaked at 16–19 and 12–15 MiB (`npm run bench`,
 * HISTORY.md). A `--max-semi-space-size` given to the whole process (the embedded agent's, services.ts) overrides this.
 */
export const BACKGROUND_THREAD_LIMITS: ResourceLimits = { maxYoungGenerationSizeMb: 6 };
