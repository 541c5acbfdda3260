import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config.ts';
import { createControlSecret, exposureWarning, flowConsoleUrl, guardianPageUrl } from '../exposure.ts';
import { servicesFor } from '../services.ts';

describe('exposure', () => {
  it('says nothing on loopback, and names every reachable service when exposed', () => {
    expect(exposureWarning(loadConfig({}))).toBeUndefined();
    const warning = exposureWarning(loadConfig({ SANDBOX_HOST: '0.0.0.0', SANDBOX_EXPOSE: 'true', SANDBOX_ALLOWED_HOSTS: 'box.lan' }));
    expect(warning).toContain('SANDBOX_HOST=0.0.0.0');
    for (const part of ['local tenant, its control API and Guardian page (port 10052)', 'mock-gemini (port 10053)', 'HR API (port 10051)', 'HR Agent (port 10050)', 'flow console (port 10054)', 'box.lan']) {
      expect(warning).toContain(part);
    }
  });

  it('puts the secret in the Guardian link’s fragment, never its query', () => {
    const secret = createControlSecret();
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(createControlSecret()).not.toBe(secret);
    const url = new URL(guardianPageUrl('http://127.0.0.1:10052/', { userId: 'auth0|jdoe', secret }));
    expect(url.pathname).toBe('/guardian');
    expect(url.searchParams.get('user_id')).toBe('auth0|jdoe');
    expect(url.search).not.toContain(secret);
    expect(url.hash).toBe(`#secret=${secret}`);
    expect(guardianPageUrl('http://127.0.0.1:10052')).toBe('http://127.0.0.1:10052/guardian');
  });

  it('puts the secret in the flow console link’s fragment too', () => {
    const secret = createControlSecret();
    const url = new URL(flowConsoleUrl('http://127.0.0.1:10054', { task: 'task-1', secret }));
    expect(url.pathname).toBe('/');
    expect(url.searchParams.get('task')).toBe('task-1');
    expect(url.search).not.toContain(secret);
    expect(url.hash).toBe(`#secret=${secret}`);
  });

  it('starts the flow console in local and in auth0 mode', () => {
    const auth0 = {
      IDENTITY_BACKEND: 'auth0',
      HR_AUTH0_DOMAIN: 'staff0.us.auth0.com',
      A2A_CLIENT_AUTH0_CLIENT_ID: 'a',
      A2A_CLIENT_AUTH0_CLIENT_SECRET: 'b',
      HR_AGENT_AUTH0_CLIENT_ID: 'c',
      HR_AGENT_AUTH0_CLIENT_SECRET: 'd',
    };
    for (const config of [loadConfig({}), loadConfig(auth0)]) {
      expect(servicesFor(config).find((s) => s.portVariable === 'FLOW_CONSOLE_PORT')).toMatchObject({
        label: 'flow console',
        entry: 'sandbox/flow-console/main.ts',
        port: 10054,
        healthUrl: 'http://127.0.0.1:10054/health',
      });
    }
  });
});
