import { isSecretKey, REDACTED, redactText } from './redaction.ts';

/**
 * Reading an OTLP/HTTP JSON export request (OTLP specification, "OTLP/HTTP",
 * JSON Protobuf Encoding): `{resourceSpans: [{resource, scopeSpans: [{spans}]}]}`,
 * trace and span ids in hex, times as nanosecond strings or numbers, enums as
 * integers. The body comes from anyone who can reach the port, so every field
 * is checked, every string bounded and redacted, and a span that does not
 * parse is counted as rejected rather than failing the whole request.
 */

export type AttributeValue = string | number | boolean | readonly (string | number | boolean)[];

export interface SpanEvent {
  name: string;
  timeNs: bigint;
  attributes: ReadonlyMap<string, AttributeValue>;
}

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  startNs: bigint;
  endNs: bigint;
  /** `service.name` of the span's resource. */
  service?: string;
  attributes: ReadonlyMap<string, AttributeValue>;
  events: readonly SpanEvent[];
  status: { code: 'unset' | 'ok' | 'error'; message?: string };
}

export interface ParsedExport {
  spans: ReceivedSpan[];
  /** Spans present but unreadable (OTLP's `partialSuccess.rejectedSpans`). */
  rejected: number;
}

export class OtlpFormatError extends Error {
  readonly code = 'invalid_otlp_request';
  constructor(message: string) {
    super(message);
    this.name = 'OtlpFormatError';
  }
}

export const OTLP_LIMITS = {
  /** Characters kept of an attribute's string value; decoded-token attributes get `tokenChars`. */
  stringChars: 2_000,
  tokenChars: 16_000,
  attributesPerSpan: 128,
  eventsPerSpan: 32,
  arrayItems: 32,
  nameChars: 256,
} as const;

