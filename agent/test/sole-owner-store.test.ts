import { ListTasksRequest, Task, TaskPushNotificationConfig, TaskState } from '@a2a-js/sdk';
import { ServerCallContext } from '@a2a-js/sdk/server';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openDatabase, type Database } from '../../sandbox/storage/database.ts';
import { waitUntil } from '../../sandbox/test/processes.ts';
import { databaseState, type AgentState } from '../durable-state.ts';
import { countingReads } from './counting-reads.ts';

const caller = (userName: string) => new ServerCallContext({ user: { isAuthenticated: true, userName }, requestedVersion: '1.0' });
const alice = caller('alice@clients');
const bob = caller('bob@clients');

const task = (id: string, state: string) =>
  Task.fromJSON({ id, contextId: 'ctx-1', status: { state, timestamp: '2026-12-04T12:00:00.000Z' } });

let database: Database;
let state: AgentState;
beforeAll(async () => {
  database = await openDatabase({ kind: 'pglite', dataDir: undefined });
  state = databaseState(database);
});
afterAll(async () => {
  state?.close();
  await database?.close();
});

describe('the task stores of an agent that owns its embedded database alone', () => {
  it('answers a working task from memory to its own caller only, and a finished one from the database', async () => {
    const id = '5d1f3c2a-8b7e-4f60-9a1b-2c3d4e5f6a7b';
    await state.taskStore.save(task(id, 'TASK_STATE_AUTH_REQUIRED'), alice);
    const loaded = await state.taskStore.load(id, alice);
    expect(loaded?.status?.state).toBe(TaskState.TASK_STATE_AUTH_REQUIRED);
    // A copy: changing what was read changes nothing stored.
    loaded!.status!.state = TaskState.TASK_STATE_CANCELED;
    expect((await state.taskStore.load(id, alice))?.status?.state).toBe(TaskState.TASK_STATE_AUTH_REQUIRED);
    expect(await state.taskStore.load(id, bob)).toBeUndefined();

    await state.taskStore.save(task(id, 'TASK_STATE_COMPLETED'), alice);
    expect((await state.taskStore.load(id, alice))?.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
    const rows = await database.db.selectFrom('tasks').select('status_state').where('id', '=', id).execute();
    expect(rows).toEqual([{ status_state: 'TASK_STATE_COMPLETED' }]);
    expect(await state.taskStore.load(id, bob)).toBeUndefined();
  });

  it('reads push configs again after they change', async () => {
    const id = '6e2a4d3b-9c8f-4a71-8b2c-3d4e5f6a7b8c';
    await state.taskStore.save(task(id, 'TASK_STATE_WORKING'), alice);
    expect(await state.pushStore.load(id, alice)).toEqual([]);
    const config = TaskPushNotificationConfig.fromJSON({ taskId: id, id: 'hook-1', url: 'https://hooks.example/a2a' });
    await state.pushStore.save(id, alice, config);
    expect((await state.pushStore.load(id, alice)).map((c) => c.id)).toEqual(['hook-1']);
    expect(await state.pushStore.load(id, bob)).toEqual([]);
    await state.pushStore.delete(id, alice, 'hook-1');
    expect(await state.pushStore.load(id, alice)).toEqual([]);
  });
});


describe('finished tasks in the database, beyond TASK_RETENTION_MAX', () => {
  it('are forgotten by the time the next final state is saved, as in memory, not at the next sweep of the timer', async () => {
    const own = await openDatabase({ kind: 'pglite', dataDir: undefined });
    // An hour's retention: the timer's sweep (every minute then) never runs during the test.
    const kept = databaseState(own, { maxAgeMs: 3_600_000, maxFinished: 2 });
    try {
      const ids = ['a', 'b', 'c', 'd', 'e'].map((letter) => `7f3b5e4c-0d9a-4b82-9c3d-4e5f6a7b8c9${letter}`);
      for (const [i, id] of ids.entries()) {
        await kept.taskStore.save(task(id, 'TASK_STATE_WORKING'), alice);
        await kept.taskStore.save(
          Task.fromJSON({ id, contextId: 'ctx-1', status: { state: 'TASK_STATE_COMPLETED', timestamp: new Date(Date.now() + i * 1000).toISOString() } }),
          alice,
        );
        const listed = await kept.taskStore.list(ListTasksRequest.fromJSON({ pageSize: 10 }), alice);
        expect(listed.totalSize).toBe(Math.min(i + 1, 2));
      }
      const left = await kept.taskStore.list(ListTasksRequest.fromJSON({ pageSize: 10 }), alice);
      expect(left.tasks.map((t) => t.id).sort()).toEqual(ids.slice(-2).sort());
    } finally {
      kept.close();
      await own.close();
    }
  });
});


describe('what the stores of a sole owner read from the database', () => {
  it('asks nothing about a task, push configs or a conversation that were never written, and still reads those that were', async () => {
    const counted = countingReads(database);
    const first = databaseState(counted.database);
    try {
      await first.durable;
      counted.reads.clear();
      const id = '7f3b5e4c-0d9a-4b82-9c3d-4e5f6a7b8c9d';
      expect(await first.taskStore.load(id, alice)).toBeUndefined();
      expect(await first.pushStore.loadWithMetadata!(id, alice)).toEqual([]);
      expect(await first.conversations.get('alice@clients', 'ctx-new')).toEqual([]);
      expect([...counted.reads]).toEqual([]);

      await first.taskStore.save(task(id, 'TASK_STATE_COMPLETED'), alice);
      await first.pushStore.save(id, alice, TaskPushNotificationConfig.fromJSON({ taskId: id, id: 'hook-2', url: 'https://hooks.example/a2a' }));
      await first.conversations.set('alice@clients', 'ctx-new', [{ role: 'user', parts: [{ text: 'Is jdoe@staff0.com an employee?' }] }]);
      expect((await first.taskStore.load(id, alice))?.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
      expect((await first.pushStore.loadWithMetadata!(id, alice)).map((stored) => stored.config.id)).toEqual(['hook-2']);
      expect(await first.conversations.get('alice@clients', 'ctx-new')).toHaveLength(1);
      expect(counted.reads.get('tasks')).toBe(1);
      expect(counted.reads.get('push_notification_configs')).toBe(1);
      expect(counted.reads.get('conversations')).toBe(1);
    } finally {
      first.close();
    }

    // The next start of the agent on the same folder knows what the last one wrote.
    const second = databaseState(database);
    try {
      expect((await second.taskStore.load('7f3b5e4c-0d9a-4b82-9c3d-4e5f6a7b8c9d', alice))?.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
      expect((await second.pushStore.load('7f3b5e4c-0d9a-4b82-9c3d-4e5f6a7b8c9d', alice)).map((config) => config.id)).toEqual(['hook-2']);
      expect(await second.conversations.get('alice@clients', 'ctx-new')).toHaveLength(1);
      expect(await second.taskStore.load('7f3b5e4c-0d9a-4b82-9c3d-4e5f6a7b8c9d', bob)).toBeUndefined();
    } finally {
      second.close();
    }
  });

  it('forgets what the retention sweep deleted', async () => {
    const own = await openDatabase({ kind: 'pglite', dataDir: undefined });
    const counted = countingReads(own);
    // Every finished task is past retention: the sweep (every second at this retention) deletes it.
    const swept = databaseState(counted.database, { maxAgeMs: 1000, maxFinished: 0 });
    try {
      const id = '8a4c6f5d-1e0b-4c93-8d4e-5f6a7b8c9d0e';
      await swept.taskStore.save(task(id, 'TASK_STATE_COMPLETED'), alice);
      // Until the sweep has deleted the task.
      await waitUntil(async () => ((await own.db.selectFrom('tasks').select('id').where('id', '=', id).execute()).length === 0 ? true : undefined));
      counted.reads.clear();
      expect(await swept.taskStore.load(id, alice)).toBeUndefined();
      expect(counted.reads.get('tasks')).toBeUndefined();
    } finally {
      swept.close();
      await own.close();
    }
  });
});

describe('how a sole owner writes a task', () => {
  it('writes a working task’s progress and its conversation in the background, in order: the state a caller acts on is awaited and never older in the database', async () => {
    const id = '9b5d7a6e-2f1c-4da4-9e5f-6a7b8c9d0e1f';
    const other = '1d7f9c8a-4b3e-4fc6-9a7b-8c9d0e1f2a3b';
    await state.taskStore.save(task(id, 'TASK_STATE_WORKING'), alice);
    await state.taskStore.save(task(other, 'TASK_STATE_WORKING'), alice);
    const stateInDatabase = async (taskId: string) =>
      (await database.db.selectFrom('tasks').select('status_state').where('id', '=', taskId).executeTakeFirst())?.status_state;

    let answered = false;
    // While a transaction holds the embedded database's one connection, no write can be committed.
    await database.db.transaction().execute(async () => {
      // Progress resolves at once (this would never return otherwise: the write waits for the connection) ...
      await state.taskStore.save(task(id, 'TASK_STATE_WORKING'), alice);
      expect((await state.taskStore.load(id, alice))?.status?.state).toBe(TaskState.TASK_STATE_WORKING);
      // ... and a state the caller may act on waits for its write.
      void state.taskStore.save(task(id, 'TASK_STATE_INPUT_REQUIRED'), alice).then(() => (answered = true));
      await state.taskStore.save(task(other, 'TASK_STATE_WORKING'), alice);
      expect(answered).toBe(false);
    });
    await waitUntil(async () => (answered ? true : undefined));
    expect(await stateInDatabase(id)).toBe('TASK_STATE_INPUT_REQUIRED');
    expect((await state.taskStore.load(id, alice))?.status?.state).toBe(TaskState.TASK_STATE_INPUT_REQUIRED);

    // The conversation is written the same way: asked for before the task's next state, written with or before it.
    let asked = false;
    await database.db.transaction().execute(async () => {
      await state.conversations.set('alice@clients', 'ctx-ordered', [{ role: 'user', parts: [{ text: 'Is jdoe@staff0.com an employee?' }] }]);
      void state.taskStore.save(task(id, 'TASK_STATE_INPUT_REQUIRED'), alice).then(() => (asked = true));
      await state.taskStore.save(task(other, 'TASK_STATE_WORKING'), alice);
      expect(asked).toBe(false);
    });
    await waitUntil(async () => (asked ? true : undefined));
    const kept = await database.db.selectFrom('conversations').select('context_id').where('context_id', '=', 'ctx-ordered').execute();
    expect(kept).toEqual([{ context_id: 'ctx-ordered' }]);

    // A first save is awaited, progress or not: the task exists in the database once anyone hears of it.
    const fresh = '0c6e8b7f-3a2d-4eb5-8f6a-7b8c9d0e1f2a';
    let created = false;
    await database.db.transaction().execute(async () => {
      void state.taskStore.save(task(fresh, 'TASK_STATE_WORKING'), alice).then(() => (created = true));
      await state.taskStore.save(task(other, 'TASK_STATE_WORKING'), alice);
      expect(created).toBe(false);
    });
    await waitUntil(async () => (created ? true : undefined));
  });

  it('writes progress that nothing followed within its delay, before the state that follows it', async () => {
    // An agent state of its own: no progress of another test is waiting to be written.
    const own = await openDatabase({ kind: 'pglite', dataDir: undefined });
    const fresh = databaseState(own);
    try {
      const id = '2e8a0d9b-5c4f-4ad7-8b8c-9d0e1f2a3b4c';
      const stateInDatabase = async () => (await own.db.selectFrom('tasks').select('status_state').where('id', '=', id).executeTakeFirst())?.status_state;
      await fresh.taskStore.save(task(id, 'TASK_STATE_WORKING'), alice);
      let answered = false;
      await own.db.transaction().execute(async () => {
        vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
        try {
          await fresh.taskStore.save(task(id, 'TASK_STATE_WORKING'), alice);
          // The delay passes: the progress's write is asked for now, behind the transaction.
          vi.advanceTimersByTime(1000);
        } finally {
          vi.useRealTimers();
        }
        void fresh.taskStore.save(task(id, 'TASK_STATE_AUTH_REQUIRED'), alice).then(() => (answered = true));
      });
      await waitUntil(async () => (answered ? true : undefined));
      expect(await stateInDatabase()).toBe('TASK_STATE_AUTH_REQUIRED');

      // Progress with nothing after it is written on its own.
      await fresh.taskStore.save(task(id, 'TASK_STATE_WORKING'), alice);
      await waitUntil(async () => ((await stateInDatabase()) === 'TASK_STATE_WORKING' ? true : undefined));
    } finally {
      fresh.close();
      await own.close();
    }
  });
});
