import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPgliteThread } from '../../storage/pglite-thread.ts';

/**
 * A process that opens one new embedded database with the templates at `argv[2]` (made by it if there are
 * none yet), runs a statement, and prints its resident memory as JSON: what a service that opens its database
 * holds, measured from its own process (database.test.ts).
 */

const template = process.argv[2];
if (!template) throw new Error('usage: open-new-database.ts <template.tar>');
const folder = mkdtempSync(join(tmpdir(), 'open-new-database-'));
try {
  const thread = await startPgliteThread(join(folder, 'db'), undefined, template);
  await thread.query('select 1', []);
  console.log(JSON.stringify({ rssMiB: process.memoryUsage().rss / 2 ** 20 }));
  await thread.close();
} finally {
  rmSync(folder, { recursive: true, force: true });
}
