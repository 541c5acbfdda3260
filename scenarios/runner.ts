import { randomUUID } from 'node:crypto';
import type { Browser, Locator } from 'playwright';
import * as oidc from 'openid-client';
import { runTurn, type TaskStateName, type TurnEvent } from '../sandbox/conversation.ts';
import type { ConsentRequestView } from '../mock-guardian/consent-requests.ts';
import { fillPersonas, personasIn, type Persona, type PersonaKey } from './personas.ts';
import type {
  ConversationScenario,
  CrossEmployeeReadScenario,
  EmployeeStep,
  Observation,
  RefusedCallScenario,
  RefusedConsentScenario,
  Scenario,
} from './scenario.ts';
import type { ScenarioStack } from './stack.ts';
import { managementAudienceOf } from '../sandbox/config.ts';

/**
 * Plays one scenario against a stack and reports what the caller observed.
 * Locally the employee acts through the Guardian page (a real click in
 * Chromium) or the control API; against Auth0 a person does, prompted on the terminal.
 */

export interface RunContext {
  stack: ScenarioStack;
  /** A browser for `via: 'browser'` steps (local only). */
  browser?: () => Promise<Browser>;
  /** Tells the person at the terminal what to do (auth0 mode). */
  prompt?: (line: string) => void;
  /** Longest a scenario may take before it counts as failed. */
  timeoutMs?: number;
}

/** Why a scenario cannot run on this stack, or undefined when it can. */
export function skipReason(scenario: Scenario, stack: Pick<ScenarioStack, 'mode' | 'personas'>): string | undefined {
  if (stack.mode === 'auth0' && scenario.requires?.localTenant) return scenario.requires.localTenant;
  const wanted = new Set<PersonaKey>();
  if (scenario.kind === 'conversation') {
    for (const c of scenario.conversations) for (const t of c.turns) personasIn(t).forEach((p) => wanted.add(p));
    for (const step of scenario.employee) wanted.add(step.user);
  } else if (scenario.kind === 'refused-call') {
    personasIn(scenario.question).forEach((p) => wanted.add(p));
  } else if (scenario.kind === 'refused-consent') {
    wanted.add(scenario.user);
  } else {
    wanted.add(scenario.employee.user);
    wanted.add(scenario.reading);
  }
  const missing = [...wanted].filter((p) => !stack.personas[p]);
  return missing.length > 0 ? `no test user configured for ${missing.join(', ')} (see README, "Scenarios against Auth0")` : undefined;
}

function persona(stack: ScenarioStack, key: PersonaKey): Persona {
  const found = stack.personas[key];
  if (!found) throw new Error(`No persona ${key}`);
  return found;
}

/** What a scenario run saw, next to what it expected. */
type Findings = Pick<Observation, 'observed' | 'expected' | 'answers'>;

class Failure {
  readonly problems: string[] = [];
  add(problem: string): void {
    this.problems.push(problem);
  }
}

function timeoutAfter(ms: number, what: string): { promise: Promise<never>; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms);
  });
  promise.catch(() => undefined);
  return { promise, cancel: () => clearTimeout(timer) };
}

export async function runScenario(scenario: Scenario, ctx: RunContext): Promise<Observation> {
  const started = performance.now();
  const base = { scenario: scenario.name, observed: [], expected: [], answers: [] } satisfies Findings & { scenario: string };
  const skip = skipReason(scenario, ctx.stack);
  if (skip) return { ...base, status: 'skipped', problems: [], skipReason: skip, durationMs: 0 };
  const failure = new Failure();
  const limit = timeoutAfter(ctx.timeoutMs ?? 45_000, `"${scenario.name}"`);
  try {
    const run =
      scenario.kind === 'conversation'
        ? runConversations(scenario, ctx, failure, base)
        : scenario.kind === 'refused-call'
          ? runRefusedCall(scenario, ctx, failure, base)
          : scenario.kind === 'refused-consent'
            ? runRefusedConsent(scenario, ctx, failure, base)
            : runCrossEmployeeRead(scenario, ctx, failure, base);
    await Promise.race([run, limit.promise]);
  } catch (error) {
    failure.add(error instanceof Error ? error.message : String(error));
  } finally {
    limit.cancel();
  }
  return {
    ...base,
    status: failure.problems.length === 0 ? 'passed' : 'failed',
    problems: failure.problems,
    durationMs: Math.round(performance.now() - started),
  };
}

