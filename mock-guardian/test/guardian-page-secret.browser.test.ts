import * as oidc from 'openid-client';
import type { Browser } from 'playwright';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../../scenarios/browser.ts';
import { guardianPageUrl } from '../../sandbox/exposure.ts';
import { createTenant, type TenantHandle } from '../tenant.ts';

/** An exposed sandbox's Guardian page in Chromium: the banner's link works, the bare page decides nothing. */

const SECRET = 'browser-secret-0123456789-abcdefghijklmnopq';
const JOHN = 'auth0|jdoe';
const WAIT = { timeout: 10_000 };

describe('Guardian page of an exposed tenant', () => {
  let browser: Browser;
  let tenant: TenantHandle;
  let issuer: string;
  let hrAgent: oidc.Configuration;

  beforeAll(async () => {
    tenant = createTenant({ settings: { cibaInterval: 1, cibaRateLimitPerUserPerMinute: 0 }, controlSecret: SECRET, log: () => {} });
    issuer = await tenant.listen(0, '127.0.0.1');
    hrAgent = await oidc.discovery(new URL(issuer), 'hr-agent', 'hr-agent-local-secret', undefined, { execute: [oidc.allowInsecureRequests] });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await tenant?.close();
  });

  const askConsent = async (bindingMessage: string) => {
    const response = await oidc.initiateBackchannelAuthentication(hrAgent, {
      scope: 'openid read:employee',
      audience: 'https://staff0/api',
      login_hint: JSON.stringify({ format: 'iss_sub', iss: issuer, sub: JOHN }),
      binding_message: bindingMessage,
    });
    const record = tenant.requests.findByAuthReqId(response.auth_req_id);
    if (!record) throw new Error('the tenant did not record the consent request');
    return record.id;
  };

  it('approves from the banner link, which carries the secret in its fragment and drops it from the address bar', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(guardianPageUrl(issuer, { userId: JOHN, secret: SECRET }));
    await page.locator('[data-testid="connection"][data-state="open"]').waitFor(WAIT);
    expect(page.url()).not.toContain(SECRET);
    const id = await askConsent('Exposed approve 1');
    const request = page.locator(`[data-testid="request"][data-request-id="${id}"]`);
    await request.waitFor(WAIT);
    await request.getByRole('button', { name: 'Approve' }).click();
    await expect.poll(() => tenant.requests.get(id)?.status, WAIT).toBe('approved');
    // A reload in the same tab keeps working without the fragment.
    await page.reload();
    await page.locator('[data-testid="connection"][data-state="open"]').waitFor(WAIT);
    await context.close();
  });

  it('shows nothing and says where the link is when opened without the secret', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const id = await askConsent('Exposed no secret 2');
    await page.goto(guardianPageUrl(issuer, { userId: JOHN }));
    await expect
      .poll(() => page.locator('[data-testid="status-message"]').textContent(), WAIT)
      .toContain('open the Guardian page from the link in its banner');
    expect(await page.locator(`[data-testid="request"][data-request-id="${id}"]`).count()).toBe(0);
    expect(tenant.requests.get(id)?.status).toBe('pending');
    await context.close();
  });
});
