import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListTasksRequest, Task, TaskState } from '@a2a-js/sdk';
import { ServerCallContext } from '@a2a-js/sdk/server';
import { DatabaseTaskStore } from '@a2a-js/sdk/server/database';
import { CompiledQuery, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config.ts';
import { databaseLocation, openDatabase, type Database, type DatabaseLocation } from '../../storage/database.ts';
import { StorageError } from '../../storage/errors.ts';
import { templatesMissing } from '../../storage/pglite-templates.ts';
import { makeTemplates, startPgliteThread } from '../../storage/pglite-thread.ts';
import { createWriteQueue } from '../../storage/write-queue.ts';
import { LATEST_SCHEMA_VERSION, MIGRATIONS, MIGRATION_TABLE } from '../../storage/migrations.ts';
import { freePorts, runCommand, waitUntil } from '../processes.ts';
import { startPostgresServer, type PostgresServer } from '../postgres-server.ts';

const FIRST_VERSION = Object.keys(MIGRATIONS)[0]!;
const TABLES = ['consents', 'conversations', 'guardian_requests', 'oidc_models', 'push_notification_configs', 'tasks'];

async function tablesOf(database: Database): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    select table_name as name from information_schema.tables where table_schema = 'public' and table_name = any(${TABLES}) order by 1`.execute(
    database.db,
  );
  return rows.map((r) => r.name);
}

function sampleTask(id: string): Task {
  return Task.fromJSON({
    id,
    // A client may choose its own context id, longer than a UUID.
    contextId: 'conversation-chosen-by-the-a2a-client-7d3c5a9e-5f0b-4a39-9d1e-1a2b3c4d5e6f',
    status: { state: 'TASK_STATE_AUTH_REQUIRED', timestamp: '2026-11-25T12:00:00.000Z' },
  });
}

const caller = () => new ServerCallContext({ user: { isAuthenticated: true, userName: 'a2a-client@clients' }, requestedVersion: '1.0' });

function stores(): { name: string; fresh: () => Promise<DatabaseLocation> }[] {
  return [
    { name: 'PGlite', fresh: async () => ({ kind: 'pglite', dataDir: join(scratchDir(), 'db') }) },
    { name: 'PostgreSQL', fresh: async () => ({ kind: 'postgres', url: await postgres.createDatabase() }) },
  ];
}

const scratch: string[] = [];
function scratchDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sandbox-pglite-'));
  scratch.push(dir);
  return dir;
}

let postgres: PostgresServer;
beforeAll(async () => {
  postgres = await startPostgresServer();
});
// Twice on a busy machine this hook outlasted vitest's 30 s; the second time the server's stop did not reach its
// 10 s escalation. It now gets longer, removes the folders without blocking the event loop, and says what took long.
afterAll(async () => {
  const started = performance.now();
  await postgres?.stop();
  const stopped = performance.now();
  await Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true })));
  const ended = performance.now();
  if (ended - started > 10_000) {
    console.error(`Clean-up took ${Math.round(ended - started)} ms: server stop ${Math.round(stopped - started)} ms, ${scratch.length} scratch folders ${Math.round(ended - stopped)} ms`);
  }
}, 120_000);

describe.concurrent.each(stores())('the database on $name', ({ fresh }) => {
  it('migrates an empty database to the latest schema, and the A2A SDK task store works on it', async () => {
    const database = await openDatabase(await fresh());
    try {
      expect(database.schemaVersion).toBe(LATEST_SCHEMA_VERSION);
      expect(await tablesOf(database)).toEqual(TABLES);
      const store = new DatabaseTaskStore(database.db);
      await store.save(sampleTask('9b2f8f5e-1c1d-4c4e-8f57-3f0c2d9e7a10'), caller());
      const loaded = await store.load('9b2f8f5e-1c1d-4c4e-8f57-3f0c2d9e7a10', caller());
      expect(loaded?.status?.state).toBe(TaskState.TASK_STATE_AUTH_REQUIRED);
      expect((await store.list(ListTasksRequest.fromJSON({ pageSize: 10 }), caller())).totalSize).toBe(1);

      const heard: string[] = [];
      const stop = await database.listen('task_events', (payload) => heard.push(payload));
      await database.notify('task_events', '{"task":"9b2f8f5e"}');
      await waitUntil(async () => (heard.length > 0 ? true : undefined), 5_000);
      expect(heard).toEqual(['{"task":"9b2f8f5e"}']);
      // Many in one statement, in the order given; a payload with quotes and commas stays whole.
      const batch = Array.from({ length: 300 }, (_, i) => JSON.stringify({ n: 299 - i, text: `it's, "${i}"` }));
      await database.notify('task_events', batch);
      await waitUntil(async () => (heard.length === 301 ? true : undefined), 5_000);
      expect(heard.slice(1)).toEqual(batch);
      await stop();
      await expect(database.listen('task events; drop table tasks', () => {})).rejects.toThrow(TypeError);
    } finally {
      await database.close();
    }
  }, 60_000);

  it('commits writes asked for together in one transaction, each caller told of its own write', async () => {
    const database = await openDatabase(await fresh());
    try {
      const transactions: number[] = [];
      const queue = createWriteQueue(async (queries) => {
        transactions.push(queries.length);
        await database.runTogether(queries);
      });
      const insert = (id: string) =>
        queue.write(CompiledQuery.raw('insert into oidc_models (model, id, payload) values ($1, $2, $3)', ['Grant', id, JSON.stringify({ id })]));
      // Forty writes asked for at once; one of them breaks the primary key of another.
      const writes = Array.from({ length: 40 }, (_, i) => insert(i === 17 ? 'grant-3' : `grant-${i}`));
      const outcomes = await Promise.allSettled(writes);

      expect(outcomes.filter((o) => o.status === 'rejected').map((_, i) => i)).toHaveLength(1);
      expect(outcomes[17]).toMatchObject({ status: 'rejected', reason: expect.objectContaining({ code: '23505' }) });
      // The first try wrote them all in one transaction; it failed as a whole, and each was then written on its own.
      expect(transactions[0]).toBe(40);
      expect(transactions.slice(1)).toEqual(Array.from({ length: 40 }, () => 1));
      const { rows } = await sql<{ n: string }>`select count(*) as n from oidc_models`.execute(database.db);
      expect(Number(rows[0]!.n)).toBe(39);

      // Writes asked for while a batch is being committed wait for the next one, in order.
      transactions.length = 0;
      const later = Array.from({ length: 10 }, (_, i) =>
        queue.write(CompiledQuery.raw('update oidc_models set uid = $1 where id = $2', [`uid-${i}`, 'grant-0'])),
      );
      await Promise.all(later);
      expect(transactions).toEqual([10]);
      const { rows: last } = await sql<{ uid: string }>`select uid from oidc_models where id = 'grant-0'`.execute(database.db);
      expect(last[0]!.uid).toBe('uid-9');
    } finally {
      await database.close();
    }
  }, 60_000);

  it('commits the writes of a unit of work all or none, whatever shares their transaction', async () => {
    const database = await openDatabase(await fresh());
    try {
      const queue = createWriteQueue((queries) => database.runTogether(queries));
      const insert = (id: string) =>
        queue.write(CompiledQuery.raw('insert into oidc_models (model, id, payload) values ($1, $2, $3)', ['Grant', id, JSON.stringify({ id })]));
      const ids = async () =>
        (await sql<{ id: string }>`select id from oidc_models order by id`.execute(database.db)).rows.map((row) => row.id);
      await insert('taken');

      // Inside the unit each write resolves at once (it is held back); the unit resolves once all are committed.
      const whole = queue.together(async () => {
        await insert('unit-a');
        await new Promise((resolve) => setImmediate(resolve));
        await insert('unit-b');
        return 'done';
      });
      // A unit one of whose statements fails, committed beside an ordinary write and the unit above.
      const broken = queue.together(async () => {
        await insert('broken-a');
        await insert('taken');
      });
      const beside = insert('beside');
      const outcomes = await Promise.allSettled([whole, broken, beside]);
      expect(outcomes[0]).toEqual({ status: 'fulfilled', value: 'done' });
      expect(outcomes[1]).toMatchObject({ status: 'rejected', reason: expect.objectContaining({ code: '23505' }) });
      expect(outcomes[2]).toMatchObject({ status: 'fulfilled' });
      expect(await ids()).toEqual(['beside', 'taken', 'unit-a', 'unit-b']);

      // A unit whose work fails writes nothing; a write asked for after its work settled is an ordinary write.
      let later: Promise<void> | undefined;
      await expect(
        queue.together(async () => {
          await insert('failed-work');
          setImmediate(() => (later = insert('after-the-unit')));
          throw new Error('the work failed');
        }),
      ).rejects.toThrow('the work failed');
      await waitUntil(async () => (later === undefined ? undefined : true));
      await later;
      expect(await ids()).toEqual(['after-the-unit', 'beside', 'taken', 'unit-a', 'unit-b']);
    } finally {
      await database.close();
    }
  }, 60_000);

  it("reads back what a statement was given, alone, grouped with others or in a transaction, and rolls back a group one of whose statements fails", async () => {
    const database = await openDatabase(await fresh());
    try {
      const at = new Date('2026-12-05T16:30:00.123Z');
      const probe = sql<{ at: Date; doc: unknown; names: string[]; yes: boolean; n: number; nothing: null; quote: string }>`
        select ${at}::timestamptz as at, ${JSON.stringify({ a: [1, 'two'], b: null })}::jsonb as doc, ${['x', 'it\'s "y"', 'a,b']}::text[] as names,
               ${true}::boolean as yes, ${41}::int + 1 as n, ${null}::text as nothing, ${"it's; drop table tasks"}::text as quote`;
      const expected = { at, doc: { a: [1, 'two'], b: null }, names: ['x', 'it\'s "y"', 'a,b'], yes: true, n: 42, nothing: null, quote: "it's; drop table tasks" };
      // Alone; three at once (grouped into one call on PGlite); inside a transaction.
      expect((await probe.execute(database.db)).rows).toEqual([expected]);
      const together = await Promise.all([probe.execute(database.db), probe.execute(database.db), probe.execute(database.db)]);
      expect(together.map((r) => r.rows)).toEqual([[expected], [expected], [expected]]);
      expect(await database.db.transaction().execute(async (tx) => (await probe.execute(tx)).rows)).toEqual([expected]);

      // Rows changed are counted per statement.
      const insert = (id: string) => CompiledQuery.raw('insert into oidc_models (model, id, payload) values ($1, $2, $3)', ['Grant', id, '{}']);
      await database.runTogether([insert('g-1'), insert('g-2')]);
      const updated = await database.db.updateTable('oidc_models').set({ uid: 'u' }).where('model', '=', 'Grant').executeTakeFirst();
      expect(Number(updated.numUpdatedRows)).toBe(2);
      // A group whose second statement breaks the primary key writes nothing, and says why.
      await expect(database.runTogether([insert('g-3'), insert('g-1'), insert('g-4')])).rejects.toMatchObject({ code: '23505' });
      const { rows } = await sql<{ id: string }>`select id from oidc_models order by id`.execute(database.db);
      expect(rows.map((r) => r.id)).toEqual(['g-1', 'g-2']);
    } finally {
      await database.close();
    }
  }, 60_000);

  it('upgrades an existing database and keeps its rows; then refuses one a newer sandbox migrated', async () => {
    const location = await fresh();
    const old = await openDatabase(location, { schemaVersion: FIRST_VERSION });
    try {
      expect(old.schemaVersion).toBe(FIRST_VERSION);
      expect(await tablesOf(old)).toEqual(['push_notification_configs', 'tasks']);
      await new DatabaseTaskStore(old.db).save(sampleTask('0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f'), caller());
    } finally {
      await old.close();
    }

    const upgraded = await openDatabase(location);
    try {
      expect(upgraded.schemaVersion).toBe(LATEST_SCHEMA_VERSION);
      expect(await tablesOf(upgraded)).toEqual(TABLES);
      const task = await new DatabaseTaskStore(upgraded.db).load('0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f', caller());
      expect(task?.id).toBe('0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f');
      await sql`insert into ${sql.table(MIGRATION_TABLE)} (name, timestamp) values ('9999_from_a_newer_sandbox', '2099-01-01T00:00:00.000Z')`.execute(
        upgraded.db,
      );
    } finally {
      await upgraded.close();
    }

    const refused = await openDatabase(location).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(StorageError);
    expect(refused).toMatchObject({ code: 'schema_too_new' });
    expect((refused as Error).message).toContain('9999_from_a_newer_sandbox');
  }, 90_000);
});