interface Tracked {
  states: TaskStateName[];
  answer: string;
  taskId: string | undefined;
  /** Resolves when the task first reaches AUTH_REQUIRED. */
  authRequired: Promise<string>;
  /** Resolves when the task leaves AUTH_REQUIRED after having reached it. */
  leftAuthRequired: Promise<void>;
  personas: PersonaKey[];
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

async function runConversations(
  scenario: ConversationScenario,
  ctx: RunContext,
  failure: Failure,
  out: Findings,
): Promise<void> {
  const { stack } = ctx;
  const tracked: Tracked[] = [];
  const conversations = scenario.conversations.map(async (spec) => {
    const reached = deferred<string>();
    const left = deferred<void>();
    const entry: Tracked = {
      states: [],
      answer: '',
      taskId: undefined,
      authRequired: reached.promise,
      leftAuthRequired: left.promise,
      personas: spec.turns.flatMap((t) => personasIn(t)),
    };
    tracked.push(entry);
    const { client } = await stack.services.connect();
    let sawAuth = false;
    const onEvent = (event: TurnEvent) => {
      if (event.kind !== 'state') return;
      entry.taskId = event.taskId;
      if (entry.states.at(-1) !== event.state) entry.states.push(event.state);
      if (event.state === 'AUTH_REQUIRED' && !sawAuth) {
        sawAuth = true;
        reached.resolve(event.taskId);
        if (spec.cancelWhilePending) {
          client.cancelTask({ tenant: '', id: event.taskId, metadata: undefined }).catch((error: Error) => failure.add(`CancelTask failed: ${error.message}`));
        }
      } else if (sawAuth && event.state !== 'AUTH_REQUIRED') {
        left.resolve();
      }
    };
    let ids: { contextId?: string; taskId?: string } = {};
    for (const turn of spec.turns) {
      const result = await runTurn(client, fillPersonas(turn, stack.personas), ids, { onEvent });
      entry.answer = result.answer;
      if (result.finalState !== 'INPUT_REQUIRED') break;
      ids = { ...(result.contextId ? { contextId: result.contextId } : {}), ...(result.taskId ? { taskId: result.taskId } : {}) };
    }
    left.resolve();
    return entry;
  });

  const handled = new Set<string>();
  const employee = (async () => {
    for (const step of scenario.employee) {
      await actAsEmployee(step, scenario, ctx, tracked, handled, failure);
    }
  })();

  // The employee's failure (no push arrived, no browser) ends the scenario at once rather than leaving it waiting.
  const [results] = await Promise.all([Promise.all(conversations), employee]);

  results.forEach((entry, i) => {
    const spec = scenario.conversations[i]!;
    out.observed.push(entry.states.join(' → '));
    out.expected.push(spec.states.join(' → '));
    out.answers.push(entry.answer);
    const label = scenario.conversations.length > 1 ? `conversation ${i + 1}: ` : '';
    if (entry.states.join(',') !== spec.states.join(',')) {
      failure.add(`${label}states ${entry.states.join(' → ')}, expected ${spec.states.join(' → ')}`);
    }
    if (spec.answer && !spec.answer.test(entry.answer)) failure.add(`${label}answer "${entry.answer}" does not match ${spec.answer}`);
    if (spec.notAnswer?.test(entry.answer)) failure.add(`${label}answer "${entry.answer}" must not match ${spec.notAnswer}`);
  });

  const local = stack.local;
  if (local) {
    for (const key of scenario.noPushFor ?? []) {
      const userId = persona(stack, key).userId;
      if (userId && (await local.consentRequests({ userId })).length > 0) failure.add(`a push request was sent to ${key}`);
    }
    if (scenario.conversations.some((c) => c.cancelWhilePending)) await checkPollingStopped(stack, failure);
  }
}

/** After a cancel no poll may reach the tenant: watch the request for a few intervals. */
async function checkPollingStopped(stack: ScenarioStack, failure: Failure): Promise<void> {
  const local = stack.local!;
  const [request] = await local.consentRequests();
  if (!request) {
    failure.add('no consent request was created before the cancel');
    return;
  }
  const before = request.polls;
  await new Promise((r) => setTimeout(r, stack.pollInterval * 2_500));
  const after = (await local.consentRequests()).find((r) => r.id === request.id)?.polls ?? -1;
  if (after !== before) failure.add(`the agent kept polling after the cancel (${before} → ${after} polls)`);
}

async function actAsEmployee(
  step: EmployeeStep,
  scenario: ConversationScenario,
  ctx: RunContext,
  tracked: Tracked[],
  handled: Set<string>,
  failure: Failure,
): Promise<void> {
  const { stack } = ctx;
  const who = persona(stack, step.user);
  const local = stack.local;
  if (!local) {
    // Against Auth0 the person with the phone acts; we wait for the push to be sent, then for its outcome.
    const conversation = tracked.find((t) => t.personas.includes(step.user)) ?? tracked[0];
    if (!conversation) return;
    await conversation.authRequired;
    ctx.prompt?.(`▶ [${scenario.name}] ${employeeInstruction(step, scenario, who)}.`);
    await conversation.leftAuthRequired;
    return;
  }
  const request = await local.pendingRequestFor(who.userId!, { except: handled, timeoutMs: 20_000 });
  handled.add(request.id);
  if (step.via === 'api') {
    await local.decide(request.id, step.decision as 'approve' | 'deny');
  } else if (step.via === 'expire-now') {
    await local.decide(request.id, 'expire');
  } else if (step.via === 'browser') {
    await onGuardianPage(step, request, who, scenario, ctx, failure);
  } else if (step.via === 'mailbox') {
    await onMailboxPage(step, request, who, scenario, ctx, failure);
  }
  if (scenario.showsAuthorizationDetails) checkAuthorizationDetails(request, who, failure);
}

/**
 * What the person must do against Auth0: Auth0 sends a request that may live up to 300 s as a Guardian
 * push, and a longer one by email ("Email notifications with CIBA").
 */
export function employeeInstruction(step: EmployeeStep, scenario: ConversationScenario, who: Persona): string {
  const verb = step.decision === 'approve' ? 'APPROVE' : step.decision === 'deny' ? 'DENY' : 'IGNORE';
  if ((scenario.requestedExpiry ?? 0) > 300) {
    const act = step.decision === 'ignore' ? 'leave the email from Auth0 unopened (let it expire)' : `open the email from Auth0, follow its link, sign in as ${who.email} and ${verb} the request`;
    return `In ${who.email}'s inbox: ${act} now`;
  }
  const act = step.decision === 'ignore' ? 'IGNORE the Guardian push (let it expire)' : `${verb} the Guardian push now`;
  return `On ${who.email}'s phone: ${act}`;
}

/** The agent's RFC 9396 details name the employee and the A2A caller that asks (agent/authorization-details.ts). */
function checkAuthorizationDetails(request: ConsentRequestView, who: Persona, failure: Failure): void {
  const [detail, ...more] = request.authorization_details ?? [];
  const properties = (detail?.properties ?? {}) as Record<string, { value?: unknown } | undefined>;
  if (!detail || more.length > 0) failure.add('the consent request carries no single authorization_details object');
  else if (properties.employee?.value !== who.userId) failure.add(`the authorization_details do not name ${who.userId}`);
  else if (typeof properties.requester?.value !== 'string' || properties.requester.value === '') {
    failure.add('the authorization_details do not name the application that asks');
  }
}

/** The page shows the details as text: the employee and the caller's application, in labelled rows. */
async function checkDetailsShown(scope: Locator, request: ConsentRequestView, who: Persona, failure: Failure): Promise<void> {
  const employee = await scope.locator('[data-testid="authorization-detail"] dd[data-field="employee"]').first().textContent();
  if (employee !== who.userId) failure.add(`the page shows the authorization details' employee as "${employee}", not ${who.userId}`);
  const requester = await scope.locator('[data-testid="authorization-detail"] dd[data-field="requester"]').first().textContent();
  const expected = (request.authorization_details?.[0]?.properties as Record<string, { value?: unknown }> | undefined)?.requester?.value;
  if (requester !== expected) failure.add(`the page shows the requester as "${requester}", not "${String(expected)}"`);
}

async function onMailboxPage(
  step: EmployeeStep,
  request: ConsentRequestView,
  who: Persona,
  scenario: ConversationScenario,
  ctx: RunContext,
  failure: Failure,
): Promise<void> {
  if (!ctx.browser || !ctx.stack.guardianUrl) throw new Error('This scenario needs a browser for the mailbox page');
  if (request.channel !== 'email') failure.add(`the request went by ${request.channel ?? 'guardian-push'}, not by email`);
  const browser = await ctx.browser();
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const url = new URL('mailbox', ctx.stack.guardianUrl);
    url.searchParams.set('user_id', who.userId!);
    await page.goto(url.href);
    await page.locator(`[data-testid="message"][data-request-id="${request.id}"] [data-testid="message-link"]`).click();
    await page.getByTestId('sign-in-email').fill(who.email);
    await page.getByTestId('sign-in-button').click();
    const consent = page.getByTestId('consent');
    await consent.waitFor();
    const binding = await consent.getByTestId('binding-message').textContent();
    if (binding !== request.binding_message) failure.add(`the consent page shows the binding message "${binding}", not "${request.binding_message}"`);
    if (scenario.showsAuthorizationDetails) await checkDetailsShown(consent, request, who, failure);
    await consent.getByTestId(step.decision === 'approve' ? 'approve' : 'deny').click();
    await consent.getByTestId('request-status').filter({ hasText: step.decision === 'approve' ? 'approved' : 'denied' }).waitFor();
  } finally {
    await context.close();
  }
}

