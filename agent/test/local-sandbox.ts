import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Role, TaskState, type Message, type SendMessageRequest, type StreamResponse } from '@a2a-js/sdk';
import express from 'express';
import { connectToAgent, type AgentConnection } from '../../sandbox/agent-client.ts';
import { LOCAL_TENANT_DEFAULTS } from '../../sandbox/config.ts';
import { createHrApi, type HrApi } from '../../hr-api/server.ts';
import { createMockGemini, type MockGemini } from '../../mock-gemini/server.ts';
import { createTenant, type TenantHandle } from '../../mock-guardian/tenant.ts';
import type { TenantSettings } from '../../mock-guardian/tenant-file.ts';
import { createAgent, type AgentHandle, type AgentOptions } from '../server.ts';

/**
 * The whole local sandbox in-process on 127.0.0.1:0 (tenant, HR API,
 * mock-gemini, agent), an A2A caller on @a2a-js/sdk's own client, and the
 * employee's side through the tenant's control API.
 */

export interface ConsentView {
  id: string;
  user_id: string;
  status: 'pending' | 'approved' | 'denied' | 'expired';
  binding_message: string;
  created_at: string;
  expires_at: string;
  polls: number;
}

export interface LocalSandbox {
  issuer: string;
  agentUrl: string;
  tenant: TenantHandle;
  hrApiUrl: string;
  /** GET /employees/:id requests the HR API received, in order. */
  hrApiReads: string[];
  gemini: MockGemini;
  caller: AgentConnection;
  /** Consent requests at the tenant, newest last. */
  consentRequests(filter?: { userId?: string; status?: string }): Promise<ConsentView[]>;
  /** Waits until `userId` has a pending consent request and returns it. */
  pendingRequestFor(userId: string, timeoutMs?: number): Promise<ConsentView>;
  decide(id: string, decision: 'approve' | 'deny' | 'expire'): Promise<ConsentView>;
  close(): Promise<void>;
}

export interface LocalSandboxOptions {
  tenantSettings?: Partial<TenantSettings>;
  ciba?: Partial<AgentOptions['ciba']>;
}

