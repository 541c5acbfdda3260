import { cpSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';
import pgUtils from 'pg/lib/utils.js';
import { serialize } from 'pg-protocol';
import { makeFolderAtomically, writeFileAtomically } from '../cache.mjs';

// The body of pglite-thread.ts's worker thread: owns one PGlite and runs the
// queries it is sent, in order. Plain JavaScript so that it loads the same way
// under tsx, Vitest and plain Node.

const ERROR_FIELDS = ['code', 'detail', 'hint', 'severity', 'schema', 'table', 'column', 'constraint'];

function describe(error) {
  const described = { message: error instanceof Error ? error.message : String(error) };
  for (const field of ERROR_FIELDS) {
    const value = error?.[field];
    if (typeof value === 'string') described[field] = value;
  }
  return described;
}

const port = parentPort;
// `templateFolder`: the template kept as a folder beside the tar (pglite-templates.ts), or undefined.
const { dataDir, template, templateFolder, reopened } = workerData;

/**
 * PostgreSQL's defaults size its shared memory for a server: 128 MB of buffers and 100 connections. A
 * service's database is a few megabytes and PGlite has one connection; PGlite's WebAssembly memory never
 * shrinks, so these sizes were most of a service's memory (about 280 MiB more than without the database,
 * 140 MiB less with these; the files outside the buffers are read through the operating system's cache).
 */
const MEMORY_SETTINGS = ['-c', 'shared_buffers=16MB', '-c', 'max_connections=10'];

/** Empties the new database's folder after a template failed to load, so that it is made in full. */
function clearDataDir() {
  if (dataDir !== undefined) for (const entry of readdirSync(dataDir)) rmSync(join(dataDir, entry), { recursive: true, force: true });
}

/** Loads a new database from a template; a template that cannot be loaded is deleted. */
async function fromTemplate(path, load) {
  try {
    return await load();
  } catch {
    rmSync(path, { recursive: true, force: true });
    clearDataDir();
    return undefined;
  }
}

/** What `open` returns when it made the database in full and the thread should be started again (see there). */
const REOPEN = Symbol('reopen');

/**
 * Opens the database. A new one starts from the templates (pglite-thread.ts) when there are some; the first
 * new one made in full leaves its files there for the next. A template that cannot be read or loaded is
 * dropped and the database made from the other, or in full.
 *
 * Making a database in full (initdb) grows PGlite's WebAssembly memory to about 600 MiB, and that memory
 * never shrinks: the service that happened to make the templates would hold it for as long as it runs. So
 * once the database and its templates are on disk, this thread closes it and returns REOPEN, and the
 * service starts a new thread, which opens what this one made (or loads the template, for a database in
 * memory, whose starting files are the template's) at the usual size. A thread started again never asks again.
 */
async function open() {
  const options = { startParams: [...PGlite.defaultStartParams, ...MEMORY_SETTINGS], ...(dataDir === undefined ? {} : { dataDir }) };
  const fresh = dataDir === undefined || !existsSync(join(dataDir, 'PG_VERSION'));
  if (!fresh) return PGlite.create(options);
  if (dataDir !== undefined && templateFolder !== undefined && existsSync(join(templateFolder, 'PG_VERSION'))) {
    const db = await fromTemplate(templateFolder, () => {
      cpSync(templateFolder, dataDir, { recursive: true });
      return PGlite.create(options);
    });
    if (db) return db;
  }
  let db;
  if (template !== undefined && existsSync(template)) {
    db = await fromTemplate(template, () => PGlite.create({ ...options, loadDataDir: new Blob([readFileSync(template)]) }));
  }
  let madeInFull = false;
  try {
    if (!db) {
      db = await PGlite.create(options);
      madeInFull = true;
      if (template !== undefined) writeFileAtomically(template, Buffer.from(await (await db.dumpDataDir('none')).arrayBuffer()));
    }
    if (dataDir !== undefined && templateFolder !== undefined && !existsSync(templateFolder)) {
      // Every change so far written to the files, so that the copy opens as this database is now.
      await db.exec('checkpoint');
      makeFolderAtomically(templateFolder, (partial) => cpSync(dataDir, partial, { recursive: true }));
    }
  } catch (error) {
    // No template this time (a read-only folder): the next new database is made in full too.
    if (!db) throw error;
  }
  // Started again only where the next thread finds what it needs: its database on disk, or the template.
  const reopenable = dataDir !== undefined ? existsSync(join(dataDir, 'PG_VERSION')) : template !== undefined && existsSync(template);
  if (madeInFull && !reopened && reopenable) {
    await db.close();
    return REOPEN;
  }
  return db;
}

let db;
try {
  // Creating a database (initdb) takes seconds of CPU, opening one about a second; this thread keeps the
  // normal priority: at a lower one, a machine busy with other work would starve it for minutes.
  db = await open();
} catch (error) {
  port.postMessage({ type: 'failed', error: describe(error) });
  process.exit(0);
}
if (db === REOPEN) {
  port.postMessage({ type: 'reopen' });
  process.exit(0);
}

/** Channel → PGlite's unsubscribe, for LISTEN on behalf of the service's thread. */
const listening = new Map();

/** Rows changed, from a statement's command tag (`INSERT 0 3`, `UPDATE 2`, `DELETE 1`, …). */
function affectedRows(tag) {
  const [command, first, second] = tag.split(' ');
  if (command === 'INSERT') return Number(second);
  return ['UPDATE', 'DELETE', 'COPY', 'MERGE'].includes(command) ? Number(first) : 0;
}

/**
 * Statement text → the name of the prepared statement this connection keeps for it. A statement sent by name
 * is bound and executed without being parsed and analysed again: about 90 µs less CPU per statement here (a
 * tenant's upsert of a CIBA request, 230 against 145 µs, in pipelines of three, under `--liftoff-only`), of
 * a service that runs the same few statements thousands of times. A name is kept only once its pipeline
 * succeeded, and never given twice: a prepared statement outlives a failed pipeline and a rollback, so one
 * whose pipeline failed is left unused rather than guessed at. A schema change forgets them all, since
 * PostgreSQL refuses a kept `select *` whose table changed ("cached plan must not change result type");
 * past MAX_PREPARED texts (queries built with lists of varying length), the rest are parsed each time.
 */
const prepared = new Map();
const MAX_PREPARED = 256;
const SCHEMA_CHANGE = /^\s*(create|alter|drop|truncate|comment|grant|revoke)\b/i;
let lastName = 0;

/**
 * Runs statements in order as one pipeline of PostgreSQL's extended protocol (parse unless prepared, bind,
 * describe and execute each; one sync at the end), in one call into PGlite. `db.query` makes six calls per statement,
 * each costing about as much as the statement itself; `db.transaction` adds BEGIN and COMMIT. Outside an
 * explicit transaction the pipeline is one implicit transaction: every statement is committed, or none
 * (an error skips the rest and rolls back). Parameters are sent as text the way node-postgres sends them
 * (`prepareValue`, so both stores get the same values), and each column is read with PGlite's parser for
 * its type, as `db.query` reads it. Resolves to each statement's rows and count of changed rows.
 */
async function run(statements) {
  const parts = [];
  // Names parsed in this pipeline, kept once it succeeds.
  const parsed = new Map();
  for (const { sql, params } of statements) {
    let name = prepared.get(sql) ?? parsed.get(sql);
    if (name === undefined) {
      if (SCHEMA_CHANGE.test(sql)) {
        prepared.clear();
        parsed.clear();
        name = '';
      } else {
        name = prepared.size + parsed.size < MAX_PREPARED ? `s${++lastName}` : '';
        if (name !== '') parsed.set(sql, name);
      }
      parts.push(serialize.parse({ name, text: sql }));
    }
    parts.push(
      serialize.bind({ statement: name, values: params.map((value) => pgUtils.prepareValue(value)) }),
      serialize.describe({ type: 'P' }),
      serialize.execute(),
    );
  }
  parts.push(serialize.sync());
  const { messages } = await db.execProtocol(Buffer.concat(parts));
  for (const [sql, name] of parsed) prepared.set(sql, name);
  const outcomes = [];
  let fields = [];
  let rows = [];
  for (const message of messages) {
    if (message.name === 'rowDescription') {
      fields = message.fields.map(({ name, dataTypeID }) => ({ name, parse: db.parsers[dataTypeID] ?? String, dataTypeID }));
    } else if (message.name === 'dataRow') {
      rows.push(Object.fromEntries(message.fields.map((value, i) => [fields[i].name, value === null ? null : fields[i].parse(value, fields[i].dataTypeID)])));
    } else if (message.name === 'commandComplete' || message.name === 'emptyQuery') {
      outcomes.push({ rows, affectedRows: message.name === 'commandComplete' ? affectedRows(message.text) : 0 });
      fields = [];
      rows = [];
    }
  }
  if (outcomes.length !== statements.length) throw new Error(`PGlite answered ${outcomes.length} of ${statements.length} statements`);
  return outcomes;
}

async function handle(message) {
  if (message.type === 'close') {
    await db.close().catch(() => {});
    port.postMessage({ type: 'closed' });
    port.close();
    return;
  }
  try {
    if (message.type === 'listen') {
      if (!listening.has(message.channel)) {
        listening.set(message.channel, await db.listen(message.channel, (payload) => port.postMessage({ type: 'notification', channel: message.channel, payload })));
      }
      port.postMessage({ type: 'result', id: message.id, rows: [], affectedRows: 0 });
    } else if (message.type === 'unlisten') {
      const unsubscribe = listening.get(message.channel);
      listening.delete(message.channel);
      await unsubscribe?.();
      port.postMessage({ type: 'result', id: message.id, rows: [], affectedRows: 0 });
    } else if (message.type === 'batch') {
      // One transaction, one commit: what the service's thread sent together is written together; each
      // statement's rows, in order, as the batch's rows.
      port.postMessage({ type: 'result', id: message.id, rows: await run(message.statements), affectedRows: 0 });
    } else {
      const [outcome] = await run([{ sql: message.sql, params: message.params }]);
      port.postMessage({ type: 'result', id: message.id, rows: outcome.rows, affectedRows: outcome.affectedRows });
    }
  } catch (error) {
    // Every request is answered, a failed LISTEN too: the service's thread waits for its answer.
    port.postMessage({ type: 'result', id: message.id, error: describe(error) });
  }
}

// One message at a time, in the order sent: a pipeline is one call, but LISTEN goes through `db.listen`, whose
// calls must not interleave with it.
let previous = Promise.resolve();
port.on('message', (message) => {
  previous = previous.then(() => handle(message));
});
port.postMessage({ type: 'ready' });
