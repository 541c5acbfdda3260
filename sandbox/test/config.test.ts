import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_PORTS, LOCAL_TENANT_DEFAULTS, loadConfig, readEnv } from '../config.ts';
import { servicesFor } from '../services.ts';
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
  it("gives the agent's documented call limits, retention and admission limit, and takes overrides", () => {
    expect(loadConfig({}).agent).toEqual({
      calls: {
        identity: { attemptTimeoutMs: 10_000, retries: 3 },
        hrApi: { attemptTimeoutMs: 10_000, retries: 3 },
        model: { attemptTimeoutMs: 30_000, retries: 2 },
      },
      retention: { maxAgeMs: 3_600_000, maxFinished: 1000 },
      maxActiveTasks: 2000,
      maxHeapMb: 256,
      semiSpaceMb: 8,
    });
    const agent = loadConfig({
      MODEL_TIMEOUT_MS: '5000',
      MODEL_RETRIES: '0',
      TASK_RETENTION_SECONDS: '60',
      TASK_RETENTION_MAX: '10',
      AGENT_MAX_ACTIVE_TASKS: '5',
    }).agent;
    expect(agent.calls.model).toEqual({ attemptTimeoutMs: 5000, retries: 0 });
    expect(agent.retention).toEqual({ maxAgeMs: 60_000, maxFinished: 10 });
    expect(agent.maxActiveTasks).toBe(5);
  });

  it("runs the agent with a small young generation when it keeps its work in its embedded database, V8's own otherwise", () => {
    const agentFlags = (env: Record<string, string>) => servicesFor(loadConfig(env)).find((service) => service.name === 'agent')?.nodeFlags;
    // The default: the embedded database (PGlite).
    expect(agentFlags({})).toEqual(['--max-old-space-size=256', '--max-semi-space-size=8', '--liftoff-only']);
    // No embedded database: V8's own semi-space.
    expect(agentFlags({ AGENT_STATE: 'memory' })).toEqual(['--max-old-space-size=256', '--liftoff-only']);
    expect(agentFlags({ DATABASE_URL: 'postgres://sandbox@127.0.0.1:5432/sandbox' })).toEqual(['--max-old-space-size=256', '--liftoff-only']);
    // Either way a value given wins.
    expect(agentFlags({ AGENT_SEMI_SPACE_MB: '16' })).toContain('--max-semi-space-size=16');
    expect(agentFlags({ AGENT_STATE: 'memory', AGENT_SEMI_SPACE_MB: '4' })).toContain('--max-semi-space-size=4');
    expect(problemsOf({ AGENT_SEMI_SPACE_MB: '0' })).toEqual(['AGENT_SEMI_SPACE_MB must be a whole number from 1 to 256 (got "0")']);
  });

  it('names each malformed limit', () => {
    expect(problemsOf({ IDENTITY_TIMEOUT_MS: 'soon', HR_API_RETRIES: '-1', AGENT_MAX_ACTIVE_TASKS: '0' })).toEqual([
      'IDENTITY_TIMEOUT_MS must be a whole number from 100 to 600000 (got "soon")',
      'HR_API_RETRIES must be a whole number from 0 to 20 (got "-1")',
      'AGENT_MAX_ACTIVE_TASKS must be a whole number from 1 to 1000000 (got "0")',
    ]);
  });

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

  it('refuses CIBA_DELIVERY_MODE=ping in auth0 mode, naming the variable (Auth0 delivers by poll only)', () => {
    const problems = problemsOf({ ...auth0Env, CIBA_DELIVERY_MODE: 'ping' });
    expect(problems).toEqual([expect.stringMatching(/^CIBA_DELIVERY_MODE=ping is a local-tenant extension/)]);
    expect(loadConfig({ ...auth0Env, CIBA_DELIVERY_MODE: 'poll' }).ciba.deliveryMode).toBe('poll');
  });

  it('accepts CIBA_REQUESTED_EXPIRY across both channels: 1–300 (Guardian push) and 301–259200 (email)', () => {
    for (const seconds of [1, 300, 301, 259_200]) {
      expect(loadConfig({ CIBA_REQUESTED_EXPIRY: String(seconds) }).ciba.requestedExpiry).toBe(seconds);
    }
    for (const bad of ['0', '259201', '1.5']) expect(problemsOf({ CIBA_REQUESTED_EXPIRY: bad })[0]).toMatch(/^CIBA_REQUESTED_EXPIRY/);
  });

  it("takes the Management API audience from HR_AUTH0_MANAGEMENT_DOMAIN when HR_AUTH0_DOMAIN is a custom domain", () => {
    const config = loadConfig({ ...auth0Env, HR_AUTH0_DOMAIN: 'login.staff0.com', HR_AUTH0_MANAGEMENT_DOMAIN: 'staff0.eu.auth0.com' });
    expect(config.identity.issuer).toBe('https://login.staff0.com/');
    expect(config.identity.managementAudience).toBe('https://staff0.eu.auth0.com/api/v2/');
    expect(problemsOf({ ...auth0Env, HR_AUTH0_MANAGEMENT_DOMAIN: 'evil.com/x' })[0]).toMatch(/^HR_AUTH0_MANAGEMENT_DOMAIN must be a host name/);
    expect(problemsOf({ HR_AUTH0_MANAGEMENT_DOMAIN: 'staff0.eu.auth0.com' })[0]).toMatch(/^HR_AUTH0_MANAGEMENT_DOMAIN applies to IDENTITY_BACKEND=auth0/);
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
      CIBA_REQUESTED_EXPIRY: '259201',
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

describe('loadConfig security settings', () => {
  it('refuses a non-loopback SANDBOX_HOST without SANDBOX_EXPOSE=true, naming the variable', () => {
    for (const host of ['0.0.0.0', '::', '192.168.1.20', 'box.lan']) {
      const problems = problemsOf({ SANDBOX_HOST: host });
      expect(problems, host).toHaveLength(1);
      expect(problems[0]).toContain(`SANDBOX_HOST=${host}`);
      expect(problems[0]).toContain('SANDBOX_EXPOSE=true');
    }
    expect(problemsOf({ SANDBOX_HOST: '0.0.0.0', SANDBOX_EXPOSE: 'yes' })[0]).toContain('SANDBOX_EXPOSE must be one of true, false');
  });

  it('binds loopback without asking, and exposes only when told to, then refusing loopback webhooks by default', () => {
    for (const host of ['127.0.0.1', '127.0.0.2', 'localhost', '::1']) {
      expect(loadConfig({ SANDBOX_HOST: host }).security.exposed, host).toBe(false);
    }
    const local = loadConfig({});
    expect(local.security).toEqual({
      exposed: false,
      allowedHosts: [],
      controlSecret: undefined,
      webhooks: { allowLoopback: true, allowPrivate: false },
      clockToleranceSeconds: 5,
    });
    const exposed = loadConfig({ SANDBOX_HOST: '0.0.0.0', SANDBOX_EXPOSE: 'true' });
    expect(exposed.security.exposed).toBe(true);
    expect(exposed.security.webhooks).toEqual({ allowLoopback: false, allowPrivate: false });
    expect(loadConfig({ SANDBOX_HOST: '0.0.0.0', SANDBOX_EXPOSE: 'true', PUSH_WEBHOOK_ALLOW_LOOPBACK: 'true', PUSH_WEBHOOK_ALLOW_PRIVATE: 'true' }).security.webhooks).toEqual({
      allowLoopback: true,
      allowPrivate: true,
    });
  });

  it('reads SANDBOX_ALLOWED_HOSTS, SANDBOX_CONTROL_SECRET and TOKEN_CLOCK_TOLERANCE_SECONDS, refusing malformed ones', () => {
    const config = loadConfig({
      SANDBOX_ALLOWED_HOSTS: 'Box.lan, proxy.lan:8443,[fd00::1]',
      SANDBOX_CONTROL_SECRET: 'x'.repeat(43),
      TOKEN_CLOCK_TOLERANCE_SECONDS: '30',
    });
    expect(config.security.allowedHosts).toEqual(['box.lan', 'proxy.lan:8443', '[fd00::1]']);
    expect(config.security.controlSecret).toBe('x'.repeat(43));
    expect(config.security.clockToleranceSeconds).toBe(30);
    expect(problemsOf({ SANDBOX_ALLOWED_HOSTS: 'http://box.lan/' })[0]).toContain('SANDBOX_ALLOWED_HOSTS');
    expect(problemsOf({ SANDBOX_CONTROL_SECRET: 'short' })[0]).toContain('SANDBOX_CONTROL_SECRET');
    expect(problemsOf({ TOKEN_CLOCK_TOLERANCE_SECONDS: '-1' })[0]).toContain('TOKEN_CLOCK_TOLERANCE_SECONDS');
    expect(problemsOf({ TOKEN_CLOCK_TOLERANCE_SECONDS: '3600' })[0]).toContain('TOKEN_CLOCK_TOLERANCE_SECONDS');
  });
});