export async function startLocalSandbox(options: LocalSandboxOptions = {}): Promise<LocalSandbox> {
  const deliveryMode = options.ciba?.deliveryMode ?? 'poll';
  const tenant = createTenant({
    // Many checks of the same employees per file: no rate limit, a one-second interval.
    settings: { cibaRateLimitPerUserPerMinute: 0, cibaInterval: 1, ...options.tenantSettings },
    log: () => undefined,
  });
  const issuer = await tenant.listen(0, '127.0.0.1');

  const hrApi: HrApi = createHrApi({ issuer, audience: LOCAL_TENANT_DEFAULTS.apiAudience });
  const hrApiReads: string[] = [];
  const counted = express();
  counted.use((req, _res, next) => {
    if (req.method === 'GET' && req.path.startsWith('/employees/')) hrApiReads.push(decodeURIComponent(req.path.slice('/employees/'.length)));
    next();
  });
  counted.use(hrApi.app);
  const hrServer: Server = createServer(counted);
  await new Promise<void>((resolve) => hrServer.listen(0, '127.0.0.1', resolve));
  const hrApiUrl = `http://127.0.0.1:${(hrServer.address() as AddressInfo).port}`;

  const gemini = createMockGemini();
  const geminiUrl = await gemini.listen(0, '127.0.0.1');

  const client = deliveryMode === 'ping' ? LOCAL_TENANT_DEFAULTS.hrAgentPingClient : LOCAL_TENANT_DEFAULTS.hrAgentClient;
  const agent: AgentHandle = createAgent({
    identity: {
      issuer,
      agentAudience: LOCAL_TENANT_DEFAULTS.agentAudience,
      apiAudience: LOCAL_TENANT_DEFAULTS.apiAudience,
      managementAudience: `${issuer}api/v2/`,
      client,
    },
    hrApiUrl,
    gemini: { apiKey: 'mock-gemini-key', model: 'gemini-2.5-flash', baseUrl: geminiUrl },
    ciba: { deliveryMode, ...options.ciba },
    allowInsecureHttp: true,
  });
  const agentUrl = await agent.listen(0, '127.0.0.1');
  tenant.setVariable('HR_AGENT_URL', agentUrl);

  const caller = await connectToAgent({
    agentUrl,
    issuer,
    audience: LOCAL_TENANT_DEFAULTS.agentAudience,
    credentials: LOCAL_TENANT_DEFAULTS.a2aClient,
  });

  const control = new URL('control/', issuer);
  const consentRequests = async (filter: { userId?: string; status?: string } = {}) => {
    const url = new URL('requests', control);
    if (filter.userId) url.searchParams.set('user_id', filter.userId);
    if (filter.status) url.searchParams.set('status', filter.status);
    const body = (await (await fetch(url)).json()) as { requests: ConsentView[] };
    return body.requests;
  };

  return {
    issuer,
    agentUrl,
    tenant,
    hrApiUrl,
    hrApiReads,
    gemini,
    caller,
    consentRequests,
    async pendingRequestFor(userId, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const [pending] = await consentRequests({ userId, status: 'pending' });
        if (pending) return pending;
        if (Date.now() > deadline) throw new Error(`No pending consent request for ${userId}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    async decide(id, decision) {
      const response = await fetch(new URL(`requests/${id}/${decision}`, control), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      if (!response.ok) throw new Error(`The tenant refused to ${decision} ${id}: HTTP ${response.status}`);
      return (await response.json()) as ConsentView;
    },
    async close() {
      await agent.close();
      await gemini.close();
      await new Promise<void>((resolve) => {
        hrServer.close(() => resolve());
        hrServer.closeAllConnections();
      });
      await tenant.close();
    },
  };
}

export function userMessage(text: string, ids: { contextId?: string; taskId?: string } = {}): Message {
  return {
    messageId: crypto.randomUUID(),
    contextId: ids.contextId ?? '',
    taskId: ids.taskId ?? '',
    role: Role.ROLE_USER,
    parts: [{ content: { $case: 'text', value: text }, metadata: undefined, filename: '', mediaType: 'text/plain' }],
    metadata: undefined,
    extensions: [],
    referenceTaskIds: [],
  };
}

export function sendRequest(message: Message, configuration?: Partial<NonNullable<SendMessageRequest['configuration']>>): SendMessageRequest {
  return {
    tenant: '',
    message,
    configuration: configuration
      ? { acceptedOutputModes: [], taskPushNotificationConfig: undefined, returnImmediately: false, ...configuration }
      : undefined,
    metadata: undefined,
  };
}

export function stateName(state: TaskState | undefined): string {
  return state === undefined ? 'none' : TaskState[state].replace('TASK_STATE_', '');
}

export interface StreamRun {
  /** 'task', 'artifact', or the state name of each status update, in order. */
  events: string[];
  taskId: string;
  contextId: string;
  finalState: string;
  finalText: string | undefined;
  artifactText: string | undefined;
  /** Status message text of each status update, in order. */
  statusTexts: (string | undefined)[];
  /** When each event arrived (ms since epoch). */
  times: number[];
}

/** Consumes a stream, calling `onStatus` for each status update (e.g. to approve at AUTH_REQUIRED). */
export async function collect(
  stream: AsyncIterable<StreamResponse>,
  onStatus?: (state: string, run: StreamRun) => Promise<void> | void,
): Promise<StreamRun> {
  const run: StreamRun = {
    events: [],
    taskId: '',
    contextId: '',
    finalState: 'none',
    finalText: undefined,
    artifactText: undefined,
    statusTexts: [],
    times: [],
  };
  for await (const event of stream) {
    const payload = event.payload;
    run.times.push(Date.now());
    if (payload?.$case === 'task') {
      run.events.push('task');
      run.taskId = payload.value.id;
      run.contextId = payload.value.contextId;
      run.finalState = stateName(payload.value.status?.state);
    } else if (payload?.$case === 'artifactUpdate') {
      run.events.push('artifact');
      run.artifactText = textOf(payload.value.artifact?.parts);
    } else if (payload?.$case === 'statusUpdate') {
      const state = stateName(payload.value.status?.state);
      run.events.push(state);
      run.finalState = state;
      run.finalText = textOf(payload.value.status?.message?.parts);
      run.statusTexts.push(run.finalText);
      await onStatus?.(state, run);
    }
  }
  return run;
}

export function textOf(parts: Message['parts'] | undefined): string | undefined {
  const texts = (parts ?? []).flatMap((part) => (part.content?.$case === 'text' ? [part.content.value] : []));
  return texts.length > 0 ? texts.join('\n') : undefined;
}