describe('the embedded database under concurrent callers', () => {
  it('gives each statement of a group its own rows and error, and keeps a transaction whole among them', async () => {
    const database = await openDatabase({ kind: 'pglite', dataDir: undefined });
    try {
      const { db } = database;
      const insert = (id: string) => db.insertInto('oidc_models').values({ model: 'Grant', id, payload: JSON.stringify({ id }) }).execute();
      await insert('grant-0');
      // Asked for at once, these run as groups; the one that breaks the primary key fails alone.
      const outcomes = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => insert(`grant-${i === 12 ? 0 : i + 1}`)));
      expect(outcomes.map((o) => o.status).filter((status) => status === 'rejected')).toHaveLength(1);
      expect(outcomes[12]).toMatchObject({ status: 'rejected', reason: expect.objectContaining({ code: '23505' }) });

      const reads = await Promise.all(
        Array.from({ length: 20 }, (_, i) => db.selectFrom('oidc_models').select('id').where('id', '=', `grant-${i + 1}`).execute()),
      );
      expect(reads.map((rows) => rows.map((row) => row.id))).toEqual(Array.from({ length: 20 }, (_, i) => (i === 12 ? [] : [`grant-${i + 1}`])));

      // A transaction that fails is rolled back alone while single statements run beside it.
      const failing = db.transaction().execute(async (trx) => {
        await trx.insertInto('oidc_models').values({ model: 'Grant', id: 'inside', payload: '{}' }).execute();
        throw new Error('changed my mind');
      });
      const beside = Promise.all(['beside-1', 'beside-2'].map(insert));
      await expect(failing).rejects.toThrow('changed my mind');
      await beside;
      const ids = (await db.selectFrom('oidc_models').select('id').where('id', 'in', ['inside', 'beside-1', 'beside-2']).execute()).map((r) => r.id);
      expect(ids.sort()).toEqual(['beside-1', 'beside-2']);
    } finally {
      await database.close();
    }
  }, 60_000);
});

