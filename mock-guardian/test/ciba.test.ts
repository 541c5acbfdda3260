import {
  initiateBackchannelAuthentication,
  pollBackchannelAuthenticationGrant,
  ResponseBodyError,
  type Configuration,
} from 'openid-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AUTH0_DENIED } from '../ciba.ts';
import {
  bcAuthorize,
  control,
  decodeJwtPayload,
  HR_AGENT,
  HR_AGENT_PING,
  loginHint,
  pollToken,
  relyingParty,
  startTenant,
  type RunningTenant,
} from './relying-party.ts';

function authReqIdOf(response: { status: number; body: Record<string, unknown> }): string {
  expect(response.status).toBe(200);
  return response.body.auth_req_id as string;
}

describe('CIBA with Guardian push (poll mode)', () => {
  let running: RunningTenant;
  let agent: Configuration;
  beforeAll(async () => {
    running = await startTenant();
    agent = await relyingParty(running.issuer, HR_AGENT);
  });
  afterAll(() => running.tenant.close());

  const pendingFor = (userId: string) => running.tenant.requests.list({ userId, status: 'pending' });

  it('answers {auth_req_id, expires_in, interval} with Auth0 defaults', async () => {
    const response = await bcAuthorize(running.issuer);
    expect(Object.keys(response.body).sort()).toEqual(['auth_req_id', 'expires_in', 'interval']);
    expect(response.body.expires_in).toBe(300);
    expect(response.body.interval).toBe(1);
  });

  it('issues a token carrying the user as sub once the employee approves', async () => {
    const started = await initiateBackchannelAuthentication(agent, {
      scope: 'openid read:employee',
      audience: 'https://staff0/api',
      login_hint: loginHint(running.issuer, 'auth0|jsmith'),
      binding_message: 'Approve HR lookup #7',
    });
    const [request] = pendingFor('auth0|jsmith');
    expect(request).toMatchObject({
      user_id: 'auth0|jsmith',
      user_name: 'Jane Smith',
      user_email: 'jsmith@staff0.com',
      client_id: 'hr-agent',
      client_name: 'HR Agent',
      binding_message: 'Approve HR lookup #7',
      scopes: ['openid', 'read:employee'],
      audience: 'https://staff0/api',
      api_name: 'Staff0 HR API',
      status: 'pending',
      decided_at: null,
    });
    expect(request?.id).not.toBe(started.auth_req_id);
    const approved = await control(running.issuer, `/requests/${request?.id}/approve`, { method: 'POST' });
    expect(approved.status).toBe(200);

    const tokens = await pollBackchannelAuthenticationGrant(agent, started);
    const claims = decodeJwtPayload(tokens.access_token);
    expect(claims).toMatchObject({
      iss: running.issuer,
      sub: 'auth0|jsmith',
      aud: 'https://staff0/api',
      scope: 'read:employee',
      azp: 'hr-agent',
    });
    expect(claims.gty).toBeUndefined();
    expect(tokens.claims()?.sub).toBe('auth0|jsmith');
    expect(running.tenant.requests.get(request?.id ?? '')).toMatchObject({ status: 'approved', polls: 1 });
  });

  it('answers access_denied with a description when the employee denies', async () => {
    const started = await initiateBackchannelAuthentication(agent, {
      scope: 'openid read:employee',
      audience: 'https://staff0/api',
      login_hint: loginHint(running.issuer, 'auth0|blee'),
      binding_message: 'Deny me',
    });
    const [request] = pendingFor('auth0|blee');
    await control(running.issuer, `/requests/${request?.id}/deny`, { method: 'POST' });
    const error = await pollBackchannelAuthenticationGrant(agent, started).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ResponseBodyError);
    expect((error as ResponseBodyError).error).toBe('access_denied');
    expect((error as ResponseBodyError).error_description).toBe(AUTH0_DENIED);
  });

  it('answers expired_token (not a denial) after the request is expired early from the control API', async () => {
    const authReqId = authReqIdOf(await bcAuthorize(running.issuer, { login_hint: loginHint(running.issuer, 'auth0|akhan') }));
    expect((await pollToken(running.issuer, authReqId)).body.error).toBe('authorization_pending');
    const [request] = pendingFor('auth0|akhan');
    const expired = await control(running.issuer, `/requests/${request?.id}/expire`, { method: 'POST' });
    expect(expired.body).toMatchObject({ status: 'expired' });
    const poll = await pollToken(running.issuer, authReqId);
    expect(poll.status).toBe(400);
    expect(poll.body.error).toBe('expired_token');
  });

  it("answers Auth0's access_denied once a short requested_expiry has passed, and announces the expiry", async () => {
    const events: string[] = [];
    const unsubscribe = running.tenant.requests.subscribe((view) => {
      if (view.binding_message === 'short lived') events.push(view.status);
    });
    const authReqId = authReqIdOf(await bcAuthorize(running.issuer, { requested_expiry: '1', binding_message: 'short lived' }));
    // The registry's own timer must notice the expiry; nobody reads the request meanwhile.
    await vi.waitFor(() => expect(events).toEqual(['pending', 'expired']), { timeout: 3000, interval: 50 });
    unsubscribe();
    const poll = await pollToken(running.issuer, authReqId);
    expect(poll.body).toEqual({ error: 'access_denied', error_description: AUTH0_DENIED });
  });

  it('answers slow_down with Retry-After when polled faster than interval', async () => {
    const authReqId = authReqIdOf(await bcAuthorize(running.issuer, { binding_message: 'too eager' }));
    expect((await pollToken(running.issuer, authReqId)).body.error).toBe('authorization_pending');
    const second = await pollToken(running.issuer, authReqId);
    expect(second.status).toBe(400);
    expect(second.body.error).toBe('slow_down');
    // RFC 8628 §3.5: the interval grows by 5 seconds.
    expect(second.headers.get('retry-after')).toBe('6');
  });

  it('answers invalid_grant when an auth_req_id is reused after success', async () => {
    const authReqId = authReqIdOf(await bcAuthorize(running.issuer, { binding_message: 'use once' }));
    const request = running.tenant.requests.list().find((r) => r.binding_message === 'use once');
    await running.tenant.requests.decide(request?.id ?? '', 'approve');
    const first = await pollToken(running.issuer, authReqId);
    expect(first.status).toBe(200);
    expect(typeof first.body.access_token).toBe('string');
    const replay = await pollToken(running.issuer, authReqId);
    expect(replay.status).toBe(400);
    expect(replay.body.error).toBe('invalid_grant');
  });

  it("answers invalid_grant when another application polls the request", async () => {
    const authReqId = authReqIdOf(await bcAuthorize(running.issuer, { binding_message: 'mine only' }));
    const poll = await pollToken(running.issuer, authReqId, HR_AGENT_PING);
    expect(poll.status).toBe(400);
    expect(poll.body.error).toBe('invalid_grant');
    expect(running.tenant.requests.list().find((r) => r.binding_message === 'mine only')?.polls).toBe(0);
  });

  it('answers unknown_user_id for a user the tenant does not have', async () => {
    const response = await bcAuthorize(running.issuer, { login_hint: loginHint(running.issuer, 'auth0|nobody') });
    expect(response.status).toBe(400);
    expect(response.body.error).toBe('unknown_user_id');
  });

  it('answers invalid_request for a user not enrolled for push', async () => {
    const response = await bcAuthorize(running.issuer, { login_hint: loginHint(running.issuer, 'auth0|npark') });
    expect(response.status).toBe(400);
    expect(response.body).toEqual({
      error: 'invalid_request',
      error_description: 'The user is not enrolled for push notifications (Guardian)',
    });
  });

  it('answers invalid_request for a login_hint of another issuer or format', async () => {
    for (const hint of [
      JSON.stringify({ format: 'iss_sub', iss: 'https://other.example/', sub: 'auth0|jdoe' }),
      JSON.stringify({ format: 'email', email: 'jdoe@staff0.com' }),
      'auth0|jdoe',
      '[]',
    ]) {
      const response = await bcAuthorize(running.issuer, { login_hint: hint });
      expect(response.status).toBe(400);
      expect(response.body.error).toBe('invalid_request');
    }
  });

  it('refuses a missing, too long or markup binding message', async () => {
    const missing = await bcAuthorize(running.issuer, { binding_message: undefined });
    expect(missing.body.error).toBe('invalid_request');
    for (const message of ['x'.repeat(65), '<b>hi</b>', 'quote"s', 'new\nline']) {
      const response = await bcAuthorize(running.issuer, { binding_message: message });
      expect(response.status).toBe(400);
      expect(response.body.error).toBe('invalid_binding_message');
    }
    const longest = await bcAuthorize(running.issuer, { binding_message: `${'A'.repeat(50)} +-_.,:#09az` });
    expect(longest.status).toBe(200);
  });

  it('refuses requested_expiry outside 1–259200 seconds', async () => {
    for (const expiry of ['0', '259201', 'abc', '-5', '1.5', '1e2']) {
      const response = await bcAuthorize(running.issuer, { requested_expiry: expiry });
      expect(response.status).toBe(400);
      expect(response.body.error).toBe('invalid_request');
    }
    const max = await bcAuthorize(running.issuer, { requested_expiry: '300' });
    expect(max.body.expires_in).toBe(300);
  });

  it('requires the openid scope', async () => {
    const response = await bcAuthorize(running.issuer, { scope: 'read:employee' });
    expect(response.status).toBe(400);
    expect(response.body.error).toBe('invalid_request');
  });

  it('refuses an audience the application may not use for CIBA', async () => {
    const response = await bcAuthorize(running.issuer, { audience: 'https://staff0/agent' });
    expect(response.status).toBe(403);
    expect(response.body.error).toBe('access_denied');
  });

  it('answers invalid_client to a wrong secret', async () => {
    const response = await bcAuthorize(running.issuer, {}, { clientId: HR_AGENT.clientId, clientSecret: 'wrong-wrong-wrong' });
    expect(response.status).toBe(401);
    expect(response.body.error).toBe('invalid_client');
  });
});

