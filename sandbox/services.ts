import { spawn } from 'node:child_process';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { createServer } from 'node:net';
import { builtEntry } from './build.mjs';
import { repoRoot } from './cache.mjs';
import type { SandboxConfig } from './config.ts';
import { templatesMissing } from './storage/pglite-templates.ts';

/** What `npm run sandbox` starts for a given configuration. */
export interface ServiceSpec {
  name: string;
  label: string;
  /** The service's main module, relative to the repository root. */
  entry: string;
  port: number;
  /** The variable that moves this service to another port. */
  portVariable: string;
  healthUrl: string;
  color: string;
  /** Node flags before the entry (V8 limits). */
  nodeFlags: string[];
}

/**
 * How a service is started, the arguments after the Node binary: from a build of the sandbox
 * (sandbox/build.mjs, as `npm run sandbox` starts it), or else `--import tsx <entry>` from the sources.
 */
export function nodeArgs(spec: Pick<ServiceSpec, 'entry' | 'nodeFlags'>, buildDir?: string): string[] {
  return buildDir === undefined ? [...spec.nodeFlags, '--import', 'tsx', spec.entry] : [...spec.nodeFlags, builtEntry(buildDir, spec.entry)];
}

/**
 * The flags of a service that may open an embedded database (PGlite, PostgreSQL compiled to WebAssembly, about
 * 10 MB of it). V8 first compiles WebAssembly with its baseline compiler (Liftoff) and then recompiles the busy
 * functions with its optimizing one (TurboFan) on background threads; for PostgreSQL that recompiling cost more
 * CPU than it saved over the first tens of thousands of statements, and its code stayed in memory. Liftoff only:
 * the agent's RSS at rest was about 75 MiB lower (190 against 265 MiB), its peak at a thousand pending consents
 * 50 MiB lower, and the agent and the tenant each spent about 0.4 ms less CPU per consent (`npm run bench`,
 * `consents-ping-embedded`). Past about 20 000 statements Liftoff's code is the slower, by about a fifth of the
 * database's own time. Only WebAssembly is affected; a service on a PostgreSQL server runs none.
 */
export const EMBEDDED_DATABASE_NODE_FLAGS: readonly string[] = ['--liftoff-only'];

/**
 * What every service's environment adds, unless the caller's sets it. glibc's malloc gives threads that allocate
 * at once arenas of their own, up to eight per core, and keeps what is freed in each for later: a service runs its
 * main thread, V8's helper threads, libuv's pool and its background threads. Two arenas kept the embedded agent's
 * RSS about 10 MiB lower, at rest and at its peak, with no change to see in its latency (`npm run bench`,
 * HISTORY.md). Other C libraries ignore the variable.
 */
export function serviceEnvironment(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return env.MALLOC_ARENA_MAX === undefined ? { MALLOC_ARENA_MAX: '2' } : {};
}

/**
 * The HR Agent's process flags: its heap limit keeps a thousand pending consents from leaving garbage uncollected,
 * and its semi-space, when set (by default with the embedded database), keeps its peak RSS down.
 */
export function agentNodeFlags(config: SandboxConfig): string[] {
  const { maxHeapMb, semiSpaceMb } = config.agent;
  return [
    `--max-old-space-size=${maxHeapMb}`,
    ...(semiSpaceMb === undefined ? [] : [`--max-semi-space-size=${semiSpaceMb}`]),
    ...EMBEDDED_DATABASE_NODE_FLAGS,
  ];
}

/** True when a service of this configuration keeps its state in an embedded database (PGlite). */
function usesEmbeddedDatabase(config: SandboxConfig): boolean {
  return config.storage.databaseUrl === undefined && (config.identity.backend === 'local' || config.storage.agentState === 'database');
}

/**
 * Before the services start: on a machine with no embedded-database templates yet, makes them in a process of
 * its own (sandbox/storage/make-templates.ts, from the build when there is one). Otherwise each service opening
 * a new database would run PGlite's `initdb` itself: seconds of CPU each, the agent's and the tenant's at once,
 * and about 550 MiB of WebAssembly memory at its peak. Resolves to what the caller should say, if anything; a
 * failure is not fatal (the services then make the database in full themselves).
 */
