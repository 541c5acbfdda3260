import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kysely, PostgresDialect, sql, type CompiledQuery, type Migration } from 'kysely';
import type pg from 'pg';
import type { SandboxConfig } from '../config.ts';
import { loadPg } from '../on-first-use.ts';
import { StorageError } from './errors.ts';
import { migrate } from './migrations.ts';
import { assertChannel, createListener, postgresTransport, type Listener } from './notifications.ts';
import { ConnectionLock, PgliteThreadDialect, startPgliteThread, type PgliteThread } from './pglite-thread.ts';
import type { DatabaseSchema } from './schema.ts';

/**
 * The one way a service gets its database: an embedded Postgres (PGlite, in
 * this process, its files under SANDBOX_STATE_DIR) by default, or a real
 * PostgreSQL server when DATABASE_URL is set. Both speak the same SQL, so the
 * same migrations and queries run on either; the service receives a migrated
 * Kysely instance and never knows which it has.
 */

export type DatabaseKind = 'pglite' | 'postgres';

export type DatabaseLocation =
  | { kind: 'postgres'; url: string }
  /** `dataDir` undefined: in memory, gone with the process (tests). */
  | { kind: 'pglite'; dataDir: string | undefined };

export type SandboxService = 'agent' | 'tenant';

export interface Database {
  readonly db: Kysely<DatabaseSchema>;
  readonly kind: DatabaseKind;
  /** Where the data lives, for logs and banners (a URL's password is masked). */
  readonly description: string;
  /** The schema version the database is at (the name of its last migration). */
  readonly schemaVersion: string;
  /**
   * Calls `onPayload` with every NOTIFY on `channel` (lower-case letters, digits, _): on PostgreSQL from
   * every process using the server, on PGlite from this process only. Resolves once listening, to a stop function.
   */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  /**
   * Runs the statements in one transaction: all are written or none (the error is the first failure's).
   * On PGlite the whole batch is one message to its thread. For group commit, see write-queue.ts.
   */
  runTogether(queries: readonly CompiledQuery[]): Promise<void>;
  /**
   * NOTIFY: sent when the surrounding transaction commits (at once outside one); payloads up to 8000 bytes.
   * Several payloads go in one statement and are delivered in the order given (identical ones once).
   */
  notify(channel: string, payloads: string | readonly string[]): Promise<void>;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** Stop at this schema version instead of the latest (tests of upgrades). */
  schemaVersion?: string;
  /** Another list of migrations (tests). */
  migrations?: Readonly<Record<string, Migration>>;
  /** Milliseconds to wait for a PostgreSQL server to accept a connection. Default 5000. */
  connectTimeoutMs?: number;
  /** Gives up opening (a service stopped while it started): rejects with the signal's reason, nothing left running. */
  signal?: AbortSignal;
  /**
   * PGlite only: milliseconds between the VACUUMs this process runs for it (PGLITE_VACUUM_EVERY_MS by default);
   * 0 runs none. A PostgreSQL server vacuums by itself (autovacuum).
   */
  vacuumEveryMs?: number;
  /** PGlite only: told after each of those VACUUMs, with its error if it failed (tests). */
  onVacuum?: (error?: Error) => void;
  /**
   * Where the database's own upkeep says what went wrong (the service's log): a VACUUM that starts failing is
   * said once, with its error, and once more when one succeeds again; not at every tick in between.
   */
  log?: (line: string) => void;
}

/**
 * PGlite runs PostgreSQL in single-user mode, with no background workers, so no autovacuum: every row an
 * UPDATE or DELETE leaves behind would stay, and a sandbox left running (every task event rewrites its task,
 * every finished task is deleted) would grow its files and slow its scans for ever. So a process vacuums its
 * own PGlite database, at PostgreSQL's autovacuum cadence (`autovacuum_naptime`, 1 min), when it has run
 * statements since the last time. A plain VACUUM: it frees the space for new rows without locking the tables
 * for long (the files do not shrink, they stop growing).
 */
export const PGLITE_VACUUM_EVERY_MS = 60_000;

/**
 * Where a service keeps its state: the configured PostgreSQL server, shared by
 * every service, or else a PGlite folder of its own (`<stateDir>/db/<service>`),
 * since one process owns a PGlite folder and each service is its own process.
 */
export function databaseLocation(config: Pick<SandboxConfig, 'storage'>, service: SandboxService): DatabaseLocation {
  const { databaseUrl, stateDir } = config.storage;
  return databaseUrl === undefined ? { kind: 'pglite', dataDir: join(stateDir, 'db', service) } : { kind: 'postgres', url: databaseUrl };
}

