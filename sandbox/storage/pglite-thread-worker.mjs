import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';

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
const { dataDir } = workerData;
let db;
try {
  // Creating a database (initdb) takes seconds of CPU, opening one about a second; this thread keeps the
  // normal priority: at a lower one, a machine busy with other work would starve it for minutes.
  db = await PGlite.create(dataDir === undefined ? {} : { dataDir });
} catch (error) {
  port.postMessage({ type: 'failed', error: describe(error) });
  process.exit(0);
}

/** Channel → PGlite's unsubscribe, for LISTEN on behalf of the service's thread. */
const listening = new Map();

port.on('message', async (message) => {
  if (message.type === 'listen') {
    if (!listening.has(message.channel)) {
      listening.set(message.channel, await db.listen(message.channel, (payload) => port.postMessage({ type: 'notification', channel: message.channel, payload })));
    }
    port.postMessage({ type: 'result', id: message.id, rows: [], affectedRows: 0 });
    return;
  }
  if (message.type === 'unlisten') {
    const unsubscribe = listening.get(message.channel);
    listening.delete(message.channel);
    await unsubscribe?.();
    port.postMessage({ type: 'result', id: message.id, rows: [], affectedRows: 0 });
    return;
  }
  if (message.type === 'close') {
    await db.close().catch(() => {});
    port.postMessage({ type: 'closed' });
    port.close();
    return;
  }
  if (message.type === 'batch') {
    // One transaction, one commit: what the service's thread sent together is written together.
    try {
      const outcomes = await db.transaction(async (tx) => {
        const each = [];
        for (const statement of message.statements) {
          const result = await tx.query(statement.sql, statement.params);
          each.push({ rows: result.rows, affectedRows: result.affectedRows ?? 0 });
        }
        return each;
      });
      // Each statement's rows, in order, as the batch's rows.
      port.postMessage({ type: 'result', id: message.id, rows: outcomes, affectedRows: 0 });
    } catch (error) {
      port.postMessage({ type: 'result', id: message.id, error: describe(error) });
    }
    return;
  }
  try {
    const result = await db.query(message.sql, message.params);
    port.postMessage({ type: 'result', id: message.id, rows: result.rows, affectedRows: result.affectedRows ?? 0 });
  } catch (error) {
    port.postMessage({ type: 'result', id: message.id, error: describe(error) });
  }
});
port.postMessage({ type: 'ready' });
