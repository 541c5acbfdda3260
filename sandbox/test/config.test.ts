import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_PORTS, LOCAL_TENANT_DEFAULTS, loadConfig, readEnv } from '../config.ts';
import tenantFile from '../../mock-guardian/tenant.json' with { type: 'json' };

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

const auth0Env = {
  IDENTITY_BACKEND: 'auth0',
  HR_AUTH0_DOMAIN: 'staff0.us.auth0.com',
  A2A_CLIENT_AUTH0_CLIENT_ID: 'client-a',
  A2A_CLIENT_AUTH0_CLIENT_SECRET: 'secret-a',
  HR_AGENT_AUTH0_CLIENT_ID: 'client-h',
  HR_AGENT_AUTH0_CLIENT_SECRET: 'secret-h',
};

describe('loadConfig', () => {
  it('needs nothing: local tenant, mock Gemini, the default ports', () => {
    const config = loadConfig({});
    expect(config.identity.backend).toBe('local');
    expect(config.ports).toEqual(DEFAULT_PORTS);
    expect(config.identity.issuer).toBe('http://127.0.0.1:10052/');
    expect(config.identity.managementAudience).toBe('http://127.0.0.1:10052/api/v2/');
    expect(config.gemini.mode).toBe('mock');
    expect(config.gemini.baseUrl).toBe('http://127.0.0.1:10053');
    expect(config.urls.agent).toBe('http://127.0.0.1:10050');
    expect(config.ciba.deliveryMode).toBe('poll');
  });

  it("uses the local tenant file's fixed application credentials", () => {
    const config = loadConfig({});
    const byId = new Map(tenantFile.applications.map((app) => [app.client_id, app.client_secret]));
    expect(byId.get(config.identity.a2aClient.clientId)).toBe(config.identity.a2aClient.clientSecret);
    expect(byId.get(config.identity.hrAgentClient.clientId)).toBe(config.identity.hrAgentClient.clientSecret);
    const ping = LOCAL_TENANT_DEFAULTS.hrAgentPingClient;
    expect(byId.get(ping.clientId)).toBe(ping.clientSecret);
  });

  it('selects the ping-registered agent application for ping delivery', () => {
    const config = loadConfig({ CIBA_DELIVERY_MODE: 'ping' });
    expect(config.ciba.deliveryMode).toBe('ping');
    expect(config.identity.hrAgentClient.clientId).toBe('hr-agent-ping');
  });

  it('lists every missing auth0 variable at once, naming what each should hold', () => {
    const problems = problemsOf({ IDENTITY_BACKEND: 'auth0' });
    expect(problems).toHaveLength(5);
    for (const name of [
      'HR_AUTH0_DOMAIN',
      'A2A_CLIENT_AUTH0_CLIENT_ID',
      'A2A_CLIENT_AUTH0_CLIENT_SECRET',
      'HR_AGENT_AUTH0_CLIENT_ID',
      'HR_AGENT_AUTH0_CLIENT_SECRET',
    ]) {
      expect(problems.some((p) => p.startsWith(`${name} is required`))).toBe(true);
    }
  });

  it('builds the Auth0 issuer with a trailing slash from the domain', () => {
    const config = loadConfig({ ...auth0Env, HR_AUTH0_DOMAIN: 'https://staff0.us.auth0.com/' });
    expect(config.identity.issuer).toBe('https://staff0.us.auth0.com/');
    expect(config.identity.managementAudience).toBe('https://staff0.us.auth0.com/api/v2/');
    expect(config.identity.hrAgentClient).toEqual({ clientId: 'client-h', clientSecret: 'secret-h' });
  });

  it('refuses a malformed domain, port, backend, delivery mode and expiry with their names', () => {
    const problems = problemsOf({
      ...auth0Env,
      HR_AUTH0_DOMAIN: 'evil.com/path?x',
      HR_AGENT_PORT: '70000',
      HR_API_PORT: 'abc',
      CIBA_DELIVERY_MODE: 'push',
      CIBA_REQUESTED_EXPIRY: '301',
    });
    expect(problems.map((p) => p.split(' ')[0]).sort()).toEqual([
      'CIBA_DELIVERY_MODE',
      'CIBA_REQUESTED_EXPIRY',
      'HR_AGENT_PORT',
      'HR_API_PORT',
      'HR_AUTH0_DOMAIN',
    ]);
    expect(problemsOf({ IDENTITY_BACKEND: 'okta' })[0]).toMatch(/^IDENTITY_BACKEND must be one of local, auth0/);
  });

  it('uses real Gemini when a key is given, and never prints it', () => {
    const config = loadConfig({ GOOGLE_API_KEY: 'AIza-test', GEMINI_MODEL: 'gemini-2.5-pro' });
    expect(config.gemini).toEqual({ mode: 'google', apiKey: 'AIza-test', model: 'gemini-2.5-pro', baseUrl: undefined });
    const problems = problemsOf({ GOOGLE_API_KEY: 'AIza-test', TENANT_PORT: '-1' });
    expect(problems.join('\n')).not.toContain('AIza-test');
  });

  it('reads .env under the real environment, which wins', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sandbox-env-'));
    writeFileSync(join(dir, '.env'), 'HR_AGENT_PORT=11050\nHR_API_PORT=11051\n');
    const env = readEnv(dir, { HR_API_PORT: '12051' });
    const config = loadConfig(env);
    expect(config.ports.agent).toBe(11050);
    expect(config.ports.hrApi).toBe(12051);
  });
});

describe('loadConfig with TENANT_HTTPS', () => {
  it('names the HTTPS tenant localhost, matching auth0 mode pointed at it', () => {
    const local = loadConfig({ TENANT_HTTPS: 'true', TENANT_PORT: '10443' });
    const auth0 = loadConfig({ ...auth0Env, HR_AUTH0_DOMAIN: 'localhost:10443' });
    expect(local.identity.issuer).toBe('https://localhost:10443/');
    expect(auth0.identity.issuer).toBe(local.identity.issuer);
  });
});

describe('loadConfig credentials in local mode', () => {
  it('lets the same variables override the documented local credentials', () => {
    const config = loadConfig({ A2A_CLIENT_AUTH0_CLIENT_SECRET: 'wrong-secret' });
    expect(config.identity.a2aClient).toEqual({ clientId: 'a2a-client', clientSecret: 'wrong-secret' });
    expect(config.identity.hrAgentClient).toEqual(LOCAL_TENANT_DEFAULTS.hrAgentClient);
  });
});
