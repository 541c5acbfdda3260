import { randomBytes } from 'node:crypto';
import { HOP, type Participant } from '../../telemetry/hops.ts';

/**
 * OTLP/HTTP JSON export requests shaped like the sandbox's own hops, for
 * tests of the flow console before (or without) the real services: an
 * approved and a denied task, each with credentials planted where a careless
 * exporter might put them, so tests can prove the console never shows them.
 */

export type Attributes = Record<string, string | number | boolean>;

export interface SyntheticHop {
  from: Participant;
  to: Participant;
  label: string;
  /** Milliseconds after the task's start. */
  atMs: number;
  durationMs: number;
  attributes?: Attributes;
  error?: string;
  /** Leaves `a2a.task.id` off, as a span made before the task existed would. */
  withoutTaskId?: boolean;
}

export interface SyntheticTask {
  taskId: string;
  traceId: string;
  employee: string;
  hops: SyntheticHop[];
}

/** Credentials planted in the synthetic spans; none may ever reach the console's API or DOM. */
export const PLANTED = {
  clientSecret: 'a2a-client-local-secret-planted',
  basicCredential: Buffer.from('a2a-client:a2a-client-local-secret-planted').toString('base64'),
  /** A real-looking JWT (header, claims, signature). */
  jwt: [
    Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: 'k1' })).toString('base64url'),
    Buffer.from(JSON.stringify({ sub: 'auth0|jdoe', aud: 'https://staff0/api', exp: 2_000_000_000 })).toString('base64url'),
    randomBytes(64).toString('base64url'),
  ].join('.'),
  googleApiKey: `AIza${'x'.repeat(35)}`,
} as const;

