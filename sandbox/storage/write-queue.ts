import { AsyncLocalStorage } from 'node:async_hooks';
import type { CompiledQuery } from 'kysely';
import { createGroupCommit } from './group-commit.ts';

/**
 * Group commit (group-commit.ts) for a service that writes much and reads
 * from memory (the local tenant's journal): the writes asked for while a
 * batch is being committed go together in the next batch, one transaction
 * for all of them. Each caller's promise settles once its own write is
 * committed, so a caller that awaits its write still knows it is durable;
 * writes are committed in the order they were asked for, and a bad write
 * fails only its own caller.
 *
 * `together` makes several writes one unit: all committed or none, whatever
 * else shares their transaction (a tenant's decision, the grant it issues and
 * the CIBA request that points to the grant).
 */

export interface WriteQueue {
  write(query: CompiledQuery): Promise<void>;
  /**
   * Runs `work`, holding back the writes it asks for (they resolve at once: the work must not wait for
   * them), then commits them as one unit. Resolves to the work's result once they are committed; rejects
   * with the commit's error, or with the work's own error, and then none of its writes is made.
   * A `together` inside another joins it. Writes asked for after the work has settled are ordinary writes.
   */
  together<T>(work: () => Promise<T>): Promise<T>;
}

/** Statements per transaction at most (a larger unit goes alone); more wait for the next one. */
const MAX_BATCH = 256;

interface Unit {
  queries: CompiledQuery[];
  open: boolean;
}

/** `runTogether` runs statements in one transaction (`Database.runTogether`). */
export function createWriteQueue(runTogether: (queries: readonly CompiledQuery[]) => Promise<void>): WriteQueue {
  const unitOfWork = new AsyncLocalStorage<Unit>();
  const enqueue = createGroupCommit<readonly CompiledQuery[], void>({
    runGroup: async (units) => {
      await runTogether(units.flat());
      return units.map(() => undefined);
    },
    runAlone: runTogether,
    weight: (unit) => unit.length,
    maxWeight: MAX_BATCH,
    gatherTurn: true,
  });

  return {
    write(query) {
      const unit = unitOfWork.getStore();
      if (unit?.open) {
        unit.queries.push(query);
        return Promise.resolve();
      }
      return enqueue([query]);
    },
    async together(work) {
      if (unitOfWork.getStore()?.open) return work();
      const unit: Unit = { queries: [], open: true };
      let result: Awaited<ReturnType<typeof work>>;
      try {
        result = await unitOfWork.run(unit, work);
      } finally {
        unit.open = false;
      }
      if (unit.queries.length > 0) await enqueue(unit.queries);
      return result;
    },
  };
}
