import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../../../scenarios/browser.ts';
import { createFlowConsole, type FlowConsole } from '../../flow-console/server.ts';
import { credentialsInDom, FLOW_CONSOLE_WAIT, listedTasks, openFlowConsole, openHopDetails, renderedArrows, type RenderedArrow } from './console-view.ts';
import { approvedTask, deniedTask, exportRequestOf, PLANTED, postSpans } from './synthetic-spans.ts';

/**
 * The flow console in Chromium, fed synthetic spans shaped like an approved
 * and a denied question: arrows appear as their hops arrive, in order, with
 * their labels, states and decoded claims, and no credential reaches the DOM.
 */

const SCREENSHOT = fileURLToPath(new URL('../../../reports/flow-console.png', import.meta.url));

/** Each line runs from the centre of the lane it starts under to the centre of the lane it ends under. */
function expectLinesOnLanes(arrows: RenderedArrow[]): void {
  for (const arrow of arrows.filter((a) => a.from !== a.to)) {
    const [left, right] = [arrow.geometry.fromLaneX, arrow.geometry.toLaneX].sort((a, b) => a - b);
    expect(Math.abs(arrow.geometry.lineLeft - left!), arrow.label).toBeLessThan(3);
    expect(Math.abs(arrow.geometry.lineRight - right!), arrow.label).toBeLessThan(3);
  }
}

function summary(arrows: RenderedArrow[]): string[] {
  return arrows.map((a) => `${a.from}→${a.to} ${a.label}${a.state ? ` [${a.state}]` : ''}${a.outcome === 'error' ? ' !' : ''}`);
}