describe('the embedded database running the same statements again', () => {
  it('keeps each one prepared once, not parsed again; a failed group and a schema change leave every statement working', async () => {
    const database = await openDatabase({ kind: 'pglite', dataDir: undefined });
    try {
      const { db } = database;
      const preparedTexts = async () =>
        (await sql<{ statement: string }>`select statement from pg_prepared_statements`.execute(db)).rows.map((row) => row.statement);
      const find = (id: string) => db.selectFrom('oidc_models').select('id').where('id', '=', id).execute();
      const insert = (id: string) => CompiledQuery.raw('insert into oidc_models (model, id, payload) values ($1, $2, $3)', ['Grant', id, '{}']);
      const findText = db.selectFrom('oidc_models').select('id').where('id', '=', 'x').compile().sql;

      // Alone, then three at once (one pipeline): one prepared statement for the text, whatever its parameters.
      for (const id of ['a', 'b', 'c']) await find(id);
      await Promise.all(['d', 'e', 'f'].map(find));
      await database.runTogether([insert('g-1'), insert('g-2')]);
      const texts = await preparedTexts();
      expect(texts.filter((text) => text === findText)).toHaveLength(1);
      expect(texts.filter((text) => text === insert('').sql)).toHaveLength(1);

      // A group that fails on its second statement rolls back; the statements in it still work afterwards.
      await expect(database.runTogether([insert('g-3'), insert('g-1')])).rejects.toMatchObject({ code: '23505' });
      await database.runTogether([insert('g-3'), insert('g-4')]);
      expect((await db.selectFrom('oidc_models').select('id').orderBy('id').execute()).map((r) => r.id)).toEqual(['g-1', 'g-2', 'g-3', 'g-4']);

      // PostgreSQL refuses a kept `select *` whose table gained a column; after a schema change it is parsed anew.
      await sql`create table scratch (a int)`.execute(db);
      await sql`insert into scratch values (1)`.execute(db);
      const everything = () => sql<Record<string, unknown>>`select * from scratch`.execute(db);
      expect((await everything()).rows).toEqual([{ a: 1 }]);
      expect((await everything()).rows).toEqual([{ a: 1 }]);
      await sql`alter table scratch add column b int default 2`.execute(db);
      expect((await everything()).rows).toEqual([{ a: 1, b: 2 }]);
      expect((await everything()).rows).toEqual([{ a: 1, b: 2 }]);
    } finally {
      await database.close();
    }
  }, 60_000);
});

