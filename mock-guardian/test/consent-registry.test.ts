import { describe, expect, it } from 'vitest';
import { createConsentRegistry, type ConsentLedger } from '../consent-requests.ts';

/** The registry's order of things around a decision: stored, then announced, and no poll answered before it is stored. */

/** A ledger whose unit of work is committed only when the test says so. */
function heldLedger() {
  let release!: () => void;
  const committed = new Promise<void>((resolve) => (release = resolve));
  const ledger: ConsentLedger = {
    save: async () => {},
    forget: async () => {},
    together: async (work) => {
      const result = await work();
      await committed;
      return result;
    },
  };
  return { ledger, release };
}

/** Lets every callback already due run: a promise that could settle without the held commit has settled after this. */
const drain = async () => {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
};

describe('the consent registry', () => {
  it("answers a poll of a decided request, and pings the application, only once the decision's commit is done", async () => {
    const { ledger, release } = heldLedger();
    const events: string[] = [];
    const registry = createConsentRegistry({
      interval: 5,
      ledger,
      settle: async (_record, outcome) => {
        events.push(`settled ${outcome}`);
      },
      announce: (_record, outcome) => events.push(`announced ${outcome}`),
    });
    const now = Date.now();
    const view = await registry.create({
      authReqId: 'auth-req-1',
      user: { user_id: 'auth0|jdoe', name: 'John Doe', email: 'jdoe@staff0.com' },
      client: { client_id: 'hr-agent', name: 'HR Agent' },
      bindingMessage: 'Check jdoe',
      scopes: ['openid'],
      audience: null,
      apiName: null,
      createdAt: now,
      expiresAt: now + 300_000,
    });

    const decided = registry.decide(view.id, 'approve');
    await drain();
    expect(events).toEqual(['settled approved']);
    let answered = false;
    const poll = registry.recordPoll('auth-req-1', 'hr-agent', false).then((verdict) => {
      answered = true;
      return verdict;
    });
    await drain();
    expect(answered, 'the poll waits for the commit').toBe(false);
    expect(registry.get(view.id)?.polls).toBe(0);

    release();
    expect((await decided).status).toBe('approved');
    expect(await poll).toMatchObject({ slowDown: false });
    expect(registry.get(view.id)?.polls).toBe(1);
    expect(events).toEqual(['settled approved', 'announced approved']);
    await registry.close();
  });
});
