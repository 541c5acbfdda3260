import { createRequire } from 'node:module';
import { decodeJwt } from 'jose';
import type { Browser, BrowserContext } from 'playwright';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { launchChromium } from '../../scenarios/browser.ts';
import { ensureLocalTls } from '../../sandbox/local-ca.ts';
import type { ConsentRequestView } from '../consent-requests.ts';
import { HR_AGENT, startTenant, type RunningTenant } from './relying-party.ts';

/**
 * Auth0's AI SDK (`@auth0/ai` 5.1.1), unchanged: its async authorizer (CIBA) against the local tenant over
 * HTTPS, trusted through the local CA as a developer would (NODE_EXTRA_CA_CERTS, set by the test setup).
 *
 * Loaded the way a Node user has to: through its CommonJS build. Its ESM build imports its own files without
 * extensions (`./asyncLocalStorage`), which Node's ESM loader refuses with ERR_MODULE_NOT_FOUND.
 */

interface Credentials {
  accessToken: string;
  authorizationDetails?: unknown[];
}
type Tool = (...args: unknown[]) => Promise<unknown>;
interface AuthorizerParams {
  scopes: string[];
  audience: string;
  userID: string;
  bindingMessage: string;
  authorizationDetails?: unknown[];
  requestedExpiry?: number;
  onAuthorizationRequest?: 'block' | 'interrupt';
  store: unknown;
}
interface AsyncAuthorizationModule {
  AsyncAuthorizerBase: new (
    auth0: { domain: string; clientId: string; clientSecret: string },
    params: AuthorizerParams,
  ) => { protect(getContext: () => object, execute: () => unknown): Tool };
  getAsyncAuthorizationCredentials(): Credentials | undefined;
}
interface Interrupt extends Error {
  code: string;
}

const require = createRequire(import.meta.url);
const { AsyncAuthorizerBase, getAsyncAuthorizationCredentials } = require('@auth0/ai/AsyncAuthorization') as AsyncAuthorizationModule;
const { MemoryStore } = require('@auth0/ai/stores') as { MemoryStore: new () => unknown };
const { AccessDeniedInterrupt, AuthorizationPendingInterrupt, AuthorizationRequestExpiredInterrupt, UserDoesNotHavePushNotificationsInterrupt } =
  require('@auth0/ai/interrupts') as Record<string, { code: string }>;

const TYPE = 'urn:auth0:schemas:authorization-details:v1:employment_verification';
const detailsFor = (employee: string) => [
  {
    type: TYPE,
    instruction: 'The application a2a-client asks whether you are an active employee.',
    properties: {
      requester: { display: true, name: 'Requested by (application)', display_order: '1', value: 'a2a-client' },
      employee: { display: true, name: 'Employee', display_order: '2', value: employee },
    },
  },
];