describe('the embedded database in a long run', () => {
  /** Rewrites every row of `oidc_models` `rounds` times, as task events rewrite tasks; `settle` runs after each round. */
  async function rewrite(database: Database, rounds: number, settle: () => Promise<void>): Promise<number[]> {
    const { db } = database;
    const rows = Array.from({ length: 200 }, (_, i) => ({ model: 'Grant', id: `grant-${i}`, payload: JSON.stringify({ round: 0, pad: 'x'.repeat(900) }) }));
    await db.insertInto('oidc_models').values(rows).execute();
    const sizes: number[] = [];
    for (let round = 1; round <= rounds; round++) {
      await db.updateTable('oidc_models').set({ payload: JSON.stringify({ round, pad: 'y'.repeat(900) }) }).execute();
      await settle();
      const { rows: size } = await sql<{ bytes: string }>`select pg_total_relation_size('oidc_models') as bytes`.execute(db);
      sizes.push(Number(size[0]!.bytes));
    }
    return sizes;
  }

  it('vacuums itself (PGlite has no autovacuum), so rows rewritten again and again stop taking more room', async () => {
    let vacuums = 0;
    const failures: Error[] = [];
    const vacuumed = await openDatabase({ kind: 'pglite', dataDir: undefined }, { vacuumEveryMs: 20, onVacuum: (error) => (error ? failures.push(error) : (vacuums += 1)) });
    const never = await openDatabase({ kind: 'pglite', dataDir: undefined }, { vacuumEveryMs: 0 });
    try {
      // A VACUUM counted after a round's last statement ran after it: it waits for the connection that statement held.
      const afterVacuum = async () => {
        const seen = vacuums;
        await waitUntil(async () => (vacuums > seen ? true : undefined), 30_000, 10);
      };
      const grown = await rewrite(never, 20, async () => {});
      const kept = await rewrite(vacuumed, 20, afterVacuum);
      // Without VACUUM every round adds a copy of the table; with it, the room the last round freed is used again.
      expect(grown[19]).toBeGreaterThan(grown[0]! * 5);
      expect(Math.max(...kept)).toBeLessThanOrEqual(kept[0]! * 1.5);
      expect(failures).toEqual([]);
    } finally {
      await Promise.all([vacuumed.close(), never.close()]);
    }
  }, 120_000);

  it('says once that VACUUM fails, and once that it works again, not at every tick between', async () => {
    const lines: string[] = [];
    const outcomes: (Error | undefined)[] = [];
    const database = await openDatabase(
      { kind: 'pglite', dataDir: undefined },
      { vacuumEveryMs: 20, log: (line) => lines.push(line), onVacuum: (error) => outcomes.push(error) },
    );
    try {
      // VACUUM cannot run inside a transaction block: while one is left open on the connection, each one fails.
      await sql`begin`.execute(database.db);
      // A VACUUM before it held the connection, and was told before the statement ran.
      outcomes.length = 0;
      await waitUntil(async () => (outcomes.filter(Boolean).length >= 3 ? true : undefined), 30_000, 10);
      expect(outcomes.every(Boolean)).toBe(true);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^The embedded PostgreSQL \(PGlite\) in memory could not be vacuumed \(VACUUM cannot run inside a transaction block\)/);

      await sql`commit`.execute(database.db);
      await waitUntil(async () => (outcomes.at(-1) === undefined && outcomes.length > 3 ? true : undefined), 30_000, 10);
      const failed = outcomes.filter(Boolean).length;
      expect(lines).toEqual([lines[0], `The embedded PostgreSQL (PGlite) in memory is vacuumed again, after ${failed} failed VACUUMs.`]);
    } finally {
      await database.close();
    }
  }, 60_000);
});