/** Opens the database and migrates it to the latest schema version (or `options.schemaVersion`). */
export async function openDatabase(location: DatabaseLocation, options: OpenDatabaseOptions = {}): Promise<Database> {
  const opened = location.kind === 'postgres' ? await openPostgres(location.url, options) : await openPglite(location.dataDir, options);
  try {
    options.signal?.throwIfAborted();
    const schemaVersion = await migrate(opened.db as Kysely<unknown>, {
      ...(options.schemaVersion === undefined ? {} : { to: options.schemaVersion }),
      ...(options.migrations === undefined ? {} : { migrations: options.migrations }),
    });
    if (location.kind === 'pglite' && location.dataDir !== undefined) markComplete(location.dataDir);
    let closing: Promise<void> | undefined;
    const { db, kind, description, listener, runTogether } = opened;
    return {
      db,
      kind,
      description,
      schemaVersion,
      runTogether,
      listen: (channel, onPayload) => listener.listen(channel, onPayload),
      async notify(channel, payloads) {
        assertChannel(channel);
        const all = typeof payloads === 'string' ? [payloads] : payloads;
        if (all.length === 0) return;
        // pg_notify is volatile, so it runs after the sort: in the order of the array.
        await sql`select pg_notify(${channel}, payload) from unnest(${all}::text[]) with ordinality as given(payload, n) order by n`.execute(db);
      },
      close: () => (closing ??= (opened.stopMaintenance?.() ?? Promise.resolve()).then(() => listener.close()).then(() => db.destroy())),
    };
  } catch (error) {
    await opened.stopMaintenance?.();
    await opened.db.destroy().catch(() => {});
    throw error;
  }
}

type Opened = Pick<Database, 'db' | 'kind' | 'description' | 'runTogether'> & {
  listener: Listener;
  /** Stops the periodic VACUUM (PGlite), waiting for one under way. */
  stopMaintenance?: () => Promise<void>;
};

/**
 * Written into a PGlite folder once it has been created and migrated. A folder without it was cut
 * short while being created (the service stopped during its first start) and is made again.
 */
const COMPLETE_MARKER = 'sandbox-database-complete';

function markComplete(dataDir: string): void {
  const marker = join(dataDir, COMPLETE_MARKER);
  if (!existsSync(marker)) writeFileSync(marker, 'This folder is an embedded PostgreSQL (PGlite) database of the sandbox.\n');
}

async function openPglite(dataDir: string | undefined, options: OpenDatabaseOptions): Promise<Opened> {
  const { signal } = options;
  const description = dataDir === undefined ? 'embedded PostgreSQL (PGlite) in memory' : `embedded PostgreSQL (PGlite) in ${dataDir}`;
  let thread: PgliteThread;
  try {
    if (dataDir !== undefined) {
      if (existsSync(dataDir) && !existsSync(join(dataDir, COMPLETE_MARKER)) && readdirSync(dataDir).length > 0) {
        rmSync(dataDir, { recursive: true, force: true });
      }
      mkdirSync(dataDir, { recursive: true });
    }
    thread = await startPgliteThread(dataDir, signal);
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new StorageError(
      'data_dir_unusable',
      `Cannot open the ${description}: ${(error as Error).message}. Remove the folder to start with empty state, or set SANDBOX_STATE_DIR elsewhere.`,
      { cause: error },
    );
  }
  const listener = createListener((deliver) => {
    thread.onNotification = deliver;
    // The thread itself closes with the Kysely instance.
    return { listen: (c) => thread.listen(c), unlisten: (c) => thread.unlisten(c), close: async () => {} };
  });
  const lock = new ConnectionLock();
  const vacuum = periodicVacuum(thread, lock, description, options);
  return {
    kind: 'pglite',
    description,
    listener,
    stopMaintenance: vacuum.stop,
    db: new Kysely<DatabaseSchema>({ dialect: new PgliteThreadDialect(vacuum.thread, lock) }),
    async runTogether(queries) {
      if (queries.length === 0) return;
      await lock.acquire();
      try {
        await vacuum.thread.batch(queries.map((query) => ({ sql: query.sql, params: query.parameters })));
      } finally {
        lock.release();
      }
    },
  };
}

/**
 * The VACUUM a PGlite database needs (PGLITE_VACUUM_EVERY_MS): `thread` is the one to run statements on, so
 * that a VACUUM runs only after some did. It holds the connection, so it never runs inside a transaction.
 */
