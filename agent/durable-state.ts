import type { ListTasksRequest, Task, TaskPushNotificationConfig } from '@a2a-js/sdk';
import { InMemoryPushNotificationStore, type PushNotificationStore, type ServerCallContext, type TaskStore } from '@a2a-js/sdk/server';
import { DatabasePushNotificationStore, DatabaseTaskStore } from '@a2a-js/sdk/server/database';
import { sql } from 'kysely';
import type { Database } from '../sandbox/storage/database.ts';
import { createConversations, createDatabaseConversations, type Conversations } from './conversations.ts';
import { createDatabaseTaskLedger, NO_LEDGER, type DatabaseTaskLedger, type LeaseTimes, type TaskLedger } from './task-ledger.ts';
import { createTaskStore, DEFAULT_TASK_RETENTION, type TaskRetention } from './task-store.ts';

/**
 * Where the agent keeps its work: in memory (gone with the process), or in
 * the database (sandbox/storage), where a restart or another agent process
 * finds it — A2A tasks and push configs in the SDK's own tables through its
 * `DatabaseTaskStore` / `DatabasePushNotificationStore`, conversations, and
 * the ledger of work in flight (agent/task-ledger.ts). Finished tasks and
 * idle conversations are deleted after the same retention either way.
 */

export interface AgentState {
  taskStore: TaskStore;
  pushStore: PushNotificationStore;
  conversations: Conversations;
  ledger: TaskLedger;
  /** Resolves once the database is open (at once in memory); the durable parts, if any. */
  durable: Promise<DurableState | undefined>;
  close(): void;
}

export interface DurableState {
  database: Database;
  ledger: DatabaseTaskLedger;
}

const TERMINAL_STATES = ['TASK_STATE_COMPLETED', 'TASK_STATE_FAILED', 'TASK_STATE_CANCELED', 'TASK_STATE_REJECTED'];

export function memoryState(retention: TaskRetention = DEFAULT_TASK_RETENTION): AgentState {
  const taskStore = createTaskStore(retention);
  return {
    taskStore,
    pushStore: new InMemoryPushNotificationStore(),
    conversations: createConversations({ maxAgeMs: retention.maxAgeMs }),
    ledger: NO_LEDGER,
    durable: Promise.resolve(undefined),
    close: () => taskStore.close(),
  };
}

/**
 * The database-backed state. `database` may still be opening (PGlite's first
 * start takes seconds): every store waits for it, so the agent can listen at once.
 */
export function databaseState(
  database: Database | Promise<Database>,
  retention: TaskRetention = DEFAULT_TASK_RETENTION,
  lease?: LeaseTimes,
): AgentState {
  const opened = Promise.resolve(database);
  const parts = opened.then((db) => {
    const conversations = createDatabaseConversations(db.db, { maxAgeMs: retention.maxAgeMs });
    return {
      database: db,
      taskStore: new DatabaseTaskStore(db.db),
      pushStore: new DatabasePushNotificationStore(db.db),
      conversations,
      ledger: createDatabaseTaskLedger(db.db, lease),
      sweep: async () => {
        await sweepTasks(db, retention);
        await conversations.sweep();
      },
    };
  });
  // A database that cannot be opened is reported by whoever opened it; the stores then reject.
  parts.catch(() => undefined);

  let closed = false;
  const timer = setInterval(
    () => {
      void parts.then((p) => (closed ? undefined : p.sweep())).catch(() => undefined);
    },
    Math.max(1000, Math.min(retention.maxAgeMs, 60_000)),
  );
  timer.unref();

  const taskStore: TaskStore = {
    save: async (task: Task, context: ServerCallContext) => (await parts).taskStore.save(task, context),
    load: async (taskId: string, context: ServerCallContext) => (await parts).taskStore.load(taskId, context),
    list: async (params: ListTasksRequest, context: ServerCallContext) => (await parts).taskStore.list(params, context),
  };
  const pushStore: PushNotificationStore = {
    save: async (taskId: string, context: ServerCallContext, config: TaskPushNotificationConfig) =>
      (await parts).pushStore.save(taskId, context, config),
    load: async (taskId: string, context: ServerCallContext) => (await parts).pushStore.load(taskId, context),
    loadWithMetadata: async (taskId: string, context: ServerCallContext) => (await parts).pushStore.loadWithMetadata(taskId, context),
    delete: async (taskId: string, context: ServerCallContext, configId?: string) => (await parts).pushStore.delete(taskId, context, configId),
  };
  const conversations: Conversations = {
    get: async (owner, contextId) => (await parts).conversations.get(owner, contextId),
    set: async (owner, contextId, contents) => (await parts).conversations.set(owner, contextId, contents),
  };
  const ledger: TaskLedger = {
    started: async (run) => (await parts).ledger.started(run),
    consentPending: async (consent) => (await parts).ledger.consentPending(consent),
    consentSettled: async (authReqId) => (await parts).ledger.consentSettled(authReqId),
    finished: async (run) => (await parts).ledger.finished(run),
  };
  return {
    taskStore,
    pushStore,
    conversations,
    ledger,
    durable: parts.then((p) => ({ database: p.database, ledger: p.ledger })),
    close() {
      closed = true;
      clearInterval(timer);
    },
  };
}

/**
 * Deletes finished tasks (and their push configs) past `retention`: older
 * than `maxAgeMs`, or beyond the newest `maxFinished`. Unfinished tasks never.
 */
export async function sweepTasks(database: Database, retention: TaskRetention, now = Date.now()): Promise<void> {
  const cutoff = now - retention.maxAgeMs;
  await sql`
    with gone as (
      delete from tasks where (tenant, owner, id) in (
        select tenant, owner, id from tasks where status_state = any(${TERMINAL_STATES})
          and (status_last_updated < ${cutoff}
            or (tenant, owner, id) in (
              select tenant, owner, id from tasks where status_state = any(${TERMINAL_STATES})
              order by status_last_updated desc, id desc offset ${retention.maxFinished}))
      ) returning tenant, owner, id)
    delete from push_notification_configs p using gone g
    where p.tenant = g.tenant and p.owner = g.owner and p.task_id = g.id`.execute(database.db);
}
