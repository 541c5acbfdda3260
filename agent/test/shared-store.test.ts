import { Task, TaskPushNotificationConfig, TaskState } from '@a2a-js/sdk';
import { ServerCallContext } from '@a2a-js/sdk/server';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openDatabase, type Database } from '../../sandbox/storage/database.ts';
import { startPostgresServer, type PostgresServer } from '../../sandbox/test/postgres-server.ts';
import { waitUntil } from '../../sandbox/test/processes.ts';
import { databaseState, lateProgress, type AgentState } from '../durable-state.ts';
import { countingReads } from './counting-reads.ts';

/**
 * The agent's stores on a PostgreSQL server that several agent processes share (each process here is an
 * `AgentState` of its own on its own connections): what a process remembers of the tasks it works on,
 * and how it learns that another process changed them.
 */

const caller = (userName: string) => new ServerCallContext({ user: { isAuthenticated: true, userName }, requestedVersion: '1.0' });
const alice = caller('alice@clients');
const bob = caller('bob@clients');
const task = (id: string, state: string) => Task.fromJSON({ id, contextId: 'ctx-1', status: { state, timestamp: '2026-12-05T12:00:00.000Z' } });
const hook = (taskId: string, id: string) => TaskPushNotificationConfig.fromJSON({ taskId, id, url: `https://hooks.example/${id}` });

let postgres: PostgresServer;
const opened: { close(): Promise<void> | void }[] = [];
beforeAll(async () => {
  postgres = await startPostgresServer();
});
afterAll(async () => {
  for (const item of opened.reverse()) await item.close();
  await postgres?.stop();
});

async function open(url: string): Promise<{ database: Database; reads: Map<string, number>; state: AgentState }> {
  const database = await openDatabase({ kind: 'postgres', url });
  opened.push(database);
  const counted = countingReads(database);
  const state = databaseState(counted.database);
  opened.push(state);
  await state.durable;
  return { database, reads: counted.reads, state };
}

async function storedState(database: Database, id: string): Promise<string | null | undefined> {
  const row = await database.db.selectFrom('tasks').select('status_state').where('id', '=', id).executeTakeFirst();
  return row?.status_state;
}

describe('a finished task', () => {
  it('stays finished in the database whatever is saved after it, on the embedded database too', async () => {
    for (const database of [await openDatabase({ kind: 'postgres', url: await postgres.createDatabase() }), await openDatabase({ kind: 'pglite', dataDir: undefined })]) {
      const state = databaseState(database);
      try {
        const id = `0c5e1f7a-3b2d-4e8f-9a6b-1c2d3e4f5a6${database.kind === 'pglite' ? 'b' : 'c'}`;
        await state.taskStore.save(task(id, 'TASK_STATE_WORKING'), alice);
        await state.taskStore.save(task(id, 'TASK_STATE_CANCELED'), alice);
        await state.taskStore.save(task(id, 'TASK_STATE_COMPLETED'), alice);
        await state.taskStore.save(task(id, 'TASK_STATE_WORKING'), alice);
        expect(await storedState(database, id)).toBe('TASK_STATE_CANCELED');
      } finally {
        state.close();
        await database.close();
      }
    }
  });
});

describe('the stores of agent processes sharing one PostgreSQL server', () => {
  it('answer the tasks a process works on, and their push configs, from memory, to their own caller only', async () => {
    const { reads, state } = await open(await postgres.createDatabase());
    const id = '1d6f2a8b-4c3e-4f9a-8b7c-2d3e4f5a6b7c';
    await state.taskStore.save(task(id, 'TASK_STATE_WORKING'), alice);
    await state.pushStore.save(id, alice, hook(id, 'hook-1'));
    reads.clear();
    for (let i = 0; i < 3; i++) {
      expect((await state.taskStore.load(id, alice))?.status?.state).toBe(TaskState.TASK_STATE_WORKING);
      expect((await state.pushStore.load(id, alice)).map((c) => c.id)).toEqual(['hook-1']);
    }
    expect(Object.fromEntries(reads)).toEqual({ push_notification_configs: 1 });
    // A copy: changing what was read changes nothing remembered.
    const copy = await state.taskStore.load(id, alice);
    copy!.status!.state = TaskState.TASK_STATE_CANCELED;
    expect((await state.taskStore.load(id, alice))?.status?.state).toBe(TaskState.TASK_STATE_WORKING);
    // Another caller's read goes to the database, which scopes it.
    expect(await state.taskStore.load(id, bob)).toBeUndefined();
    expect(await state.pushStore.load(id, bob)).toEqual([]);

    // Waiting for its caller, the task may go on elsewhere: read from the database again.
    await state.taskStore.save(task(id, 'TASK_STATE_INPUT_REQUIRED'), alice);
    reads.clear();
    expect((await state.taskStore.load(id, alice))?.status?.state).toBe(TaskState.TASK_STATE_INPUT_REQUIRED);
    expect(reads.get('tasks')).toBe(1);
  });

  it('see what another process changed: a task it ended, once the relay says so, and push configs at once', async () => {
    const url = await postgres.createDatabase();
    const [first, second] = [await open(url), await open(url)];
    const id = '2e7a3b9c-5d4f-4a0b-9c8d-3e4f5a6b7c8d';
    await first.state.taskStore.save(task(id, 'TASK_STATE_AUTH_REQUIRED'), alice);
    expect(await first.state.pushStore.load(id, alice)).toEqual([]);

    // A webhook set on the second process: the first hears of it through PostgreSQL and reads it.
    await second.state.pushStore.save(id, alice, hook(id, 'hook-2'));
    await waitUntil(async () => ((await first.state.pushStore.load(id, alice)).length === 1 ? true : undefined), 10_000);
    expect((await first.state.pushStore.load(id, alice)).map((c) => c.id)).toEqual(['hook-2']);

    // CancelTask on the second process ends the task; the relay tells the first, which reads it again.
    await second.state.taskStore.save(task(id, 'TASK_STATE_CANCELED'), alice);
    first.state.changedElsewhere('alice@clients', id);
    await waitUntil(async () => ((await first.state.taskStore.load(id, alice))?.status?.state === TaskState.TASK_STATE_CANCELED ? true : undefined), 10_000);
    // An event the first saves from what it knew before stays unwritten: the ending holds.
    await first.state.taskStore.save(task(id, 'TASK_STATE_WORKING'), alice);
    expect(await storedState(first.database, id)).toBe('TASK_STATE_CANCELED');
  });
});

