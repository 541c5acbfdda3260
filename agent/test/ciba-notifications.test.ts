import { createServer, type Server } from 'node:http';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
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
    waiter.bind('req-1', 60_000);
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
    waiter.bind('req-2', 60_000);
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

describe('checks that the backend still knows the requests (CIBA §10)', () => {
  it('calls on one waiting request per interval, each in turn', async () => {
    const checks = createPingNotifications({ random: () => 0 });
    const waiters = ['a', 'b', 'c'].map((id) => {
      const waiter = checks.register();
      waiter.bind(id, 20);
      return { id, waiter };
    });
    const order: string[] = [];
    const controller = new AbortController();
    // Each waiter waits again right after its check, as the CIBA wait loop does after `authorization_pending`.
    const loops = waiters.map(async ({ id, waiter }) => {
      while (order.length < 6) {
        await waiter.next(controller.signal);
        order.push(id);
      }
    });
    await Promise.race(loops);
    await vi.waitFor(() => expect(order.length).toBeGreaterThanOrEqual(6), { timeout: 10_000 });
    controller.abort(new Error('done'));
    await Promise.allSettled(loops);
    checks.close();
    expect(order.slice(0, 6)).toEqual(['a', 'b', 'c', 'a', 'b', 'c']);
  });

  it('makes every other waiting request check at once when one was lost', async () => {
    const checks = createPingNotifications();
    const [lost, ...others] = ['a', 'b', 'c'].map((id) => {
      const waiter = checks.register();
      waiter.bind(id, 60_000);
      return waiter;
    });
    const controller = new AbortController();
    const woken = others.map((waiter) => waiter!.next(controller.signal));
    let lostWoken = false;
    void lost!.next(controller.signal).then(() => (lostWoken = true), () => undefined);
    lost!.reportLost();
    await expect(Promise.all(woken)).resolves.toEqual([undefined, undefined]);
    expect(lostWoken).toBe(false);
    controller.abort(new Error('done'));
    checks.close();
  });
});
