/**
 * Group commit, the one mechanism behind the write queue (a service's writes,
 * in units of one or more statements, write-queue.ts) and PGlite's statement
 * groups (single Kysely statements, pglite-thread.ts). Members asked for
 * while a group runs wait and run together as the next group, in the order
 * they were asked for: one transaction (and on PGlite one message to its
 * thread) for many callers, each of whom still gets its own result once its
 * own member is done. A group that fails is run again member by member, so a
 * bad member fails only its own caller.
 */

export interface GroupCommitOptions<T, R> {
  /** Runs two or more members together, all or none; resolves to their results in order. */
  runGroup(members: readonly T[]): Promise<readonly R[]>;
  /** Runs one member on its own: a group of one, and each member of a group that failed. */
  runAlone(member: T): Promise<R>;
  /** A group's members weigh `maxWeight` at most together (a heavier member goes alone). */
  maxWeight: number;
  /** A member's weight (default 1). */
  weight?(member: T): number;
  /** Wraps the running of each group, its retries included (e.g. holding the one connection). */
  exclusive?<X>(work: () => Promise<X>): Promise<X>;
  /**
   * Starts the first group after this turn of the event loop rather than at once, so that what one
   * request (and the requests answered with it) asks for goes in one group.
   */
  gatherTurn?: boolean;
}

export type GroupCommit<T, R> = (member: T) => Promise<R>;

interface Waiting<T, R> {
  member: T;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
}

export function createGroupCommit<T, R>(options: GroupCommitOptions<T, R>): GroupCommit<T, R> {
  const weight = options.weight ?? (() => 1);
  const exclusive = options.exclusive ?? (<X>(work: () => Promise<X>) => work());
  const waiting: Waiting<T, R>[] = [];
  let draining = false;

  /** The next group: whole members, up to `maxWeight`, at least one. */
  const nextGroup = (): Waiting<T, R>[] => {
    let total = weight(waiting[0]!.member);
    let count = 1;
    while (count < waiting.length && total + weight(waiting[count]!.member) <= options.maxWeight) {
      total += weight(waiting[count]!.member);
      count += 1;
    }
    return waiting.splice(0, count);
  };

  const alone = (entry: Waiting<T, R>) => options.runAlone(entry.member).then(entry.resolve, entry.reject);

  const run = async (group: Waiting<T, R>[]) => {
    if (group.length === 1) return alone(group[0]!);
    let results: readonly R[];
    try {
      results = await options.runGroup(group.map((entry) => entry.member));
    } catch {
      for (const entry of group) await alone(entry);
      return;
    }
    group.forEach((entry, i) => entry.resolve(results[i]!));
  };

  const drain = async () => {
    try {
      // At least one tick: members asked for in the same run as the first go in its group.
      await null;
      while (waiting.length > 0) {
        // Taken inside `exclusive`: whatever arrived while waiting for it joins this group.
        await exclusive(() => run(nextGroup()));
      }
    } finally {
      draining = false;
    }
  };

  return (member) =>
    new Promise<R>((resolve, reject) => {
      waiting.push({ member, resolve, reject });
      if (draining) return;
      draining = true;
      if (options.gatherTurn) setImmediate(() => void drain());
      else void drain();
    });
}
