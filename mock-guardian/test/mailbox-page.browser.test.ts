import type { Browser, BrowserContext, Page } from 'playwright';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../../scenarios/browser.ts';
import { GUARDIAN_PAGE_CSP } from '../guardian-page.ts';
import { bcAuthorize, decodeJwtPayload, loginHint, pollToken, startTenant, type RunningTenant } from './relying-party.ts';

/**
 * The CIBA email channel in Chromium: the request lands in the user's mailbox
 * on the tenant, its link opens the consent page, the user signs in as
 * themselves and approves, seeing the request's authorization_details — all
 * rendered as text, under the Guardian page's Content-Security-Policy.
 */

const WAIT = { timeout: 10_000 };
const MARKUP = '<img src=x onerror="window.__pwned=1"><b>Acme</b>';
const DETAILS = [
  {
    type: 'urn:auth0:schemas:authorization-details:v1:employment_verification',
    instruction: 'Confirm <script>window.__pwned=2</script> employment',
    properties: {
      requester: { display: true, name: 'Requested by', display_order: '1', value: MARKUP },
      employee: { display: true, name: 'Employee', display_order: '2', value: 'auth0|akhan' },
      internal: { display: false, name: 'Hidden', value: 'not shown' },
    },
  },
];
const forJane = [{ ...DETAILS[0], properties: { ...DETAILS[0]?.properties, employee: { display: true, name: 'Employee', value: 'auth0|jsmith' } } }];

describe('mailbox and email consent page in Chromium', () => {
  let running: RunningTenant;
  let browser: Browser;
  let context: BrowserContext;
  const cspViolations: string[] = [];

  async function open(path: string): Promise<Page> {
    const page = await context.newPage();
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
    });
    await page.goto(new URL(path, running.issuer).href);
    return page;
  }

  beforeAll(async () => {
    running = await startTenant();
    browser = await launchChromium();
    context = await browser.newContext();
  });
  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await running?.tenant.close();
  });

  it('serves both pages with the Guardian page’s Content-Security-Policy', async () => {
    for (const path of ['mailbox', 'mailbox/consent?request=x']) {
      const response = await fetch(new URL(path, running.issuer));
      expect(response.status).toBe(200);
      expect(response.headers.get('content-security-policy')).toBe(GUARDIAN_PAGE_CSP);
    }
  });

  it('delivers an email request to the mailbox; its link, a sign-in and Approve complete it, markup shown as text', async () => {
    const started = await bcAuthorize(running.issuer, {
      login_hint: loginHint(running.issuer, 'auth0|akhan'),
      requested_expiry: '3600',
      binding_message: 'Email check 7',
      authorization_details: JSON.stringify(DETAILS),
    });
    expect(started.status).toBe(200);

    const inbox = await open('mailbox?user_id=auth0%7Cakhan');
    const message = inbox.locator('[data-testid="message"]').first();
    await message.waitFor(WAIT);
    expect(await message.locator('[data-testid="message-snippet"]').textContent()).toBe('Email check 7');
    await message.locator('[data-testid="message-link"]').click();
    await inbox.waitForURL(/\/mailbox\/consent\?request=/, WAIT);

    // The link alone does not open the consent: the reader signs in as the addressee first.
    await inbox.locator('[data-testid="sign-in"]').waitFor(WAIT);
    expect(await inbox.locator('[data-testid="consent"]').isHidden()).toBe(true);
    await inbox.fill('[data-testid="sign-in-email"]', 'jdoe@staff0.com');
    await inbox.click('[data-testid="sign-in-button"]');
    expect(await inbox.locator('[data-testid="status-message"]').textContent()).toMatch(/not the account/);
    expect(await inbox.locator('[data-testid="consent"]').isHidden()).toBe(true);
    await inbox.fill('[data-testid="sign-in-email"]', 'AKHAN@staff0.com');
    await inbox.click('[data-testid="sign-in-button"]');

    const consent = inbox.locator('[data-testid="consent"]');
    await consent.waitFor(WAIT);
    expect(await consent.locator('[data-testid="binding-message"]').textContent()).toBe('Email check 7');
    const detail = consent.locator('[data-testid="authorization-detail"]');
    expect(await detail.locator('h4').textContent()).toBe('Employment verification');
    expect(await detail.locator('[data-testid="instruction"]').textContent()).toBe(DETAILS[0]?.instruction);
    expect(await detail.locator('dt').allTextContents()).toEqual(['Requested by', 'Employee']);
    expect(await detail.locator('dd[data-field="requester"]').textContent()).toBe(MARKUP);
    expect(await detail.locator('img, b, script').count()).toBe(0);

    await consent.locator('[data-testid="approve"]').click();
    await inbox.locator('[data-testid="request-status"]', { hasText: 'approved' }).waitFor(WAIT);
    const token = await pollToken(running.issuer, started.body.auth_req_id as string);
    expect(token.status).toBe(200);
    expect(decodeJwtPayload(token.body.access_token as string)).toMatchObject({ sub: 'auth0|akhan', authorization_details: DETAILS });
    expect(await inbox.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(cspViolations).toEqual([]);
  });

  it('shows the authorization details on the Guardian page for a push request, as text', async () => {
    await bcAuthorize(running.issuer, {
      login_hint: loginHint(running.issuer, 'auth0|jsmith'),
      binding_message: 'Push check 8',
      authorization_details: JSON.stringify(forJane),
    });
    const phone = await open('guardian?user_id=auth0%7Cjsmith');
    const detail = phone.locator('[data-testid="request"] [data-testid="authorization-detail"]').first();
    await detail.waitFor(WAIT);
    expect(await detail.locator('dd[data-field="requester"]').textContent()).toBe(MARKUP);
    expect(await detail.locator('dd[data-field="employee"]').textContent()).toBe('auth0|jsmith');
    expect(await detail.locator('img, b, script').count()).toBe(0);
    expect(cspViolations).toEqual([]);
  });

  it('keeps email requests off the Guardian page', async () => {
    await bcAuthorize(running.issuer, {
      login_hint: loginHint(running.issuer, 'auth0|blee'),
      binding_message: 'Push for Brenda',
    });
    await bcAuthorize(running.issuer, {
      login_hint: loginHint(running.issuer, 'auth0|blee'),
      requested_expiry: '600',
      binding_message: 'Email for Brenda',
    });
    const phone = await open('guardian?user_id=auth0%7Cblee');
    await phone.locator('[data-testid="binding-message"]', { hasText: 'Push for Brenda' }).waitFor(WAIT);
    expect(await phone.locator('[data-testid="binding-message"]', { hasText: 'Email for Brenda' }).count()).toBe(0);
  });
});
