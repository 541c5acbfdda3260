import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { A2A, bcAuthorize, CIBA_GRANT, HR_AGENT, HR_AGENT_PING, postForm, startTenant, type RunningTenant } from './relying-party.ts';

/** Whatever arrives, the tenant answers with an OAuth/HTTP error — never a 500 — and keeps serving. */
describe('malformed input', () => {
  let running: RunningTenant;
  beforeAll(async () => {
    running = await startTenant();
  });
  afterAll(() => running.tenant.close());

  const raw = async (path: string, init: RequestInit = {}) => {
    const response = await fetch(new URL(path, running.issuer), init);
    const text = await response.text();
    return { status: response.status, text, contentType: response.headers.get('content-type') ?? '' };
  };

  it('answers garbage bodies at the token and bc-authorize endpoints with OAuth errors', async () => {
    const cases: [string, RequestInit][] = [
      ['oauth/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"grant_type":' }],
      ['oauth/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '%%%&&&==' }],
      ['oauth/token', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' }],
      ['oauth/token', { method: 'POST' }],
      ['oauth/token', { method: 'GET' }],
      ['bc-authorize', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'x'.repeat(70_000) }],
      ['bc-authorize', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[]' }],
      ['no/such/route', { method: 'POST' }],
    ];
    for (const [path, init] of cases) {
      const response = await raw(path, init);
      expect(response.status, `${init.method} /${path}`).toBeGreaterThanOrEqual(400);
      expect(response.status, `${init.method} /${path}`).toBeLessThan(500);
      expect(JSON.parse(response.text)).toHaveProperty('error');
    }
  });

  it('answers wrong parameter types and repeated parameters at /bc-authorize with OAuth errors', async () => {
    const responses = [
      await bcAuthorize(running.issuer, { login_hint: 'x'.repeat(5000) }),
      await bcAuthorize(running.issuer, { login_hint: '{"format":"iss_sub","iss":1,"sub":{}}' }),
      await bcAuthorize(running.issuer, { login_hint: 'null' }),
      await bcAuthorize(running.issuer, { requested_expiry: '99999999999999999999999' }),
      await bcAuthorize(running.issuer, { scope: 'openid \u0000' }),
      await bcAuthorize(running.issuer, { audience: 'not a url' }),
      await bcAuthorize(running.issuer, { login_hint: undefined }),
      await bcAuthorize(running.issuer, { client_notification_token: 'x'.repeat(2000) }, HR_AGENT_PING),
      await bcAuthorize(running.issuer, { client_notification_token: '<script>' }, HR_AGENT_PING),
      await postForm(running.issuer, '/bc-authorize', {
        client_id: HR_AGENT.clientId,
        client_secret: HR_AGENT.clientSecret,
        scope: 'openid',
        login_hint: '{}',
        binding_message: ['one', 'two'],
      }),
      await postForm(running.issuer, '/oauth/token', {
        grant_type: 'client_credentials',
        client_id: A2A.clientId,
        client_secret: A2A.clientSecret,
        audience: ['https://staff0/agent', 'https://staff0/api'],
      }),
      await postForm(running.issuer, '/oauth/token', { grant_type: CIBA_GRANT, client_id: HR_AGENT.clientId, client_secret: HR_AGENT.clientSecret }),
      await postForm(running.issuer, '/oauth/token', {
        grant_type: CIBA_GRANT,
        client_id: HR_AGENT.clientId,
        client_secret: HR_AGENT.clientSecret,
        auth_req_id: 'x'.repeat(3000),
      }),
      await postForm(running.issuer, '/oauth/token', { grant_type: 'password', client_id: A2A.clientId, client_secret: A2A.clientSecret }),
      await postForm(running.issuer, '/oauth/token', { grant_type: 'client_credentials', client_id: 'nobody', client_secret: 'x' }),
    ];
    for (const response of responses) {
      expect(response.status).toBeGreaterThanOrEqual(400);
      expect(response.status).toBeLessThan(500);
      expect(typeof response.body.error).toBe('string');
    }
  });

  it('answers malformed control and management requests with 4xx JSON', async () => {
    const cases: [string, RequestInit][] = [
      ['control/requests?user_id=a&user_id=b', {}],
      ['control/requests/%E0%A4%A', {}],
      ['control/requests/x/approve', { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(10_000) }],
      ['control/events?user_id=a&user_id=b', {}],
      ['api/v2/users-by-email?email=jdoe%40staff0.com', { headers: { authorization: 'Bearer' } }],
      ['api/v2/users-by-email?email=jdoe%40staff0.com', { headers: { authorization: 'Bearer not.a.jwt' } }],
      ['api/v2/users-by-email?email=jdoe%40staff0.com', { headers: { authorization: 'Basic abc' } }],
    ];
    for (const [path, init] of cases) {
      const response = await raw(path, init);
      expect(response.status, path).toBeGreaterThanOrEqual(400);
      expect(response.status, path).toBeLessThan(500);
      expect(response.contentType).toMatch(/json/);
    }
  });

  it('is still serving afterwards', async () => {
    expect(await (await fetch(new URL('health', running.issuer))).json()).toEqual({ ok: true });
    expect((await bcAuthorize(running.issuer)).status).toBe(200);
    expect(running.warnings).toEqual([]);
  });
});
