import { setFlagsFromString } from 'node:v8';
import type { ResourceLimits } from 'node:worker_threads';

/**
 * The V8 limits of a service's background threads (the embedded database's, storage/pglite-thread.ts, and the
 * span exporter's, telemetry/export-thread.ts): a 6 MiB young generation, that is 2 MiB semi-spaces (V8 adds as
 * much again for new large objects). Each thread holds little for long, but V8 gives a thread's young generation
 * the same room as a process's (16 MiB semi-spaces), and under load they filled it: at a thousand concurrent
 * consents the tenant's database thread grew to 29 MiB of heap and its exporter to 17 MiB, the agent's exporter
 * to 28 MiB. With these limits the tenant's peaked at 18–19 and 13–15 MiB (`npm run bench`, HISTORY.md).
 */
const BACKGROUND_THREAD_LIMITS: ResourceLimits = { maxYoungGenerationSizeMb: 6 };

/**
 * The limits to start a background thread with. V8 reads `--max-semi-space-size` whenever it makes an isolate and
 * puts it before the thread's own limits, so a process started with it (the embedded agent, services.ts) would give
 * each thread that young generation too. The main thread's heap was sized when the process started and keeps its
 * size; the flag is reset here, before a thread is made, so that threads get theirs.
 */
export function backgroundThreadLimits(): ResourceLimits {
  setFlagsFromString('--max-semi-space-size=0');
  return BACKGROUND_THREAD_LIMITS;
}
