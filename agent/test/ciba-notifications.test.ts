import { createServer, type Server } from 'node:http';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPingNotifications, type PingNotifications } from '../ciba-notifications.ts';
import { listenLocal } from '../../sandbox/http-listener.ts';

let notifications: PingNotifications;
let server: Server;
let url: string;

beforeAll(async () => {
  notifications = createPingNotifications();
  const app = express();
  app.post('/ciba/notify', express.json(), (req, res) => notifications.handle(req, res));
  server = createServer(app);
  url = `${await listenLocal(server)}/ciba/notify`;
});

afterAll(async () => {
  notifications.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const notify = (token: string | undefined, authReqId: string) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ auth_req_id: authReqId }),
  });

describe('CIBA ping notifications (CIBA §10.2)', () => {
  it('wakes the waiter of the matching token and answers 204', async () => {
    const waiter = notifications.register();
    waiter.bind('req-1');
    const woken = waiter.next(new AbortController().signal);
    const response = await notify(waiter.token, 'req-1');
    expect(response.status).toBe(204);
    await expect(woken).resolves.toBeUndefined();
    waiter.release();
  });

  it('keeps a notification that arrives before anyone waits', async () => {
    const waiter = notifications.register();
    expect((await notify(waiter.token, 'req-early')).status).toBe(204);
    await expect(waiter.next(new AbortController().signal)).resolves.toBeUndefined();
    waiter.release();
  });

  it('answers the same 401 for no token, an unknown token, and a token sent for another request', async () => {
    const waiter = notifications.register();
    waiter.bind('req-2');
    const answers = await Promise.all([notify(undefined, 'req-2'), notify('guess', 'req-2'), notify(waiter.token, 'req-other')]);
    for (const response of answers) {
      expect(response.status).toBe(401);
      expect(await response.json()).toEqual({ error: 'invalid_token' });
    }
    waiter.release();
  });

  it('forgets a released token', async () => {
    const waiter = notifications.register();
    waiter.release();
    expect((await notify(waiter.token, 'x')).status).toBe(401);
  });

  it('stops waiting when the signal aborts', async () => {
    const waiter = notifications.register();
    const controller = new AbortController();
    const waiting = waiter.next(controller.signal);
    controller.abort(new Error('canceled'));
    await expect(waiting).rejects.toThrow('canceled');
    waiter.release();
  });
});