describe('CIBA tenant settings', () => {
  it("answers CIBA's expired_token on expiry with expiryError 'expired_token'", async () => {
    const running = await startTenant({ settings: { expiryError: 'expired_token' } });
    try {
      const authReqId = authReqIdOf(await bcAuthorize(running.issuer, { requested_expiry: '1' }));
      const [request] = running.tenant.requests.list();
      await vi.waitFor(() => expect(running.tenant.requests.get(request?.id ?? '')?.status).toBe('expired'), { timeout: 5000, interval: 50 });
      const poll = await pollToken(running.issuer, authReqId);
      expect(poll.body.error).toBe('expired_token');
    } finally {
      await running.tenant.close();
    }
  });

  it('refuses more than the per-user limit per minute with 429 too_many_requests', async () => {
    let now = Date.parse('2030-01-01T00:00:00Z');
    const running = await startTenant({ settings: { cibaRateLimitPerUserPerMinute: 5 }, rateLimitClock: () => now });
    try {
      for (let i = 0; i < 5; i += 1) expect((await bcAuthorize(running.issuer)).status).toBe(200);
      const refused = await bcAuthorize(running.issuer);
      expect(refused.status).toBe(429);
      expect(refused.body.error).toBe('too_many_requests');
      expect(refused.headers.get('retry-after')).toBe('60');
      expect((await bcAuthorize(running.issuer, { login_hint: loginHint(running.issuer, 'auth0|jsmith') })).status).toBe(200);
      now += 60_001;
      expect((await bcAuthorize(running.issuer)).status).toBe(200);
    } finally {
      await running.tenant.close();
    }
  });

  it("refuses /bc-authorize beyond the per-IP limit (Auth0: 500 a minute) with 429, whoever the users are", async () => {
    const running = await startTenant({ settings: { cibaRateLimitPerIpPerMinute: 3 } });
    try {
      for (const user of ['auth0|jdoe', 'auth0|jsmith', 'auth0|blee']) {
        expect((await bcAuthorize(running.issuer, { login_hint: loginHint(running.issuer, user) })).status).toBe(200);
      }
      const refused = await bcAuthorize(running.issuer, { login_hint: loginHint(running.issuer, 'auth0|akhan') });
      expect(refused.status).toBe(429);
      expect(refused.body.error).toBe('too_many_requests');
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    } finally {
      await running.tenant.close();
    }
  });

  it("applies a user's automatic policy from the tenant file", async () => {
    const { loadTenantFile } = await import('../tenant-file.ts');
    const file = loadTenantFile();
    const users = file.users.map((u) =>
      u.user_id === 'auth0|jdoe' ? { ...u, guardian: { push: true, policy: { action: 'deny' as const, afterMs: 10 } } } : u,
    );
    const running = await startTenant({ tenantFile: { ...file, users } });
    try {
      const authReqId = authReqIdOf(await bcAuthorize(running.issuer));
      await vi.waitFor(() => expect(running.tenant.requests.list()[0]?.status).toBe('denied'), { timeout: 2000, interval: 20 });
      const poll = await pollToken(running.issuer, authReqId);
      expect(poll.body.error).toBe('access_denied');
    } finally {
      await running.tenant.close();
    }
  });
});
