import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConsentRequestView } from '../consent-requests.ts';
import { bcAuthorize, control, loginHint, startTenant, type RunningTenant } from './relying-party.ts';

describe('control API', () => {
  let running: RunningTenant;
  beforeAll(async () => {
    running = await startTenant();
  });
  afterAll(() => running.tenant.close());

  const newRequest = async (userId: string, bindingMessage: string): Promise<ConsentRequestView> => {
    const response = await bcAuthorize(running.issuer, { login_hint: loginHint(running.issuer, userId), binding_message: bindingMessage });
    expect(response.status).toBe(200);
    const found = running.tenant.requests.list({ userId }).find((r) => r.binding_message === bindingMessage);
    if (!found) throw new Error('request not registered');
    return found;
  };

  it('lists users with their push enrolment and nothing else', async () => {
    const { status, body } = await control(running.issuer, '/users');
    expect(status).toBe(200);
    const users = (body as { users: Record<string, unknown>[] }).users;
    expect(users).toContainEqual({ user_id: 'auth0|jdoe', name: 'John Doe', email: 'jdoe@staff0.com', push_enrolled: true });
    expect(users).toContainEqual({ user_id: 'auth0|npark', name: 'Nina Park', email: 'npark@staff0.com', push_enrolled: false });
  });

  it('lists requests by user and status, newest first', async () => {
    const first = await newRequest('auth0|blee', 'first one');
    const second = await newRequest('auth0|blee', 'second one');
    await control(running.issuer, `/requests/${first.id}/approve`, { method: 'POST' });
    const all = await control(running.issuer, `/requests?user_id=${encodeURIComponent('auth0|blee')}`);
    expect((all.body as { requests: ConsentRequestView[] }).requests.map((r) => r.id)).toEqual([second.id, first.id]);
    const pending = await control(running.issuer, `/requests?user_id=${encodeURIComponent('auth0|blee')}&status=pending`);
    expect((pending.body as { requests: ConsentRequestView[] }).requests.map((r) => r.id)).toEqual([second.id]);
    const one = await control(running.issuer, `/requests/${first.id}`);
    expect(one.body).toMatchObject({ id: first.id, status: 'approved', decided_at: expect.any(String) });
  });

  it('answers 400 to a bad status filter and 404 to an unknown id', async () => {
    expect((await control(running.issuer, '/requests?status=maybe')).status).toBe(400);
    expect((await control(running.issuer, '/requests?status=pending&status=denied')).status).toBe(400);
    expect((await control(running.issuer, '/requests/does-not-exist')).status).toBe(404);
    const unknown = await control(running.issuer, '/requests/does-not-exist/approve', { method: 'POST' });
    expect(unknown.status).toBe(404);
    expect((await control(running.issuer, '/requests/x/launch', { method: 'POST' })).status).toBe(404);
  });

  it('answers 409 already_decided to a second decision and 409 expired after expiry', async () => {
    const request = await newRequest('auth0|akhan', 'decide twice');
    const [a, b] = await Promise.all([
      control(running.issuer, `/requests/${request.id}/approve`, { method: 'POST' }),
      control(running.issuer, `/requests/${request.id}/deny`, { method: 'POST' }),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    const again = await control(running.issuer, `/requests/${request.id}/deny`, { method: 'POST' });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ error: 'already_decided' });

    const expiring = await newRequest('auth0|akhan', 'expire then approve');
    expect((await control(running.issuer, `/requests/${expiring.id}/expire`, { method: 'POST' })).status).toBe(200);
    const late = await control(running.issuer, `/requests/${expiring.id}/approve`, { method: 'POST' });
    expect(late.status).toBe(409);
    expect(late.body).toMatchObject({ error: 'expired', error_description: expect.any(String) });
  });

  it('refuses decisions that are not JSON with 415, and cross-origin ones with 403', async () => {
    const request = await newRequest('auth0|jsmith', 'csrf target');
    const form = await fetch(new URL(`control/requests/${request.id}/approve`, running.issuer), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'x=1',
    });
    expect(form.status).toBe(415);
    const plain = await fetch(new URL(`control/requests/${request.id}/approve`, running.issuer), { method: 'POST' });
    expect(plain.status).toBe(415);
    const crossSite = await control(running.issuer, `/requests/${request.id}/approve`, {
      method: 'POST',
      headers: { origin: 'https://evil.example' },
    });
    expect(crossSite.status).toBe(403);
    expect(crossSite.headers.get('access-control-allow-origin')).toBeNull();
    expect(running.tenant.requests.get(request.id)?.status).toBe('pending');

    const sameSite = await control(running.issuer, `/requests/${request.id}/approve`, {
      method: 'POST',
      headers: { origin: new URL(running.issuer).origin },
    });
    expect(sameSite.status).toBe(200);
  });

  it('answers 400 to malformed JSON without changing anything', async () => {
    const request = await newRequest('auth0|jsmith', 'bad json');
    const response = await control(running.issuer, `/requests/${request.id}/approve`, { method: 'POST', body: '{"oops' });
    expect(response.status).toBe(400);
    expect(running.tenant.requests.get(request.id)?.status).toBe('pending');
  });

  it('streams created and changed requests for a user as Server-Sent Events', async () => {
    const abort = new AbortController();
    const response = await fetch(new URL(`control/events?user_id=${encodeURIComponent('auth0|mgarcia')}`, running.issuer), {
      signal: abort.signal,
    });
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    const nextEvent = async (): Promise<ConsentRequestView> => {
      for (;;) {
        const match = /event: request\ndata: (.*)\n\n/.exec(text);
        if (match) {
          text = text.slice((match.index ?? 0) + match[0].length);
          return JSON.parse(match[1] ?? '') as ConsentRequestView;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error('stream ended');
        text += value;
      }
    };
    await bcAuthorize(running.issuer, { login_hint: loginHint(running.issuer, 'auth0|jdoe'), binding_message: 'not for mgarcia' });
    await bcAuthorize(running.issuer, { login_hint: loginHint(running.issuer, 'auth0|mgarcia'), binding_message: 'for mgarcia' });
    const created = await nextEvent();
    expect(created).toMatchObject({ user_id: 'auth0|mgarcia', binding_message: 'for mgarcia', status: 'pending' });
    // Maria's tenant-file policy approves after 1.5 s.
    const changed = await nextEvent();
    expect(changed).toMatchObject({ id: created.id, status: 'approved' });
    abort.abort();
  });
});