describe('the database on PostgreSQL', () => {
  it('is migrated once when several processes start on it at the same time', async () => {
    const url = await postgres.createDatabase();
    const opened = await Promise.all([1, 2, 3].map(() => openDatabase({ kind: 'postgres', url })));
    try {
      expect(opened.map((d) => d.schemaVersion)).toEqual([LATEST_SCHEMA_VERSION, LATEST_SCHEMA_VERSION, LATEST_SCHEMA_VERSION]);
      const { rows } = await sql<{ n: string | number }>`select count(*) as n from ${sql.table(MIGRATION_TABLE)}`.execute(opened[0]!.db);
      expect(Number(rows[0]!.n)).toBe(Object.keys(MIGRATIONS).length);
    } finally {
      await Promise.all(opened.map((d) => d.close()));
    }
  });

  it('delivers a NOTIFY from one process to LISTENers in another', async () => {
    const url = await postgres.createDatabase();
    const [listening, notifying] = await Promise.all([openDatabase({ kind: 'postgres', url }), openDatabase({ kind: 'postgres', url })]);
    try {
      const heard: string[] = [];
      await listening.listen('consent_events', (payload) => heard.push(`a:${payload}`));
      const stopSecond = await listening.listen('consent_events', (payload) => heard.push(`b:${payload}`));
      await notifying.notify('consent_events', 'first');
      await waitUntil(async () => (heard.length === 2 ? true : undefined), 5_000);
      await stopSecond();
      await notifying.notify('consent_events', 'second');
      await waitUntil(async () => (heard.length === 3 ? true : undefined), 5_000);
      expect(heard.sort()).toEqual(['a:first', 'a:second', 'b:first']);
    } finally {
      await Promise.all([listening.close(), notifying.close()]);
    }
  });

  it('gives up on a server that accepts the connection and never answers, after the connect deadline', async () => {
    const silent = createServer((socket) => socket.on('error', () => {}));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    try {
      const started = performance.now();
      const error = await openDatabase({ kind: 'postgres', url: `postgres://sandbox@127.0.0.1:${port}/sandbox` }, { connectTimeoutMs: 300 }).catch(
        (e: unknown) => e,
      );
      expect(error).toMatchObject({ code: 'database_unreachable' });
      // Well before the pool's own wait for a free connection (30 s).
      expect(performance.now() - started).toBeLessThan(20_000);
    } finally {
      silent.close();
    }
  });

  it('lets a query wait for a busy pool longer than a connection may take to open', async () => {
    const database = await openDatabase({ kind: 'postgres', url: await postgres.createDatabase() }, { connectTimeoutMs: 1000 });
    try {
      // The pool's ten connections are busy for 2.5 s; the eleventh query waits for one and is answered.
      const busy = Array.from({ length: 10 }, () => sql`select pg_sleep(2.5)`.execute(database.db));
      const waiting = sql<{ n: number }>`select 1 as n`.execute(database.db);
      await Promise.all(busy);
      expect((await waiting).rows).toEqual([{ n: 1 }]);
    } finally {
      await database.close();
    }
  });

  it('says which server it cannot reach, without its password', async () => {
    const [port] = await freePorts(1);
    const error = await openDatabase({ kind: 'postgres', url: `postgres://sandbox:s3cret@127.0.0.1:${port}/sandbox` }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ code: 'database_unreachable' });
    expect((error as Error).message).toContain(`PostgreSQL at postgres://sandbox:***@127.0.0.1:${port}/sandbox`);
    expect((error as Error).message).toContain('ECONNREFUSED');
    expect((error as Error).message).not.toContain('s3cret');
  });

  it('says so when the database does not exist', async () => {
    const error = await openDatabase({ kind: 'postgres', url: postgres.url('no_such_database') }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'database_unreachable' });
    expect((error as Error).message).toContain('no_such_database');
  });
});