/** A raw JWT or anything shaped like one (three base64url segments). */
export const JWT_LIKE = /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*|[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/;

export function newTraceId(): string {
  return randomBytes(16).toString('hex');
}

function newSpanId(): string {
  return randomBytes(8).toString('hex');
}

/** `hop.token.<name>`'s value: the decoded header and claims, never the token. */
export function tokenAttribute(header: Record<string, unknown>, claims: Record<string, unknown>): string {
  return JSON.stringify({ header, claims });
}

const NOW_S = () => Math.floor(Date.now() / 1000);

function commonHops(employee: string, authReqId: string): SyntheticHop[] {
  const ciba = { [HOP.authReqId]: authReqId, [HOP.deliveryMode]: 'poll', [HOP.channel]: 'guardian-push', [HOP.employee]: employee };
  return [
    {
      from: 'client',
      to: 'identity',
      label: 'POST /oauth/token (client credentials)',
      atMs: 0,
      durationMs: 40,
      withoutTaskId: true,
      attributes: {
        'http.request.method': 'POST',
        'url.full': `http://127.0.0.1:10052/oauth/token?client_secret=${PLANTED.clientSecret}`,
        'http.response.status_code': 200,
        'http.request.header.authorization': `Basic ${PLANTED.basicCredential}`,
        [`${HOP.tokenPrefix}access_token`]: tokenAttribute(
          { alg: 'RS256', typ: 'JWT', kid: 'tenant-key-1' },
          { sub: 'a2a-client@clients', aud: 'https://staff0/agent', scope: 'read:employee_status', azp: 'a2a-client', gty: 'client-credentials', exp: NOW_S() + 86_400, iat: NOW_S() },
        ),
      },
    },
    {
      from: 'client',
      to: 'agent',
      label: 'SendMessage',
      atMs: 50,
      durationMs: 400,
      attributes: { 'http.request.method': 'POST', 'url.path': '/', 'http.response.status_code': 200, [HOP.taskState]: 'TASK_STATE_AUTH_REQUIRED', [HOP.employee]: employee },
    },
    { from: 'agent', to: 'agent', label: 'model call (mock-gemini)', atMs: 60, durationMs: 30, attributes: { 'gen_ai.request.model': 'gemini-2.5-flash' } },
    {
      from: 'agent',
      to: 'identity',
      label: 'GET /api/v2/users-by-email',
      atMs: 100,
      durationMs: 25,
      attributes: { 'http.request.method': 'GET', 'url.path': '/api/v2/users-by-email', 'http.response.status_code': 200, [HOP.employee]: employee },
    },
    {
      from: 'agent',
      to: 'identity',
      label: 'POST /bc-authorize',
      atMs: 140,
      durationMs: 30,
      attributes: { 'http.request.method': 'POST', 'url.path': '/bc-authorize', 'http.response.status_code': 200, ...ciba },
    },
    { from: 'identity', to: 'employee', label: 'push to Guardian', atMs: 165, durationMs: 2, attributes: { ...ciba } },
    {
      from: 'agent',
      to: 'identity',
      label: 'POST /oauth/token (CIBA poll)',
      atMs: 1200,
      durationMs: 12,
      error: 'authorization_pending',
      attributes: { 'http.request.method': 'POST', 'url.path': '/oauth/token', 'http.response.status_code': 400, [HOP.pollCount]: 1, ...ciba },
    },
  ];
}

/** John approves: the second poll gets the token, the HR API answers, the task completes. */
export function approvedTask(employee = 'jdoe@staff0.com'): SyntheticTask {
  const authReqId = 'AbCdEfGh…';
  const ciba = { [HOP.authReqId]: authReqId, [HOP.deliveryMode]: 'poll', [HOP.channel]: 'guardian-push', [HOP.employee]: employee };
  const details = [{ type: 'employment_verification', employee_id: 'auth0|jdoe', purpose: 'Check employment status' }];
  return {
    taskId: `task-approved-${randomBytes(4).toString('hex')}`,
    traceId: newTraceId(),
    employee,
    hops: [
      ...commonHops(employee, authReqId),
      { from: 'employee', to: 'identity', label: 'approves', atMs: 1500, durationMs: 5, attributes: { ...ciba } },
      {
        from: 'agent',
        to: 'identity',
        label: 'POST /oauth/token (CIBA poll)',
        atMs: 2200,
        durationMs: 15,
        attributes: {
          'http.request.method': 'POST',
          'url.path': '/oauth/token',
          'http.response.status_code': 200,
          [HOP.pollCount]: 2,
          ...ciba,
          // A careless exporter's raw token: not JSON, so it is unreadable and redacted.
          [`${HOP.tokenPrefix}raw`]: PLANTED.jwt,
          [`${HOP.tokenPrefix}access_token`]: tokenAttribute(
            { alg: 'RS256', typ: 'JWT', kid: 'tenant-key-1' },
            {
              sub: 'auth0|jdoe',
              aud: 'https://staff0/api',
              scope: 'openid read:employee',
              azp: 'hr-agent',
              exp: NOW_S() + 300,
              iat: NOW_S(),
              authorization_details: details,
              // Planted inside a claim: redacted whatever the claim.
              act: { token: PLANTED.jwt },
            },
          ),
        },
      },
      {
        from: 'agent',
        to: 'hr-api',
        label: 'GET /employees/auth0|jdoe',
        atMs: 2230,
        durationMs: 8,
        attributes: {
          'http.request.method': 'GET',
          'url.path': '/employees/auth0|jdoe',
          'http.response.status_code': 200,
          'http.request.header.authorization': `Bearer ${PLANTED.jwt}`,
          'gen_ai.api_key_note': `key=${PLANTED.googleApiKey}`,
        },
      },
      { from: 'agent', to: 'client', label: 'task COMPLETED', atMs: 2250, durationMs: 1, attributes: { [HOP.taskState]: 'TASK_STATE_COMPLETED' } },
    ],
  };
}

/** John denies: the poll after the denial gets access_denied and the task is rejected. */
export function deniedTask(employee = 'jdoe@staff0.com'): SyntheticTask {
  const authReqId = 'ZyXwVuTs…';
  const ciba = { [HOP.authReqId]: authReqId, [HOP.deliveryMode]: 'poll', [HOP.channel]: 'guardian-push', [HOP.employee]: employee };
  return {
    taskId: `task-denied-${randomBytes(4).toString('hex')}`,
    traceId: newTraceId(),
    employee,
    hops: [
      ...commonHops(employee, authReqId),
      { from: 'employee', to: 'identity', label: 'denies', atMs: 1500, durationMs: 5, attributes: { ...ciba } },
      {
        from: 'agent',
        to: 'identity',
        label: 'POST /oauth/token (CIBA poll)',
        atMs: 2200,
        durationMs: 11,
        error: 'access_denied',
        attributes: { 'http.request.method': 'POST', 'url.path': '/oauth/token', 'http.response.status_code': 400, [HOP.pollCount]: 2, ...ciba },
      },
      { from: 'agent', to: 'client', label: 'task REJECTED', atMs: 2220, durationMs: 1, attributes: { [HOP.taskState]: 'TASK_STATE_REJECTED' } },
    ],
  };
}

function otlpAttributes(attributes: Attributes): unknown[] {
  return Object.entries(attributes).map(([key, value]) => ({
    key,
    value: typeof value === 'string' ? { stringValue: value } : typeof value === 'boolean' ? { boolValue: value } : Number.isInteger(value) ? { intValue: String(value) } : { doubleValue: value },
  }));
}

/** The OTLP JSON of some of a task's hops (all by default), as the services' exporters would send them. */
export function exportRequestOf(task: SyntheticTask, hops: readonly SyntheticHop[] = task.hops, startedAtMs = Date.now()): unknown {
  const ns = (ms: number) => (BigInt(Math.round((startedAtMs + ms) * 1000)) * 1000n).toString();
  const spans = hops.map((hop) => ({
    traceId: task.traceId,
    spanId: newSpanId(),
    name: hop.label,
    kind: 3,
    startTimeUnixNano: ns(hop.atMs),
    endTimeUnixNano: ns(hop.atMs + hop.durationMs),
    attributes: otlpAttributes({
      [HOP.from]: hop.from,
      [HOP.to]: hop.to,
      [HOP.label]: hop.label,
      ...(hop.withoutTaskId ? {} : { [HOP.taskId]: task.taskId }),
      ...(hop.error === undefined ? {} : { 'error.type': hop.error }),
      ...hop.attributes,
    }),
    events: [],
    status: hop.error === undefined ? { code: 0 } : { code: 2, message: `${hop.error} (token was ${PLANTED.jwt})` },
  }));
  return { resourceSpans: [{ resource: { attributes: otlpAttributes({ 'service.name': 'synthetic' }) }, scopeSpans: [{ scope: { name: 'test' }, spans }] }] };
}

export async function postSpans(consoleUrl: string, body: unknown): Promise<Response> {
  return fetch(`${consoleUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}
