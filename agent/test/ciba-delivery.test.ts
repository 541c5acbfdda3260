import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect } from './a2a-caller.ts';
import { ask, employee, question, startLocalSandbox, type LocalSandbox } from './local-sandbox.ts';

/**
 * How the agent learns the employee's answer: CIBA ping delivery (the tenant
 * calls the agent back, CIBA §10.2) and the agent's own `requested_expiry`.
 */

let ping: LocalSandbox;
let shortExpiry: LocalSandbox;

beforeAll(async () => {
  [ping, shortExpiry] = await Promise.all([
    // A five-second poll interval: a poll-mode agent could not answer sooner than that.
    startLocalSandbox({ tenantSettings: { cibaInterval: 5 }, ciba: { deliveryMode: 'ping', requestedExpiry: 3 } }),
    startLocalSandbox({ ciba: { deliveryMode: 'poll', requestedExpiry: 2 } }),
  ]);
});

afterAll(async () => {
  await Promise.all([ping?.close(), shortExpiry?.close()]);
});

describe('ping delivery', () => {
  it('finishes right after approval, well inside one poll interval, with a single token request', async () => {
    let approvedAt = 0;
    const run = await collect(ask(ping, question('jdoe@staff0.com')), async (state) => {
      if (state !== 'AUTH_REQUIRED') return;
      const request = await ping.pendingRequestFor('auth0|jdoe');
      approvedAt = Date.now();
      await ping.decide(request.id, 'approve');
    });
    expect(run.events).toEqual(['task', 'WORKING', 'AUTH_REQUIRED', 'WORKING', 'artifact', 'COMPLETED']);
    expect(run.artifactText).toBe('Yes, John Doe is an active employee of Staff0.');
    // Functional check of the ping path with a wide margin: polling would need the full 5 s interval.
    expect((run.times.at(-1) ?? Infinity) - approvedAt).toBeLessThan(2500);
    const [request] = (await ping.consentRequests({ userId: 'auth0|jdoe' })).slice(-1);
    expect(request?.polls).toBe(1);
  });

  it('ends REJECTED on a denial delivered by ping', async () => {
    const run = await collect(ask(ping, question('jsmith@staff0.com')), employee(ping, 'auth0|jsmith', 'deny'));
    expect(run.events).toEqual(['task', 'WORKING', 'AUTH_REQUIRED', 'REJECTED']);
    expect(run.finalText).toBe('The employee denied the request.');
  });

  it('ends FAILED when a ping-mode request expires unanswered', async () => {
    const run = await collect(ask(ping, question('blee@staff0.com')));
    expect(run.events).toEqual(['task', 'WORKING', 'AUTH_REQUIRED', 'FAILED']);
    expect(run.finalText).toBe('The approval request timed out before the employee answered.');
  });
});

describe('requested_expiry', () => {
  it('asks the tenant for the configured lifetime and ends FAILED, timed out, when nobody answers', async () => {
    const run = await collect(ask(shortExpiry, question('jdoe@staff0.com')));
    expect(run.events).toEqual(['task', 'WORKING', 'AUTH_REQUIRED', 'FAILED']);
    expect(run.finalText).toBe('The approval request timed out before the employee answered.');
    const [request] = await shortExpiry.consentRequests({ userId: 'auth0|jdoe' });
    expect(request?.status).toBe('expired');
    expect(Date.parse(request?.expires_at ?? '') - Date.parse(request?.created_at ?? '')).toBeLessThanOrEqual(2000);
  });
});
