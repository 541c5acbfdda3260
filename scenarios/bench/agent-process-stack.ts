import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@a2a-js/sdk/client';
import type { ConsentRequestView, ConsentStatus } from '../../mock-guardian/consent-requests.ts';
import { connectToAgent } from '../../sandbox/agent-client.ts';
import { builtEntry } from '../../sandbox/build.mjs';
import { loadConfig, LOCAL_TENANT_DEFAULTS } from '../../sandbox/config.ts';
import { servicesFor, waitForHealthy, type ServiceSpec } from '../../sandbox/services.ts';
import { runCommand, sandboxEnv } from '../../sandbox/test/processes.ts';
import { benchEmployees, benchTenant, type BenchPerson } from './bench-tenant.ts';
import { childProcesses } from './process-memory.ts';

/**
 * The stack of the load benchmarks: `npm run sandbox` itself (its launcher and
 * every service as its own process, configured by environment; the tenant and
 * the agent keep their state in the embedded database unless told otherwise),
 * with the benchmark's tenant and employee records. This process only plays
 * the A2A caller and the employees, through the tenant's control API; the
 * agent's memory is read from /proc.
 */

export interface AgentProcessStack {
  controlUrl: string;
  /** The tenant's consent requests, through its control API. */
  requests(filter?: { userId?: string; status?: ConsentStatus }): Promise<ConsentRequestView[]>;
  /** The agent process's pid, for /proc readings. */
  pid: number;
  /** Every other service's pid by service name (tenant, hr-api, gemini, flows), and the launcher's (launcher). */
  otherPids: Record<string, number>;
  /** The stack's SANDBOX_STATE_DIR (its embedded databases are `db/<service>` in it), removed on close. */
  stateDir: string;
  client: Client;
  close(): Promise<void>;
}

export interface AgentProcessStackOptions {
  people: readonly BenchPerson[];
  mode: 'poll' | 'ping';
  /** The tenant's CIBA interval in seconds. */
  interval: number;
  /** More environment for every service (e.g. AGENT_STATE, DATABASE_URL, TASK_RETENTION_MAX). */
  env?: Record<string, string>;
}

const READY_TIMEOUT_MS = 120_000;
/** The sandbox's log lines are read so that its pipe never fills; only their end is kept, for a failure's report. */
const KEEP_LOG_CHARS = 64 * 1024;

export async function startAgentProcessStack(options: AgentProcessStackOptions): Promise<AgentProcessStack> {
  const closers: (() => Promise<void>)[] = [];
  const closeAll = async () => {
    for (const close of closers.splice(0).reverse()) await close();
  };
  try {
    const files = mkdtempSync(join(tmpdir(), 'bench-stack-'));
    closers.push(async () => rmSync(files, { recursive: true, force: true }));
    const tenantFile = join(files, 'tenant.json');
    // One request per employee at a time: Auth0's per-user limit of 5 a minute stays on.
    writeFileSync(tenantFile, JSON.stringify(benchTenant(options.people, { cibaInterval: options.interval, cibaRateLimitPerUserPerMinute: 5 })));
    const employeesFile = join(files, 'employees.json');
    writeFileSync(employeesFile, JSON.stringify({ employees: benchEmployees(options.people) }));

    const env = await sandboxEnv({
      IDENTITY_BACKEND: 'local',
      TENANT_HTTPS: 'false',
      GOOGLE_API_KEY: '',
      CIBA_DELIVERY_MODE: options.mode,
      CIBA_REQUESTED_EXPIRY: '',
      HR_AGENT_URL: '',
      HR_API_URL: '',
      SANDBOX_HOST: '127.0.0.1',
      SANDBOX_CONTROL_SECRET: '',
      TENANT_FILE: tenantFile,
      HR_EMPLOYEES_FILE: employeesFile,
      ...options.env,
    });
    closers.push(async () => rmSync(env.SANDBOX_STATE_DIR as string, { recursive: true, force: true }));
    const config = loadConfig({ ...process.env, ...env });
    const services = servicesFor(config);
    // Launched as users launch it (`npm run sandbox`): the services are the launcher's children, in its session,
    // so the kernel schedules them as one group (sched(7), autogroup) beside this process, as it schedules a
    // sandbox in one terminal and its caller in another.
    const sandbox = runCommand(process.execPath, ['sandbox/launch.mjs'], env, { keepChars: KEEP_LOG_CHARS });
    closers.push(async () => {
      sandbox.signalGroup('SIGINT');
      await Promise.race([sandbox.exited, new Promise((resolve) => setTimeout(resolve, 15_000))]);
      sandbox.signalGroup('SIGKILL');
    });
    const ready = AbortSignal.timeout(READY_TIMEOUT_MS);
    await Promise.race([
      Promise.all(services.map((service) => waitForHealthy(service.healthUrl, ready))),
      sandbox.exited.then(() => {
        throw new Error(`The sandbox exited before it was ready:\n${sandbox.output()}`);
      }),
    ]);
    const pids = servicePids(sandbox.child.pid, services);
    const missing = services.filter((service) => pids[service.name] === undefined);
    if (missing.length > 0 || sandbox.child.pid === undefined) {
      throw new Error(`No process found for ${missing.map((service) => service.label).join(', ') || 'the launcher'}:\n${sandbox.output()}`);
    }
    const { agent: pid, ...servicePidsButAgent } = pids as Record<string, number> & { agent: number };
    // The launcher passes every service's log lines on: its CPU is the sandbox's too.
    const otherPids = { ...servicePidsButAgent, launcher: sandbox.child.pid };
    const controlUrl = new URL('control/', config.identity.issuer).href;
    const { client } = await connectToAgent({
      agentUrl: config.urls.agent,
      issuer: config.identity.issuer,
      audience: LOCAL_TENANT_DEFAULTS.agentAudience,
      credentials: LOCAL_TENANT_DEFAULTS.a2aClient,
    });
    return {
      controlUrl,
      async requests(filter = {}) {
        const url = new URL('requests', controlUrl);
        if (filter.userId !== undefined) url.searchParams.set('user_id', filter.userId);
        if (filter.status !== undefined) url.searchParams.set('status', filter.status);
        const response = await fetch(url, { signal: AbortSignal.timeout(30_000) });
        if (!response.ok) throw new Error(`The control API answered HTTP ${response.status} to GET ${url.pathname}`);
        return ((await response.json()) as { requests: ConsentRequestView[] }).requests;
      },
      pid,
      stateDir: env.SANDBOX_STATE_DIR as string,
      otherPids,
      client,
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

/** Each service's pid, by service name: the launcher's children, told apart by the entry they run. */
function servicePids(launcherPid: number | undefined, services: readonly ServiceSpec[]): Record<string, number> {
  if (launcherPid === undefined) throw new Error('The sandbox has no pid');
  const pids: Record<string, number> = {};
  for (const child of childProcesses(launcherPid)) {
    let args: string[];
    try {
      args = readFileSync(`/proc/${child}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // Exited meanwhile.
    }
    // The built entry's path within any build folder, as the launcher names it.
    const service = services.find((candidate) => args.some((arg) => arg.endsWith(builtEntry('/', candidate.entry))));
    if (service) pids[service.name] = child;
  }
  return pids;
}
