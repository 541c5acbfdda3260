import { randomUUID } from 'node:crypto';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConsentRequestView } from '../consent-requests.ts';
import { createTenant, type TenantHandle } from '../tenant.ts';
import { createTenantState } from '../tenant-state.ts';
import { openDatabase, type Database } from '../../sandbox/storage/database.ts';
import { waitUntil } from '../../sandbox/test/processes.ts';
import { startPostgresServer, type PostgresServer } from '../../sandbox/test/postgres-server.ts';
import { bcAuthorize, CIBA_GRANT, HR_AGENT, loginHint, postForm } from './relying-party.ts';

/** The tenant on a database: what it stores, and that a new tenant on the same database carries on. */

let postgres: PostgresServer;
let pglite: Database;
let onPostgres: Database;
beforeAll(async () => {
  postgres = await startPostgresServer();
  [pglite, onPostgres] = await Promise.all([
    openDatabase({ kind: 'pglite', dataDir: undefined }),
    postgres.createDatabase().then((url) => openDatabase({ kind: 'postgres', url })),
  ]);
}, 90_000);
afterAll(async () => {
  await Promise.all([pglite?.close(), onPostgres?.close()]);
  await postgres?.stop();
});

const STORES = [
  { name: 'PGlite', database: () => pglite },
  { name: 'PostgreSQL', database: () => onPostgres },
];

async function startOn(database: Database, port = 0): Promise<{ tenant: TenantHandle; issuer: string }> {
  const tenant = createTenant({
    database: Promise.resolve(database),
    settings: { cibaInterval: 1, cibaRateLimitPerUserPerMinute: 0 },
    log: () => {},
  });
  const issuer = await tenant.listen(port, '127.0.0.1');
  await tenant.ready;
  return { tenant, issuer };
}

async function requests(issuer: string): Promise<ConsentRequestView[]> {
  const response = await fetch(new URL('control/requests', issuer));
  return ((await response.json()) as { requests: ConsentRequestView[] }).requests;
}

async function decide(issuer: string, id: string, decision: 'approve' | 'deny'): Promise<number> {
  const response = await fetch(new URL(`control/requests/${id}/${decision}`, issuer), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}',
  });
  await response.body?.cancel();
  return response.status;
}

function poll(issuer: string, authReqId: string) {
  return postForm(issuer, '/oauth/token', {
    grant_type: CIBA_GRANT,
    auth_req_id: authReqId,
    client_id: HR_AGENT.clientId,
    client_secret: HR_AGENT.clientSecret,
  });
}

async function ask(issuer: string, userId: string, overrides: Record<string, string> = {}): Promise<string> {
  const response = await bcAuthorize(issuer, { login_hint: loginHint(issuer, userId), binding_message: `Check ${userId.slice(6)}`, ...overrides });
  expect(response.status).toBe(200);
  return String(response.body.auth_req_id);
}

