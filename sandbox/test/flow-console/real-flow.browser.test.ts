import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import tenantFile from '../../../mock-guardian/tenant.json' with { type: 'json' };
import { launchChromium } from '../../../scenarios/browser.ts';
import { EMPLOYMENT_VERIFICATION } from '../../../agent/authorization-details.ts';
import { LOCAL_TENANT_DEFAULTS } from '../../config.ts';
import { runTurn, type TurnResult } from '../../conversation.ts';
import { createFlowConsole, type FlowConsole } from '../../flow-console/server.ts';
import { startLocalStack, type LocalStack } from '../../local-stack.ts';
import { createTelemetry, noTelemetry } from '../../telemetry/setup.ts';
import { credentialsInDom, FLOW_CONSOLE_WAIT, listedTasks, openHopDetails, renderedArrows, type RenderedArrow } from './console-view.ts';

/**
 * The flow console fed by a real flow: every service of an in-process
 * sandbox traces to the console, an employee approves one question and
 * another denies one, and the console in Chromium draws both tasks' arrows in
 * order, with their states and the decoded claims of the tokens involved,
 * and holds no raw token or secret anywhere in its DOM.
 */

const SCREENSHOT = fileURLToPath(new URL('../../../reports/flow-console-real-flow.png', import.meta.url));
const SECRETS = tenantFile.applications.map((app) => app.client_secret).filter((s): s is string => typeof s === 'string');

let flowConsole: FlowConsole;
let consoleUrl: string;
let stack: LocalStack;
let browser: Browser;
let page: Page;
let approved: TurnResult & { taskId: string };
let denied: TurnResult & { taskId: string };

async function ask(email: string, userId: string, decision: 'approve' | 'deny', on: LocalStack = stack): Promise<TurnResult & { taskId: string }> {
  const { client } = await on.connect();
  let deciding: Promise<unknown> | undefined;
  const turn = await runTurn(client, `Does the person with email ${email} work at Staff0?`, {}, {
    signal: AbortSignal.timeout(30_000),
    onEvent(event) {
      if (event.kind === 'state' && event.state === 'AUTH_REQUIRED' && !deciding) {
        deciding = on.pendingRequestFor(userId).then((pending) => on.decide(pending.id, decision));
      }
    },
  });
  await deciding;
  const { taskId } = turn;
  if (taskId === undefined) throw new Error(`The turn about ${email} got no task`);
  return { ...turn, taskId };
}

/**
 * Waits until the shown task has an arrow for each label and a badge for each state: each service exports
 * its spans in its own batches, so the hops of one task reach the console in no set order.
 */
async function waitForArrows(labels: readonly string[], states: readonly string[] = []): Promise<void> {
  const diagram = page.locator('[data-testid="diagram"]');
  for (const label of labels) await diagram.locator('[data-testid="hop-label"]', { hasText: label }).first().waitFor(FLOW_CONSOLE_WAIT);
  for (const state of states) await diagram.locator('[data-testid="hop-state"]', { hasText: state }).first().waitFor(FLOW_CONSOLE_WAIT);
}

/** Index of the first arrow after `from` matching `what`; -1 when none. */
function indexOf(arrows: RenderedArrow[], what: Partial<Pick<RenderedArrow, 'from' | 'to' | 'label' | 'state'>>, from = 0): number {
  return arrows.findIndex(
    (a, i) => i >= from && Object.entries(what).every(([key, value]) => a[key as keyof typeof what] === value),
  );
}

/** The arrows appear in this order (others may come between them). */
function expectInOrder(arrows: RenderedArrow[], steps: Partial<Pick<RenderedArrow, 'from' | 'to' | 'label' | 'state'>>[]): void {
  let at = 0;
  for (const step of steps) {
    const found = indexOf(arrows, step, at);
    expect(found, `${JSON.stringify(step)} after arrow ${at} in ${arrows.map((a) => `${a.from}→${a.to} ${a.label}`).join(' | ')}`).toBeGreaterThanOrEqual(0);
    at = found + 1;
  }
}

beforeAll(async () => {
  flowConsole = createFlowConsole();
  consoleUrl = await flowConsole.listen(0, '127.0.0.1');
  const exportTo = [`${consoleUrl}/v1/traces`];
  stack = await startLocalStack({
    tenantSettings: { cibaInterval: 1 },
    telemetry: (service) => createTelemetry({ service, exportTo, batchDelayMs: 20 }),
  });
  approved = await ask('jdoe@staff0.com', 'auth0|jdoe', 'approve');
  denied = await ask('jsmith@staff0.com', 'auth0|jsmith', 'deny');
  browser = await launchChromium();
  page = await (await browser.newContext({ viewport: { width: 1400, height: 1000 } })).newPage();
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await stack?.close();
  await flowConsole?.close();
});

