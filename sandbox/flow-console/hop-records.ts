import { HOP, type Participant, PARTICIPANTS, shortId } from '../telemetry/hops.ts';
import type { AttributeValue, ReceivedSpan } from './otlp.ts';
import { isSecretKey, REDACTED, redactText } from './redaction.ts';

/** What the console keeps of a hop span (one arrow), read from its attributes by the contract in sandbox/telemetry/hops.ts. */
export interface HopRecord {
  spanId: string;
  traceId: string;
  /** `a2a.task.id`, when the span carries it. */
  taskId?: string;
  from: Participant;
  to: Participant;
  label: string;
  service?: string;
  startNs: bigint;
  endNs: bigint;
  method?: string;
  path?: string;
  status?: number;
  taskState?: string;
  employee?: string;
  authReqId?: string;
  pollCount?: number;
  /** How a CIBA wait ended as the agent saw it (`approved`, `denied`, …): in auth0 mode, the employee's decision. */
  outcome?: string;
  deliveryMode?: string;
  channel?: string;
  error?: string;
  tokens: TokenView[];
  events: { name: string; timeNs: bigint }[];
}

/** A token's decoded header and claims, as a service described it; `readable: false` when the description did not parse. */
export interface TokenView {
  name: string;
  readable: boolean;
  header?: Record<string, JsonValue>;
  claims?: Record<string, JsonValue>;
}

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

const JSON_LIMITS = { depth: 6, entries: 64 } as const;
const TOKEN_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
/** What an A2A task id may look like here (the SDK's are UUIDs); anything else groups by trace instead. */
export const TASK_ID = /^[A-Za-z0-9._~-]{1,128}$/;

function isParticipant(value: AttributeValue | undefined): value is Participant {
  return typeof value === 'string' && (PARTICIPANTS as readonly string[]).includes(value);
}

function text(attributes: ReadonlyMap<string, AttributeValue>, key: string): string | undefined {
  const value = attributes.get(key);
  if (typeof value === 'string') return value === '' ? undefined : value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
}

function integer(attributes: ReadonlyMap<string, AttributeValue>, key: string): number | undefined {
  const value = attributes.get(key);
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d{1,9}$/.test(value) ? Number(value) : undefined;
  return n !== undefined && Number.isSafeInteger(n) ? n : undefined;
}

/** `TASK_STATE_COMPLETED` (A2A v1.0's enum name) and `completed` (v0.3's) both read `COMPLETED`. */
export function normaliseTaskState(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const state = value.replace(/^TASK_STATE_/i, '').replace(/-/g, '_').toUpperCase();
  return /^[A-Z_]{1,40}$/.test(state) ? state : undefined;
}

/** A JSON value from a service's token description, bounded in depth and size, its strings redacted, its credential-named members dropped. */
function sanitiseJson(value: unknown, depth: number): JsonValue | undefined {
  if (value === null || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'string') return redactText(value);
  if (depth >= JSON_LIMITS.depth) return undefined;
  if (Array.isArray(value)) {
    return value
      .slice(0, JSON_LIMITS.entries)
      .map((item) => sanitiseJson(item, depth + 1))
      .filter((item): item is JsonValue => item !== undefined);
  }
  if (typeof value === 'object') return sanitiseObject(value as Record<string, unknown>, depth);
  return undefined;
}

function sanitiseObject(value: Record<string, unknown>, depth: number): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  for (const [key, item] of Object.entries(value).slice(0, JSON_LIMITS.entries)) {
    if (key === '__proto__') continue;
    if (isSecretKey(key)) {
      out[key] = REDACTED;
      continue;
    }
    const clean = sanitiseJson(item, depth + 1);
    if (clean !== undefined) out[key] = clean;
  }
  return out;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `hop.token.<name>` = `{"header":{…},"claims":{…}}`: never the raw token, which the receiver has already redacted if one came. */
function readToken(name: string, value: AttributeValue): TokenView {
  if (typeof value !== 'string') return { name, readable: false };
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return { name, readable: false };
  }
  if (!isRecord(parsed) || (!isRecord(parsed.header) && !isRecord(parsed.claims))) return { name, readable: false };
  return {
    name,
    readable: true,
    ...(isRecord(parsed.header) ? { header: sanitiseObject(parsed.header, 1) } : {}),
    ...(isRecord(parsed.claims) ? { claims: sanitiseObject(parsed.claims, 1) } : {}),
  };
}

function pathOf(attributes: ReadonlyMap<string, AttributeValue>): string | undefined {
  const path = text(attributes, 'url.path');
  if (path !== undefined) return path;
  const full = text(attributes, 'url.full');
  if (full === undefined) return undefined;
  // Only the path of a full URL: its query may name a user or carry a credential.
  return URL.parse(full)?.pathname;
}

function errorOf(span: ReceivedSpan): string | undefined {
  const type = text(span.attributes, 'error.type');
  const exception = span.events.find((e) => e.name === 'exception');
  const exceptionMessage = exception ? text(exception.attributes, 'exception.message') : undefined;
  const message = span.status.message ?? exceptionMessage;
  if (type === undefined && message === undefined && span.status.code !== 'error') return undefined;
  return [type, message].filter((part) => part !== undefined).join(': ') || 'error';
}

/** The hop a span describes, or undefined for a span that is not an arrow (no valid `hop.from`). */
export function hopOfSpan(span: ReceivedSpan): HopRecord | undefined {
  const a = span.attributes;
  const from = a.get(HOP.from);
  if (!isParticipant(from)) return undefined;
  const toValue = a.get(HOP.to);
  const to = isParticipant(toValue) ? toValue : from;
  const method = text(a, 'http.request.method');
  const path = pathOf(a);
  const label = text(a, HOP.label) ?? ([method, path].filter(Boolean).join(' ') || span.name || 'hop');
  const authReqId = text(a, HOP.authReqId);
  const tokens: TokenView[] = [];
  for (const [key, value] of a) {
    if (!key.startsWith(HOP.tokenPrefix)) continue;
    const name = key.slice(HOP.tokenPrefix.length);
    if (TOKEN_NAME.test(name)) tokens.push(readToken(name, value));
  }
  const taskId = text(a, HOP.taskId);
  const optional = {
    taskId: taskId !== undefined && TASK_ID.test(taskId) ? taskId : undefined,
    service: span.service,
    method,
    path,
    status: integer(a, 'http.response.status_code'),
    taskState: normaliseTaskState(text(a, HOP.taskState)),
    employee: text(a, HOP.employee),
    authReqId: authReqId === undefined ? undefined : shortId(authReqId),
    pollCount: integer(a, HOP.pollCount),
    outcome: text(a, HOP.outcome),
    deliveryMode: text(a, HOP.deliveryMode),
    channel: text(a, HOP.channel),
    error: errorOf(span),
  };
  return {
    spanId: span.spanId,
    traceId: span.traceId,
    from,
    to,
    label,
    startNs: span.startNs,
    endNs: span.endNs,
    ...(Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== undefined)) as Partial<HopRecord>),
    tokens,
    events: span.events.map((e) => ({ name: e.name, timeNs: e.timeNs })),
  };
}
