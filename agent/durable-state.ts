import { randomUUID } from 'node:crypto';
import { TaskState, type ListTasksRequest, type Task, type TaskPushNotificationConfig } from '@a2a-js/sdk';
import {
  InMemoryPushNotificationStore,
  type PushNotificationStore,
  type ServerCallContext,
  type StoredPushNotificationConfig,
  type TaskStore,
} from '@a2a-js/sdk/server';
import { DatabasePushNotificationStore, DatabaseTaskStore } from '@a2a-js/sdk/server/database';
import { expressionBuilder, InsertQueryNode, OnConflictNode, sql, TableNode, type KyselyPlugin } from 'kysely';
import type { Database } from '../sandbox/storage/database.ts';
import { createGroupCommit } from '../sandbox/storage/group-commit.ts';
import type { DatabaseSchema } from '../sandbox/storage/schema.ts';
import { createConversations, createDatabaseConversations, soleOwnerConversations, type Conversations } from './conversations.ts';
import { createDatabaseTaskLedger, NO_LEDGER, type DatabaseTaskLedger, type LeaseTimes, type TaskLedger } from './task-ledger.ts';
import { createTaskStore, DEFAULT_TASK_RETENTION, isTerminal, ownerOf, scopedTaskKey, taskKey, type TaskRetention } from './task-store.ts';

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
  /** Another agent process wrote this task (or changed its push configs): what this one remembers of it is dropped. */
  changedElsewhere(owner: string, taskId: string): void;
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
    changedElsewhere: () => {},
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
  const parts = opened.then(async (db) => {
    const stores = {
      taskStore: new DatabaseTaskStore(db.db.withPlugin(FINISHED_TASKS_STAY_FINISHED)),
      pushStore: new DatabasePushNotificationStore(db.db),
    };
    const conversations = createDatabaseConversations(db.db, { maxAgeMs: retention.maxAgeMs });
    // A PGlite folder belongs to this process alone: nobody else changes its tasks, so reads may come from memory.
    if (db.kind === 'pglite') {
      const sole = await soleOwnerStores(db, stores.taskStore, stores.pushStore);
      const soleConversations = await soleOwnerConversations(conversations);
      return {
        database: db,
        finishedAtOpen: await countFinishedTasks(db),
        ...sole,
        conversations: soleConversations,
        ledger: createDatabaseTaskLedger(db.db, lease),
        sweep: async () => {
          sole.forget(await sweepTasks(db, retention));
          await soleConversations.sweep();
          return countFinishedTasks(db);
        },
      };
    }
    const runner = await runnerStores(db, stores.taskStore, stores.pushStore);
    return {
      database: db,
      finishedAtOpen: await countFinishedTasks(db),
      ...runner,
      conversations,
      ledger: createDatabaseTaskLedger(db.db, lease),
      sweep: async () => {
        await sweepTasks(db, retention);
        await conversations.sweep();
        return countFinishedTasks(db);
      },
    };
  });
  // A database that cannot be opened is reported by whoever opened it; the stores then reject.
  parts.catch(() => undefined);

  let closed = false;
  /**
   * Finished tasks are swept on a timer (their age) and, as in memory, before a task's final state is reported
   * when one more finished task would be beyond TASK_RETENTION_MAX: the finished tasks the last sweep left (or the
   * database held when opened) plus those finished since tell when. Sweeps asked for while one runs run together as the next (group-commit.ts).
   */
  let finishedHeld: number | undefined;
  let finishedSince = 0;
  const sweepOnce = async () => {
    finishedSince = 0;
    finishedHeld = await (await parts).sweep();
    return finishedHeld;
  };
  const sweepSoon = createGroupCommit<void, number>({
    runGroup: async (members) => {
      const left = await sweepOnce();
      return members.map(() => left);
    },
    runAlone: sweepOnce,
    maxWeight: Number.POSITIVE_INFINITY,
  });
  const finished = async () => {
    finishedSince += 1;
    finishedHeld ??= (await parts).finishedAtOpen;
    if (!closed && finishedHeld + finishedSince > retention.maxFinished) await sweepSoon().catch(() => undefined);
  };
  const timer = setInterval(
    () => {
      if (!closed) sweepSoon().catch(() => undefined);
    },
    Math.max(1000, Math.min(retention.maxAgeMs, 60_000)),
  );
  timer.unref();

  const taskStore: TaskStore = {
    save: async (task: Task, context: ServerCallContext) => {
      await (await parts).taskStore.save(task, context);
      if (isTerminal(task)) await finished();
    },
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
    changedElsewhere(owner, taskId) {
      void parts.then((p) => ('changedElsewhere' in p ? p.changedElsewhere(owner, taskId) : undefined)).catch(() => undefined);
    },
    close() {
      closed = true;
      clearInterval(timer);
    },
  };
}

