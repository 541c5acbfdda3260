import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  CompiledQuery,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  type QueryResult,
  type TransactionSettings,
} from 'kysely';
import { backgroundThreadLimits } from '../background-thread.ts';
import { createGroupCommit, type GroupCommit } from './group-commit.ts';
import { templateFolder, templatePath, templatesMissing } from './pglite-templates.ts';

/**
 * PGlite on a worker thread, and a Kysely dialect for it. PGlite is Postgres
 * compiled to WebAssembly: creating a data folder takes seconds and opening
 * one about a second, all of it synchronous. On the service's own thread that
 * would stall every HTTP request meanwhile (health checks included), so the
 * thread owns the PGlite and the service sends it queries.
 */

export interface PgliteThread {
  query(sql: string, params: readonly unknown[]): Promise<{ rows: unknown[]; affectedRows: number }>;
  /** Runs the statements in one transaction, in one message each way, to each one's rows; rejects (and writes nothing) if one fails. */
  batch(statements: readonly { sql: string; params: readonly unknown[] }[]): Promise<{ rows: unknown[]; affectedRows: number }[]>;
  /** LISTEN on `channel` (NOTIFY reaches only this PGlite: it has no other clients). */
  listen(channel: string): Promise<void>;
  unlisten(channel: string): Promise<void>;
  /** Called with every notification on a channel listened to. */
  onNotification: ((channel: string, payload: string) => void) | undefined;
  close(): Promise<void>;
}

/** A query error with node-postgres's fields (`code` is the SQLSTATE, e.g. `23505`), so callers treat both stores alike. */
export class PgliteQueryError extends Error {
  code: string | undefined;
  detail: string | undefined;
  constraint: string | undefined;
  constructor(fields: { message: string; code?: string; detail?: string; constraint?: string }) {
    super(fields.message);
    this.name = 'PgliteQueryError';
    this.code = fields.code;
    this.detail = fields.detail;
    this.constraint = fields.constraint;
  }
}

type Described = ConstructorParameters<typeof PgliteQueryError>[0];
type FromWorker =
  | { type: 'ready' }
  /** The thread made the database in full and closed it: start another, which opens it at the usual memory size. */
  | { type: 'reopen' }
  | { type: 'failed'; error: Described }
  | { type: 'closed' }
  | { type: 'notification'; channel: string; payload: string }
  | { type: 'result'; id: number; rows?: unknown[]; affectedRows?: number; error?: Described };

/**
 * Makes the templates, if they are missing, by making one database in full in a scratch folder. `npm run
 * sandbox` runs it in a process of its own before the services (make-templates.ts), so that on a fresh
 * checkout no service runs `initdb` and holds its memory, and the agent and the tenant do not both run it.
 */
export async function makeTemplates(template: string | undefined = templatePath()): Promise<void> {
  if (!templatesMissing(template)) return;
  const scratch = mkdtempSync(join(tmpdir(), 'pglite-templates-'));
  try {
    const thread = await startPgliteThread(join(scratch, 'db'), undefined, template, { reopen: false });
    await thread.close();
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * Starts the thread and opens `dataDir` (undefined: in memory), a new database from `template`;
 * resolves once PGlite is open. `reopen: false` keeps a database made in full on the thread that made it
 * (by default a new thread opens it, see pglite-thread-worker.mjs).
 * Aborting `signal` before then stops the thread at once.
 */
export function startPgliteThread(
  dataDir: string | undefined,
  signal?: AbortSignal,
  template: string | undefined = templatePath(),
  options: { reopen?: boolean } = {},
): Promise<PgliteThread> {
  signal?.throwIfAborted();
  let worker: Worker;
  const pending = new Map<number, { resolve: (r: { rows: unknown[]; affectedRows: number }) => void; reject: (e: Error) => void }>();
  let nextId = 0;
  let stopped: Error | undefined;
  let onClosed: (() => void) | undefined;

  return new Promise((resolveStart, rejectStart) => {
    const fail = (error: Error) => {
      stopped ??= error;
      for (const { reject } of pending.values()) reject(stopped);
      pending.clear();
      rejectStart(stopped);
    };
    const abort = () => {
      fail(signal?.reason instanceof Error ? signal.reason : new Error('opening PGlite was aborted'));
      void worker.terminate();
    };
    signal?.addEventListener('abort', abort, { once: true });
    const spawn = (reopened: boolean) => {
      const current = new Worker(new URL('./pglite-thread-worker.mjs', import.meta.url), {
        workerData: { dataDir, template, templateFolder: templateFolder(template), reopened },
        resourceLimits: backgroundThreadLimits(),
      });
      worker = current;
      // A thread that asked to be started again ends by itself: its end is no failure.
      let replaced = false;
      current.on('error', (error) => {
        if (!replaced) fail(error);
      });
      current.on('exit', () => {
        if (replaced) return;
        fail(new Error('the PGlite thread has stopped'));
        onClosed?.();
      });
      current.on('message', (message: FromWorker) => {
        if (message.type !== 'reopen') return onMessage(message);
        replaced = true;
        if (!stopped) spawn(true);
      });
    };
    const onMessage = (message: FromWorker) => {
      switch (message.type) {
        case 'ready':
          signal?.removeEventListener('abort', abort);
          resolveStart(thread);
          return;
        case 'failed':
          fail(new PgliteQueryError(message.error));
          return;
        case 'closed':
          return;
        case 'notification':
          thread.onNotification?.(message.channel, message.payload);
          return;
        case 'result': {
          const waiter = pending.get(message.id);
          pending.delete(message.id);
          if (message.error) waiter?.reject(new PgliteQueryError(message.error));
          else waiter?.resolve({ rows: message.rows ?? [], affectedRows: message.affectedRows ?? 0 });
        }
      }
    };
    spawn(options.reopen === false);

    let closing: Promise<void> | undefined;
    const send = (message: Record<string, unknown>) => {
      if (stopped) return Promise.reject(stopped);
      const id = nextId++;
      return new Promise<{ rows: unknown[]; affectedRows: number }>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker.postMessage({ ...message, id });
      });
    };
    const thread: PgliteThread = {
      onNotification: undefined,
      query: (sql, params) => send({ type: 'query', sql, params }),
      batch: async (statements) => {
        const { rows } = await send({ type: 'batch', statements: statements.map(({ sql, params }) => ({ sql, params })) });
        return rows as { rows: unknown[]; affectedRows: number }[];
      },
      listen: async (channel) => {
        await send({ type: 'listen', channel });
      },
      unlisten: async (channel) => {
        await send({ type: 'unlisten', channel });
      },
      close() {
        closing ??= new Promise<void>((resolve) => {
          if (stopped) return resolve();
          onClosed = resolve;
          worker.postMessage({ type: 'close' });
        });
        return closing;
      },
    };
  });
}

