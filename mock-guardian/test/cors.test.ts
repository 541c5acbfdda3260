import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import tenantJson from '../tenant.json' with { type: 'json' };
import { parseTenantFile, TenantFileError, type TenantFile } from '../tenant-file.ts';
import { A2A, bcAuthorize, HR_AGENT, postForm, startTenant, type RunningTenant } from './relying-party.ts';

/** CORS as Auth0 answers it: public documents for anyone, token endpoints per application's allowed origins. */

const APP_ORIGIN = 'https://app.staff0.example';
const WEB_ORIGIN = 'http://localhost:5173';

function withOrigins(): TenantFile {
  const raw = structuredClone(tenantJson) as { applications: Record<string, unknown>[] };
  for (const app of raw.applications) {
    if (app.client_id === A2A.clientId) app.allowed_origins = [APP_ORIGIN];
    if (app.client_id === HR_AGENT.clientId) app.web_origins = [WEB_ORIGIN];
  }
  return parseTenantFile(raw, 'test tenant');
}

describe('CORS on the local tenant', () => {
  let running: RunningTenant;
  beforeAll(async () => {
    running = await startTenant({ tenantFile: withOrigins() });
  });
  afterAll(() => running.tenant.close());

  const clientCredentials = (origin: string) =>
    postForm(
      running.issuer,
      '/oauth/token',
      { grant_type: 'client_credentials', client_id: A2A.clientId, client_secret: A2A.clientSecret, audience: 'https://staff0/agent' },
      { origin },
    );

  it('answers discovery and the JWKS to any origin with Access-Control-Allow-Origin: *', async () => {
    for (const path of ['.well-known/openid-configuration', '.well-known/jwks.json']) {
      const response = await fetch(new URL(path, running.issuer), { headers: { origin: 'https://anyone.example' } });
      expect(response.status, path).toBe(200);
      expect(response.headers.get('access-control-allow-origin'), path).toBe('*');
    }
  });

  it("lets an application's allowed origin call the token endpoint", async () => {
    const response = await clientCredentials(APP_ORIGIN);
    expect(response.status).toBe(200);
    expect(response.body.access_token).toEqual(expect.any(String));
    expect(response.headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
  });

  it('refuses any other origin, granting it no CORS header', async () => {
    for (const origin of ['https://evil.example', WEB_ORIGIN, `${APP_ORIGIN}:8443`, 'null']) {
      const response = await clientCredentials(origin);
      expect(response.status, origin).toBe(400);
      expect(response.body.error, origin).toBe('invalid_request');
      expect(response.headers.get('access-control-allow-origin'), origin).toBeNull();
    }
  });

  it("applies the application's web origins to /bc-authorize too", async () => {
    const allowed = await fetch(new URL('bc-authorize', running.issuer), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: WEB_ORIGIN },
      body: new URLSearchParams({
        client_id: HR_AGENT.clientId,
        client_secret: HR_AGENT.clientSecret,
        scope: 'openid read:employee',
        audience: 'https://staff0/api',
        login_hint: JSON.stringify({ format: 'iss_sub', iss: running.issuer, sub: 'auth0|jdoe' }),
        binding_message: 'CORS check',
      }),
    });
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(WEB_ORIGIN);
    const before = running.tenant.requests.list({ userId: 'auth0|jsmith' }).length;
    const refused = await postForm(
      running.issuer,
      '/bc-authorize',
      {
        client_id: HR_AGENT.clientId,
        client_secret: HR_AGENT.clientSecret,
        scope: 'openid read:employee',
        audience: 'https://staff0/api',
        login_hint: JSON.stringify({ format: 'iss_sub', iss: running.issuer, sub: 'auth0|jsmith' }),
        binding_message: 'CORS check',
      },
      { origin: 'https://evil.example' },
    );
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('invalid_request');
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
    expect(running.tenant.requests.list({ userId: 'auth0|jsmith' })).toHaveLength(before);
    // No Origin: not a browser, no CORS involved.
    expect((await bcAuthorize(running.issuer)).status).toBe(200);
  });

  it('validates allowed_origins and web_origins as exact origins', () => {
    const raw = structuredClone(tenantJson) as { applications: Record<string, unknown>[] };
    const app = raw.applications[0] as Record<string, unknown>;
    app.allowed_origins = ['https://app.example/', 'https://*.example.com', 'ftp://files.example'];
    app.web_origins = 'https://app.example';
    try {
      parseTenantFile(raw, 'bad origins');
      throw new Error('expected a TenantFileError');
    } catch (error) {
      expect(error).toBeInstanceOf(TenantFileError);
      const problems = (error as TenantFileError).problems.join('\n');
      expect(problems).toContain('applications[0].allowed_origins[0] must be an origin');
      expect(problems).toContain('applications[0].allowed_origins[1] must be an origin');
      expect(problems).toContain('applications[0].allowed_origins[2] must be an origin');
      expect(problems).toContain('applications[0].web_origins');
    }
  });
});
