import { createServer } from 'node:http';
import express from 'express';
import { createAgent, type AgentHandle, type AgentOptions } from '../agent/server.ts';
import type { Employee } from '../hr-api/employees.ts';
import { createHrApi } from '../hr-api/server.ts';
import { createMockGemini, type MockGemini } from '../mock-gemini/server.ts';
import type { ConsentRequestView } from '../mock-guardian/consent-requests.ts';
import type { TenantFile, TenantSettings } from '../mock-guardian/tenant-file.ts';
import { createTenant, type TenantHandle } from '../mock-guardian/tenant.ts';
import { connectToAgent, type AgentConnection } from './agent-client.ts';
import { LOCAL_TENANT_DEFAULTS, managementAudienceOf, type ClientCredentials } from './config.ts';
import { closeServer, listenLocal } from './http-listener.ts';
import type { Telemetry } from './telemetry/setup.ts';

/**
 * The whole local sandbox in one process on 127.0.0.1, port 0: tenant,
 * HR API, mock-gemini and agent, wired as `npm run sandbox` wires them. Used
 * by the agent's end-to-end tests, the scenario runner and the benchmarks.
 */

export type ConsentDecision = 'approve' | 'deny' | 'expire';

export interface ServicesOptions {
  identity: AgentOptions['identity'] & { a2aClient: ClientCredentials };
  employees?: readonly Employee[];
  ciba?: Partial<AgentOptions['ciba']>;
  maxConsentRequests?: number;
  /** The agent's call limits, task retention and admission limit (defaults as documented otherwise). */
  agent?: Pick<AgentOptions, 'calls' | 'retention' | 'maxActiveTasks'>;
  /** Each service's telemetry (sandbox/telemetry/setup.ts), shut down with the stack; none by default. */
  telemetry?: (service: TracedService) => Telemetry;
}

/** The services of a stack that trace their hops. */
export type TracedService = 'hr-agent' | 'hr-api' | 'tenant';

/** HR API, mock-gemini and the agent, pointed at any identity backend. */
export interface Services {
  agentUrl: string;
  hrApiUrl: string;
  geminiUrl: string;
  agent: AgentHandle;
  gemini: MockGemini;
  /** Ids of the `GET /employees/:id` reads the HR API received, in order. */
  hrApiReads: string[];
  /** An A2A caller with the A2A Client's credentials (or others), via the agent card. */
  connect(credentials?: ClientCredentials): Promise<AgentConnection>;
  close(): Promise<void>;
}

export interface LocalStackOptions extends Omit<ServicesOptions, 'identity'> {
  tenantFile?: string | TenantFile;
  tenantSettings?: Partial<TenantSettings>;
  /** Sees every tenant warning; silent by default. */
  log?: (line: string) => void;
}

/** The services plus the local tenant and its control API (the employee's side). */
export interface LocalStack extends Services {
  issuer: string;
  controlUrl: string;
  tenant: TenantHandle;
  consentRequests(filter?: { userId?: string; status?: ConsentRequestView['status'] }): Promise<ConsentRequestView[]>;
  /** Waits until `userId` has a pending consent request (not in `except`) and returns the newest. */
  pendingRequestFor(userId: string, options?: { timeoutMs?: number; except?: ReadonlySet<string> }): Promise<ConsentRequestView>;
  decide(id: string, decision: ConsentDecision): Promise<ConsentRequestView>;
}

