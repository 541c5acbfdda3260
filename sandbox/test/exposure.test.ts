import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config.ts';
import { createControlSecret, exposureWarning, guardianPageUrl } from '../exposure.ts';

describe('exposure', () => {
  it('says nothing on loopback, and names every reachable service when exposed', () => {
    expect(exposureWarning(loadConfig({}))).toBeUndefined();
    const warning = exposureWarning(loadConfig({ SANDBOX_HOST: '0.0.0.0', SANDBOX_EXPOSE: 'true', SANDBOX_ALLOWED_HOSTS: 'box.lan' }));
    expect(warning).toContain('SANDBOX_HOST=0.0.0.0');
    for (const part of ['local tenant, its control API and Guardian page (port 10052)', 'mock-gemini (port 10053)', 'HR API (port 10051)', 'HR Agent (port 10050)', 'box.lan']) {
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
});