/** Push configs remembered at most (per task, in its caller's scope); beyond it, the memory starts afresh. */
const MAX_REMEMBERED_PUSH_CONFIGS = 10_000;

/** A task's row key as the SDK's stores scope it: tenant, owner, id. */
export interface TaskRowKey {
  tenant: string;
  owner: string;
  id: string;
}

/**
 * The SDK's stores for a database only this process writes (its own PGlite folder). Every write goes to
 * the database; the SDK awaits each before it tells the caller of the event, except a working task's
 * progress (see `isProgress`), which is written in the background, or not at all when the task's next
 * save comes first. Reads are answered from memory where
 * memory knows the answer:
 * - the tasks still being worked on are kept whole;
 * - the keys of every task row are kept (read once at start, then kept up to date by `save` and the
 *   sweep), so the SDK's read of a task that does not exist yet, which every new task makes, costs no query;
 * - so are the keys of the tasks with push configs, and the configs of each such task once read.
 * The SDK reads a task and its push configs on every event it saves; at a thousand pending tasks those
 * reads were most of the embedded database's work. A finished task is read from the database again.
 */
async function soleOwnerStores(
  database: Database,
  taskStore: TaskStore,
  pushStore: DatabasePushNotificationStore,
): Promise<{ taskStore: TaskStore; pushStore: Required<PushNotificationStore>; forget(rows: readonly TaskRowKey[]): void }> {
  const working = new Map<string, Task>();
  const rows = await database.db.selectFrom('tasks').select(['tenant', 'owner', 'id']).execute();
  const stored = new Set(rows.map((row) => taskKey(row.tenant, row.owner, row.id)));
  // The tasks with push configs (most have none): their configs are read once, then kept until they change.
  const configRows = await database.db.selectFrom('push_notification_configs').select(['tenant', 'owner', 'task_id']).execute();
  const withConfigs = new Set(configRows.map((row) => taskKey(row.tenant, row.owner, row.task_id)));
  const pushConfigs = new Map<string, StoredPushNotificationConfig[]>();
  const pushConfigsOf = async (taskId: string, context: ServerCallContext): Promise<StoredPushNotificationConfig[]> => {
    const key = scopedTaskKey(context, taskId);
    if (!withConfigs.has(key)) return [];
    const known = pushConfigs.get(key);
    if (known) return structuredClone(known);
    const configs = await pushStore.loadWithMetadata(taskId, context);
    if (pushConfigs.size >= MAX_REMEMBERED_PUSH_CONFIGS) pushConfigs.clear();
    pushConfigs.set(key, structuredClone(configs));
    return configs;
  };
  const late = lateProgress((task, context) => taskStore.save(task, context));
  return {
    taskStore: {
      async save(task, context) {
        const key = scopedTaskKey(context, task.id);
        if (isProgress(task) && working.has(key)) {
          // Progress of a task already written: kept in memory at once and written a little later, unless
          // the task's next save, which writes the whole task, comes first (it mostly does).
          working.set(key, structuredClone(task));
          late.later(key, task, context);
          return;
        }
        // Known before the write: a read meanwhile goes to the database, which answers either way.
        stored.add(key);
        await late.now(key, task, context);
        if (isTerminal(task)) {
          working.delete(key);
          pushConfigs.delete(key);
        } else {
          working.set(key, structuredClone(task));
        }
      },
      async load(taskId, context) {
        const key = scopedTaskKey(context, taskId);
        const task = working.get(key);
        if (task) return structuredClone(task);
        return stored.has(key) ? taskStore.load(taskId, context) : undefined;
      },
      list: (params, context) => taskStore.list(params, context),
    },
    pushStore: {
      async save(taskId, context, config) {
        const key = scopedTaskKey(context, taskId);
        withConfigs.add(key);
        pushConfigs.delete(key);
        await pushStore.save(taskId, context, config);
        // A read that began before the write may have kept the configs without this one.
        pushConfigs.delete(key);
      },
      load: async (taskId, context) => (await pushConfigsOf(taskId, context)).map((stored) => stored.config),
      loadWithMetadata: pushConfigsOf,
      async delete(taskId, context, configId) {
        const key = scopedTaskKey(context, taskId);
        pushConfigs.delete(key);
        await pushStore.delete(taskId, context, configId);
        pushConfigs.delete(key);
      },
    },
    forget(rows) {
      for (const row of rows) {
        const key = taskKey(row.tenant, row.owner, row.id);
        stored.delete(key);
        withConfigs.delete(key);
        pushConfigs.delete(key);
      }
    },
  };
}

