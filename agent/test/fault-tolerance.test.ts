import { afterEach, describe, expect, it } from 'vitest';
import { createHrApi } from '../../hr-api/server.ts';
import { createMockGemini } from '../../mock-gemini/server.ts';
import type { TenantSettings } from '../../mock-guardian/tenant-file.ts';
import { createTenant, type TenantHandle } from '../../mock-guardian/tenant.ts';
import { connectToAgent, type AgentConnection } from '../../sandbox/agent-client.ts';
import { LOCAL_TENANT_DEFAULTS, managementAudienceOf } from '../../sandbox/config.ts';
import { runTurn, type TurnResult } from '../../sandbox/conversation.ts';
import { startFaultProxy, type Fault, type FaultProxy, type ProxiedRequest } from '../../sandbox/test/fault-proxy.ts';
import { freePorts } from '../../sandbox/test/processes.ts';
import type { CallLimitOverrides } from '../call-policy.ts';
import { createAgent } from '../server.ts';

/**
 * Every dependency of the agent behind a fault proxy: the identity backend
 * timing out or answering 503/429 on some polls, the model hanging or
 * answering 429, the HR API answering 503, the tenant restarting mid-consent.
 * Each task must still end as its scenario says, and quickly.
 */

const CIBA_POLL = /grant_type=urn%3Aopenid%3Aparams%3Agrant-type%3Aciba/;
/** Short enough that a hang costs seconds, long enough that a busy machine's slow answer is not taken for one. */
const FAST: CallLimitOverrides = {
  identity: { attemptTimeoutMs: 2_000, retries: 2, backoffMs: 20, maxBackoffMs: 1_500 },
  hrApi: { attemptTimeoutMs: 2_000, retries: 2, backoffMs: 20, maxBackoffMs: 200 },
  model: { attemptTimeoutMs: 2_000, retries: 1, backoffMs: 20, maxBackoffMs: 200 },
};

