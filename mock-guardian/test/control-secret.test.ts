import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bcAuthorize, control, loginHint, startTenant, type RunningTenant } from './relying-party.ts';

/** An exposed tenant: whoever can reach it but has not seen the banner's secret cannot read or decide consents. */

const SECRET = 'exposed-sandbox-secret-0123456789abcdefghij';

describe('control API with a control secret', () => {
  let running: RunningTenant;
  beforeAll(async () => {
    running = await startTenant({ controlSecret: SECRET });
  });
  afterAll(() => running.tenant.close());

  const pendingFor = async (userId: string) => {
    const response = await bcAuthorize(running.issuer, { login_hint: loginHint(running.issuer, userId), binding_message: 'Exposed check' });
    expect(response.status).toBe(200);
    const found = running.tenant.requests.list({ userId, status: 'pending' })[0];
    if (!found) throw new Error('request not registered');
    return found;
  };

  it('refuses every call without the secret with 403 control_secret_required', async () => {
    const request = await pendingFor('auth0|jdoe');
    for (const [path, method] of [
      ['/users', 'GET'],
      ['/requests', 'GET'],
      [`/requests/${request.id}`, 'GET'],
      [`/requests/${request.id}/approve`, 'POST'],
      ['/events?user_id=auth0%7Cjdoe', 'GET'],
    ] as const) {
      const answer = await control(running.issuer, path, { method });
      expect(answer.status, path).toBe(403);
      expect(answer.body, path).toMatchObject({ error: 'control_secret_required' });
    }
    const wrong = await control(running.issuer, '/users', { headers: { 'x-control-secret': `${SECRET}x` } });
    expect(wrong.status).toBe(403);
    expect(running.tenant.requests.get(request.id)?.status).toBe('pending');
  });

  it('answers with the secret in X-Control-Secret, and the event stream with ?secret=', async () => {
    const request = await pendingFor('auth0|akhan');
    const headers = { 'x-control-secret': SECRET };
    expect((await control(running.issuer, '/users', { headers })).status).toBe(200);
    const decided = await control(running.issuer, `/requests/${request.id}/approve`, { method: 'POST', headers });
    expect(decided.status).toBe(200);
    expect(decided.body).toMatchObject({ status: 'approved' });

    const stream = await fetch(new URL(`control/events?user_id=auth0%7Cakhan&secret=${SECRET}`, running.issuer));
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    await stream.body?.cancel();
    // Only the stream takes the secret in its URL.
    expect((await control(running.issuer, `/users?secret=${SECRET}`)).status).toBe(403);
  });
});
