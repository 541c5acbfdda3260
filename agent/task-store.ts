import { TaskState, type ListTasksRequest, type ListTasksResponse, type Task } from '@a2a-js/sdk';
import { RequestMalformedError } from '@a2a-js/sdk/errors';
import type { ServerCallContext, TaskStore } from '@a2a-js/sdk/server';
import { AGENT_DEFAULTS } from '../sandbox/config.ts';

/**
 * The agent's in-memory A2A task store: tasks scoped by tenant and caller
 * (as the SDK's own store scopes them), and finished tasks forgotten after a
 * retention period or beyond a count, oldest first, so memory stays flat in
 * a long run. A task that is not finished is never forgotten.
 */

export interface TaskRetention {
  /** Finished tasks are forgotten this long after their last update. */
  maxAgeMs: number;
  /** At most this many finished tasks are kept; the oldest go first. */
  maxFinished: number;
}

export const DEFAULT_TASK_RETENTION: TaskRetention = AGENT_DEFAULTS.retention;

export interface RetainingTaskStore extends TaskStore {
  /** Tasks held now, finished or not. */
  size(): number;
  /** Forgets what is past retention now (also done on every save and on a timer). */
  sweep(): void;
  close(): void;
}

const TERMINAL = new Set<TaskState>([
  TaskState.TASK_STATE_COMPLETED,
  TaskState.TASK_STATE_FAILED,
  TaskState.TASK_STATE_CANCELED,
  TaskState.TASK_STATE_REJECTED,
]);
/** A task's key within its caller's scope (tenant and user, as the SDK's own stores scope tasks): no caller sees another's. */
export function scopedTaskKey(context: ServerCallContext, taskId: string): string {
  return keyOf(scopeOf(context), taskId);
}
/** The same key from a stored task's tenant and owner (the database stores' columns). */
export function taskKey(tenant: string, owner: string, taskId: string): string {
  return keyOf(scopeFrom(tenant, owner), taskId);
}
const scopeFrom = (tenant: string, owner: string) => JSON.stringify([tenant, owner]);
/** Whose task it is, as the SDK's stores name the owner: the caller's user name. */
export const ownerOf = (context: ServerCallContext): string => context.user?.userName || 'unknown';
const scopeOf = (context: ServerCallContext) => scopeFrom(context.tenant ?? '', ownerOf(context));
const keyOf = (scope: string, taskId: string) => `${scope}\u0000${taskId}`;

export function isTerminal(task: Task): boolean {
  return task.status?.state !== undefined && TERMINAL.has(task.status.state);
}

const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 100;

interface Entry {
  scope: string;
  task: Task;
}

export function createTaskStore(
  retention: TaskRetention = DEFAULT_TASK_RETENTION,
  now: () => number = Date.now,
): RetainingTaskStore {
  /** Keyed by scope and task id; finished entries also sit in `finished`, oldest first. */
  const entries = new Map<string, Entry>();
  const finished = new Map<string, number>();

  const sweep = () => {
    const oldest = now() - retention.maxAgeMs;
    for (const [key, finishedAt] of finished) {
      if (finished.size <= retention.maxFinished && finishedAt > oldest) break;
      finished.delete(key);
      entries.delete(key);
    }
  };
  const timer = setInterval(sweep, Math.max(1000, Math.min(retention.maxAgeMs, 60_000)));
  timer.unref();

  return {
    async save(task, context) {
      const scope = scopeOf(context);
      const key = keyOf(scope, task.id);
      entries.set(key, { scope, task: structuredClone(task) });
      finished.delete(key);
      if (isTerminal(task)) finished.set(key, now());
      sweep();
    },

    async load(taskId, context) {
      const entry = entries.get(keyOf(scopeOf(context), taskId));
      return entry ? structuredClone(entry.task) : undefined;
    },

    async list(params: ListTasksRequest, context): Promise<ListTasksResponse> {
      const scope = scopeOf(context);
      const after = params.statusTimestampAfter ? new Date(params.statusTimestampAfter).getTime() : undefined;
      let tasks = [...entries.values()]
        .filter((entry) => entry.scope === scope)
        .map((entry) => entry.task)
        .filter((task) => !params.contextId || task.contextId === params.contextId)
        .filter((task) => !params.status || task.status?.state === params.status)
        .filter((task) => after === undefined || (task.status?.timestamp !== undefined && new Date(task.status.timestamp).getTime() > after))
        .sort((a, b) => cursorOf(b).localeCompare(cursorOf(a)));
      const totalSize = tasks.length;
      if (params.pageToken) {
        const cursor = decodeCursor(params.pageToken);
        tasks = tasks.filter((task) => cursorOf(task) < cursor);
      }
      const pageSize = Math.min(MAX_PAGE_SIZE, params.pageSize || DEFAULT_PAGE_SIZE);
      const page = tasks.slice(0, pageSize).map((task) => {
        const copy = structuredClone(task);
        if (!params.includeArtifacts) copy.artifacts = [];
        if (params.historyLength !== undefined) copy.history = params.historyLength === 0 ? [] : copy.history.slice(-params.historyLength);
        return copy;
      });
      const last = page.at(-1);
      return {
        tasks: page,
        nextPageToken: last && tasks.length > page.length ? Buffer.from(cursorOf(last)).toString('base64url') : '',
        pageSize,
        totalSize,
      };
    },

    size: () => entries.size,
    sweep,
    close() {
      clearInterval(timer);
    },
  };
}

/** Newest first by status time, then by id: a total order, so pages never repeat or skip a task. */
function cursorOf(task: Task): string {
  return `${task.status?.timestamp ?? ''}\u0000${task.id}`;
}

function decodeCursor(token: string): string {
  const cursor = Buffer.from(token, 'base64url').toString('utf8');
  if (!cursor.includes('\u0000')) throw new RequestMalformedError('pageToken is not a token this agent issued');
  return cursor;
}