async function onGuardianPage(
  step: EmployeeStep,
  request: ConsentRequestView,
  who: Persona,
  scenario: ConversationScenario,
  ctx: RunContext,
  failure: Failure,
): Promise<void> {
  if (!ctx.browser || !ctx.stack.guardianUrl) throw new Error('This scenario needs a browser for the Guardian page');
  const browser = await ctx.browser();
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const url = new URL(ctx.stack.guardianUrl);
    url.searchParams.set('user_id', who.userId!);
    await page.goto(url.href);
    await page.locator('[data-testid="connection"][data-state="open"]').waitFor();
    const card = page.locator(`[data-testid="request"][data-request-id="${request.id}"]`);
    await card.waitFor();
    const binding = await card.getByTestId('binding-message').textContent();
    if (binding !== request.binding_message) failure.add(`the page shows the binding message "${binding}", not "${request.binding_message}"`);

    if (scenario.pageShowsLiterally !== undefined) {
      const shown = await page.getByTestId('user-name').textContent();
      if (shown !== scenario.pageShowsLiterally) failure.add(`the page shows the user name as "${shown}", not literally`);
      const injected = await page.evaluate(() => (window as unknown as { __injected?: unknown }).__injected);
      if (injected !== undefined) failure.add('markup from the tenant ran on the Guardian page');
      if ((await page.locator('img').count()) > 0) failure.add('markup from the tenant became an element on the Guardian page');
    }

    if (scenario.showsAuthorizationDetails) await checkDetailsShown(card, request, who, failure);

    if (step.decision === 'ignore') {
      await page.locator(`[data-testid="request"][data-request-id="${request.id}"][data-status="expired"]`).waitFor({ timeout: 30_000 });
      return;
    }
    await card.getByRole('button', { name: step.decision === 'approve' ? 'Approve' : 'Deny' }).click();
    const status = step.decision === 'approve' ? 'approved' : 'denied';
    await page.locator(`[data-testid="request"][data-request-id="${request.id}"][data-status="${status}"]`).waitFor();
  } finally {
    await context.close();
  }
}