describe('flow console in Chromium', () => {
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let flowConsole: FlowConsole;
  let url: string;
  const cspViolations: string[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    flowConsole = createFlowConsole();
    url = await flowConsole.listen(0, '127.0.0.1');
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
    });
    page.on('pageerror', (error) => pageErrors.push(error.message));
  });

  afterAll(async () => {
    await browser?.close();
    await flowConsole?.close();
  });

  const approved = approvedTask('jdoe@staff0.com');
  const denied = deniedTask('jsmith@staff0.com');
  const startedAt = Date.now();

  it('draws an approved task’s arrows as its hops arrive, in order', async () => {
    await openFlowConsole(page, url);
    await page.locator('[data-testid="tasks-empty"]').waitFor(FLOW_CONSOLE_WAIT);

    // The first batch: up to the push to the employee's phone.
    expect((await postSpans(url, exportRequestOf(approved, approved.hops.slice(0, 6), startedAt))).status).toBe(200);
    const early = await renderedArrows(page, url, approved.taskId, { atLeast: 6 });
    expect(summary(early)).toEqual([
      'client→identity POST /oauth/token (client credentials)',
      'client→agent SendMessage [AUTH_REQUIRED]',
      'agent→agent model call (mock-gemini)',
      'agent→identity GET /api/v2/users-by-email',
      'agent→identity POST /bc-authorize',
      'identity→employee push to Guardian',
    ]);
    expect(await listedTasks(page)).toEqual([{ id: approved.taskId, state: 'AUTH_REQUIRED', employee: 'jdoe@staff0.com' }]);

    // The rest arrive: the pending poll, the approval, the token, the HR API and the answer.
    expect((await postSpans(url, exportRequestOf(approved, approved.hops.slice(6), startedAt))).status).toBe(200);
    const arrows = await renderedArrows(page, url, approved.taskId, { atLeast: approved.hops.length });
    expect(summary(arrows)).toEqual([
      'client→identity POST /oauth/token (client credentials)',
      'client→agent SendMessage [AUTH_REQUIRED]',
      'agent→agent model call (mock-gemini)',
      'agent→identity GET /api/v2/users-by-email',
      'agent→identity POST /bc-authorize',
      'identity→employee push to Guardian',
      'agent→identity POST /oauth/token (CIBA poll) !',
      'employee→identity approves',
      'agent→identity POST /oauth/token (CIBA poll)',
      'agent→hr-api GET /employees/auth0|jdoe',
      'agent→client task COMPLETED [COMPLETED]',
    ]);
    expect(arrows[4]!.timing).toBe('+0.140 s · 30 ms · 200');
    expect(arrows[8]!.timing).toBe('+2.200 s · 15 ms · 200');
    expectLinesOnLanes(arrows);
    await expect.poll(() => listedTasks(page), FLOW_CONSOLE_WAIT).toEqual([{ id: approved.taskId, state: 'COMPLETED', employee: 'jdoe@staff0.com' }]);
    expect(await page.locator('[data-testid="task-state"]').textContent()).toBe('COMPLETED');
    expect(await page.locator('[data-testid="lane"]').allTextContents()).toEqual([
      'A2A Client',
      'HR Agent',
      'Identity backend',
      'Employee (Guardian)',
      'HR API',
    ]);
  });

  it('shows a hop’s details with its token decoded, never the token', async () => {
    const tokenPoll = await openHopDetails(page, 8);
    expect(tokenPoll.title).toBe('POST /oauth/token (CIBA poll)');
    expect(tokenPoll.fields).toMatchObject({
      route: 'HR Agent → Identity backend',
      method: 'POST',
      path: '/oauth/token',
      status: '200',
      duration: '15 ms',
      offset: '+2.200 s',
      'auth-req-id': 'AbCdEfGh…',
      'poll-count': '2',
      'delivery-mode': 'poll',
      channel: 'guardian-push',
    });
    expect(tokenPoll.fields.error).toBeUndefined();
    const accessToken = tokenPoll.tokens.access_token!;
    expect(accessToken.header).toEqual({ alg: 'RS256', kid: 'tenant-key-1', typ: 'JWT' });
    expect(accessToken.claims).toMatchObject({ sub: 'auth0|jdoe', aud: 'https://staff0/api', scope: 'openid read:employee', azp: 'hr-agent' });
    expect(accessToken.claims.exp).toMatch(/^\d{4}-\d\d-\d\dT.*Z \((29\d|300) s after this hop\)$/);
    expect(JSON.parse(accessToken.claims.authorization_details!)).toEqual([
      { type: 'employment_verification', employee_id: 'auth0|jdoe', purpose: 'Check employment status' },
    ]);
    expect(tokenPoll.tokens.raw).toEqual({ header: {}, claims: {} });

    const pendingPoll = await openHopDetails(page, 6);
    expect(pendingPoll.fields).toMatchObject({ status: '400', 'poll-count': '1', error: 'authorization_pending: authorization_pending (token was [redacted])' });

    const clientToken = await openHopDetails(page, 0);
    expect(clientToken.fields.path).toBe('/oauth/token');
    expect(clientToken.tokens.access_token!.claims).toMatchObject({ sub: 'a2a-client@clients', aud: 'https://staff0/agent', scope: 'read:employee_status', gty: 'client-credentials' });
  });

  it('follows a denied task as it arrives, and lists both with their final states', async () => {
    expect((await postSpans(url, exportRequestOf(denied, denied.hops, startedAt + 10_000))).status).toBe(200);
    // "follow new tasks" is on: the newest task is drawn without a click.
    const arrows = await renderedArrows(page, url, denied.taskId, { atLeast: denied.hops.length });
    expect(summary(arrows).slice(5)).toEqual([
      'identity→employee push to Guardian',
      'agent→identity POST /oauth/token (CIBA poll) !',
      'employee→identity denies',
      'agent→identity POST /oauth/token (CIBA poll) !',
      'agent→client task REJECTED [REJECTED]',
    ]);
    await expect.poll(() => listedTasks(page), FLOW_CONSOLE_WAIT).toEqual([
      { id: denied.taskId, state: 'REJECTED', employee: 'jsmith@staff0.com' },
      { id: approved.taskId, state: 'COMPLETED', employee: 'jdoe@staff0.com' },
    ]);
    const deniedPoll = await openHopDetails(page, 8);
    expect(deniedPoll.fields).toMatchObject({ status: '400', 'poll-count': '2', 'auth-req-id': 'ZyXwVuTs…' });
    expect(deniedPoll.fields.error).toContain('access_denied');

    // Choosing the other task from the list draws it again.
    await page.locator(`[data-testid="task"][data-task-id="${approved.taskId}"]`).click();
    const again = await renderedArrows(page, url, approved.taskId, { atLeast: approved.hops.length });
    expect(again.at(-1)?.state).toBe('COMPLETED');
    expect(await page.locator('[data-testid="follow"]').isChecked()).toBe(false);
  });

  it('holds no raw JWT or secret anywhere in its DOM, and breaks no CSP rule', async () => {
    for (const index of [0, 8, 9]) await openHopDetails(page, index);
    expect(await credentialsInDom(page, Object.values(PLANTED))).toEqual([]);
    expect(cspViolations).toEqual([]);
    expect(pageErrors).toEqual([]);
    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  });

  it('fits a narrow window, beside the Guardian phone', async () => {
    await page.setViewportSize({ width: 560, height: 900 });
    const arrows = await renderedArrows(page, url, approved.taskId, { atLeast: approved.hops.length });
    expect(arrows).toHaveLength(approved.hops.length);
    expectLinesOnLanes(arrows);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await page.screenshot({ path: SCREENSHOT.replace(/\.png$/, '-narrow.png'), fullPage: true });
  });
});
