import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_TENANT_DEFAULTS } from '../config.ts';
import { runCommand, sandboxEnv, waitUntil, type RunningCommand } from './processes.ts';

/**
 * Every line `npm run sandbox` and `npm run client` print during a full approve
 * flow, a protocol-version error and a refused webhook, searched for the
 * credentials and tokens that flowed through them.
 */

const QUESTION = 'Does John Doe with email jdoe@staff0.com work at Staff0?';

describe('logs of a full sandbox run', () => {
  let env: Record<string, string>;
  let sandbox: RunningCommand;
  let tenant: string;
  let agent: string;
  let callerToken: string;
  const clientOutputs: string[] = [];
  let logs = '';

  beforeAll(async () => {
    env = await sandboxEnv();
    tenant = `http://127.0.0.1:${env.TENANT_PORT}`;
    agent = `http://127.0.0.1:${env.HR_AGENT_PORT}`;
    sandbox = runCommand('npm', ['run', 'sandbox'], env);
    await sandbox.waitForOutput(/Headless Agent Auth Sandbox is ready/, 90_000);

    // A whole approve flow through the command-line client.
    const client = runCommand('npm', ['run', 'client', '--', QUESTION], env);
    const request = await waitUntil(async () => {
      const res = await fetch(`${tenant}/control/requests?user_id=auth0%7Cjdoe&status=pending`);
      return ((await res.json()) as { requests: { id: string }[] }).requests[0];
    });
    const approved = await fetch(`${tenant}/control/requests/${request.id}/approve`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(approved.status).toBe(200);
    expect((await client.exited).code).toBe(0);
    clientOutputs.push(client.output());

    // A caller's own token, used for a call without A2A-Version and for a refused webhook.
    const tokenResponse = await fetch(`${tenant}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: LOCAL_TENANT_DEFAULTS.a2aClient.clientId,
        client_secret: LOCAL_TENANT_DEFAULTS.a2aClient.clientSecret,
        audience: LOCAL_TENANT_DEFAULTS.agentAudience,
      }),
    });
    callerToken = ((await tokenResponse.json()) as { access_token: string }).access_token;
    const unversioned = await fetch(`${agent}/a2a/jsonrpc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${callerToken}` },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'GetTask', params: { id: 'x' } }),
    });
    expect(((await unversioned.json()) as { error: { code: number } }).error.code).toBe(-32009);
    const refusedWebhook = await fetch(`${agent}/a2a/jsonrpc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'a2a-version': '1.0', authorization: `Bearer ${callerToken}` },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 2,
        method: 'SendMessage',
        params: {
          message: { messageId: crypto.randomUUID(), role: 'ROLE_USER', parts: [{ text: 'hello' }] },
          configuration: { taskPushNotificationConfig: { url: `${tenant}/control/requests/x/approve?secret-path=1`, token: 'hook-token' } },
        },
      }),
    });
    expect(((await refusedWebhook.json()) as { error: { code: number } }).error.code).toBe(-32602);

    // Stop, so every process has flushed its last line.
    sandbox.signalGroup('SIGINT');
    await sandbox.exited;
    logs = [sandbox.output(), ...clientOutputs].join('\n');
  }, 150_000);

  afterAll(async () => {
    if (sandbox?.groupAlive()) {
      sandbox.signalGroup('SIGKILL');
      await sandbox.exited;
    }
  });

  it('never contains a client secret', () => {
    for (const secret of [LOCAL_TENANT_DEFAULTS.a2aClient.clientSecret, LOCAL_TENANT_DEFAULTS.hrAgentClient.clientSecret, LOCAL_TENANT_DEFAULTS.hrAgentPingClient.clientSecret]) {
      expect(logs).not.toContain(secret);
    }
  });

  it('never contains an access token or an authorization header', () => {
    expect(callerToken.length).toBeGreaterThan(100);
    expect(logs).not.toContain(callerToken);
    expect(logs).not.toContain(callerToken.split('.')[2]);
    // Any JWT at all: the agent's CIBA and Management API tokens are never seen by the test, but are JWTs.
    expect(logs).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}/);
    expect(logs).not.toMatch(/authorization\s*[:=]\s*\S/i);
    expect(logs).not.toMatch(/bearer\s+[A-Za-z0-9._~+/-]{20,}/i);
    expect(logs).not.toContain('hook-token');
  });

  it('logs the protocol-version error as one line, and no stack trace anywhere', () => {
    expect(logs.match(/JSON-RPC GetTask refused: A2A-Version "0\.3" is not supported \(-32009\)/g)).toHaveLength(1);
    // A stack frame, whatever prefix concurrently puts before it: "    at fn (file:///…:12:34)".
    expect(logs).not.toMatch(/\s{2,}at \S.*:\d+:\d+\)?$/m);
    expect(logs).not.toContain('Unhandled error in JSON-RPC POST handler');
  });

  it('logs no webhook path or query', () => {
    expect(logs).not.toContain('secret-path');
  });
});
