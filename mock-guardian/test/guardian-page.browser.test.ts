import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, Locator, Page } from 'playwright';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../../scenarios/browser.ts';
import type { ConsentRequestView } from '../consent-requests.ts';
import { createTenant, type TenantHandle } from '../tenant.ts';

/**
 * The Guardian page in Chromium against a real tenant: consent requests are
 * made by the HR Agent application with openid-client, exactly as the agent
 * makes them, and the page must show and decide them live.
 */

const HR_AGENT = { clientId: 'hr-agent', clientSecret: 'hr-agent-local-secret' };
const JOHN = 'auth0|jdoe';
const JANE = 'auth0|jsmith';
const BRENDA = 'auth0|blee';
const NINA_NOT_ENROLLED = 'auth0|npark';
const MALLORY = 'auth0|mallory';
const MARKUP_TENANT = fileURLToPath(new URL('./guardian-page-markup.tenant.json', import.meta.url));
const SCREENSHOT = fileURLToPath(new URL('../../reports/guardian-page.png', import.meta.url));
const WAIT = { timeout: 10_000 };

interface RunningTenant {
  handle: TenantHandle;
  issuer: string;
  hrAgent: oidc.Configuration;
}

async function startTenant(tenantFile?: string): Promise<RunningTenant> {
  const handle = createTenant({
    ...(tenantFile === undefined ? {} : { tenantFile }),
    // One-second polls keep the token checks quick; the per-user rate limit is not under test here.
    settings: { cibaInterval: 1, cibaRateLimitPerUserPerMinute: 0 },
    log: () => {},
  });
  const issuer = await handle.listen(0, '127.0.0.1');
  const hrAgent = await oidc.discovery(new URL(issuer), HR_AGENT.clientId, HR_AGENT.clientSecret, undefined, {
    execute: [oidc.allowInsecureRequests],
  });
  return { handle, issuer, hrAgent };
}

/** What the HR Agent does: CIBA /bc-authorize for a user (Auth0's iss_sub login_hint). */
async function askConsent(tenant: RunningTenant, userId: string, bindingMessage: string, requestedExpiry = 120) {
  const response = await oidc.initiateBackchannelAuthentication(tenant.hrAgent, {
    scope: 'openid read:employee',
    audience: 'https://staff0/api',
    login_hint: JSON.stringify({ format: 'iss_sub', iss: tenant.issuer, sub: userId }),
    binding_message: bindingMessage,
    requested_expiry: String(requestedExpiry),
  });
  const record = tenant.handle.requests.findByAuthReqId(response.auth_req_id);
  if (!record) throw new Error('the tenant did not record the consent request');
  return { response, id: record.id };
}

async function control(tenant: RunningTenant, path: string, init?: RequestInit) {
  const response = await fetch(new URL(`control/${path}`, tenant.issuer), init);
  return { status: response.status, body: (await response.json()) as unknown };
}

async function controlView(tenant: RunningTenant, id: string): Promise<ConsentRequestView> {
  const { status, body } = await control(tenant, `requests/${id}`);
  expect(status).toBe(200);
  return body as ConsentRequestView;
}

