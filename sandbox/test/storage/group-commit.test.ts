import { describe, expect, it } from 'vitest';
import { createGroupCommit } from '../../storage/group-commit.ts';

/** A store that records each call and fails any group or member holding `bad`. */
function recordingStore() {
  const calls: string[][] = [];
  let holders = 0;
  let overlapped = false;
  const enter = async <X>(work: () => Promise<X>) => {
    if (holders > 0) overlapped = true;
    holders += 1;
    try {
      return await work();
    } finally {
      holders -= 1;
    }
  };
  return {
    calls,
    overlapped: () => overlapped,
    enter,
    runGroup: async (members: readonly string[]) => {
      calls.push([...members]);
      await new Promise((resolve) => setImmediate(resolve));
      if (members.includes('bad')) throw new Error('the group broke');
      return members.map((m) => m.toUpperCase());
    },
    runAlone: async (member: string) => {
      calls.push([member]);
      await new Promise((resolve) => setImmediate(resolve));
      if (member === 'bad') throw new Error(`${member} broke`);
      return member.toUpperCase();
    },
  };
}

describe('group commit', () => {
  it('runs what is asked for in one run as one group, and what comes meanwhile as the next, in order', async () => {
    const store = recordingStore();
    const run = createGroupCommit({ ...store, maxWeight: 10 });
    const first = [run('a'), run('b'), run('c')];
    // Asked for while the first group runs: they wait and go together.
    await new Promise((resolve) => setImmediate(resolve));
    const second = [run('d'), run('e')];
    expect(await Promise.all([...first, ...second])).toEqual(['A', 'B', 'C', 'D', 'E']);
    expect(store.calls).toEqual([['a', 'b', 'c'], ['d', 'e']]);
  });

  it('fails only the bad member of a group that failed, running the others on their own', async () => {
    const store = recordingStore();
    const run = createGroupCommit({ ...store, maxWeight: 10 });
    const results = await Promise.allSettled([run('a'), run('bad'), run('c')]);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual(['A', 'bad broke', 'C']);
    expect(store.calls).toEqual([['a', 'bad', 'c'], ['a'], ['bad'], ['c']]);
  });

  it('keeps groups within their weight, whole members only, a heavy member going alone', async () => {
    const store = recordingStore();
    const run = createGroupCommit({ ...store, maxWeight: 4, weight: (member: string) => member.length });
    await Promise.all(['aa', 'bb', 'c', 'dddddd', 'e'].map((m) => run(m)));
    expect(store.calls).toEqual([['aa', 'bb'], ['c'], ['dddddd'], ['e']]);
  });

  it('holds `exclusive` for a whole group, retries included, and never for two groups at once', async () => {
    const store = recordingStore();
    let inside = false;
    const seenOutside: string[] = [];
    const run = createGroupCommit({
      runGroup: (members: readonly string[]) => (inside ? store.runGroup(members) : Promise.reject(new Error('outside'))),
      runAlone: (member: string) => {
        if (!inside) seenOutside.push(member);
        return store.runAlone(member);
      },
      maxWeight: 2,
      exclusive: (work) =>
        store.enter(async () => {
          inside = true;
          try {
            return await work();
          } finally {
            inside = false;
          }
        }),
    });
    await Promise.allSettled(['a', 'bad', 'c', 'd', 'e'].map((m) => run(m)));
    expect(seenOutside).toEqual([]);
    expect(store.overlapped()).toBe(false);
    expect(store.calls).toEqual([['a', 'bad'], ['a'], ['bad'], ['c', 'd'], ['e']]);
  });

  it('with gatherTurn, starts after the event loop turn: what the rest of the turn asks for joins the first group', async () => {
    const later = async (gatherTurn: boolean) => {
      const store = recordingStore();
      const run = createGroupCommit({ ...store, maxWeight: 10, gatherTurn });
      const first = run('a');
      // Still the same turn: a few promise continuations later (as a handler's next step would be).
      for (let i = 0; i < 5; i++) await Promise.resolve();
      await Promise.all([first, run('b')]);
      return store.calls;
    };
    expect(await later(true)).toEqual([['a', 'b']]);
    expect(await later(false)).toEqual([['a'], ['b']]);
  });
});