interface FaultyStack {
  identity: FaultProxy;
  model: FaultProxy;
  hrApi: FaultProxy;
  tenant: TenantHandle;
  caller: AgentConnection;
  /** Stops the tenant and starts a new one (memory only) at the same address. */
  restartTenant(): Promise<void>;
  ask(email: string, onState?: (state: string) => void): Promise<TurnResult>;
  /** Waits for `userId`'s pending request and decides it at the tenant. */
  approve(userId: string): Promise<void>;
  close(): Promise<void>;
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function startFaultyStack(options: { deliveryMode: 'poll' | 'ping'; settings?: Partial<TenantSettings> }): Promise<FaultyStack> {
  const identity = await startFaultProxy(undefined, { preserveHost: true });
  const issuer = `${identity.url}/`;
  const [tenantPort] = await freePorts(1);
  const settings: Partial<TenantSettings> = { cibaRateLimitPerUserPerMinute: 0, cibaInterval: 1, ...options.settings };
  let agentUrl = '';
  const startTenant = async () => {
    const tenant = createTenant({ issuer, settings, log: () => undefined });
    await tenant.listen(tenantPort, '127.0.0.1');
    if (agentUrl) tenant.setVariable('HR_AGENT_URL', agentUrl);
    return tenant;
  };
  let tenant = await startTenant();
  identity.setTarget(`http://127.0.0.1:${tenantPort}`);

  const hr = createHrApi({ issuer, audience: LOCAL_TENANT_DEFAULTS.apiAudience });
  const hrApi = await startFaultProxy(await hr.listen(0, '127.0.0.1'));
  const gemini = createMockGemini();
  const model = await startFaultProxy(await gemini.listen(0, '127.0.0.1'));
  const agent = createAgent({
    identity: {
      issuer,
      agentAudience: LOCAL_TENANT_DEFAULTS.agentAudience,
      apiAudience: LOCAL_TENANT_DEFAULTS.apiAudience,
      managementAudience: managementAudienceOf(issuer),
      client: options.deliveryMode === 'ping' ? LOCAL_TENANT_DEFAULTS.hrAgentPingClient : LOCAL_TENANT_DEFAULTS.hrAgentClient,
    },
    hrApiUrl: hrApi.url,
    gemini: { apiKey: 'mock-gemini-key', model: 'gemini-2.5-flash', baseUrl: model.url },
    ciba: { deliveryMode: options.deliveryMode },
    allowInsecureHttp: true,
    calls: FAST,
  });
  agentUrl = await agent.listen(0, '127.0.0.1');
  tenant.setVariable('HR_AGENT_URL', agentUrl);
  const caller = await connectToAgent({
    agentUrl,
    issuer,
    audience: LOCAL_TENANT_DEFAULTS.agentAudience,
    credentials: LOCAL_TENANT_DEFAULTS.a2aClient,
  });

  const stack: FaultyStack = {
    identity,
    model,
    hrApi,
    get tenant() {
      return tenant;
    },
    caller,
    async restartTenant() {
      await tenant.close();
      tenant = await startTenant();
    },
    ask: (email, onState) =>
      runTurn(caller.client, `Does the person with email ${email} work at Staff0?`, {}, {
        signal: AbortSignal.timeout(60_000),
        onEvent: (event) => {
          if (event.kind === 'state') onState?.(event.state);
        },
      }),
    async approve(userId) {
      const pending = await waitFor(() => tenant.requests.list({ userId, status: 'pending' })[0]);
      await tenant.requests.decide(pending.id, 'approve');
    },
    async close() {
      await agent.close();
      await Promise.all([identity.close(), hrApi.close(), model.close()]);
      await Promise.all([tenant.close(), hr.close(), gemini.close()]);
    },
  };
  closers.push(() => stack.close());
  return stack;
}

/** Resolves with the first defined value of `probe`, checked on every turn of the event loop's timers. */
async function waitFor<T>(probe: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const isPoll = (request: Pick<ProxiedRequest, 'path' | 'body'>) => request.path === '/oauth/token' && CIBA_POLL.test(request.body);

/** Faults for the first polls in order, then every poll passes. */
function faultyPolls(...faults: Fault[]) {
  let polls = 0;
  return (request: Pick<ProxiedRequest, 'path' | 'body'>): Fault | undefined => {
    if (!isPoll(request)) return undefined;
    polls += 1;
    return faults[polls - 1];
  };
}

describe('the identity backend failing while consent is pending', { timeout: 60_000 }, () => {
  it('still completes after approval when polls time out, or answer 503 or 429', async () => {
    const stack = await startFaultyStack({ deliveryMode: 'poll' });
    stack.identity.setRule(
      faultyPolls({ kind: 'hang' }, { kind: 'status', status: 503 }, { kind: 'status', status: 429, headers: { 'retry-after': '1' } }, { kind: 'reset' }),
    );
    const turn = stack.ask('jdoe@staff0.com');
    // Every fault has happened before the employee answers, so the task has lived through all of them.
    await stack.identity.waitFor((r) => isPoll(r) && r.fault === 'reset');
    await stack.approve('auth0|jdoe');
    const result = await turn;
    expect(result.finalState).toBe('COMPLETED');
    expect(result.answer).toBe('Yes, John Doe is an active employee of Staff0.');
    expect(stack.identity.requests.filter((r) => isPoll(r) && r.fault !== 'passed').map((r) => r.fault)).toEqual([
      'hang',
      'status',
      'status',
      'reset',
    ]);
  });

  it('completes when the poll that takes the approval answers after its deadline, without polling again meanwhile', async () => {
    const stack = await startFaultyStack({ deliveryMode: 'poll' });
    const turn = stack.ask('jdoe@staff0.com');
    const pending = await waitFor(() => stack.tenant.requests.list({ userId: 'auth0|jdoe', status: 'pending' })[0]);
    // The fault: from the approval on, a poll's good answer reaches the agent 1.5 attempt deadlines late
    // (the tenant has already used the request up: a second poll would hear invalid_grant).
    const lateByMs = FAST.identity!.attemptTimeoutMs! * 1.5;
    stack.identity.setRule((request) =>
      isPoll(request) ? { kind: 'late', until: new Promise<void>((resolve) => setTimeout(resolve, lateByMs)) } : undefined,
    );
    await stack.tenant.requests.decide(pending.id, 'approve');
    const result = await turn;
    expect(result.finalState).toBe('COMPLETED');
    expect(result.answer).toBe('Yes, John Doe is an active employee of Staff0.');
  });

  it('in ping mode, still completes when the token request after the ping fails once', async () => {
    const stack = await startFaultyStack({ deliveryMode: 'ping', settings: { cibaInterval: 5 } });
    stack.identity.setRule(faultyPolls({ kind: 'status', status: 503 }));
    const turn = stack.ask('jsmith@staff0.com');
    await stack.approve('auth0|jsmith');
    const result = await turn;
    expect(result.finalState).toBe('COMPLETED');
    expect(result.answer).toBe('Yes, Jane Smith is an active employee of Staff0.');
  });

  it.each(['poll', 'ping'] as const)('in %s mode, ends FAILED within seconds when a restarted tenant no longer knows the request', async (mode) => {
    const stack = await startFaultyStack({ deliveryMode: mode, settings: { cibaInterval: 1 } });
    let pendingAt = 0;
    const turn = stack.ask('jdoe@staff0.com', (state) => {
      if (state === 'AUTH_REQUIRED') pendingAt ||= Date.now();
    });
    await waitFor(() => stack.tenant.requests.list({ userId: 'auth0|jdoe', status: 'pending' })[0]);
    await stack.restartTenant();
    const restartedAt = Date.now();
    const result = await turn;
    expect(pendingAt).toBeGreaterThan(0);
    expect(result.finalState).toBe('FAILED');
    expect(result.answer).toBe('The identity backend no longer knows the approval request (it may have restarted); please ask again.');
    // Noticed at a check, not at the request's 300 s expiry (a loose bound: the machine may be busy).
    expect(Date.now() - restartedAt).toBeLessThan(60_000);
  });

  it('ends FAILED "timed out" when the backend cannot be reached until the request expires', async () => {
    const stack = await startFaultyStack({ deliveryMode: 'poll', settings: { cibaInterval: 1, cibaDefaultExpiry: 3 } });
    stack.identity.setRule((request) => (isPoll(request) ? { kind: 'status', status: 503 } : undefined));
    const result = await stack.ask('jdoe@staff0.com');
    expect(result.finalState).toBe('FAILED');
    expect(result.answer).toBe(
      'The approval request timed out before the employee answered; the identity backend answered HTTP 503 when last asked.',
    );
  });
});

describe('the model failing', { timeout: 60_000 }, () => {
  it('ends FAILED, naming the model, when it accepts the request and never answers', async () => {
    const stack = await startFaultyStack({ deliveryMode: 'poll' });
    stack.model.setRule(() => ({ kind: 'hang' }));
    const result = await stack.ask('jdoe@staff0.com');
    expect(result.finalState).toBe('FAILED');
    expect(result.answer).toBe('The language model (gemini-2.5-flash) did not answer within 2 s, after 2 attempts.');
    expect(stack.model.requests).toHaveLength(2);
  });

  it('completes when the model answers 429 once, then normally', async () => {
    const stack = await startFaultyStack({ deliveryMode: 'poll' });
    let calls = 0;
    stack.model.setRule(() => (++calls === 1 ? { kind: 'status', status: 429, body: JSON.stringify({ error: { code: 429, message: 'Resource exhausted', status: 'RESOURCE_EXHAUSTED' } }) } : undefined));
    const result = await stack.ask('jdoe@staff0.com', (state) => {
      if (state === 'AUTH_REQUIRED') void stack.approve('auth0|jdoe');
    });
    expect(result.finalState).toBe('COMPLETED');
    expect(result.answer).toBe('Yes, John Doe is an active employee of Staff0.');
    expect(stack.model.requests[0]?.fault).toBe('status');
  });

  it('ends FAILED, saying which service failed, when the model keeps answering 503', async () => {
    const stack = await startFaultyStack({ deliveryMode: 'poll' });
    stack.model.setRule(() => ({ kind: 'status', status: 503, body: JSON.stringify({ error: { code: 503, message: 'Overloaded', status: 'UNAVAILABLE' } }) }));
    const result = await stack.ask('jdoe@staff0.com');
    expect(result.finalState).toBe('FAILED');
    expect(result.answer).toBe('The language model (gemini-2.5-flash) answered HTTP 503, after 2 attempts.');
  });
});

describe('the HR API failing', { timeout: 60_000 }, () => {
  it('completes when the HR API answers 503 once after approval', async () => {
    const stack = await startFaultyStack({ deliveryMode: 'poll' });
    let reads = 0;
    stack.hrApi.setRule((request) => (request.path.startsWith('/employees/') && ++reads === 1 ? { kind: 'status', status: 503 } : undefined));
    const result = await stack.ask('jdoe@staff0.com', (state) => {
      if (state === 'AUTH_REQUIRED') void stack.approve('auth0|jdoe');
    });
    expect(result.finalState).toBe('COMPLETED');
    expect(reads).toBe(2);
  });

  it('ends FAILED naming the HR API when it never answers', async () => {
    const stack = await startFaultyStack({ deliveryMode: 'poll' });
    stack.hrApi.setRule((request) => (request.path.startsWith('/employees/') ? { kind: 'hang' } : undefined));
    const result = await stack.ask('jdoe@staff0.com', (state) => {
      if (state === 'AUTH_REQUIRED') void stack.approve('auth0|jdoe');
    });
    expect(result.finalState).toBe('FAILED');
    expect(result.answer).toBe('The HR API did not answer within 2 s, after 3 attempts.');
  });
});