describe('the PGlite folder', () => {
  it("is opened with shared memory sized for one service's database, not PostgreSQL's server defaults", async () => {
    const database = await openDatabase({ kind: 'pglite', dataDir: join(scratchDir(), 'db') });
    try {
      const { rows } = await sql<{ name: string; setting: string; unit: string | null }>`
        select name, setting, unit from pg_settings where name in ('shared_buffers', 'max_connections') order by name`.execute(database.db);
      // 2048 pages of 8 kB: 16 MB of buffers rather than 128 MB; 10 connections rather than 100.
      expect(rows).toEqual([
        { name: 'max_connections', setting: '10', unit: null },
        { name: 'shared_buffers', setting: '2048', unit: '8kB' },
      ]);
    } finally {
      await database.close();
    }
  });

  it('is refused with a reason when it is not a folder', async () => {
    const file = join(scratchDir(), 'db');
    writeFileSync(file, 'not a database');
    const error = await openDatabase({ kind: 'pglite', dataDir: file }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'data_dir_unusable' });
    expect((error as Error).message).toContain(file);
  });
});

describe('a PGlite folder cut short while being made', () => {
  it('stops at once when opening is aborted, and is made again on the next start', async () => {
    const dataDir = join(scratchDir(), 'db');
    const opening = new AbortController();
    const aborted = openDatabase({ kind: 'pglite', dataDir }, { signal: opening.signal });
    setImmediate(() => opening.abort(new Error('stopped while starting')));
    await expect(aborted).rejects.toThrow('stopped while starting');
    writeFileSync(join(dataDir, 'PG_VERSION'), 'half made');

    const database = await openDatabase({ kind: 'pglite', dataDir });
    try {
      expect(database.schemaVersion).toBe(LATEST_SCHEMA_VERSION);
      expect(existsSync(join(dataDir, 'sandbox-database-complete'))).toBe(true);
    } finally {
      await database.close();
    }
  }, 90_000);
});