export async function prepareEmbeddedDatabases(config: SandboxConfig, buildDir?: string, log?: (line: string) => void): Promise<string | undefined> {
  if (!usesEmbeddedDatabase(config) || !templatesMissing()) return undefined;
  log?.("Making the embedded database's templates (once on this machine, a few seconds)…");
  const child = spawn(process.execPath, nodeArgs({ entry: 'sandbox/storage/make-templates.ts', nodeFlags: [...EMBEDDED_DATABASE_NODE_FLAGS] }, buildDir), {
    cwd: repoRoot,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  const code = await new Promise<number | null>((resolve) => {
    child.once('error', () => resolve(null));
    child.once('close', resolve);
  });
  return code === 0 ? undefined : `Could not make the embedded database's templates (${stderr.trim() || `exit ${code}`}); each service makes its database in full.`;
}

export function servicesFor(config: SandboxConfig): ServiceSpec[] {
  // First, so it is listening before any service exports its first span; it only reads spans, so both modes have it.
  const services: ServiceSpec[] = [
    {
      name: 'flows',
      label: 'flow console',
      entry: 'sandbox/flow-console/main.ts',
      port: config.ports.flowConsole,
      portVariable: 'FLOW_CONSOLE_PORT',
      healthUrl: `${config.urls.flowConsole}/health`,
      color: 'blue',
      nodeFlags: [],
    },
  ];
  if (config.identity.backend === 'local') {
    services.push({
      name: 'tenant',
      label: 'local tenant + Guardian page',
      entry: 'mock-guardian/main.ts',
      port: config.ports.tenant,
      portVariable: 'TENANT_PORT',
      healthUrl: `${config.urls.tenant}/health`,
      color: 'magenta',
      nodeFlags: [...EMBEDDED_DATABASE_NODE_FLAGS],
    });
  }
  if (config.gemini.mode === 'mock') {
    services.push({
      name: 'gemini',
      label: 'mock-gemini',
      entry: 'mock-gemini/main.ts',
      port: config.ports.mockGemini,
      portVariable: 'MOCK_GEMINI_PORT',
      healthUrl: `${config.urls.mockGemini}/health`,
      color: 'yellow',
      nodeFlags: [],
    });
  }
  services.push(
    {
      name: 'hr-api',
      label: 'Staff0 HR API',
      entry: 'hr-api/main.ts',
      port: config.ports.hrApi,
      portVariable: 'HR_API_PORT',
      healthUrl: `${config.urls.hrApi}/health`,
      color: 'cyan',
      nodeFlags: [],
    },
    {
      name: 'agent',
      label: 'Staff0 HR Agent',
      entry: 'agent/main.ts',
      port: config.ports.agent,
      portVariable: 'HR_AGENT_PORT',
      healthUrl: `${config.urls.agent}/health`,
      color: 'green',
      nodeFlags: agentNodeFlags(config),
    },
  );
  return services;
}

export class PortInUseError extends Error {
  readonly code = 'port_in_use';
  constructor(readonly service: ServiceSpec, host: string) {
    super(
      `Port ${service.port} for the ${service.label} is already in use on ${host}. ` +
        `Stop whatever uses it, or set ${service.portVariable} to a free port.`,
    );
    this.name = 'PortInUseError';
  }
}

/** Fails fast, naming the variable to change, rather than letting a child die with EADDRINUSE. */
export async function assertPortsFree(services: ServiceSpec[], host: string): Promise<void> {
  for (const service of services) {
    if (service.port === 0) continue;
    await new Promise<void>((resolve, reject) => {
      const probe = createServer();
      probe.once('error', (error: NodeJS.ErrnoException) =>
        reject(error.code === 'EADDRINUSE' || error.code === 'EACCES' ? new PortInUseError(service, host) : error),
      );
      probe.listen(service.port, host, () => probe.close(() => resolve()));
    });
  }
}

function answersOk(url: string, ca: string | undefined, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const get = url.startsWith('https:') ? httpsGet : httpGet;
    const req = get(url, { signal, timeout: 2_000, ...(ca ? { ca } : {}) }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 500) < 300);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/**
 * Resolves once the URL answers 2xx; rejects when `signal` aborts first.
 * `ca` trusts a local CA for an HTTPS tenant without touching this process's trust store.
 */
export async function waitForHealthy(url: string, signal: AbortSignal, options: { ca?: string; everyMs?: number } = {}): Promise<void> {
  while (!signal.aborted) {
    if (await answersOk(url, options.ca, signal)) return;
    await new Promise((r) => setTimeout(r, options.everyMs ?? 50));
  }
  throw signal.reason instanceof Error ? signal.reason : new Error(`Gave up waiting for ${url}`);
}
