import { ManagementClient } from 'auth0';
import { AuthenticationClient } from 'auth0/legacy';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ensureLocalTls } from '../../sandbox/local-ca.ts';
import { HR_AGENT, startTenant, type RunningTenant } from './relying-party.ts';

/**
 * Auth0's own Node SDK (`auth0`), unchanged, against the local tenant served
 * over HTTPS with the local CA (trusted through NODE_EXTRA_CA_CERTS by the test
 * setup, as a developer would). If this passes, Auth0-based code can be pointed
 * at the sandbox by changing its domain.
 */

describe('the auth0 Node SDK against the local tenant over HTTPS', () => {
  let running: RunningTenant;
  let domain: string;

  beforeAll(async () => {
    const tls = await ensureLocalTls(inject('tlsStateDir'));
    running = await startTenant({ https: { key: tls.key, cert: tls.cert } });
    domain = new URL(running.issuer).host;
    expect(running.issuer).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/$/);
  });
  afterAll(() => running.tenant.close());

  const hrAgent = () => new AuthenticationClient({ domain, clientId: HR_AGENT.clientId, clientSecret: HR_AGENT.clientSecret });
  const authorizeFor = (auth: AuthenticationClient, userId: string) =>
    auth.backchannel.authorize({
      userId,
      binding_message: 'Approve sharing your employment details',
      scope: 'openid read:employee',
      audience: 'https://staff0/api',
    });

  const pendingFor = async (userId: string) => {
    for (let i = 0; i < 100; i += 1) {
      const [request] = running.tenant.requests.list({ userId, status: 'pending' });
      if (request) return request;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no pending request for ${userId}`);
  };

  it('runs backchannel authorize, then the grant after the employee approves', async () => {
    const auth = hrAgent();
    const started = await authorizeFor(auth, 'auth0|jdoe');
    expect(started.auth_req_id).toEqual(expect.any(String));
    expect(started.expires_in).toBe(300);
    expect(started.interval).toBe(1);

    await expect(auth.backchannel.backchannelGrant({ auth_req_id: started.auth_req_id })).rejects.toMatchObject({
      error: 'authorization_pending',
    });

    const request = await pendingFor('auth0|jdoe');
    expect(request.binding_message).toBe('Approve sharing your employment details');
    running.tenant.requests.decide(request.id, 'approve');
    await new Promise((r) => setTimeout(r, 1_050)); // one interval, so the grant is not a slow_down

    const tokens = await auth.backchannel.backchannelGrant({ auth_req_id: started.auth_req_id });
    const claims = decodeJwt(tokens.access_token);
    expect(claims).toMatchObject({
      iss: running.issuer,
      sub: 'auth0|jdoe',
      aud: 'https://staff0/api',
      azp: HR_AGENT.clientId,
    });
    expect(String(claims.scope).split(' ')).toContain('read:employee');
    expect(decodeJwt(tokens.id_token)).toMatchObject({ iss: running.issuer, sub: 'auth0|jdoe', aud: HR_AGENT.clientId });
  });

  it('reports a denial as access_denied through the SDK', async () => {
    const auth = hrAgent();
    const started = await authorizeFor(auth, 'auth0|jsmith');
    running.tenant.requests.decide((await pendingFor('auth0|jsmith')).id, 'deny');
    await new Promise((r) => setTimeout(r, 1_050));
    await expect(auth.backchannel.backchannelGrant({ auth_req_id: started.auth_req_id })).rejects.toMatchObject({
      error: 'access_denied',
    });
  });

  it("looks users up by email with the management client's own client-credentials token", async () => {
    const management = new ManagementClient({ domain, clientId: HR_AGENT.clientId, clientSecret: HR_AGENT.clientSecret });
    const users = await management.users.listUsersByEmail({ email: 'jdoe@staff0.com' });
    expect(users).toHaveLength(1);
    expect(users[0]).toMatchObject({ user_id: 'auth0|jdoe', email: 'jdoe@staff0.com', name: 'John Doe' });
    expect(await management.users.listUsersByEmail({ email: 'nobody@staff0.com' })).toEqual([]);
  });
});