/**
 * The database refuses to overwrite a finished task. The SDK reads a task before it saves the next event
 * and drops an event for a finished one, but another agent process on the same PostgreSQL server may
 * finish the task in between (CancelTask sent to it), and a process may save from what it remembers
 * (`runnerStores`): whichever ending is written first stays.
 */
const FINISHED_TASKS_STAY_FINISHED: KyselyPlugin = {
  transformQuery({ node }) {
    if (!InsertQueryNode.is(node) || node.onConflict?.updates === undefined || !isTasksTable(node.into)) return node;
    const unfinished = expressionBuilder<DatabaseSchema, 'tasks'>()('tasks.status_state', 'not in', TERMINAL_STATES).toOperationNode();
    return InsertQueryNode.cloneWith(node, { onConflict: OnConflictNode.cloneWithUpdateWhere(node.onConflict, unfinished) });
  },
  transformResult: async ({ result }) => result,
};

function isTasksTable(into: InsertQueryNode['into']): boolean {
  return into !== undefined && TableNode.is(into) && into.table.identifier.name === 'tasks';
}

/** A task being worked on here: not finished, and not waiting for its caller's answer (which may come to another process). */
function isRunning(task: Task): boolean {
  const state = task.status?.state;
  return state !== undefined && !isTerminal(task) && state !== TaskState.TASK_STATE_INPUT_REQUIRED;
}

/** Tasks and push configs remembered at most by `runnerStores`; beyond it, the memory starts afresh. */
const MAX_REMEMBERED_RUNNING = 10_000;
/** Where an agent process says it changed a task's push configs. */
const PUSH_CONFIG_CHANGES = 'agent_push_config_changes';

/**
 * The SDK's stores on a PostgreSQL server that several agent processes may share. Every write goes to the
 * database (a working task's progress a little later, `lateProgress`). The SDK reads a task and its push
 * configs on every event it saves; the tasks this process is working on (saved here, not finished, not
 * waiting for their caller) are kept in memory with their push configs, and those reads are answered from there. Nobody else writes such a task while this process
 * holds its lease, except to end it (CancelTask on another process, or a process taking over a lease that
 * lapsed): the relay hears of that (`changedElsewhere`), as it does of push configs changed on another
 * process (a NOTIFY on `PUSH_CONFIG_CHANGES`), and the memory of that task is dropped. The database
 * keeps a finished task finished whatever this process remembers (FINISHED_TASKS_STAY_FINISHED).
 */