/**
 * The PGlite's one connection, held by one caller at a time: a Kysely query or transaction, or a batch
 * (`runTogether`), so that nothing runs inside another caller's open transaction.
 */
export class ConnectionLock {
  #busy = false;
  readonly #waiting: (() => void)[] = [];
  async acquire(): Promise<void> {
    if (this.#busy) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.#busy = true;
  }
  release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#busy = false;
  }
}

/** Kysely over a PGlite thread: PostgreSQL's SQL on its one connection; single statements are grouped (statementGroups), a transaction holds the connection until it ends. */
export class PgliteThreadDialect implements Dialect {
  constructor(
    private readonly thread: PgliteThread,
    private readonly lock = new ConnectionLock(),
  ) {}
  createAdapter() {
    return new PostgresAdapter();
  }
  createDriver(): Driver {
    return new PgliteThreadDriver(this.thread, this.lock);
  }
  createQueryCompiler() {
    return new PostgresQueryCompiler();
  }
  createIntrospector(db: Kysely<unknown>) {
    return new PostgresIntrospector(db);
  }
}

type QueryOutcome = { rows: unknown[]; affectedRows: number };

interface Statement {
  sql: string;
  params: readonly unknown[];
}

/** Statements in one group at most. */
const MAX_GROUP = 256;

/**
 * Group commit (group-commit.ts) for single statements. Every Kysely query outside a transaction comes
 * here; those asked for while a group is running run together as the next group: one message to the
 * thread and one commit for all of them, each caller getting its own rows, and a bad statement failing
 * only its own caller. A thousand pending tasks make many small writes; one commit each would queue
 * them for seconds. A group holds the connection, so it never runs inside another caller's transaction.
 */
function statementGroups(thread: PgliteThread, lock: ConnectionLock) {
  return createGroupCommit<Statement, QueryOutcome>({
    runGroup: (statements) => thread.batch(statements),
    runAlone: ({ sql, params }) => thread.query(sql, params),
    maxWeight: MAX_GROUP,
    exclusive: async (work) => {
      await lock.acquire();
      try {
        return await work();
      } finally {
        lock.release();
      }
    },
  });
}

/**
 * One per Kysely acquire: outside a transaction its queries go to the statement groups; inside one
 * (begun by the driver, which then holds the lock) they go to the thread directly, in order.
 */
class PgliteThreadConnection implements DatabaseConnection {
  inTransaction = false;
  constructor(
    private readonly thread: PgliteThread,
    private readonly groups: GroupCommit<Statement, QueryOutcome>,
  ) {}
  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const { rows, affectedRows } = this.inTransaction
      ? await this.thread.query(query.sql, query.parameters)
      : await this.groups({ sql: query.sql, params: query.parameters });
    return { rows: rows as R[], ...(affectedRows > 0 ? { numAffectedRows: BigInt(affectedRows) } : {}) };
  }
  async *streamQuery<R>(query: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    yield await this.executeQuery<R>(query);
  }
}

class PgliteThreadDriver implements Driver {
  readonly #groups: GroupCommit<Statement, QueryOutcome>;
  constructor(
    private readonly thread: PgliteThread,
    private readonly lock: ConnectionLock,
  ) {
    this.#groups = statementGroups(thread, lock);
  }
  async init() {}
  async acquireConnection(): Promise<DatabaseConnection> {
    return new PgliteThreadConnection(this.thread, this.#groups);
  }
  async releaseConnection() {}
  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings) {
    const isolation = settings.isolationLevel ? ` isolation level ${settings.isolationLevel}` : '';
    await this.lock.acquire();
    try {
      await this.thread.query(`start transaction${isolation}`, []);
    } catch (error) {
      this.lock.release();
      throw error;
    }
    (connection as PgliteThreadConnection).inTransaction = true;
  }
  async commitTransaction(connection: DatabaseConnection) {
    await this.#end(connection, 'commit');
  }
  async rollbackTransaction(connection: DatabaseConnection) {
    await this.#end(connection, 'rollback');
  }
  async #end(connection: DatabaseConnection, statement: 'commit' | 'rollback') {
    try {
      await this.thread.query(statement, []);
    } finally {
      (connection as PgliteThreadConnection).inTransaction = false;
      this.lock.release();
    }
  }
  async destroy() {
    await this.thread.close();
  }
}
