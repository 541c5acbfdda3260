import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { initiateBackchannelAuthentication } from 'openid-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { bcAuthorize, HR_AGENT_PING, loginHint, pollToken, relyingParty, startTenant, type RunningTenant } from './relying-party.ts';

interface Notification {
  authorization: string | undefined;
  contentType: string | undefined;
  body: unknown;
}

/** Serves `app` on loopback as the tenant's ping application (its HR_AGENT_URL); resolves to that URL and the server. */
async function servePingApplication(running: RunningTenant, app: express.Express): Promise<{ url: string; server: Server }> {
  const server = await new Promise<Server>((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  running.tenant.setVariable('HR_AGENT_URL', url);
  return { url, server };
}

/** A ping application's CIBA request with `token`, approved on the tenant: its auth_req_id and the decision. */
async function askAndApprove(running: RunningTenant, token: string): Promise<{ authReqId: unknown; status: string }> {
  const asked = await bcAuthorize(running.issuer, { client_notification_token: token }, HR_AGENT_PING);
  const [request] = running.tenant.requests.list({ status: 'pending' });
  const decided = await running.tenant.requests.decide(request?.id ?? '', 'approve');
  return { authReqId: asked.body.auth_req_id, status: decided.status };
}

describe('CIBA ping delivery (CIBA §10.2)', () => {
  let running: RunningTenant;
  let receiver: Server;
  const notifications: Notification[] = [];

  beforeAll(async () => {
    // The agent's URL is only known once it listens, as in the sandbox's tests.
    running = await startTenant();
    const app = express();
    app.post('/ciba/notify', express.json(), (req, res) => {
      notifications.push({ authorization: req.headers.authorization, contentType: req.headers['content-type'], body: req.body });
      res.status(204).end();
    });
    receiver = (await servePingApplication(running, app)).server;
  });
  afterAll(async () => {
    await running.tenant.close();
    await new Promise((resolve) => receiver.close(resolve));
  });

  it('requires a client_notification_token from a ping application', async () => {
    const response = await bcAuthorize(running.issuer, {}, HR_AGENT_PING);
    expect(response.status).toBe(400);
    expect(response.body.error).toBe('invalid_request');
    const malformed = await bcAuthorize(running.issuer, { client_notification_token: 'has spaces in it' }, HR_AGENT_PING);
    expect(malformed.body.error).toBe('invalid_request');
  });

  it('notifies the registered endpoint with the bearer token, then the client fetches the token', async () => {
    const config = await relyingParty(running.issuer, HR_AGENT_PING);
    const started = await initiateBackchannelAuthentication(config, {
      scope: 'openid read:employee',
      audience: 'https://staff0/api',
      login_hint: loginHint(running.issuer, 'auth0|jdoe'),
      binding_message: 'Ping me',
      client_notification_token: 'notify-token-123',
    });
    const [request] = running.tenant.requests.list({ status: 'pending' });
    expect(notifications).toHaveLength(0);
    await running.tenant.requests.decide(request?.id ?? '', 'approve');

    await vi.waitFor(() => expect(notifications).toHaveLength(1), { timeout: 2000, interval: 20 });
    expect(notifications[0]).toEqual({
      authorization: 'Bearer notify-token-123',
      contentType: 'application/json',
      body: { auth_req_id: started.auth_req_id },
    });
    const token = await pollToken(running.issuer, started.auth_req_id, HR_AGENT_PING);
    expect(token.status).toBe(200);
    expect(typeof token.body.access_token).toBe('string');
  });

  it('notifies on denial too, and the token endpoint answers access_denied', async () => {
    notifications.length = 0;
    const response = await bcAuthorize(running.issuer, { client_notification_token: 'deny-token' }, HR_AGENT_PING);
    const [request] = running.tenant.requests.list({ status: 'pending' });
    await running.tenant.requests.decide(request?.id ?? '', 'deny');
    await vi.waitFor(() => expect(notifications).toHaveLength(1), { timeout: 2000, interval: 20 });
    expect(notifications[0]?.authorization).toBe('Bearer deny-token');
    const poll = await pollToken(running.issuer, response.body.auth_req_id as string, HR_AGENT_PING);
    expect(poll.body.error).toBe('access_denied');
  });

  it("notifies when a request expires, and the token endpoint answers Auth0's access_denied", async () => {
    notifications.length = 0;
    const response = await bcAuthorize(running.issuer, { client_notification_token: 'late-token', requested_expiry: '1' }, HR_AGENT_PING);
    await vi.waitFor(() => expect(notifications).toHaveLength(1), { timeout: 3000, interval: 20 });
    expect(notifications[0]?.authorization).toBe('Bearer late-token');
    const poll = await pollToken(running.issuer, response.body.auth_req_id as string, HR_AGENT_PING);
    expect(poll.body.error).toBe('access_denied');
  });

  it('says a ping with no answer in time may still be received, not that it failed', async () => {
    const slow = await startTenant({ pingTimeoutMs: 200 });
    const held: express.Response[] = [];
    const received: unknown[] = [];
    const app = express();
    app.post('/ciba/notify', express.json(), (req, res) => {
      received.push(req.body);
      held.push(res);
    });
    const { url, server: busy } = await servePingApplication(slow, app);
    try {
      const { authReqId } = await askAndApprove(slow, 'held-token');
      await vi.waitFor(() => expect(slow.warnings).toContain(`ciba ping to ${url}/ciba/notify got no answer within 200 ms; the application may still receive it`), {
        timeout: 5000,
        interval: 20,
      });
      expect(slow.warnings.join('\n')).not.toContain('failed');
      expect(slow.warnings.join('\n')).not.toContain('held-token');
      expect(received).toEqual([{ auth_req_id: authReqId }]);
    } finally {
      for (const res of held) res.status(204).end();
      await slow.tenant.close();
      await new Promise((resolve) => busy.close(resolve));
    }
  });

  it('does not follow a redirect from the notification endpoint', async () => {
    const redirecting = await startTenant();
    const hits: string[] = [];
    const app = express();
    app.post('/ciba/notify', (_req, res) => {
      hits.push('notify');
      res.redirect(307, '/elsewhere');
    });
    app.all('/elsewhere', (_req, res) => {
      hits.push('elsewhere');
      res.status(204).end();
    });
    const { url, server } = await servePingApplication(redirecting, app);
    try {
      await askAndApprove(redirecting, 'redirect-token');
      await vi.waitFor(() => expect(redirecting.warnings).toContain(`ciba ping to ${url}/ciba/notify answered HTTP 307 (expected 204)`), {
        timeout: 5000,
        interval: 20,
      });
      expect(hits).toEqual(['notify']);
    } finally {
      await redirecting.tenant.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('logs, and keeps serving, when the endpoint cannot be reached', async () => {
    running.tenant.setVariable('HR_AGENT_URL', 'http://127.0.0.1:9');
    const decided = await askAndApprove(running, 'lost-token');
    expect(decided.status).toBe('approved');
    await vi.waitFor(() => expect(running.warnings.some((w) => w.includes('ciba ping to http://127.0.0.1:9/ciba/notify failed'))).toBe(true), {
      timeout: 3000,
      interval: 20,
    });
    expect(running.warnings.join('\n')).not.toContain('lost-token');
    expect((await fetch(new URL('health', running.issuer))).status).toBe(200);
  });
});