async function runnerStores(
  database: Database,
  taskStore: TaskStore,
  pushStore: DatabasePushNotificationStore,
): Promise<{ taskStore: TaskStore; pushStore: Required<PushNotificationStore>; changedElsewhere(owner: string, taskId: string): void }> {
  /** By owner and task id (what the relay knows); the tenant is checked on reading. */
  const running = new Map<string, { tenant: string; task?: Task; configs?: StoredPushNotificationConfig[] }>();
  /** The saves and reads under way, by task: one that a change overtakes does not remember what it got. */
  const underWay = new Map<string, Set<{ overtaken: boolean }>>();
  const begin = (key: string): (() => boolean) => {
    const mark = { overtaken: false };
    const marks = underWay.get(key) ?? new Set();
    underWay.set(key, marks.add(mark));
    return () => {
      marks.delete(mark);
      if (marks.size === 0) underWay.delete(key);
      return !mark.overtaken;
    };
  };
  const keyOf = (owner: string, taskId: string) => JSON.stringify([owner, taskId]);
  const keyFor = (context: ServerCallContext, taskId: string) => keyOf(ownerOf(context), taskId);
  const entryFor = (context: ServerCallContext, taskId: string) => {
    const entry = running.get(keyFor(context, taskId));
    return entry && entry.tenant === (context.tenant ?? '') ? entry : undefined;
  };
  const forget = (key: string, what: 'task' | 'configs') => {
    const entry = running.get(key);
    if (what === 'task' || !entry?.task) running.delete(key);
    else delete entry.configs;
    for (const mark of underWay.get(key) ?? []) mark.overtaken = true;
  };
  const me = randomUUID();
  await database.listen(PUSH_CONFIG_CHANGES, (payload) => {
    try {
      const { from, owner, taskId } = JSON.parse(payload) as { from?: unknown; owner?: unknown; taskId?: unknown };
      if (from !== me && typeof owner === 'string' && typeof taskId === 'string') forget(keyOf(owner, taskId), 'configs');
    } catch {
      // Not ours.
    }
  });
  const configsChanged = async (context: ServerCallContext, taskId: string) => {
    forget(keyFor(context, taskId), 'configs');
    await database.notify(PUSH_CONFIG_CHANGES, JSON.stringify({ from: me, owner: ownerOf(context), taskId })).catch(() => undefined);
  };
  const loadConfigs = async (taskId: string, context: ServerCallContext): Promise<StoredPushNotificationConfig[]> => {
    const known = entryFor(context, taskId);
    if (known?.configs) {
      if (!known.task) running.delete(keyFor(context, taskId));
      return structuredClone(known.configs);
    }
    const done = begin(keyFor(context, taskId));
    let configs: StoredPushNotificationConfig[];
    try {
      configs = await pushStore.loadWithMetadata(taskId, context);
    } catch (error) {
      done();
      throw error;
    }
    const entry = entryFor(context, taskId);
    if (done() && entry) entry.configs = structuredClone(configs);
    return configs;
  };
  const late = lateProgress((task, context) => taskStore.save(task, context));
  return {
    changedElsewhere(owner, taskId) {
      const key = keyOf(owner, taskId);
      // Progress not written yet would write over what the other process wrote.
      late.drop(key);
      forget(key, 'task');
    },
    taskStore: {
      async save(task, context) {
        const key = keyFor(context, task.id);
        const known = entryFor(context, task.id);
        if (isProgress(task) && known?.task) {
          // As on an agent's own embedded folder (soleOwnerStores): remembered at once, written a little later.
          known.task = structuredClone(task);
          late.later(key, task, context);
          return;
        }
        // Until the write is done, a read is answered with what was saved before it.
        const done = begin(key);
        try {
          await late.now(key, task, context);
        } catch (error) {
          done();
          throw error;
        }
        const entry = entryFor(context, task.id);
        if (!done()) {
          running.delete(key);
        } else if (!isRunning(task)) {
          // The SDK reads the push configs once more, to send this event; the task itself is read from the database.
          if (entry?.configs) running.set(key, { tenant: entry.tenant, configs: entry.configs });
          else running.delete(key);
        } else if (entry) {
          entry.task = structuredClone(task);
        } else {
          if (running.size >= MAX_REMEMBERED_RUNNING) running.clear();
          running.set(key, { tenant: context.tenant ?? '', task: structuredClone(task) });
        }
      },
      async load(taskId, context) {
        const entry = entryFor(context, taskId);
        return entry?.task ? structuredClone(entry.task) : taskStore.load(taskId, context);
      },
      list: (params, context) => taskStore.list(params, context),
    },
    pushStore: {
      async save(taskId, context, config) {
        await pushStore.save(taskId, context, config);
        await configsChanged(context, taskId);
      },
      load: async (taskId, context) => (await loadConfigs(taskId, context)).map((stored) => stored.config),
      loadWithMetadata: loadConfigs,
      async delete(taskId, context, configId) {
        await pushStore.delete(taskId, context, configId);
        await configsChanged(context, taskId);
      },
    },
  };
}