export async function startServices(options: ServicesOptions): Promise<Services> {
  const { identity } = options;
  const hrApiTelemetry = options.telemetry?.('hr-api');
  const agentTelemetry = options.telemetry?.('hr-agent');
  const hrApi = createHrApi({
    issuer: identity.issuer,
    audience: identity.apiAudience,
    ...(options.employees ? { employees: options.employees } : {}),
    ...(hrApiTelemetry ? { telemetry: hrApiTelemetry } : {}),
  });
  const hrApiReads: string[] = [];
  const counted = express();
  counted.use((req, _res, next) => {
    if (req.method === 'GET' && req.path.startsWith('/employees/')) {
      hrApiReads.push(decodeURIComponent(req.path.slice('/employees/'.length)));
    }
    next();
  });
  counted.use(hrApi.app);
  const hrServer = createServer(counted);
  const hrApiUrl = await listenLocal(hrServer);

  const gemini = createMockGemini();
  const geminiUrl = await gemini.listen(0, '127.0.0.1');

  const { a2aClient, ...agentIdentity } = identity;
  const agent = createAgent({
    identity: agentIdentity,
    hrApiUrl,
    gemini: { apiKey: 'mock-gemini-key', model: 'gemini-2.5-flash', baseUrl: geminiUrl },
    ciba: { deliveryMode: 'poll', ...options.ciba },
    allowInsecureHttp: identity.issuer.startsWith('http:'),
    // As `npm run sandbox` on loopback (PUSH_WEBHOOK_ALLOW_LOOPBACK): a test's webhook receiver on 127.0.0.1 works.
    webhooks: { allowLoopback: true },
    ...(options.maxConsentRequests === undefined ? {} : { maxConsentRequests: options.maxConsentRequests }),
    ...options.agent,
    ...(agentTelemetry ? { telemetry: agentTelemetry } : {}),
  });
  const agentUrl = await agent.listen(0, '127.0.0.1');

  return {
    agentUrl,
    hrApiUrl,
    geminiUrl,
    agent,
    gemini,
    hrApiReads,
    connect: (credentials = a2aClient) =>
      connectToAgent({ agentUrl, issuer: identity.issuer, audience: identity.agentAudience, credentials }),
    async close() {
      await agent.close();
      await gemini.close();
      await closeServer(hrServer);
      await agentTelemetry?.shutdown();
      await hrApiTelemetry?.shutdown();
    },
  };
}

export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const tenantTelemetry = options.telemetry?.('tenant');
  const tenant = createTenant({
    ...(options.tenantFile === undefined ? {} : { tenantFile: options.tenantFile }),
    ...(options.tenantSettings ? { settings: options.tenantSettings } : {}),
    log: options.log ?? (() => undefined),
    ...(tenantTelemetry ? { telemetry: tenantTelemetry } : {}),
  });
  const issuer = await tenant.listen(0, '127.0.0.1');
  const ping = options.ciba?.deliveryMode === 'ping';
  const services = await startServices({
    ...options,
    identity: {
      issuer,
      agentAudience: LOCAL_TENANT_DEFAULTS.agentAudience,
      apiAudience: LOCAL_TENANT_DEFAULTS.apiAudience,
      managementAudience: managementAudienceOf(issuer),
      client: ping ? LOCAL_TENANT_DEFAULTS.hrAgentPingClient : LOCAL_TENANT_DEFAULTS.hrAgentClient,
      a2aClient: LOCAL_TENANT_DEFAULTS.a2aClient,
    },
  });
  tenant.setVariable('HR_AGENT_URL', services.agentUrl);

  const controlUrl = new URL('control/', issuer).href;
  const consentRequests: LocalStack['consentRequests'] = async (filter = {}) => {
    const url = new URL('requests', controlUrl);
    if (filter.userId) url.searchParams.set('user_id', filter.userId);
    if (filter.status) url.searchParams.set('status', filter.status);
    const response = await fetch(url);
    if (!response.ok) throw new Error(`The tenant's control API answered ${response.status}`);
    return ((await response.json()) as { requests: ConsentRequestView[] }).requests;
  };

  return {
    ...services,
    issuer,
    controlUrl,
    tenant,
    consentRequests,
    async pendingRequestFor(userId, { timeoutMs = 30_000, except } = {}) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const pending = (await consentRequests({ userId, status: 'pending' })).find((r) => !except?.has(r.id));
        if (pending) return pending;
        if (Date.now() > deadline) throw new Error(`No pending consent request for ${userId}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async decide(id, decision) {
      const response = await fetch(new URL(`requests/${encodeURIComponent(id)}/${decision}`, controlUrl), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      if (!response.ok) throw new Error(`The tenant refused to ${decision} ${id}: HTTP ${response.status}`);
      return (await response.json()) as ConsentRequestView;
    },
    async close() {
      await services.close();
      await tenant.close();
      await tenantTelemetry?.shutdown();
    },
  };
}
