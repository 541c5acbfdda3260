import { Task, TaskPushNotificationConfig, TaskState } from '@a2a-js/sdk';
import { ServerCallContext } from '@a2a-js/sdk/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../sandbox/storage/database.ts';
import { databaseState, type AgentState } from '../durable-state.ts';

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
