import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { LOCAL_TENANT_DEFAULTS } from '../config.ts';
import { freePorts, runCommand, waitUntil, type RunningCommand } from './processes.ts';

/**
 * IDENTITY_BACKEND=auth0 end to end, without the internet: the local tenant
 * serves HTTPS on localhost with the local CA (trusted through
 * NODE_EXTRA_CA_CERTS by the test setup), and the sandbox is configured
 * exactly as for a real tenant, with HR_AUTH0_DOMAIN=localhost:<port>.
 */

describe('npm run sandbox in auth0 mode against an HTTPS tenant', () => {
  let tenant: RunningCommand;
  let sandbox: RunningCommand;
  let env: Record<string, string>;
  let control: string;

  beforeAll(async () => {
    const [tenantPort, agent, hrApi, gemini, flowConsole] = await freePorts(5);
    tenant = runCommand(process.execPath, ['--import', 'tsx', 'mock-guardian/main.ts'], {
      TENANT_HTTPS: 'true',
      TENANT_PORT: String(tenantPort),
      SANDBOX_STATE_DIR: inject('tlsStateDir'),
      HR_AGENT_PORT: String(agent),
    });
    await tenant.waitForOutput(new RegExp(`Local tenant https://localhost:${tenantPort}/`));
    control = `https://localhost:${tenantPort}/control`;
    env = {
      IDENTITY_BACKEND: 'auth0',
      HR_AUTH0_DOMAIN: `localhost:${tenantPort}`,
      A2A_CLIENT_AUTH0_CLIENT_ID: LOCAL_TENANT_DEFAULTS.a2aClient.clientId,
      A2A_CLIENT_AUTH0_CLIENT_SECRET: LOCAL_TENANT_DEFAULTS.a2aClient.clientSecret,
      HR_AGENT_AUTH0_CLIENT_ID: LOCAL_TENANT_DEFAULTS.hrAgentClient.clientId,
      HR_AGENT_AUTH0_CLIENT_SECRET: LOCAL_TENANT_DEFAULTS.hrAgentClient.clientSecret,
      HR_AGENT_PORT: String(agent),
      HR_API_PORT: String(hrApi),
      MOCK_GEMINI_PORT: String(gemini),
      FLOW_CONSOLE_PORT: String(flowConsole),
      // The tenant port stays taken by the HTTPS tenant; auth0 mode must not try to start one.
      TENANT_PORT: String(tenantPort),
    };
    sandbox = runCommand('npm', ['run', 'sandbox'], env);
    await sandbox.waitForOutput(/Headless Agent Auth Sandbox is ready/, 90_000);
  }, 120_000);

  afterAll(async () => {
    for (const command of [sandbox, tenant]) {
      if (command?.groupAlive()) {
        command.signalGroup('SIGINT');
        await command.exited;
      }
    }
  });

  it('starts no local tenant and names the Auth0 issuer in the banner', () => {
    expect(sandbox.stdout()).toContain(`Auth0               https://localhost:${env.TENANT_PORT}/`);
    expect(sandbox.stdout()).toContain('Guardian app');
    expect(sandbox.stdout()).toContain('(4 services');
    expect(sandbox.stdout()).not.toMatch(/^\[tenant/m);
  });

  it('serves an agent card whose tokenUrl is the Auth0 domain', async () => {
    const card = (await (await fetch(`http://127.0.0.1:${env.HR_AGENT_PORT}/.well-known/agent-card.json`)).json()) as {
      securitySchemes: Record<string, { oauth2SecurityScheme?: { flows: { clientCredentials: { tokenUrl: string } } } }>;
    };
    const tokenUrls = Object.values(card.securitySchemes).map((s) => s.oauth2SecurityScheme?.flows.clientCredentials.tokenUrl);
    expect(tokenUrls).toContain(`https://localhost:${env.TENANT_PORT}/oauth/token`);
  });

  it('runs the whole approve flow: client, CIBA push, approval, answer', async () => {
    const client = runCommand('npm', ['run', 'client', '--', 'Does John Doe with email jdoe@staff0.com work at Staff0?'], env);
    const request = await waitUntil(async () => {
      const res = await fetch(`${control}/requests?user_id=${encodeURIComponent('auth0|jdoe')}&status=pending`);
      return ((await res.json()) as { requests: { id: string; client_id: string }[] }).requests[0];
    });
    expect(request.client_id).toBe(LOCAL_TENANT_DEFAULTS.hrAgentClient.clientId);
    const approved = await fetch(`${control}/requests/${request.id}/approve`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(approved.status).toBe(200);
    const { code } = await client.exited;
    expect(client.stdout()).toMatch(/AUTH_REQUIRED[\s\S]*COMPLETED/);
    expect(client.stdout()).toMatch(/Yes, John Doe is an active employee/);
    expect(code).toBe(0);
  });
});
