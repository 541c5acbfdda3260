import type { CompiledQuery } from 'kysely';

/**
 * Group commit for a service that writes much and reads from memory (the
 * local tenant's journal): the writes asked for while a batch is being
 * committed wait, and go together in the next batch, one transaction for all
 * of them (on PGlite, also one message to its thread). Each caller's promise
 * settles once its own write is committed, so a caller that awaits its write
 * still knows it is durable; writes are committed in the order they were
 * asked for. A batch that fails is tried again statement by statement, so a
 * bad write fails only its own caller.
 */

export interface WriteQueue {
  write(query: CompiledQuery): Promise<void>;
}

/** Statements per transaction at most; more wait for the next one. */
const MAX_BATCH = 256;

interface Queued {
  query: CompiledQuery;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** `runTogether` runs statements in one transaction (`Database.runTogether`). */
export function createWriteQueue(runTogether: (queries: readonly CompiledQuery[]) => Promise<void>): WriteQueue {
  const queued: Queued[] = [];
  let flushing = false;

  const commit = async (batch: Queued[]) => {
    try {
      await runTogether(batch.map((entry) => entry.query));
      for (const entry of batch) entry.resolve();
    } catch (error) {
      if (batch.length === 1) {
        batch[0]!.reject(error);
        return;
      }
      for (const entry of batch) {
        await runTogether([entry.query]).then(entry.resolve, entry.reject);
      }
    }
  };

  const flush = async () => {
    while (queued.length > 0) await commit(queued.splice(0, MAX_BATCH));
    flushing = false;
  };

  return {
    write(query) {
      return new Promise<void>((resolve, reject) => {
        queued.push({ query, resolve, reject });
        if (flushing) return;
        flushing = true;
        // After this turn of the event loop: the writes of one request (and of requests answered with it) go together.
        setImmediate(() => void flush());
      });
    },
  };
}
