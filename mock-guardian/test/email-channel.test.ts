import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../sandbox/storage/database.ts';
import { loadTenantFile } from '../tenant-file.ts';
import { createTenant } from '../tenant.ts';
import { bcAuthorize, control, HR_AGENT, loginHint, pollToken, startTenant, type RunningTenant } from './relying-party.ts';

/**
 * The CIBA email channel as Auth0 documents it ("Email notifications with CIBA"): an application's
 * `async_approval_notification_channels` decide what it may use, and `requested_expiry` picks the
 * channel — Guardian push up to 300 s, email from 301 s to 259200 s (72 h), nothing beyond.
 */

const PUSH_ONLY = { clientId: 'push-only', clientSecret: 'push-only-local-secret' };
const EMAIL_ONLY = { clientId: 'email-only', clientSecret: 'email-only-local-secret' };

function tenantWithChannelApps() {
  const file = loadTenantFile();
  const hrAgent = file.applications.find((a) => a.client_id === 'hr-agent');
  if (!hrAgent) throw new Error('the built-in tenant has no hr-agent');
  const { async_approval_notification_channels: _channels, ...base } = hrAgent;
  file.applications.push(
    { ...base, name: 'Push only', client_id: PUSH_ONLY.clientId, client_secret: PUSH_ONLY.clientSecret },
    {
      ...base,
      name: 'Email only',
      client_id: EMAIL_ONLY.clientId,
      client_secret: EMAIL_ONLY.clientSecret,
      async_approval_notification_channels: ['email'],
    },
  );
  return file;
}

describe('CIBA notification channels', () => {
  let running: RunningTenant;
  beforeAll(async () => {
    running = await startTenant({ tenantFile: tenantWithChannelApps() });
  });
  afterAll(() => running.tenant.close());

  const channelOf = async (authReqId: string) => running.tenant.requests.findByAuthReqId(authReqId)?.view.channel;

  it.each([
    ['1', 'guardian-push'],
    ['300', 'guardian-push'],
    ['301', 'email'],
    ['259200', 'email'],
  ])('sends a request with requested_expiry %s s by %s', async (expiry, channel) => {
    const response = await bcAuthorize(running.issuer, { requested_expiry: expiry, binding_message: `Expiry ${expiry}` });
    expect(response.status).toBe(200);
    expect(response.body.expires_in).toBe(Number(expiry));
    expect(await channelOf(response.body.auth_req_id as string)).toBe(channel);
  });

  it('uses Guardian push when no requested_expiry is sent (Auth0 default 300 s)', async () => {
    const response = await bcAuthorize(running.issuer);
    expect(await channelOf(response.body.auth_req_id as string)).toBe('guardian-push');
  });

  it('refuses requested_expiry beyond 259200 s, as Auth0 does', async () => {
    const response = await bcAuthorize(running.issuer, { requested_expiry: '259201' });
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ error: 'invalid_request', error_description: expect.stringMatching(/259200/) });
  });

  it('refuses an email-range expiry from an application without the email channel (the default is push only)', async () => {
    const response = await bcAuthorize(running.issuer, { requested_expiry: '600' }, PUSH_ONLY);
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ error: 'invalid_request', error_description: expect.stringMatching(/guardian-push/) });
  });

  it('refuses a push-range expiry from an email-only application', async () => {
    expect((await bcAuthorize(running.issuer, {}, EMAIL_ONLY)).status).toBe(400);
    expect((await bcAuthorize(running.issuer, { requested_expiry: '3600' }, EMAIL_ONLY)).status).toBe(200);
  });

  it('reaches a user without push enrolment by email, and still refuses them push', async () => {
    const nina = loginHint(running.issuer, 'auth0|npark');
    const push = await bcAuthorize(running.issuer, { login_hint: nina });
    expect(push.body).toMatchObject({ error: 'invalid_request', error_description: expect.stringMatching(/not enrolled/) });
    const email = await bcAuthorize(running.issuer, { login_hint: nina, requested_expiry: '900' });
    expect(email.status).toBe(200);
  });

  it('lists email requests apart in the control API and completes them like push requests', async () => {
    const started = await bcAuthorize(running.issuer, {
      login_hint: loginHint(running.issuer, 'auth0|akhan'),
      requested_expiry: '3600',
      binding_message: 'Email approval 1',
    });
    const listed = await control(running.issuer, '/requests?user_id=auth0%7Cakhan&channel=email');
    const [request] = (listed.body as { requests: { id: string; channel: string }[] }).requests;
    expect(request?.channel).toBe('email');
    const pushOnly = await control(running.issuer, '/requests?user_id=auth0%7Cakhan&channel=guardian-push');
    expect((pushOnly.body as { requests: unknown[] }).requests).toEqual([]);
    expect((await control(running.issuer, '/requests?channel=sms')).status).toBe(400);

    expect((await pollToken(running.issuer, started.body.auth_req_id as string, HR_AGENT)).body.error).toBe('authorization_pending');
    await control(running.issuer, `/requests/${request?.id ?? ''}/approve`, { method: 'POST' });
    const token = await pollToken(running.issuer, started.body.auth_req_id as string, HR_AGENT);
    expect(token.status).toBe(200);
  });

  it('does not let a Guardian auto-answer policy decide an email request', async () => {
    const started = await bcAuthorize(running.issuer, {
      login_hint: loginHint(running.issuer, 'auth0|mgarcia'),
      requested_expiry: '600',
      binding_message: 'Email for Maria',
    });
    const record = running.tenant.requests.findByAuthReqId(started.body.auth_req_id as string);
    // Maria's phone approves pushes after 1.5 s; once it has answered a later push, the email still waits for her.
    const pushApproved = new Promise<void>((resolve) => {
      const stop = running.tenant.requests.subscribe((view) => {
        if (view.binding_message === 'Push for Maria' && view.status === 'approved') {
          stop();
          resolve();
        }
      });
    });
    await bcAuthorize(running.issuer, { login_hint: loginHint(running.issuer, 'auth0|mgarcia'), binding_message: 'Push for Maria' });
    await pushApproved;
    expect(running.tenant.requests.get(record?.id ?? '')?.status).toBe('pending');
  });
});

