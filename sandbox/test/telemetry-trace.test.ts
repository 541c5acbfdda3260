import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import tenantFile from '../../mock-guardian/tenant.json' with { type: 'json' };
import { LOCAL_TENANT_DEFAULTS } from '../config.ts';
import { runTurn, type TurnResult } from '../conversation.ts';
import { startLocalStack, type LocalStack } from '../local-stack.ts';
import { HOP } from '../telemetry/hops.ts';
import { createTelemetry, type Telemetry } from '../telemetry/setup.ts';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from './otlp-receiver.ts';

/**
 * One approved question, every service tracing to a small OTLP/HTTP JSON
 * receiver: the task is one trace from the caller's turn through the agent,
 * the identity backend and the HR API, its hops in the order they happened,
 * and nothing sent anywhere holds a secret or a token.
 */

const QUESTION = 'Does John Doe with email jdoe@staff0.com work at Staff0?';
const JWT_LIKE = /[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/;
const SECRETS = tenantFile.applications.map((app) => app.client_secret).filter((s): s is string => typeof s === 'string');

let receiver: OtlpReceiver;
let stack: LocalStack;
let caller: Telemetry;
let turn: TurnResult;
let taskTrace: ReceivedSpan[];

const arrow = (span: ReceivedSpan) => `${span.attributes[HOP.from]} → ${span.attributes[HOP.to]}: ${span.attributes[HOP.label]}`;
const isHop = (span: ReceivedSpan) => span.attributes[HOP.from] !== undefined;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  const exportTo = [receiver.url];
  stack = await startLocalStack({
    tenantSettings: { cibaInterval: 1 },
    ciba: { deliveryMode: 'ping' },
    telemetry: (service) => createTelemetry({ service, exportTo, batchDelayMs: 20 }),
  });
  caller = createTelemetry({ service: 'a2a-client', exportTo, batchDelayMs: 20 });
  const { client } = await stack.connect();
  // The caller traces its turn; the agent's task continues that trace (W3C traceparent on each request).
  let approving: Promise<unknown> | undefined;
  turn = await runTurn(client, QUESTION, {}, {
    telemetry: caller,
    signal: AbortSignal.timeout(30_000),
    onEvent(event) {
      if (event.kind === 'state' && event.state === 'AUTH_REQUIRED' && !approving) {
        approving = stack.pendingRequestFor('auth0|jdoe').then((pending) => stack.decide(pending.id, 'approve'));
      }
    },
  });
  await approving;
  await receiver.waitFor((spans) => spans.some((s) => s.service === 'a2a-client' && s.attributes[HOP.taskId] === turn.taskId));
  const traceId = receiver.spans.find((s) => s.service === 'a2a-client')?.traceId;
  await receiver.waitFor((spans) => {
    const ours = spans.filter((s) => s.traceId === traceId);
    return (
      ours.some((s) => s.attributes[HOP.taskState] === 'COMPLETED' && isHop(s)) &&
      ours.some((s) => s.service === 'hr-api') &&
      ours.some((s) => s.name === 'POST /ciba/notify') &&
      ours.some((s) => s.service === 'a2a-client')
    );
  });
  taskTrace = receiver.spans.filter((s) => s.traceId === traceId);
}, 60_000);

afterAll(async () => {
  await stack?.close();
  await caller?.shutdown();
  await receiver?.close();
});