function periodicVacuum(
  thread: PgliteThread,
  lock: ConnectionLock,
  description: string,
  options: OpenDatabaseOptions,
): { thread: PgliteThread; stop: () => Promise<void> } {
  const everyMs = options.vacuumEveryMs ?? PGLITE_VACUUM_EVERY_MS;
  if (everyMs <= 0) return { thread, stop: async () => {} };
  let used = false;
  let running: Promise<void> | undefined;
  /** VACUUMs failed in a row: the first is said, and the first success after them. */
  let failedInARow = 0;
  const tick = () => {
    if (!used || running) return;
    used = false;
    running = (async () => {
      await lock.acquire();
      try {
        await thread.query('vacuum', []);
        if (failedInARow > 0) {
          options.log?.(`The ${description} is vacuumed again, after ${failedInARow === 1 ? 'one failed VACUUM' : `${failedInARow} failed VACUUMs`}.`);
        }
        failedInARow = 0;
        options.onVacuum?.();
      } catch (error) {
        // A database that stopped fails its callers; a VACUUM that fails is tried again at the next tick.
        used = true;
        failedInARow += 1;
        if (failedInARow === 1) {
          const seconds = Math.round(everyMs / 100) / 10;
          options.log?.(
            `The ${description} could not be vacuumed (${(error as Error).message}): the room its deleted rows take is not ` +
              `freed until a VACUUM succeeds. Tried again every ${seconds} s; said again when one succeeds.`,
          );
        }
        options.onVacuum?.(error as Error);
      } finally {
        lock.release();
        running = undefined;
      }
    })();
  };
  const timer = setInterval(tick, everyMs);
  timer.unref();
  return {
    thread: {
      get onNotification() {
        return thread.onNotification;
      },
      set onNotification(deliver) {
        thread.onNotification = deliver;
      },
      query(sql, params) {
        used = true;
        return thread.query(sql, params);
      },
      batch(statements) {
        used = true;
        return thread.batch(statements);
      },
      listen: (channel) => thread.listen(channel),
      unlisten: (channel) => thread.unlisten(channel),
      close: () => thread.close(),
    },
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}

async function openPostgres(url: string, options: OpenDatabaseOptions): Promise<Opened> {
  const description = `PostgreSQL at ${maskedUrl(url)}`;
  const connectTimeoutMs = options.connectTimeoutMs ?? 5000;
  const { Client: PgClient, Pool } = await loadPg();
  // A connection has its own deadline to open; a query waits longer for a free one, since under load
  // (a thousand tasks starting at once) the queue for the pool is long, not the server gone.
  class Client extends PgClient {
    constructor(config?: pg.ClientConfig) {
      super({ ...config, connectionTimeoutMillis: connectTimeoutMs });
    }
  }
  const pool = new Pool({
    connectionString: url,
    max: 10,
    Client,
    connectionTimeoutMillis: Math.max(connectTimeoutMs, POOL_WAIT_MS),
    query_timeout: QUERY_TIMEOUT_MS,
  });
  // An idle connection the server drops must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  const db = new Kysely<DatabaseSchema>({ dialect: new PostgresDialect({ pool }) });
  try {
    await sql`select 1`.execute(db);
  } catch (error) {
    await db.destroy().catch(() => {});
    throw new StorageError(
      'database_unreachable',
      `Cannot reach the ${description}: ${reason(error)}. Is the server running, and is DATABASE_URL right?`,
      { cause: error },
    );
  }
  return {
    kind: 'postgres',
    description,
    db,
    listener: createListener((deliver) => postgresTransport(url, deliver)),
    async runTogether(queries) {
      if (queries.length === 0) return;
      await db.transaction().execute(async (trx) => {
        for (const query of queries) await trx.executeQuery(query);
      });
    },
  };
}

/** How long a query waits for one of the pool's connections at most. */
const POOL_WAIT_MS = 30_000;
/** How long a PostgreSQL server may take to answer one query. */
const QUERY_TIMEOUT_MS = 30_000;

/** A DATABASE_URL fit for logs: user, host, port and database, no password. */
export function maskedUrl(url: string): string {
  const parsed = URL.parse(url);
  if (!parsed) return '<unparsable DATABASE_URL>';
  if (parsed.password !== '') parsed.password = '***';
  return parsed.toString();
}

function reason(error: unknown): string {
  const { code, message } = error as { code?: unknown; message?: unknown };
  const text = typeof message === 'string' && message !== '' ? message : String(error);
  return typeof code === 'string' && !text.includes(code) ? `${text} (${code})` : text;
}