describe('a working task’s progress', () => {
  it('is written late and only when nothing followed it, each task’s writes in the order asked', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const asked: string[] = [];
      const held = new Map<string, () => void>();
      const late = lateProgress(
        (written) =>
          new Promise<void>((resolve) => {
            const state = String(written.status?.state);
            asked.push(`${written.id}:${state}`);
            held.set(`${written.id}:${state}`, resolve);
          }),
      );
      const at = (id: string, state: TaskState) => Task.fromJSON({ id, contextId: 'ctx-1', status: { state: TaskState[state] } });
      const settle = (key: string) => held.get(key)!();

      // Followed within the delay: never written on its own.
      late.later('a', at('a', TaskState.TASK_STATE_WORKING), alice);
      const answered = late.now('a', at('a', TaskState.TASK_STATE_INPUT_REQUIRED), alice);
      await vi.advanceTimersByTimeAsync(1000);
      expect(asked).toEqual([`a:${TaskState.TASK_STATE_INPUT_REQUIRED}`]);
      settle(asked[0]!);
      await answered;

      // Not followed: written after the delay; the next state waits for that write, another task does not.
      late.later('b', at('b', TaskState.TASK_STATE_WORKING), alice);
      await vi.advanceTimersByTimeAsync(1000);
      expect(asked.slice(1)).toEqual([`b:${TaskState.TASK_STATE_WORKING}`]);
      let ended = false;
      const ending = late.now('b', at('b', TaskState.TASK_STATE_COMPLETED), alice).then(() => (ended = true));
      void late.now('c', at('c', TaskState.TASK_STATE_AUTH_REQUIRED), alice);
      await vi.advanceTimersByTimeAsync(0);
      expect(asked.slice(2)).toEqual([`c:${TaskState.TASK_STATE_AUTH_REQUIRED}`]);
      settle(`b:${TaskState.TASK_STATE_WORKING}`);
      await vi.advanceTimersByTimeAsync(0);
      expect(asked.slice(3)).toEqual([`b:${TaskState.TASK_STATE_COMPLETED}`]);
      expect(ended).toBe(false);
      settle(`b:${TaskState.TASK_STATE_COMPLETED}`);
      await ending;

      // Dropped (another process wrote the task): never written.
      late.later('d', at('d', TaskState.TASK_STATE_WORKING), alice);
      late.drop('d');
      await vi.advanceTimersByTimeAsync(1000);
      expect(asked.filter((key) => key.startsWith('d:'))).toEqual([]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('is remembered at once and written later on PostgreSQL, never after the state that follows it', async () => {
    const { database, state } = await open(await postgres.createDatabase());
    const id = '3f8b4c0d-6e5a-4b1c-8d9e-4f5a6b7c8d9e';
    await state.taskStore.save(task(id, 'TASK_STATE_AUTH_REQUIRED'), alice);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      await state.taskStore.save(task(id, 'TASK_STATE_WORKING'), alice);
      expect((await state.taskStore.load(id, alice))?.status?.state).toBe(TaskState.TASK_STATE_WORKING);
      expect(await storedState(database, id)).toBe('TASK_STATE_AUTH_REQUIRED');
      await state.taskStore.save(task(id, 'TASK_STATE_INPUT_REQUIRED'), alice);
      expect(await storedState(database, id)).toBe('TASK_STATE_INPUT_REQUIRED');
      // Its (fake) timer runs out, with nothing left to write: the next progress sets a real one.
      await vi.advanceTimersByTimeAsync(1000);
    } finally {
      vi.useRealTimers();
    }
    // Progress with nothing after it is written on its own (the first after INPUT_REQUIRED is written at once).
    await state.taskStore.save(task(id, 'TASK_STATE_WORKING'), alice);
    const later = Task.fromJSON({ id, contextId: 'ctx-1', status: { state: 'TASK_STATE_WORKING', timestamp: '2026-12-05T12:00:09.000Z' } });
    await state.taskStore.save(later, alice);
    const updated = async () => (await database.db.selectFrom('tasks').select('status_last_updated').where('id', '=', id).executeTakeFirst())?.status_last_updated;
    await waitUntil(async () => (Number(await updated()) === Date.parse('2026-12-05T12:00:09.000Z') ? true : undefined), 10_000);
  });
});
