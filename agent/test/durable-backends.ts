import type { Task } from '@a2a-js/sdk';
import type { Client } from '@a2a-js/sdk/client';
import { createHrApi } from '../../hr-api/server.ts';
import { createMockGemini } from '../../mock-gemini/server.ts';
import type { ConsentRequestView } from '../../mock-guardian/consent-requests.ts';
import { createTenant, type TenantHandle } from '../../mock-guardian/tenant.ts';
import { benchEmployees, benchPeople, benchTenant, type BenchPerson } from '../../scenarios/bench/bench-tenant.ts';
import { connectToAgent } from '../../sandbox/agent-client.ts';
import { agentNodeFlags, nodeArgs, serviceEnvironment } from '../../sandbox/services.ts';
import { loadConfig, LOCAL_TENANT_DEFAULTS, managementAudienceOf } from '../../sandbox/config.ts';
import { runCommand, waitUntil, type RunningCommand } from '../../sandbox/test/processes.ts';
import { stateName, type TaskStateName } from '../../sandbox/conversation.ts';
import type { AgentOptions } from '../server.ts';

/**
 * The services around an HR Agent whose state outlives it: tenant, HR API
 * and mock-gemini in the test's process, and the agent started (and killed,
 * and started again) either in-process or as `npm run sandbox` starts it.
 */

export interface Backends {
  issuer: string;
  hrApiUrl: string;
  geminiUrl: string;
  tenant: TenantHandle;
  people: BenchPerson[];
  /** The agent's options for an in-process agent. */
  agentOptions(mode: 'poll' | 'ping'): AgentOptions;
  /** The environment of an agent process on `port`. */
  agentEnv(mode: 'poll' | 'ping', port: number, storage: { stateDir: string } | { databaseUrl: string }): Record<string, string>;
  pendingFor(userId: string): Promise<ConsentRequestView>;
  decide(id: string, decision: 'approve' | 'deny'): Promise<void>;
  connect(agentUrl: string): Promise<Client>;
  close(): Promise<void>;
}

export async function startBackends(options: { interval: number; people?: number; group?: string }): Promise<Backends> {
  const people = benchPeople(options.people ?? 4, options.group ?? 'durable');
  const tenant = createTenant({
    tenantFile: benchTenant(people, { cibaInterval: options.interval, cibaRateLimitPerUserPerMinute: 0 }),
    log: () => undefined,
  });
  const issuer = await tenant.listen(0, '127.0.0.1');
  const hr = createHrApi({ issuer, audience: LOCAL_TENANT_DEFAULTS.apiAudience, employees: benchEmployees(people) });
  const hrApiUrl = await hr.listen(0, '127.0.0.1');
  const gemini = createMockGemini();
  const geminiUrl = await gemini.listen(0, '127.0.0.1');
  const controlUrl = new URL('control/', issuer);

  return {
    issuer,
    hrApiUrl,
    geminiUrl,
    tenant,
    people,
    agentOptions: (mode) => ({
      identity: {
        issuer,
        agentAudience: LOCAL_TENANT_DEFAULTS.agentAudience,
        apiAudience: LOCAL_TENANT_DEFAULTS.apiAudience,
        managementAudience: managementAudienceOf(issuer),
        client: mode === 'ping' ? LOCAL_TENANT_DEFAULTS.hrAgentPingClient : LOCAL_TENANT_DEFAULTS.hrAgentClient,
      },
      hrApiUrl,
      gemini: { apiKey: 'mock-gemini-key', model: 'gemini-2.5-flash', baseUrl: geminiUrl },
      ciba: { deliveryMode: mode },
      allowInsecureHttp: true,
      log: () => undefined,
    }),
    agentEnv: (mode, port, storage) => ({
      IDENTITY_BACKEND: 'local',
      TENANT_HTTPS: 'false',
      TENANT_PORT: new URL(issuer).port,
      HR_API_URL: hrApiUrl,
      MOCK_GEMINI_PORT: new URL(geminiUrl).port,
      GOOGLE_API_KEY: '',
      CIBA_DELIVERY_MODE: mode,
      CIBA_REQUESTED_EXPIRY: '',
      HR_AGENT_URL: '',
      TENANT_FILE: '',
      HR_AGENT_PORT: String(port),
      SANDBOX_HOST: '127.0.0.1',
      DATABASE_URL: 'databaseUrl' in storage ? storage.databaseUrl : '',
      SANDBOX_STATE_DIR: 'stateDir' in storage ? storage.stateDir : '',
    }),
    async pendingFor(userId) {
      return waitUntil(async () => {
        const url = new URL('requests', controlUrl);
        url.searchParams.set('user_id', userId);
        url.searchParams.set('status', 'pending');
        const { requests } = (await (await fetch(url)).json()) as { requests: ConsentRequestView[] };
        return requests[0];
      }, 30_000);
    },
    async decide(id, decision) {
      const response = await fetch(new URL(`requests/${encodeURIComponent(id)}/${decision}`, controlUrl), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      if (!response.ok) throw new Error(`The tenant refused to ${decision} ${id}: HTTP ${response.status}`);
    },
    async connect(agentUrl) {
      const { client } = await connectToAgent({
        agentUrl,
        issuer,
        audience: LOCAL_TENANT_DEFAULTS.agentAudience,
        credentials: LOCAL_TENANT_DEFAULTS.a2aClient,
      });
      return client;
    },
    async close() {
      await gemini.close();
      await hr.close();
      await tenant.close();
    },
  };
}

/** Starts `agent/main.ts` as `npm run sandbox` does and waits for its banner. */
export async function startAgentProcess(env: Record<string, string>): Promise<RunningCommand> {
  const flags = agentNodeFlags(loadConfig({ ...process.env, ...env }));
  const agent = runCommand(process.execPath, nodeArgs({ entry: 'agent/main.ts', nodeFlags: flags }), { ...serviceEnvironment(), ...env });
  await agent.waitForOutput(/Staff0 HR Agent listening on/, 60_000);
  return agent;
}

export async function stopProcess(agent: RunningCommand, signal: NodeJS.Signals): Promise<void> {
  agent.signalGroup(signal);
  await agent.exited;
}

export async function stateOf(client: Client, taskId: string): Promise<TaskStateName> {
  return stateName((await client.getTask({ tenant: '', id: taskId, historyLength: 0 })).status?.state);
}

/** Waits until GetTask shows `taskId` in `state`, and returns the task. */
export async function untilState(client: Client, taskId: string, state: TaskStateName, timeoutMs = 30_000): Promise<Task> {
  return waitUntil(async () => {
    const task = await client.getTask({ tenant: '', id: taskId });
    return stateName(task.status?.state) === state ? task : undefined;
  }, timeoutMs);
}