describe('the tenant while its database opens', () => {
  it('listens at once, says so on /health, and answers state requests once the database is there', async () => {
    let open!: (database: Database) => void;
    const tenant = createTenant({ database: new Promise<Database>((resolve) => (open = resolve)), log: () => {} });
    const issuer = await tenant.listen(0, '127.0.0.1');
    try {
      expect(await (await fetch(new URL('health', issuer))).json()).toEqual({ ok: true, state: 'opening' });
      expect((await fetch(new URL('.well-known/openid-configuration', issuer))).status).toBe(200);
      let answered = false;
      const listed = requests(issuer).then((list) => {
        answered = true;
        return list;
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(answered, 'waits for the database').toBe(false);
      open(onPostgres);
      expect(Array.isArray(await listed)).toBe(true);
      await tenant.ready;
      expect(await (await fetch(new URL('health', issuer))).json()).toEqual({ ok: true, state: 'ready' });
    } finally {
      await tenant.close();
    }
  });

  it('answers 503 when the database cannot be opened, and says why through `ready`', async () => {
    const failing = Promise.reject(new Error('no database here'));
    const tenant = createTenant({ database: failing, log: () => {} });
    const issuer = await tenant.listen(0, '127.0.0.1');
    try {
      await expect(tenant.ready).rejects.toThrow('no database here');
      const response = await fetch(new URL('control/requests', issuer));
      expect(response.status).toBe(503);
      expect(await response.json()).toMatchObject({ error: 'temporarily_unavailable' });
      expect(await (await fetch(new URL('health', issuer))).json()).toEqual({ ok: true, state: 'failed' });
    } finally {
      await tenant.close();
    }
  });
});

describe.each(STORES)('the tenant on $name', ({ database }) => {
  it('keeps pending requests, decisions and poll counts when it restarts, and approving them afterwards issues tokens', async () => {
    const first = await startOn(database());
    const jdoe = await ask(first.issuer, 'auth0|jdoe');
    const jsmith = await ask(first.issuer, 'auth0|jsmith');
    const akhan = await ask(first.issuer, 'auth0|akhan');
    const before = await requests(first.issuer);
    const idOf = (userId: string, list: ConsentRequestView[]) => list.find((r) => r.user_id === userId && r.binding_message === `Check ${userId.slice(6)}`)!.id;
    expect(await decide(first.issuer, idOf('auth0|jsmith', before), 'approve')).toBe(200);
    expect((await poll(first.issuer, akhan)).body.error).toBe('authorization_pending');
    await first.tenant.close();

    const second = await startOn(database(), Number(new URL(first.issuer).port));
    expect(second.issuer).toBe(first.issuer);
    const after = await requests(second.issuer);
    const mine = (userId: string) => after.find((r) => r.id === idOf(userId, before))!;
    expect(mine('auth0|jdoe').status).toBe('pending');
    expect(mine('auth0|jsmith').status).toBe('approved');
    expect(mine('auth0|akhan')).toMatchObject({ status: 'pending', polls: 1 });
    expect(await decide(second.issuer, mine('auth0|jsmith').id, 'approve')).toBe(409);

    expect(await decide(second.issuer, mine('auth0|jdoe').id, 'approve')).toBe(200);
    expect(await decide(second.issuer, mine('auth0|akhan').id, 'approve')).toBe(200);
    for (const [authReqId, sub] of [
      [jdoe, 'auth0|jdoe'],
      [jsmith, 'auth0|jsmith'],
      [akhan, 'auth0|akhan'],
    ] as const) {
      const token = await poll(second.issuer, authReqId);
      expect(token.status, JSON.stringify(token.body)).toBe(200);
      expect(decodeJwt(String(token.body.access_token))).toMatchObject({ sub, aud: 'https://staff0/api' });
    }
    expect((await requests(second.issuer)).find((r) => r.id === mine('auth0|akhan').id)?.polls).toBe(2);
    await second.tenant.close();
  }, 60_000);

  it('expires a request whose time ran out while it was down, and answers the automatic policy on time after a restart', async () => {
    const first = await startOn(database());
    const shortLived = await ask(first.issuer, 'auth0|jdoe', { requested_expiry: '1', binding_message: 'Short lived' });
    const automatic = await ask(first.issuer, 'auth0|mgarcia', { binding_message: 'Automatic' });
    const listed = await requests(first.issuer);
    const expiresAt = Date.parse(listed.find((r) => r.binding_message === 'Short lived')!.expires_at);
    await first.tenant.close();
    await waitUntil(async () => (Date.now() > expiresAt ? true : undefined));

    const second = await startOn(database(), Number(new URL(first.issuer).port));
    const byMessage = async (message: string) => (await requests(second.issuer)).find((r) => r.binding_message === message);
    expect((await byMessage('Short lived'))?.status).toBe('expired');
    // Expired on time while the tenant was down: Auth0's answer for a lapsed request.
    expect((await poll(second.issuer, shortLived)).body.error).toBe('access_denied');
    // mgarcia's tenant-file policy approves 1.5 s after the request was made, restart or not.
    await waitUntil(async () => ((await byMessage('Automatic'))?.status === 'approved' ? true : undefined), 10_000);
    // The request shows approved while the grant is being saved; the application polls on until it is.
    const token = await waitUntil(async () => {
      const response = await poll(second.issuer, automatic);
      return response.status === 200 ? response : undefined;
    }, 10_000, 1_100);
    expect(decodeJwt(String(token.body.access_token)).sub).toBe('auth0|mgarcia');
    await second.tenant.close();
  }, 60_000);

  it.each([0, 1, 2])(
    'stores an approval whole or not at all: a tenant that stops writing after %i more commits leaves a request that is pending, or approved with its token',
    async (commits) => {
      // The tenant as a kill would leave it: after `left` more transactions, nothing else reaches the database.
      let left = Number.POSITIVE_INFINITY;
      const dying: Database = {
        ...database(),
        async runTogether(queries) {
          if (left <= 0) throw new Error('the tenant is gone');
          left -= 1;
          await database().runTogether(queries);
        },
      };
      const first = await startOn(dying);
      const authReqId = await ask(first.issuer, 'auth0|jdoe', { binding_message: `Cut after ${commits}` });
      const { id } = (await requests(first.issuer)).find((r) => r.binding_message === `Cut after ${commits}`)!;
      left = commits;
      await decide(first.issuer, id, 'approve');
      await first.tenant.close();

      const second = await startOn(database(), Number(new URL(first.issuer).port));
      try {
        const status = (await requests(second.issuer)).find((r) => r.id === id)?.status;
        expect(['pending', 'approved']).toContain(status);
        if (status === 'pending') expect(await decide(second.issuer, id, 'approve')).toBe(200);
        const token = await poll(second.issuer, authReqId);
        expect(token.status, `${status}: ${JSON.stringify(token.body)}`).toBe(200);
        expect(decodeJwt(String(token.body.access_token)).sub).toBe('auth0|jdoe');
      } finally {
        await second.tenant.close();
      }
    },
    60_000,
  );

  it("stores oidc-provider's models: find, consume, expired ones a while longer, revoke by grant, destroy", async () => {
    let clock = Date.parse('2026-11-25T12:00:00Z');
    const tag = randomUUID();
    const state = createTenantState(Promise.resolve(database()), { now: () => clock, retainExpiredMs: 60_000 });
    const requests = state.providerStorage.adapter('BackchannelAuthenticationRequest');
    const grants = state.providerStorage.adapter('Grant');
    const sessions = state.providerStorage.adapter('Session');
    const [id, grantId] = [`req-${tag}`, `grant-${tag}`];
    await requests.upsert(id, { jti: id, grantId, uid: `uid-${tag}` }, 10);
    await grants.upsert(grantId, { jti: grantId, grantId }, 100);
    await sessions.upsert(`session-${tag}`, { jti: `session-${tag}`, grantId }, undefined);
    expect(await requests.find(id)).toMatchObject({ jti: id, uid: `uid-${tag}` });
    expect(await requests.findByUid(`uid-${tag}`)).toMatchObject({ jti: id });
    expect(await grants.find(id), 'each model apart').toBeUndefined();

    await requests.consume(id);
    expect((await requests.find(id))?.consumed).toBe(Math.floor(clock / 1000));
    clock += 10_000 + 59_000;
    expect(await requests.find(id), 'kept a while after it expires').toBeDefined();
    clock += 2_000;
    expect(await requests.find(id), 'then gone').toBeUndefined();

    expect(await grants.find(grantId)).toBeDefined();
    await grants.revokeByGrantId(grantId);
    expect(await grants.find(grantId)).toBeUndefined();
    expect(await sessions.find(`session-${tag}`), 'every model of the grant').toBeUndefined();

    await sessions.upsert(`other-${tag}`, { jti: `other-${tag}` }, undefined);
    await sessions.destroy(`other-${tag}`);
    expect(await sessions.find(`other-${tag}`)).toBeUndefined();
  });
});