describe('an email request with authorization details across a restart', () => {
  let database: Database;
  beforeAll(async () => {
    database = await openDatabase({ kind: 'pglite', dataDir: undefined });
  }, 90_000);
  afterAll(() => database?.close());

  const startOn = async (port = 0) => {
    const tenant = createTenant({ database: Promise.resolve(database), settings: { cibaInterval: 1, cibaRateLimitPerUserPerMinute: 0 }, log: () => {} });
    const issuer = await tenant.listen(port, '127.0.0.1');
    await tenant.ready;
    return { tenant, issuer };
  };

  it('keeps its channel and details, and the token issued after the restart still carries them', async () => {
    const details = [{ type: 'urn:auth0:schemas:authorization-details:v1:employment_verification', instruction: 'Check', properties: { employee: { name: 'Employee', value: 'auth0|jdoe' } } }];
    const first = await startOn();
    const started = await bcAuthorize(first.issuer, { requested_expiry: '3600', authorization_details: JSON.stringify(details) });
    expect(started.status).toBe(200);
    await first.tenant.close();

    const second = await startOn(Number(new URL(first.issuer).port));
    try {
      const listed = await control(second.issuer, '/requests?channel=email');
      const [request] = (listed.body as { requests: { id: string; channel: string; authorization_details: unknown }[] }).requests;
      expect(request).toMatchObject({ channel: 'email', authorization_details: details });
      await control(second.issuer, `/requests/${request?.id ?? ''}/approve`, { method: 'POST' });
      const token = await pollToken(second.issuer, started.body.auth_req_id as string);
      expect(token.body.authorization_details).toEqual(details);
    } finally {
      await second.tenant.close();
    }
  });
});