/**
 * A working task's progress written late: after PROGRESS_WRITE_DELAY_MS, or not at all when the task's next
 * save (which writes the whole task) comes first, as it mostly does. Each task's writes reach the database
 * one after another in the order asked (a pool of connections would not keep that order by itself), so
 * the state that follows progress is never older in the database than it. A failed progress write needs no
 * retry: the next save writes the whole task.
 */
export function lateProgress(write: (task: Task, context: ServerCallContext) => Promise<void>) {
  const pending = new Map<string, { task: Task; context: ServerCallContext }>();
  /** The last write asked for, by task, until it is done. */
  const writing = new Map<string, Promise<void>>();
  let timer: NodeJS.Timeout | undefined;
  const inOrder = (key: string, task: Task, context: ServerCallContext): Promise<void> => {
    const written = (writing.get(key) ?? Promise.resolve()).then(() => write(task, context));
    const settled = written.catch(() => undefined);
    writing.set(key, settled);
    void settled.then(() => {
      if (writing.get(key) === settled) writing.delete(key);
    });
    return written;
  };
  const writePending = () => {
    timer = undefined;
    for (const [key, { task, context }] of pending) inOrder(key, task, context).catch(() => undefined);
    pending.clear();
  };
  return {
    /** Progress: resolves at once; written later unless `now` or `drop` comes first for the task. */
    later(key: string, task: Task, context: ServerCallContext): void {
      pending.set(key, { task, context });
      timer ??= setTimeout(writePending, PROGRESS_WRITE_DELAY_MS);
    },
    /** Any other save: the task's progress not written yet is dropped; resolves once this is written. */
    now(key: string, task: Task, context: ServerCallContext): Promise<void> {
      pending.delete(key);
      return inOrder(key, task, context);
    },
    drop(key: string): void {
      pending.delete(key);
    },
  };
}

/**
 * How long a working task's progress waits before it is written: most tasks save their next state (which
 * writes the whole task) sooner, and their progress is then never written on its own. After `kill -9`, a
 * task may be found this much behind its last progress (see README, "State and restarts").
 */
const PROGRESS_WRITE_DELAY_MS = 100;

/**
 * A task working on, with nothing for its caller to act on: its next state (AUTH_REQUIRED,
 * INPUT_REQUIRED or its end) follows, and is written before anyone is told of it.
 */
function isProgress(task: Task): boolean {
  return task.status?.state === TaskState.TASK_STATE_WORKING;
}

/**
 * Deletes finished tasks (and their push configs) past `retention`: older
 * than `maxAgeMs`, or beyond the newest `maxFinished`. Unfinished tasks never.
 */
/** How many finished tasks the database holds (all callers'). */
async function countFinishedTasks(database: Database): Promise<number> {
  const { rows } = await sql<{ n: string }>`select count(*) as n from tasks where status_state = any(${TERMINAL_STATES})`.execute(database.db);
  return Number(rows[0]?.n ?? 0);
}

export async function sweepTasks(database: Database, retention: TaskRetention, now = Date.now()): Promise<TaskRowKey[]> {
  const cutoff = now - retention.maxAgeMs;
  const { rows } = await sql<TaskRowKey>`
    with gone as (
      delete from tasks where (tenant, owner, id) in (
        select tenant, owner, id from tasks where status_state = any(${TERMINAL_STATES})
          and (status_last_updated < ${cutoff}
            or (tenant, owner, id) in (
              select tenant, owner, id from tasks where status_state = any(${TERMINAL_STATES})
              order by status_last_updated desc, id desc offset ${retention.maxFinished}))
      ) returning tenant, owner, id),
    configs as (
      delete from push_notification_configs p using gone g
      where p.tenant = g.tenant and p.owner = g.owner and p.task_id = g.id)
    select tenant, owner, id from gone`.execute(database.db);
  return rows;
}