describe('where a service keeps its state', () => {
  it('is a PGlite folder of its own under SANDBOX_STATE_DIR unless DATABASE_URL is set', () => {
    const local = loadConfig({ SANDBOX_STATE_DIR: '/var/tmp/sandbox-state' });
    expect(databaseLocation(local, 'agent')).toEqual({ kind: 'pglite', dataDir: '/var/tmp/sandbox-state/db/agent' });
    expect(databaseLocation(local, 'tenant')).toEqual({ kind: 'pglite', dataDir: '/var/tmp/sandbox-state/db/tenant' });
    const shared = loadConfig({ DATABASE_URL: 'postgres://sandbox@db.internal:5432/sandbox' });
    expect(databaseLocation(shared, 'agent')).toEqual({ kind: 'postgres', url: 'postgres://sandbox@db.internal:5432/sandbox' });
    expect(databaseLocation(shared, 'tenant')).toEqual(databaseLocation(shared, 'agent'));
  });

  it('refuses a DATABASE_URL that is not a PostgreSQL URL', () => {
    expect(() => loadConfig({ DATABASE_URL: 'mysql://localhost/sandbox' })).toThrow(/DATABASE_URL must be a PostgreSQL URL/);
    expect(() => loadConfig({ DATABASE_URL: 'not a url' })).toThrow(/DATABASE_URL must be a PostgreSQL URL/);
  });
});