const TRACE_ID = /^[0-9a-f]{32}$/;
const SPAN_ID = /^[0-9a-f]{16}$/;
const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);
/** Attributes that carry a decoded token as JSON (`hop.token.<name>`); their length limit is larger. */
const TOKEN_ATTRIBUTE_PREFIX = 'hop.token.';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function arrayOf(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function bounded(value: string, max: number): string {
  return value.length <= max ? value : `${value.slice(0, max)}…`;
}

/** Redaction comes before truncation: cutting first could leave a token too short to be recognised. */
export function cleanString(value: string, max: number = OTLP_LIMITS.stringChars): string {
  return bounded(redactText(value), max);
}

/** An OTLP id: lower-case hex of the right length (some exporters send upper case), never all zeros (invalid per W3C Trace Context). */
function readId(value: unknown, pattern: RegExp, zero: string): string | undefined {
  if (typeof value !== 'string') return undefined;
  const id = value.toLowerCase();
  return pattern.test(id) && id !== zero ? id : undefined;
}

/** A fixed64 time: JSON encoders send a decimal string (protobuf's JSON mapping for 64-bit integers) or a number. */
function readNanos(value: unknown): bigint | undefined {
  if (typeof value === 'string' && /^\d{1,20}$/.test(value)) return BigInt(value);
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  return undefined;
}

function readScalar(value: Record<string, unknown>, max: number): string | number | boolean | undefined {
  if (typeof value.stringValue === 'string') return cleanString(value.stringValue, max);
  if (typeof value.boolValue === 'boolean') return value.boolValue;
  if (typeof value.intValue === 'number' && Number.isSafeInteger(value.intValue)) return value.intValue;
  if (typeof value.intValue === 'string' && /^-?\d{1,19}$/.test(value.intValue)) {
    const n = Number(value.intValue);
    return Number.isSafeInteger(n) ? n : undefined;
  }
  if (typeof value.doubleValue === 'number' && Number.isFinite(value.doubleValue)) return value.doubleValue;
  return undefined;
}

/** One attribute value; byte and key-value-list values are not shown by the console and are dropped. */
function readValue(value: unknown, max: number): AttributeValue | undefined {
  if (!isRecord(value)) return undefined;
  if (isRecord(value.arrayValue)) {
    return arrayOf(value.arrayValue.values)
      .slice(0, OTLP_LIMITS.arrayItems)
      .map((item) => (isRecord(item) ? readScalar(item, max) : undefined))
      .filter((item): item is string | number | boolean => item !== undefined);
  }
  return readScalar(value, max);
}

export function readAttributes(list: unknown): Map<string, AttributeValue> {
  const attributes = new Map<string, AttributeValue>();
  for (const entry of arrayOf(list)) {
    if (attributes.size >= OTLP_LIMITS.attributesPerSpan) break;
    if (!isRecord(entry) || typeof entry.key !== 'string' || entry.key === '' || entry.key.length > OTLP_LIMITS.nameChars) continue;
    const key = entry.key;
    const isToken = key.startsWith(TOKEN_ATTRIBUTE_PREFIX);
    if (!isToken && isSecretKey(key)) {
      attributes.set(key, REDACTED);
      continue;
    }
    const value = readValue(entry.value, isToken ? OTLP_LIMITS.tokenChars : OTLP_LIMITS.stringChars);
    if (value !== undefined) attributes.set(key, value);
  }
  return attributes;
}

/** OTLP's `Status.code`: 0 unset, 1 ok, 2 error; some encoders send the enum's name. */
function readStatus(value: unknown): ReceivedSpan['status'] {
  if (!isRecord(value)) return { code: 'unset' };
  const code =
    value.code === 2 || value.code === 'STATUS_CODE_ERROR' ? 'error' : value.code === 1 || value.code === 'STATUS_CODE_OK' ? 'ok' : 'unset';
  const message = typeof value.message === 'string' && value.message !== '' ? cleanString(value.message) : undefined;
  return message === undefined ? { code } : { code, message };
}

function readEvents(list: unknown): SpanEvent[] {
  const events: SpanEvent[] = [];
  for (const entry of arrayOf(list)) {
    if (events.length >= OTLP_LIMITS.eventsPerSpan) break;
    if (!isRecord(entry) || typeof entry.name !== 'string') continue;
    const timeNs = readNanos(entry.timeUnixNano);
    if (timeNs === undefined) continue;
    events.push({ name: cleanString(entry.name, OTLP_LIMITS.nameChars), timeNs, attributes: readAttributes(entry.attributes) });
  }
  return events;
}

function readSpan(value: unknown, service: string | undefined): ReceivedSpan | undefined {
  if (!isRecord(value)) return undefined;
  const traceId = readId(value.traceId, TRACE_ID, ZERO_TRACE_ID);
  const spanId = readId(value.spanId, SPAN_ID, ZERO_SPAN_ID);
  const startNs = readNanos(value.startTimeUnixNano);
  const endNs = readNanos(value.endTimeUnixNano);
  if (traceId === undefined || spanId === undefined || startNs === undefined || endNs === undefined || endNs < startNs) return undefined;
  const parentSpanId = readId(value.parentSpanId, SPAN_ID, ZERO_SPAN_ID);
  return {
    traceId,
    spanId,
    ...(parentSpanId === undefined ? {} : { parentSpanId }),
    name: typeof value.name === 'string' ? cleanString(value.name, OTLP_LIMITS.nameChars) : '',
    startNs,
    endNs,
    ...(service === undefined ? {} : { service }),
    attributes: readAttributes(value.attributes),
    events: readEvents(value.events),
    status: readStatus(value.status),
  };
}

/**
 * The spans of an export request. Throws `OtlpFormatError` when the body is
 * not an export request at all (the receiver answers 400); skips and counts
 * spans that are malformed.
 */
export function parseExportRequest(body: unknown): ParsedExport {
  if (!isRecord(body)) throw new OtlpFormatError('The body must be a JSON object (an OTLP ExportTraceServiceRequest)');
  if (body.resourceSpans !== undefined && !Array.isArray(body.resourceSpans)) {
    throw new OtlpFormatError('resourceSpans must be an array');
  }
  const spans: ReceivedSpan[] = [];
  let rejected = 0;
  for (const resourceSpans of arrayOf(body.resourceSpans)) {
    if (!isRecord(resourceSpans)) continue;
    const resource = isRecord(resourceSpans.resource) ? readAttributes(resourceSpans.resource.attributes) : new Map<string, AttributeValue>();
    const serviceName = resource.get('service.name');
    const service = typeof serviceName === 'string' ? bounded(serviceName, OTLP_LIMITS.nameChars) : undefined;
    for (const scopeSpans of arrayOf(resourceSpans.scopeSpans)) {
      if (!isRecord(scopeSpans)) continue;
      for (const value of arrayOf(scopeSpans.spans)) {
        const span = readSpan(value, service);
        if (span === undefined) rejected += 1;
        else spans.push(span);
      }
    }
  }
  return { spans, rejected };
}