describe('one task, one trace', () => {
  it('answers the question', () => {
    expect(turn.finalState).toBe('COMPLETED');
    expect(turn.answer).toMatch(/^Yes\b/);
  });

  it('covers the caller, the agent, the identity backend and the HR API in one trace', () => {
    const services = new Set(taskTrace.map((s) => s.service));
    expect([...services].sort()).toEqual(['a2a-client', 'hr-agent', 'hr-api', 'tenant']);
    const taskIds = new Set(taskTrace.filter(isHop).map((s) => s.attributes[HOP.taskId]));
    expect(taskIds).toEqual(new Set([turn.taskId]));
    // The tenant and the HR API learn the task from W3C Baggage.
    expect(taskTrace.find((s) => s.service === 'hr-api')?.attributes[HOP.taskId]).toBe(turn.taskId);
  });

  it('draws the hops in the order they happened', () => {
    const hops = taskTrace.filter(isHop).sort((a, b) => (a.startNs < b.startNs ? -1 : a.startNs > b.startNs ? 1 : 0));
    expect(hops.map(arrow)).toEqual([
      'client → agent: SendMessage',
      'agent → agent: generateContent gemini-2.5-flash',
      'agent → identity: GET /.well-known/openid-configuration',
      'agent → identity: POST /oauth/token (client credentials)',
      'agent → identity: GET /api/v2/users-by-email',
      'agent → agent: generateContent gemini-2.5-flash',
      'agent → identity: POST /bc-authorize',
      'identity → employee: push to Guardian',
      'agent → client: AUTH_REQUIRED',
      'agent → identity: POST /oauth/token (CIBA)',
      'employee → identity: approves',
      'identity → agent: POST /ciba/notify (ping)',
      'agent → hr-api: GET /employees/:id',
      'agent → agent: generateContent gemini-2.5-flash',
      'agent → client: COMPLETED',
    ]);
  });

  it("shows each hop's outcome and the tokens' decoded claims", () => {
    // The agent's hops: the HR API's served span carries the same label, and the services export in any order.
    const byLabel = (label: string) => taskTrace.find((s) => s.service !== 'hr-api' && s.attributes[HOP.label] === label);
    const task = byLabel('SendMessage');
    const callerToken = JSON.parse(String(task?.attributes[`${HOP.tokenPrefix}access_token`]));
    expect(callerToken.header).toMatchObject({ alg: 'RS256' });
    expect(callerToken.claims).toMatchObject({ aud: LOCAL_TENANT_DEFAULTS.agentAudience, azp: 'a2a-client', scope: 'read:employee_status' });

    const wait = byLabel('POST /oauth/token (CIBA)');
    expect(wait?.attributes).toMatchObject({ [HOP.outcome]: 'approved', [HOP.deliveryMode]: 'ping', [HOP.employee]: 'jdoe@staff0.com' });
    expect(wait?.attributes[HOP.pollCount]).toBeGreaterThanOrEqual(1);
    expect(String(wait?.attributes[HOP.authReqId])).toMatch(/^.{8}…$/);
    const approved = JSON.parse(String(wait?.attributes[`${HOP.tokenPrefix}access_token`]));
    expect(approved.claims).toMatchObject({ sub: 'auth0|jdoe', aud: LOCAL_TENANT_DEFAULTS.apiAudience });
    expect(approved.claims.authorization_details).toBeInstanceOf(Array);

    expect(byLabel('approves')?.attributes[HOP.decisionMs]).toBeGreaterThanOrEqual(0);
    expect(byLabel('push to Guardian')?.attributes[HOP.channel]).toBe('guardian-push');
    expect(byLabel('GET /employees/:id')?.attributes['http.response.status_code']).toBe(200);
    const served = taskTrace.find((s) => s.service === 'hr-api');
    expect(served?.attributes).toMatchObject({ [HOP.participant]: 'hr-api', 'http.response.status_code': 200, [HOP.employee]: 'auth0|jdoe' });
    expect(served?.parentSpanId).toBe(byLabel('GET /employees/:id')?.spanId);
  });

  it('sends no secret, no token and no authorization header anywhere', () => {
    expect(receiver.bodies.length).toBeGreaterThan(0);
    for (const body of receiver.bodies) {
      for (const secret of SECRETS) expect(body).not.toContain(secret);
      expect(body).not.toMatch(JWT_LIKE);
      expect(body).not.toMatch(/Bearer /i);
      expect(body.toLowerCase()).not.toContain('authorization":');
    }
    for (const span of receiver.spans) {
      const values = [
        span.name,
        span.status.message ?? '',
        ...Object.values(span.attributes).map(String),
        ...span.events.flatMap((e) => Object.values(e.attributes).map(String)),
      ];
      for (const value of values) {
        expect(value).not.toMatch(JWT_LIKE);
        expect(value).not.toContain('Bearer ');
      }
    }
  });
});
