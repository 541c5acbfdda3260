import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConsentRequestView } from '../consent-requests.ts';
import { freePorts, repoRoot, runCommand, waitUntil, type RunningCommand } from '../../sandbox/test/processes.ts';
import { startPostgresServer, type PostgresServer } from '../../sandbox/test/postgres-server.ts';
import { bcAuthorize, CIBA_GRANT, HR_AGENT, loginHint, postForm } from './relying-party.ts';

/** The tenant as `npm run sandbox` runs it (its own process), killed without warning and started again. */

let postgres: PostgresServer;
const stateDirs: string[] = [];
beforeAll(async () => {
  postgres = await startPostgresServer();
});
afterAll(async () => {
  await postgres?.stop();
  for (const dir of stateDirs) rmSync(dir, { recursive: true, force: true });
});

const STORES = [
  { name: 'PGlite in SANDBOX_STATE_DIR', databaseUrl: async () => '' },
  { name: 'PostgreSQL (DATABASE_URL)', databaseUrl: () => postgres.createDatabase() },
];

/** The built-in tenant with a one-second poll interval, so polls across the restart are not answered slow_down. */
function tenantFile(dir: string): string {
  const file = JSON.parse(readFileSync(join(repoRoot, 'mock-guardian/tenant.json'), 'utf8')) as { settings: Record<string, unknown> };
  file.settings = { ...file.settings, cibaInterval: 1, cibaRateLimitPerUserPerMinute: 0 };
  const path = join(dir, 'tenant.json');
  writeFileSync(path, JSON.stringify(file));
  return path;
}

async function startTenantProcess(env: Record<string, string>): Promise<{ run: RunningCommand; issuer: string }> {
  const run = runCommand(process.execPath, ['--import', 'tsx', 'mock-guardian/main.ts'], env);
  await run.waitForOutput(/Local tenant http:\/\/127\.0\.0\.1:\d+\//);
  const issuer = `http://127.0.0.1:${env.TENANT_PORT}/`;
  await waitUntil(async () => {
    const health = (await (await fetch(new URL('health', issuer))).json()) as { state?: string };
    return health.state === 'ready' ? true : undefined;
  }, 60_000);
  return { run, issuer };
}

async function requests(issuer: string): Promise<ConsentRequestView[]> {
  return ((await (await fetch(new URL('control/requests', issuer))).json()) as { requests: ConsentRequestView[] }).requests;
}

async function approve(issuer: string, id: string): Promise<number> {
  const response = await fetch(new URL(`control/requests/${id}/approve`, issuer), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}',
  });
  await response.body?.cancel();
  return response.status;
}

const poll = (issuer: string, authReqId: string) =>
  postForm(issuer, '/oauth/token', { grant_type: CIBA_GRANT, auth_req_id: authReqId, client_id: HR_AGENT.clientId, client_secret: HR_AGENT.clientSecret });

describe.each(STORES)('the tenant process on $name', ({ databaseUrl }) => {
  it('still has its pending requests after SIGKILL and a restart, and approving them then issues tokens', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'sandbox-tenant-restart-'));
    stateDirs.push(stateDir);
    const [port] = await freePorts(1);
    const env = {
      TENANT_PORT: String(port),
      SANDBOX_STATE_DIR: stateDir,
      DATABASE_URL: await databaseUrl(),
      TENANT_FILE: tenantFile(stateDir),
      IDENTITY_BACKEND: 'local',
    };

    const first = await startTenantProcess(env);
    const users = ['auth0|jdoe', 'auth0|jsmith', 'auth0|akhan'];
    const authReqIds = new Map<string, string>();
    try {
      for (const user of users) {
        const response = await bcAuthorize(first.issuer, { login_hint: loginHint(first.issuer, user), binding_message: `Restart ${user.slice(6)}` });
        expect(response.status, JSON.stringify(response.body)).toBe(200);
        authReqIds.set(user, String(response.body.auth_req_id));
      }
      const before = await requests(first.issuer);
      expect(before.map((r) => r.status)).toEqual(['pending', 'pending', 'pending']);
      expect(await approve(first.issuer, before.find((r) => r.user_id === 'auth0|jsmith')!.id)).toBe(200);
      expect((await poll(first.issuer, authReqIds.get('auth0|akhan')!)).body.error).toBe('authorization_pending');
    } finally {
      first.run.signalGroup('SIGKILL');
    }
    expect((await first.run.exited).signal).toBe('SIGKILL');

    const second = await startTenantProcess(env);
    try {
      const after = await requests(second.issuer);
      const of = (user: string) => after.find((r) => r.user_id === user)!;
      expect(after).toHaveLength(3);
      expect(of('auth0|jdoe').status).toBe('pending');
      expect(of('auth0|jsmith').status).toBe('approved');
      expect(of('auth0|akhan')).toMatchObject({ status: 'pending', polls: 1 });

      expect(await approve(second.issuer, of('auth0|jdoe').id)).toBe(200);
      expect(await approve(second.issuer, of('auth0|akhan').id)).toBe(200);
      for (const user of users) {
        const token = await poll(second.issuer, authReqIds.get(user)!);
        expect(token.status, JSON.stringify(token.body)).toBe(200);
        expect(decodeJwt(String(token.body.access_token))).toMatchObject({ sub: user, iss: second.issuer, aud: 'https://staff0/api' });
      }
    } finally {
      second.run.child.kill('SIGTERM');
    }
    expect((await second.run.exited).code).toBe(0);
  }, 120_000);
});