describe('the flow console, fed by a real flow', { timeout: 60_000 }, () => {
  it('draws the approved question from the A2A request to the answer, in order', async () => {
    expect(approved.finalState).toBe('COMPLETED');
    await renderedArrows(page, consoleUrl, approved.taskId);
    await waitForArrows(['SendMessage', 'GET /api/v2/users-by-email', 'POST /bc-authorize', 'push to Guardian', 'approves', 'POST /oauth/token (CIBA)', 'GET /employees/:id'], ['AUTH_REQUIRED', 'COMPLETED']);
    const all = await renderedArrows(page, consoleUrl, approved.taskId);
    expectInOrder(all, [
      { from: 'client', to: 'agent', label: 'SendMessage' },
      { from: 'agent', to: 'identity', label: 'GET /api/v2/users-by-email' },
      { from: 'agent', to: 'identity', label: 'POST /bc-authorize' },
      { from: 'identity', to: 'employee', label: 'push to Guardian' },
      { from: 'agent', to: 'identity', label: 'POST /oauth/token (CIBA)' },
      { from: 'agent', to: 'hr-api', label: 'GET /employees/:id' },
      { from: 'agent', to: 'client', state: 'COMPLETED' },
    ]);
    expect(indexOf(all, { from: 'employee', to: 'identity', label: 'approves' })).toBeGreaterThan(indexOf(all, { label: 'push to Guardian' }));
    // The agent starts waiting for the answer as it says AUTH_REQUIRED: those two start in either order.
    const authRequired = indexOf(all, { from: 'agent', to: 'client', state: 'AUTH_REQUIRED' });
    expect(authRequired).toBeGreaterThan(indexOf(all, { label: 'POST /bc-authorize' }));
    expect(authRequired).toBeLessThan(indexOf(all, { label: 'GET /employees/:id' }));
    expect(all.every((a) => /\+\d+\.\d{3} s/.test(a.timing)), all.map((a) => a.timing).join(' | ')).toBe(true);
  });

  it("shows the approved token's decoded claims when its hop is clicked, never the token", async () => {
    const arrows = await renderedArrows(page, consoleUrl, approved.taskId, { atLeast: 12 });
    const details = await openHopDetails(page, indexOf(arrows, { label: 'POST /oauth/token (CIBA)' }));
    expect(details.fields['auth-req-id']).toMatch(/^.{8}…$/);
    expect(Number(details.fields['poll-count'])).toBeGreaterThanOrEqual(1);
    const token = details.tokens.access_token;
    expect(token?.header.alg).toBe('RS256');
    expect(token?.claims.sub).toBe('auth0|jdoe');
    expect(token?.claims.aud).toContain(LOCAL_TENANT_DEFAULTS.apiAudience);
    expect(token?.claims.scope).toContain('read:employee');
    expect(token?.claims.authorization_details).toContain(EMPLOYMENT_VERIFICATION);

    // The README's picture of the console: a real approved task with its approved token open (reports/ is git-ignored).
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    const request = await openHopDetails(page, indexOf(arrows, { label: 'SendMessage' }));
    expect(request.tokens.access_token?.claims.azp).toBe('a2a-client');
  });

  it('draws the denied question ending REJECTED after the employee denies', async () => {
    expect(denied.finalState).toBe('REJECTED');
    await renderedArrows(page, consoleUrl, denied.taskId);
    await waitForArrows(['SendMessage', 'POST /bc-authorize', 'denies'], ['REJECTED']);
    const arrows = await renderedArrows(page, consoleUrl, denied.taskId);
    expectInOrder(arrows, [
      { from: 'client', to: 'agent', label: 'SendMessage' },
      { from: 'agent', to: 'identity', label: 'POST /bc-authorize' },
      { from: 'employee', to: 'identity', label: 'denies' },
      { from: 'agent', to: 'client', state: 'REJECTED' },
    ]);
    expect(indexOf(arrows, { to: 'hr-api' })).toBe(-1);
  });

  it('lists both tasks with their final states, and its DOM holds no token or secret', async () => {
    await page.locator(`[data-testid="task"][data-task-id="${approved.taskId}"] [data-testid="task-state-badge"]`, { hasText: 'COMPLETED' }).first().waitFor(FLOW_CONSOLE_WAIT);
    await page.locator(`[data-testid="task"][data-task-id="${denied.taskId}"] [data-testid="task-state-badge"]`, { hasText: 'REJECTED' }).first().waitFor(FLOW_CONSOLE_WAIT);
    const tasks = await listedTasks(page);
    expect(tasks.find((t) => t.id === approved.taskId)?.state).toBe('COMPLETED');
    expect(tasks.find((t) => t.id === denied.taskId)?.state).toBe('REJECTED');
    expect(await credentialsInDom(page, SECRETS)).toEqual([]);
  });
});

describe('the flow console when the identity backend sends no spans (as Auth0 does)', { timeout: 90_000 }, () => {
  it("draws the agent's side, with the employee's decision as the agent's token poll saw it", async () => {
    const exportTo = [`${consoleUrl}/v1/traces`];
    const silentBackend = await startLocalStack({
      tenantSettings: { cibaInterval: 1 },
      telemetry: (service) => (service === 'tenant' ? noTelemetry(service) : createTelemetry({ service, exportTo, batchDelayMs: 20 })),
    });
    try {
      const turn = await ask('akhan@staff0.com', 'auth0|akhan', 'approve', silentBackend);
      expect(turn.finalState).toBe('COMPLETED');
      await renderedArrows(page, consoleUrl, turn.taskId);
      await waitForArrows(['POST /bc-authorize', 'POST /oauth/token (CIBA)', 'GET /employees/:id'], ['COMPLETED']);
      const arrows = await renderedArrows(page, consoleUrl, turn.taskId);
      expect(arrows.filter((a) => a.from === 'employee' || a.to === 'employee')).toEqual([]);
      expectInOrder(arrows, [
        { from: 'agent', to: 'identity', label: 'POST /bc-authorize' },
        { from: 'agent', to: 'identity', label: 'POST /oauth/token (CIBA)' },
        { from: 'agent', to: 'hr-api', label: 'GET /employees/:id' },
        { from: 'agent', to: 'client', state: 'COMPLETED' },
      ]);
      const wait = indexOf(arrows, { label: 'POST /oauth/token (CIBA)' });
      expect(arrows[wait]?.timing).toMatch(/· approved$/);
      const details = await openHopDetails(page, wait);
      expect(details.fields.outcome).toBe('approved');
      expect(details.tokens.access_token?.claims.sub).toBe('auth0|akhan');
    } finally {
      await silentBackend.close();
    }
  });
});
