import { clientCredentialsGrant } from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { A2A, HR_AGENT, relyingParty, startTenant, type RunningTenant } from './relying-party.ts';

describe('Management API: GET /api/v2/users-by-email', () => {
  let running: RunningTenant;
  let managementToken: string;
  let agentToken: string;

  beforeAll(async () => {
    running = await startTenant();
    const hrAgent = await relyingParty(running.issuer, HR_AGENT);
    managementToken = (await clientCredentialsGrant(hrAgent, { audience: `${running.issuer}api/v2/` })).access_token;
    const a2a = await relyingParty(running.issuer, A2A);
    agentToken = (await clientCredentialsGrant(a2a, { audience: 'https://staff0/agent' })).access_token;
  });
  afterAll(() => running.tenant.close());

  const usersByEmail = (query: string, token?: string) =>
    fetch(new URL(`api/v2/users-by-email${query}`, running.issuer), {
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    });

  it('returns the Auth0-shaped user for a management token with read:users', async () => {
    const response = await usersByEmail('?email=JDoe%40staff0.com', managementToken);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual([
      {
        user_id: 'auth0|jdoe',
        email: 'jdoe@staff0.com',
        email_verified: true,
        name: 'John Doe',
        given_name: 'John',
        family_name: 'Doe',
        nickname: 'jdoe',
        created_at: expect.any(String),
        updated_at: expect.any(String),
        identities: [{ connection: 'Username-Password-Authentication', provider: 'auth0', user_id: 'jdoe', isSocial: false }],
      },
    ]);
  });

  it('returns an empty array for an unknown email', async () => {
    const response = await usersByEmail('?email=nobody%40staff0.com', managementToken);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual([]);
  });

  it('answers 401 with WWW-Authenticate without a token', async () => {
    const response = await usersByEmail('?email=jdoe%40staff0.com');
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Bearer realm="Management API"');
  });

  it('answers 401 invalid_token for a token of another audience', async () => {
    const response = await usersByEmail('?email=jdoe%40staff0.com', agentToken);
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect(await response.json()).toMatchObject({ statusCode: 401, error: 'Unauthorized', errorCode: 'invalid_token' });
  });

  it('answers 401 for a forged token', async () => {
    const [header, payload] = managementToken.split('.');
    const response = await usersByEmail('?email=jdoe%40staff0.com', `${header}.${payload}.c2lnbmF0dXJl`);
    expect(response.status).toBe(401);
  });

  it('answers 400 without email, or with a malformed or repeated one', async () => {
    for (const query of ['', '?email=', '?email=not-an-email', '?email=a%40b.co&email=c%40d.co', `?email=${'a'.repeat(300)}%40x.com`]) {
      const response = await usersByEmail(query, managementToken);
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ statusCode: 400, errorCode: 'invalid_query_string' });
    }
  });
});

describe('Management API scopes', () => {
  it('answers 403 insufficient_scope for a management token without read:users', async () => {
    const { loadTenantFile } = await import('../tenant-file.ts');
    const file = loadTenantFile();
    const apis = file.apis.map((api) =>
      api.identifier === '{{ISSUER}}api/v2/' ? { ...api, scopes: [...api.scopes, { value: 'read:stats', description: 'Stats' }] } : api,
    );
    const applications = file.applications.map((app) =>
      app.client_id === 'hr-agent' ? { ...app, client_grants: [{ audience: '{{ISSUER}}api/v2/', scope: ['read:stats'] }] } : app,
    );
    const running = await startTenant({ tenantFile: { ...file, apis, applications } });
    try {
      const hrAgent = await relyingParty(running.issuer, HR_AGENT);
      const { access_token } = await clientCredentialsGrant(hrAgent, { audience: `${running.issuer}api/v2/` });
      const response = await fetch(new URL('api/v2/users-by-email?email=jdoe%40staff0.com', running.issuer), {
        headers: { authorization: `Bearer ${access_token}` },
      });
      expect(response.status).toBe(403);
      expect(response.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
      expect(response.headers.get('www-authenticate')).toContain('scope="read:users"');
    } finally {
      await running.tenant.close();
    }
  });
});
