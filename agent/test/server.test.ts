import { TaskState, type Task } from '@a2a-js/sdk';
import { ClientFactory, ClientFactoryOptions, JsonRpcTransportFactory, RestTransportFactory, type Client } from '@a2a-js/sdk/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientCredentialsFlow } from '../../sandbox/agent-client.ts';
import { userMessage } from '../../sandbox/conversation.ts';
import { jsonRpc, sendRequest, wireSendParams } from './a2a-caller.ts';
import type { ScriptedGemini } from './scripted-gemini.ts';
import { AGENT_AUDIENCE, startStandaloneAgent, type StandaloneAgent } from './standalone-agent.ts';
import type { TestIssuer } from './test-issuer.ts';


let standalone: StandaloneAgent;
let issuer: TestIssuer;
let gemini: ScriptedGemini;
let url: string;

beforeAll(async () => {
  standalone = await startStandaloneAgent();
  ({ issuer, gemini, url } = standalone);
});

afterAll(async () => {
  await standalone.close();
});

const callerToken = (sub = 'a2a-client@clients', extra: Record<string, unknown> = {}) =>
  issuer.token({ sub, aud: AGENT_AUDIENCE, scope: 'read:employee_status', azp: 'a2a-client', ...extra });

async function clientFor(token: string): Promise<Client> {
  const authFetch: typeof fetch = (input, init) => {
    const headers = new Headers(init?.headers);
    headers.set('authorization', `Bearer ${token}`);
    return fetch(input, { ...init, headers });
  };
  const factory = new ClientFactory(
    ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
      transports: [new JsonRpcTransportFactory({ fetchImpl: authFetch }), new RestTransportFactory({ fetchImpl: authFetch })],
    }),
  );
  return factory.createFromUrl(url);
}

describe('agent card', () => {
  it('is public and in spec JSON, with the client-credentials flow at the issuer token endpoint', async () => {
    const response = await fetch(`${url}/.well-known/agent-card.json`);
    expect(response.status).toBe(200);
    const card = (await response.json()) as Record<string, any>;
    expect(card.name).toBe('Staff0 HR Agent');
    expect(card.skills[0].id).toBe('is_active_employee');
    expect(card.skills[0].examples).toContain('Does John Doe with email jdoe@staff0.com work at Staff0?');
    expect(card.capabilities).toMatchObject({ streaming: true, pushNotifications: true });
    expect(card.securitySchemes.staff0_oauth2.oauth2SecurityScheme.flows.clientCredentials).toEqual({
      tokenUrl: `${issuer.issuer}oauth/token`,
      scopes: { 'read:employee_status': expect.any(String) },
    });
    expect(card.securityRequirements).toEqual([{ schemes: { staff0_oauth2: { list: ['read:employee_status'] } } }]);
    expect(card.supportedInterfaces).toEqual([
      { url: `${url}/a2a/jsonrpc`, protocolBinding: 'JSONRPC', protocolVersion: '1.0' },
      { url: `${url}/a2a/rest`, protocolBinding: 'HTTP+JSON', protocolVersion: '1.0' },
    ]);
    expect(JSON.stringify(card)).not.toContain('$case');
  });

  it("is accepted by the shared A2A caller, whose token URL must be on the caller's issuer", async () => {
    const response = await fetch(`${url}/.well-known/agent-card.json`);
    const { DefaultAgentCardResolver } = await import('@a2a-js/sdk/client');
    const card = new DefaultAgentCardResolver().normalizeAgentCard(await response.json());
    expect(clientCredentialsFlow(card, issuer.issuer)).toEqual({
      tokenUrl: `${issuer.issuer}oauth/token`,
      scopes: ['read:employee_status'],
    });
  });

  it('answers /health', async () => {
    const response = await fetch(`${url}/health`);
    expect(await response.json()).toEqual({ ok: true });
  });
});

describe('bearer guard on the A2A routes', () => {
  it('answers 401 with a bare Bearer challenge when no token is sent, and creates no task', async () => {
    const before = gemini.requests.length;
    const response = await jsonRpc(url, 'SendMessage', wireSendParams('Does jdoe@staff0.com work here?'));
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Bearer realm="staff0-hr-agent"');
    expect(gemini.requests.length).toBe(before);
  });

  it('answers 401 invalid_token for a token meant for another audience', async () => {
    const token = await callerToken('a2a-client@clients', { aud: 'https://staff0/api' });
    const response = await jsonRpc(url, 'SendMessage', wireSendParams('hello'), `Bearer ${token}`);
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toMatch(/^Bearer realm="staff0-hr-agent", error="invalid_token"/);
  });

  it('answers 403 insufficient_scope for a token without read:employee_status', async () => {
    const token = await callerToken('a2a-client@clients', { scope: 'read:users' });
    const response = await jsonRpc(url, 'SendMessage', wireSendParams('hello'), `Bearer ${token}`);
    expect(response.status).toBe(403);
    expect(response.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
    expect(response.headers.get('www-authenticate')).toContain('scope="read:employee_status"');
  });

  it('guards the HTTP+JSON binding the same way', async () => {
    const response = await fetch(`${url}/a2a/rest/message:send`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'a2a-version': '1.0' },
      body: JSON.stringify(wireSendParams('hello')),
    });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Bearer realm="staff0-hr-agent"');
  });
});

describe('per-caller task scoping', () => {
  it("lets a caller read its own task but not another caller's", async () => {
    gemini.reply(() => [{ text: 'I can only answer whether someone is an active Staff0 employee.' }]);
    const alice = await clientFor(await callerToken('alice@clients'));
    const mallory = await clientFor(await callerToken('mallory@clients'));
    const result = (await alice.sendMessage(sendRequest(userMessage('What is the weather?')))) as Task;
    expect(result.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect((await alice.getTask({ id: result.id, tenant: '' })).id).toBe(result.id);
    await expect(mallory.getTask({ id: result.id, tenant: '' })).rejects.toThrow(/not found/i);
    await expect(mallory.cancelTask({ id: result.id, tenant: '', metadata: undefined })).rejects.toThrow(/not found/i);
  });
});

describe('CIBA ping notification route', () => {
  it('answers 401 for an unknown notification token', async () => {
    const response = await fetch(`${url}/ciba/notify`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer not-a-known-token' },
      body: JSON.stringify({ auth_req_id: 'whatever' }),
    });
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: 'invalid_token' });
  });

  it('answers 400, not 500, for a malformed body', async () => {
    const response = await fetch(`${url}/ciba/notify`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{not json',
    });
    expect(response.status).toBe(400);
  });
});