function challengeError(header: string | null): string | undefined {
  return header ? /error="([^"]+)"/.exec(header)?.[1] : undefined;
}

async function runRefusedCall(
  scenario: RefusedCallScenario,
  ctx: RunContext,
  failure: Failure,
  out: Findings,
): Promise<void> {
  const { stack } = ctx;
  const token = await stack.tokenFor(scenario.caller);
  const response = await fetch(await stack.jsonRpcUrl(), {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'A2A-Version': '1.0',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'SendMessage',
      params: {
        message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text: fillPersonas(scenario.question, stack.personas) }] },
      },
    }),
  });
  const challenge = response.headers.get('www-authenticate');
  const error = challengeError(challenge);
  out.observed.push(`HTTP ${response.status}, ${challenge ? `Bearer${error ? ` error="${error}"` : ''}` : 'no WWW-Authenticate'}`);
  out.expected.push(`HTTP ${scenario.status}, Bearer${scenario.error ? ` error="${scenario.error}"` : ''}`);
  out.answers.push(await response.text());
  if (response.status !== scenario.status) failure.add(`HTTP ${response.status}, expected ${scenario.status}`);
  if (!challenge?.startsWith('Bearer ')) failure.add('no Bearer WWW-Authenticate challenge (RFC 6750 §3)');
  if (error !== scenario.error) failure.add(`WWW-Authenticate error ${error ?? 'none'}, expected ${scenario.error ?? 'none'}`);
  if (stack.local && (await stack.local.consentRequests()).length > 0) failure.add('a refused call still caused a push request');
}