describe('a new embedded database', () => {
  it('is made in full once, then loaded from the files that first one left (a folder on disk, a tar in memory); a broken template is dropped', async () => {
    const template = join(scratchDir(), 'cache', 'initdb.tar');
    const query = async (dataDir: string | undefined) => {
      const thread = await startPgliteThread(dataDir, undefined, template);
      try {
        await thread.query('create table kept (note text)', []);
        await thread.query("insert into kept values ('written')", []);
        return (await thread.query('select count(*)::int as n from pg_class', [])).rows;
      } finally {
        await thread.close();
      }
    };
    expect(existsSync(template)).toBe(false);
    const full = await query(join(scratchDir(), 'db'));
    // The template is PGlite's starting files only, not what the first database wrote.
    expect(existsSync(template)).toBe(true);
    const loaded = join(scratchDir(), 'db');
    expect(await query(loaded)).toEqual(full);
    expect(await query(undefined)).toEqual(full);
    // Loaded from the template, the folder is a database of its own: opened again, it holds what was written.
    const reopened = await startPgliteThread(loaded, undefined, template);
    expect((await reopened.query('select note from kept', [])).rows).toEqual([{ note: 'written' }]);
    await reopened.close();

    // On disk, a new database is copied from the same files kept as a folder: a broken tar is not even read ...
    const folder = template.replace(/\.tar$/, '');
    expect(existsSync(join(folder, 'PG_VERSION'))).toBe(true);
    writeFileSync(template, 'not a tar file');
    expect(await query(join(scratchDir(), 'db'))).toEqual(full);
    expect(readFileSync(template, 'utf8')).toBe('not a tar file');
    // ... while one in memory loads the tar, finds it broken, is made in full and leaves a good one.
    expect(await query(undefined)).toEqual(full);
    expect(readFileSync(template).length).toBeGreaterThan(1_000_000);
    // A broken folder is dropped: the database comes from the tar, and leaves the folder again.
    rmSync(join(folder, 'global'), { recursive: true });
    expect(await query(join(scratchDir(), 'db'))).toEqual(full);
    expect(existsSync(join(folder, 'global'))).toBe(true);
    // Two databases made in full (PGlite's initdb, seconds of CPU each) and six opened: minutes on a busy machine.
  }, 180_000);

  it("can be prepared before any service opens one: makeTemplates leaves the tar and the folder, and nothing else", async () => {
    const template = join(scratchDir(), 'cache', 'initdb.tar');
    const scratches = () => readdirSync(tmpdir()).filter((name) => name.startsWith('pglite-templates-')).length;
    const before = scratches();
    expect(templatesMissing(template)).toBe(true);
    await makeTemplates(template);
    expect(templatesMissing(template)).toBe(false);
    expect(existsSync(join(template.replace(/\.tar$/, ''), 'PG_VERSION'))).toBe(true);
    expect(scratches()).toBe(before);
    // Made already: nothing is done again.
    const made = statSync(template).mtimeMs;
    await makeTemplates(template);
    expect(statSync(template).mtimeMs).toBe(made);
    // And a new database starts from them: it is a database like any other.
    const thread = await startPgliteThread(join(scratchDir(), 'db'), undefined, template);
    expect((await thread.query('select 1 as one', [])).rows).toEqual([{ one: 1 }]);
    await thread.close();
  });

  it('made in full, leaves no initdb-sized memory behind: its service holds about what one that loaded the template holds', async () => {
    // Each opening in a process of its own, whose resident memory is what a service would keep.
    const template = join(scratchDir(), 'cache', 'initdb.tar');
    const openedIn = async () => {
      const run = runCommand(process.execPath, ['--import', 'tsx', 'sandbox/test/storage/open-new-database.ts', template], {});
      const { code } = await run.exited;
      expect(code, run.output()).toBe(0);
      return (JSON.parse(run.stdout().trim().split('\n').at(-1)!) as { rssMiB: number }).rssMiB;
    };
    const madeInFull = await openedIn();
    expect(existsSync(template)).toBe(true);
    const loaded = await openedIn();
    // initdb grows PGlite's WebAssembly memory by about 550 MiB for good (about 790 against 250 MiB here); a thread
    // started again for the made database holds 310–420 MiB (memory freed by the first thread that the allocator keeps).
    expect(madeInFull).toBeLessThan(loaded + 300);
  });
});
