import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@a2a-js/sdk/client';
import { createHrApi } from '../../hr-api/server.ts';
import { createMockGemini } from '../../mock-gemini/server.ts';
import { createTenant, type TenantHandle } from '../../mock-guardian/tenant.ts';
import { connectToAgent } from '../../sandbox/agent-client.ts';
import { loadConfig, LOCAL_TENANT_DEFAULTS } from '../../sandbox/config.ts';
import { agentNodeFlags, nodeArgs } from '../../sandbox/services.ts';
import { freePorts, runCommand, type RunningCommand } from '../../sandbox/test/processes.ts';
import { benchEmployees, benchTenant, type BenchPerson } from './bench-tenant.ts';

/**
 * The stack of the load benchmarks: tenant, HR API and mock-gemini in this
 * process, the HR Agent as its own process started exactly as
 * `npm run sandbox` starts it (configured by environment, same Node flags),
 * so its memory can be read from /proc, and an A2A caller connected to it.
 */

export interface AgentProcessStack {
  tenant: TenantHandle;
  controlUrl: string;
  agent: RunningCommand;
  /** The agent process's pid, for /proc readings. */
  pid: number;
  client: Client;
  close(): Promise<void>;
}

export interface AgentProcessStackOptions {
  people: readonly BenchPerson[];
  mode: 'poll' | 'ping';
  /** The tenant's CIBA interval in seconds. */
  interval: number;
  /** More environment for the agent process (e.g. TASK_RETENTION_MAX). */
  agentEnv?: Record<string, string>;
  /** Sees every tenant warning. */
  log?: (line: string) => void;
}

export async function startAgentProcessStack(options: AgentProcessStackOptions): Promise<AgentProcessStack> {
  const closers: (() => Promise<void>)[] = [];
  const closeAll = async () => {
    for (const close of closers.splice(0).reverse()) await close();
  };
  try {
    const tenant = createTenant({
      // One request per employee at a time: Auth0's per-user limit of 5 a minute stays on.
      tenantFile: benchTenant(options.people, { cibaInterval: options.interval, cibaRateLimitPerUserPerMinute: 5 }),
      log: options.log ?? (() => undefined),
    });
    const issuer = await tenant.listen(0, '127.0.0.1');
    closers.push(() => tenant.close());
    const hr = createHrApi({ issuer, audience: LOCAL_TENANT_DEFAULTS.apiAudience, employees: benchEmployees(options.people) });
    const hrApiUrl = await hr.listen(0, '127.0.0.1');
    closers.push(() => hr.close());
    const gemini = createMockGemini({ requireApiKey: true });
    const geminiUrl = await gemini.listen(0, '127.0.0.1');
    closers.push(() => gemini.close());

    const stateDir = mkdtempSync(join(tmpdir(), 'bench-agent-state-'));
    closers.push(async () => rmSync(stateDir, { recursive: true, force: true }));
    const [port] = await freePorts(1);
    const env: Record<string, string> = {
      IDENTITY_BACKEND: 'local',
      TENANT_HTTPS: 'false',
      TENANT_PORT: new URL(issuer).port,
      HR_API_URL: hrApiUrl,
      MOCK_GEMINI_PORT: new URL(geminiUrl).port,
      GOOGLE_API_KEY: '',
      CIBA_DELIVERY_MODE: options.mode,
      CIBA_REQUESTED_EXPIRY: '',
      HR_AGENT_URL: '',
      TENANT_FILE: '',
      HR_AGENT_PORT: String(port),
      SANDBOX_HOST: '127.0.0.1',
      // The agent keeps its work in an embedded database: a fresh one per run, never the repository's .sandbox.
      SANDBOX_STATE_DIR: stateDir,
      ...options.agentEnv,
    };
    const flags = agentNodeFlags(loadConfig({ ...process.env, ...env }));
    const agent = runCommand(process.execPath, nodeArgs({ entry: 'agent/main.ts', nodeFlags: flags }), env);
    closers.push(async () => {
      agent.signalGroup('SIGTERM');
      await Promise.race([agent.exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
      agent.signalGroup('SIGKILL');
    });
    await agent.waitForOutput(/Staff0 HR Agent listening on/, 60_000);
    const pid = agent.child.pid;
    if (pid === undefined) throw new Error('The agent process has no pid');
    const agentUrl = `http://127.0.0.1:${port}`;
    tenant.setVariable('HR_AGENT_URL', agentUrl);
    const { client } = await connectToAgent({
      agentUrl,
      issuer,
      audience: LOCAL_TENANT_DEFAULTS.agentAudience,
      credentials: LOCAL_TENANT_DEFAULTS.a2aClient,
    });
    return { tenant, controlUrl: new URL('control/', issuer).href, agent, pid, client, close: closeAll };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