async function userIdOf(stack: ScenarioStack, key: PersonaKey): Promise<string> {
  const who = persona(stack, key);
  if (who.userId) return who.userId;
  // Against Auth0: the Management API, as the agent itself finds people.
  const config = await relyingParty(stack);
  const token = await oidc.clientCredentialsGrant(config, { audience: managementAudienceOf(stack.issuer) });
  const url = new URL('users-by-email', managementAudienceOf(stack.issuer));
  url.searchParams.set('email', who.email);
  const users = (await (await fetch(url, { headers: { authorization: `Bearer ${token.access_token}` } })).json()) as { user_id: string }[];
  if (!users[0]) throw new Error(`No user with the email ${who.email}`);
  return users[0].user_id;
}

async function relyingParty(stack: ScenarioStack): Promise<oidc.Configuration> {
  const insecure = stack.issuer.startsWith('http:') ? { execute: [oidc.allowInsecureRequests] } : {};
  return oidc.discovery(new URL(stack.issuer), stack.hrAgentClient.clientId, stack.hrAgentClient.clientSecret, undefined, insecure);
}

async function runRefusedConsent(
  scenario: RefusedConsentScenario,
  ctx: RunContext,
  failure: Failure,
  out: Findings,
): Promise<void> {
  const { stack } = ctx;
  const response = await fetch(new URL('bc-authorize', stack.issuer), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({
      client_id: stack.hrAgentClient.clientId,
      client_secret: stack.hrAgentClient.clientSecret,
      scope: 'openid read:employee',
      audience: 'https://staff0/api',
      login_hint: JSON.stringify({ format: 'iss_sub', iss: stack.issuer, sub: await userIdOf(stack, scenario.user) }),
      binding_message: scenario.bindingMessage,
    }),
  });
  const body = (await response.json().catch(() => ({}))) as { error?: string; error_description?: string };
  out.observed.push(`HTTP ${response.status}, error ${body.error ?? 'none'}`);
  out.expected.push(`HTTP 400, error ${scenario.error}`);
  out.answers.push(body.error_description ?? '');
  if (response.status !== 400) failure.add(`HTTP ${response.status}, expected 400`);
  if (body.error !== scenario.error) failure.add(`error ${body.error ?? 'none'}, expected ${scenario.error}`);
  if (stack.local && (await stack.local.consentRequests()).length > 0) failure.add('a refused request still reached the employee');
}

async function runCrossEmployeeRead(
  scenario: CrossEmployeeReadScenario,
  ctx: RunContext,
  failure: Failure,
  out: Findings,
): Promise<void> {
  const { stack } = ctx;
  const consenting = await userIdOf(stack, scenario.employee.user);
  const reading = await userIdOf(stack, scenario.reading);
  const config = await relyingParty(stack);
  const started = await oidc.initiateBackchannelAuthentication(config, {
    scope: 'openid read:employee',
    audience: 'https://staff0/api',
    login_hint: JSON.stringify({ format: 'iss_sub', iss: stack.issuer, sub: consenting }),
    binding_message: 'Scenario: consent is per employee',
  });
  const decided = (async () => {
    if (stack.local) {
      const request = await stack.local.pendingRequestFor(consenting);
      await stack.local.decide(request.id, 'approve');
    } else {
      ctx.prompt?.(`▶ [${scenario.name}] On ${persona(stack, scenario.employee.user).email}'s phone: APPROVE the Guardian push now.`);
    }
  })();
  const tokens = await oidc.pollBackchannelAuthenticationGrant(config, started);
  await decided;
  const read = async (id: string) =>
    fetch(new URL(`employees/${encodeURIComponent(id)}`, `${stack.services.hrApiUrl}/`), {
      headers: { authorization: `Bearer ${tokens.access_token}` },
    });
  const own = await read(consenting);
  const other = await read(reading);
  const otherError = challengeError(other.headers.get('www-authenticate'));
  out.observed.push(`own record HTTP ${own.status}; other's record HTTP ${other.status}${otherError ? ` ${otherError}` : ''}`);
  out.expected.push("own record HTTP 200; other's record HTTP 403 insufficient_scope");
  out.answers.push(await other.text());
  if (own.status !== 200) failure.add(`the consenting employee's own record answered ${own.status}`);
  if (other.status !== 403 || otherError !== 'insufficient_scope') {
    failure.add(`another employee's record answered ${other.status} ${otherError ?? ''} with the consenting employee's token`);
  }
}