describe('@auth0/ai async authorizer against the local tenant over HTTPS', () => {
  let running: RunningTenant;
  let browser: Browser;
  let context: BrowserContext;
  let domain: string;
  let calls = 0;

  beforeAll(async () => {
    const tls = await ensureLocalTls(inject('tlsStateDir'));
    running = await startTenant({ https: { key: tls.key, cert: tls.cert } });
    domain = new URL(running.issuer).host;
    browser = await launchChromium();
    // The employee's browser would trust the local CA once installed; Chromium here is told to, for this context only.
    context = await browser.newContext({ ignoreHTTPSErrors: true });
  });
  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await running?.tenant.close();
  });

  /** A tool protected the way the SDK's docs show; it answers with the credentials it was given. */
  function protectedTool(userID: string, params: Partial<AuthorizerParams> = {}) {
    const authorizer = new AsyncAuthorizerBase(
      { domain, clientId: HR_AGENT.clientId, clientSecret: HR_AGENT.clientSecret },
      {
        scopes: ['openid', 'read:employee'],
        audience: 'https://staff0/api',
        userID,
        bindingMessage: `Check ${(calls += 1)}`,
        onAuthorizationRequest: 'block',
        store: new MemoryStore(),
        ...params,
      },
    );
    const context = { threadID: `thread-${calls}`, toolCallID: `call-${calls}`, toolName: 'is_active_employee' };
    return authorizer.protect(() => context, () => getAsyncAuthorizationCredentials());
  }

  /** Resolves with the user's next request once the tenant has it. */
  function nextRequest(userId: string): Promise<ConsentRequestView> {
    return new Promise((resolve) => {
      const stop = running.tenant.requests.subscribe((view) => {
        if (view.user_id === userId && view.status === 'pending') {
          stop();
          resolve(view);
        }
      });
    });
  }

  it('gets the employee’s token with authorizationDetails shown on the Guardian page and present in the token', async () => {
    const details = detailsFor('auth0|jdoe');
    const asked = nextRequest('auth0|jdoe');
    const answer = protectedTool('auth0|jdoe', { authorizationDetails: details })();
    const request = await asked;
    expect(request.authorization_details).toEqual(details);

    const page = await context.newPage();
    await page.goto(new URL('guardian?user_id=auth0%7Cjdoe', running.issuer).href);
    const card = page.locator(`[data-testid="request"][data-request-id="${request.id}"]`);
    await card.locator('[data-testid="instruction"]').waitFor({ timeout: 10_000 });
    expect(await card.locator('[data-testid="instruction"]').textContent()).toBe(details[0]?.instruction);
    expect(await card.locator('dd[data-field="employee"]').textContent()).toBe('auth0|jdoe');
    await card.locator('button.approve').click();

    const credentials = (await answer) as Credentials;
    expect(credentials.authorizationDetails).toEqual(details);
    expect(decodeJwt(credentials.accessToken)).toMatchObject({ sub: 'auth0|jdoe', authorization_details: details });
    await page.close();
  });

  it('returns the SDK’s AccessDeniedInterrupt when the employee denies', async () => {
    const asked = nextRequest('auth0|jsmith');
    const answer = protectedTool('auth0|jsmith')();
    await running.tenant.requests.decide((await asked).id, 'deny');
    expect(((await answer) as Interrupt).code).toBe(AccessDeniedInterrupt?.code);
  });

  it('returns UserDoesNotHavePushNotificationsInterrupt for a user without Guardian', async () => {
    expect(((await protectedTool('auth0|npark')()) as Interrupt).code).toBe(UserDoesNotHavePushNotificationsInterrupt?.code);
  });

  it('returns AuthorizationRequestExpiredInterrupt when nobody answers before requestedExpiry', async () => {
    expect(((await protectedTool('auth0|blee', { requestedExpiry: 1 })()) as Interrupt).code).toBe(AuthorizationRequestExpiredInterrupt?.code);
  });

  it('interrupts while the consent is pending, then completes the same tool call once approved', async () => {
    const tool = protectedTool('auth0|akhan', { onAuthorizationRequest: 'interrupt' });
    const asked = nextRequest('auth0|akhan');
    await expect(tool()).rejects.toMatchObject({ code: AuthorizationPendingInterrupt?.code });
    await running.tenant.requests.decide((await asked).id, 'approve');
    // The tenant's interval is 1 s; asking sooner is a slow_down, which interrupts again.
    let result: unknown;
    for (;;) {
      try {
        result = await tool();
        break;
      } catch (error) {
        if ((error as Interrupt).code === AuthorizationPendingInterrupt?.code) throw error;
        await new Promise((r) => setTimeout(r, 1_100));
      }
    }
    expect(decodeJwt((result as Credentials).accessToken).sub).toBe('auth0|akhan');
  });

  it('sends requestedExpiry above 300 by email, approved from the mailbox page in Chromium', async () => {
    const asked = nextRequest('auth0|jsmith');
    const answer = protectedTool('auth0|jsmith', { requestedExpiry: 600, authorizationDetails: detailsFor('auth0|jsmith') })();
    const request = await asked;
    expect(request.channel).toBe('email');

    const page = await context.newPage();
    await page.goto(new URL('mailbox?user_id=auth0%7Cjsmith', running.issuer).href);
    await page.locator(`[data-testid="message"][data-request-id="${request.id}"] [data-testid="message-link"]`).click({ timeout: 10_000 });
    await page.fill('[data-testid="sign-in-email"]', 'jsmith@staff0.com');
    await page.click('[data-testid="sign-in-button"]');
    expect(await page.locator('[data-testid="authorization"] dd[data-field="employee"]').textContent()).toBe('auth0|jsmith');
    await page.click('[data-testid="approve"]');

    const credentials = (await answer) as Credentials;
    expect(decodeJwt(credentials.accessToken)).toMatchObject({ sub: 'auth0|jsmith', authorization_details: detailsFor('auth0|jsmith') });
    await page.close();
  });
});