async function decideByScript(tenant: RunningTenant, id: string, action: 'approve' | 'deny' | 'expire') {
  return control(tenant, `requests/${id}/${action}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}',
  });
}

function guardianUrl(tenant: RunningTenant, userId?: string): string {
  const url = new URL('guardian', tenant.issuer);
  if (userId !== undefined) url.searchParams.set('user_id', userId);
  return url.href;
}

interface OpenedPage {
  page: Page;
  /** Console messages about Content-Security-Policy violations. */
  cspViolations: string[];
}

function card(page: Page, id: string): Locator {
  return page.locator(`[data-testid="request"][data-request-id="${id}"]`);
}

function field(scope: Page | Locator, testId: string): Locator {
  return scope.locator(`[data-testid="${testId}"]`);
}

async function statusOf(page: Page, id: string): Promise<string | null> {
  return card(page, id).getAttribute('data-status');
}

describe('Guardian page in Chromium', () => {
  let browser: Browser;
  let context: BrowserContext;
  let tenant: RunningTenant;

  async function openPage(userId?: string, options: { liveUpdates?: boolean } = {}): Promise<OpenedPage> {
    const page = await context.newPage();
    const cspViolations: string[] = [];
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
    });
    if (options.liveUpdates === false) {
      // Keeps the page from hearing about a decision, so it can attempt a second one.
      await page.route('**/control/events**', (route) => route.abort());
    }
    await page.goto(guardianUrl(tenant, userId));
    if (userId !== undefined && options.liveUpdates !== false) {
      await page.locator('[data-testid="connection"][data-state="open"]').waitFor(WAIT);
    }
    return { page, cspViolations };
  }

  beforeAll(async () => {
    tenant = await startTenant();
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 460, height: 1100 } });
  });

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await tenant?.handle.close();
  });

  it('serves the page with a strict Content-Security-Policy and no inline script', async () => {
    const response = await fetch(guardianUrl(tenant, JOHN));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = (response.headers.get('content-security-policy') ?? '').split(';').map((d) => d.trim());
    expect(csp).toEqual(
      expect.arrayContaining([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
      ]),
    );
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    const html = await response.text();
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts).toHaveLength(1);
    expect(scripts[0]?.[1]).toContain('src="/guardian/app.js"');
    expect(scripts[0]?.[2]).toBe('');
    expect(html).not.toContain('auth0|jdoe');

    const script = await fetch(new URL('guardian/app.js', tenant.issuer));
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(script.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('answers other methods with 405 and unknown page paths with 404', async () => {
    const post = await fetch(guardianUrl(tenant), { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const unknown = await fetch(new URL('guardian/nope.js', tenant.issuer));
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('lists only push-enrolled employees and switches to the one chosen', async () => {
    const { page, cspViolations } = await openPage();
    const select = field(page, 'user-select');
    await expect.poll(() => select.isEnabled(), WAIT).toBe(true);
    const options = await select.locator('option').allTextContents();
    expect(options).toContain('John Doe (jdoe@staff0.com)');
    expect(options.some((o) => o.includes('Nina Park'))).toBe(false);

    await select.selectOption(JOHN);
    await expect.poll(() => field(page, 'user-name').textContent(), WAIT).toBe('John Doe');
    expect(new URL(page.url()).searchParams.get('user_id')).toBe(JOHN);
    await page.locator('[data-testid="connection"][data-state="open"]').waitFor(WAIT);
    expect(cspViolations).toEqual([]);
    await page.close();
  });

  it('with no employee chosen, asks for one rather than calling the live tenant offline', async () => {
    const { page } = await openPage();
    await expect.poll(() => field(page, 'user-select').isEnabled(), WAIT).toBe(true);
    const badge = field(page, 'connection');
    expect(await badge.textContent()).toBe('Choose an employee');
    expect(await badge.getAttribute('data-state')).toBe('idle');
    expect(await field(page, 'status-message').textContent()).toBe('Choose an employee to see the push requests sent to their phone.');
    await page.close();
  });

  it('shows "Offline" only when the tenant cannot be reached', async () => {
    const page = await context.newPage();
    await page.route('**/control/users', (route) => route.abort('connectionrefused'));
    await page.goto(guardianUrl(tenant));
    const badge = field(page, 'connection');
    await expect.poll(() => badge.getAttribute('data-state'), WAIT).toBe('offline');
    expect(await badge.textContent()).toBe('Offline');
    expect(await field(page, 'status-message').textContent()).toBe('Could not load the tenant’s users. Is the tenant running?');
    await page.close();
  });

  it('tells the user when the chosen employee is not enrolled for push', async () => {
    const { page } = await openPage(NINA_NOT_ENROLLED, { liveUpdates: false });
    await expect
      .poll(() => field(page, 'status-message').textContent(), WAIT)
      .toBe('Nina Park is not enrolled for push, so no request can reach this phone.');
    await page.close();
  });

  it('shows a push request for John Doe the moment it is created, without a reload', async () => {
    const { page, cspViolations } = await openPage(JOHN);
    expect(await field(page, 'user-name').textContent()).toBe('John Doe');
    await page.evaluate(() => Reflect.set(window, '__sameDocument', true));

    const { id } = await askConsent(tenant, JOHN, 'Is jdoe employed 1');

    const request = card(page, id);
    await request.waitFor(WAIT);
    expect(await request.getAttribute('data-status')).toBe('pending');
    expect(await field(page, 'pending-requests').locator(`[data-request-id="${id}"]`).count()).toBe(1);
    expect(await field(request, 'client-name').textContent()).toBe('HR Agent');
    expect(await field(request, 'binding-message').textContent()).toBe('Is jdoe employed 1');
    expect(await field(request, 'scopes').locator('li').allTextContents()).toEqual(['openid', 'read:employee']);
    expect(await field(request, 'api').textContent()).toBe('Staff0 HR API (https://staff0/api)');
    expect(await field(request, 'time-left').textContent()).toMatch(/^(2:00|1:5\d) left$/);
    expect(await request.getByRole('button', { name: 'Approve' }).isEnabled()).toBe(true);
    expect(await request.getByRole('button', { name: 'Deny' }).isEnabled()).toBe(true);
    expect(await page.evaluate(() => Reflect.get(window, '__sameDocument'))).toBe(true);
    expect(cspViolations).toEqual([]);
    await page.close();
  });

  it('approves one request and denies another; the tenant and the requesting client see the same', async () => {
    const { page, cspViolations } = await openPage(JOHN);
    const approved = await askConsent(tenant, JOHN, 'Approve me 2');
    const denied = await askConsent(tenant, JOHN, 'Deny me 3');
    const left = await askConsent(tenant, JOHN, 'Leave me pending 4');
    await card(page, left.id).waitFor(WAIT);

    await card(page, approved.id).getByRole('button', { name: 'Approve' }).click();
    await expect.poll(() => statusOf(page, approved.id), WAIT).toBe('approved');
    expect(await field(page, 'status-message').textContent()).toBe('Approved: HR Agent — Approve me 2');

    await card(page, denied.id).getByRole('button', { name: 'Deny' }).click();
    await expect.poll(() => statusOf(page, denied.id), WAIT).toBe('denied');
    expect(await field(page, 'status-message').textContent()).toBe('Denied: HR Agent — Deny me 3');

    const decidedList = field(page, 'decided-requests');
    expect(await decidedList.locator(`[data-request-id="${approved.id}"]`).count()).toBe(1);
    expect(await decidedList.locator(`[data-request-id="${denied.id}"]`).count()).toBe(1);
    expect(await card(page, approved.id).getByRole('button', { name: 'Approve' }).isVisible()).toBe(false);
    expect(await statusOf(page, left.id)).toBe('pending');

    const approvedView = await controlView(tenant, approved.id);
    const deniedView = await controlView(tenant, denied.id);
    expect(approvedView.status).toBe('approved');
    expect(approvedView.decided_at).not.toBeNull();
    expect(deniedView.status).toBe('denied');
    expect((await controlView(tenant, left.id)).status).toBe('pending');

    // The decision reached the token endpoint: the HR Agent gets a token for John, or access_denied.
    const tokens = await oidc.pollBackchannelAuthenticationGrant(tenant.hrAgent, approved.response);
    expect(tokens.claims()?.sub).toBe(JOHN);
    await expect(oidc.pollBackchannelAuthenticationGrant(tenant.hrAgent, denied.response)).rejects.toMatchObject({
      error: 'access_denied',
    });

    mkdirSync(fileURLToPath(new URL('../../reports/', import.meta.url)), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(cspViolations).toEqual([]);
    await page.close();
  });

  it('says "This request was already decided" when a decided request is answered again', async () => {
    const { id } = await askConsent(tenant, JANE, 'Decided twice 5');
    const { page } = await openPage(JANE, { liveUpdates: false });
    const request = card(page, id);
    await request.waitFor(WAIT);
    expect(await request.getAttribute('data-status')).toBe('pending');

    expect((await decideByScript(tenant, id, 'approve')).status).toBe(200);
    await request.getByRole('button', { name: 'Deny' }).click();

    await expect.poll(() => field(page, 'status-message').textContent(), WAIT).toBe('This request was already decided.');
    expect(await field(request, 'request-message').textContent()).toBe('This request was already decided.');
    await expect.poll(() => statusOf(page, id), WAIT).toBe('approved');
    expect((await controlView(tenant, id)).status).toBe('approved');
    await page.close();
  });

  it('says "This request expired" when an expired request is answered', async () => {
    const { id } = await askConsent(tenant, JANE, 'Expired meanwhile 6');
    const { page } = await openPage(JANE, { liveUpdates: false });
    const request = card(page, id);
    await request.waitFor(WAIT);

    const expired = await decideByScript(tenant, id, 'expire');
    expect(expired.status).toBe(200);
    await request.getByRole('button', { name: 'Approve' }).click();

    await expect.poll(() => field(page, 'status-message').textContent(), WAIT).toBe('This request expired.');
    await expect.poll(() => statusOf(page, id), WAIT).toBe('expired');
    expect(await field(request, 'time-left').textContent()).toBe('expired');
    expect((await controlView(tenant, id)).status).toBe('expired');
    await page.close();
  });

  it('counts down and turns a request to "expired" when its time runs out', async () => {
    const { page } = await openPage(BRENDA);
    const { id } = await askConsent(tenant, BRENDA, 'Short lived 7', 2);
    const request = card(page, id);
    await request.waitFor(WAIT);
    expect(await field(request, 'time-left').textContent()).toMatch(/^0:0[12] left$/);

    await expect.poll(() => statusOf(page, id), WAIT).toBe('expired');
    expect(await field(request, 'time-left').textContent()).toBe('expired');
    expect(await request.getByRole('button', { name: 'Approve' }).isVisible()).toBe(false);
    expect(await field(page, 'decided-requests').locator(`[data-request-id="${id}"]`).count()).toBe(1);
    await expect.poll(async () => (await controlView(tenant, id)).status, WAIT).toBe('expired');
    await page.close();
  });

  describe('with markup in names from the tenant file', () => {
    let markupTenant: RunningTenant;
    const malloryName = '<img src=x onerror="window.__xss=1">Mallory';

    beforeAll(async () => {
      markupTenant = await startTenant(MARKUP_TENANT);
    });

    afterAll(async () => {
      await markupTenant?.handle.close();
    });

    it('shows user, application and API names as literal text and never runs them', async () => {
      const page = await context.newPage();
      await page.goto(guardianUrl(markupTenant, MALLORY));
      await page.locator('[data-testid="connection"][data-state="open"]').waitFor(WAIT);
      const { id } = await askConsent(markupTenant, MALLORY, 'Markup check 8');
      const request = card(page, id);
      await request.waitFor(WAIT);

      expect(await field(page, 'user-name').textContent()).toBe(malloryName);
      expect(await field(page, 'user-select').locator('option').allTextContents()).toContain(
        `${malloryName} (mallory@staff0.com)`,
      );
      expect(await field(request, 'client-name').textContent()).toBe('<img src=x onerror="window.__xss=1">HR Agent');
      expect(await field(request, 'api').textContent()).toBe(
        '<script>window.__xss=2</script>Staff0 HR API (https://staff0/api)',
      );
      expect(await page.locator('img').count()).toBe(0);
      expect(await page.locator('script').count()).toBe(1);
      expect(await page.title()).toBe(`(1) Guardian — ${malloryName}`);

      await request.getByRole('button', { name: 'Approve' }).click();
      await expect.poll(() => statusOf(page, id), WAIT).toBe('approved');
      expect(await page.locator('img').count()).toBe(0);
      expect(await page.evaluate(() => Reflect.get(window, '__xss'))).toBeUndefined();
      await page.close();
    });
  });
});
