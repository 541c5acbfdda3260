import type { Writable } from 'node:stream';
import { SpanKind, SpanStatusCode, type Attributes } from '@opentelemetry/api';
import { hrTimeToMilliseconds } from '@opentelemetry/core';
import type { ReadableSpan, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { pino, type DestinationStream, type Logger } from 'pino';
import { prettyFactory } from 'pino-pretty';
import type { LogFormat, LogLevel } from '../config.ts';
import { HOP, shortId } from './hops.ts';

/**
 * The services' logs: one line per hop, made from the hop's span when it
 * ends, so that the log and the trace can never tell two stories. Pretty,
 * coloured lines for people; one JSON object per line for log pipelines.
 * Secrets never reach a line: span attributes hold none (hops.ts), and the
 * logger redacts secret-looking fields and scrubs token-looking text anyway.
 */

export interface LoggingOptions {
  format: LogFormat;
  level: LogLevel;
  colour: boolean;
  /** Where lines go; stdout by default. */
  destination?: Writable;
}

/** Field names that may hold a credential, wherever they appear in a logged object. */
const REDACTED_FIELDS = [
  'authorization',
  'access_token',
  'id_token',
  'refresh_token',
  'client_secret',
  'clientSecret',
  'client_notification_token',
  'notificationToken',
  'controlSecret',
  'secret',
  'password',
  'token',
];
/**
 * Named paths only: a wildcard (`*.token`) makes pino walk every logged object and costs about
 * eight times a line, which a service logging each request cannot afford.
 */
const REDACT_PATHS = [
  ...REDACTED_FIELDS,
  ...['headers', 'req.headers', 'request.headers', 'err.headers'].flatMap((at) => [`${at}.authorization`, `${at}.cookie`, `${at}["x-control-secret"]`]),
  ...['body', 'params', 'err', 'error', 'credentials', 'client'].flatMap((at) => REDACTED_FIELDS.map((field) => `${at}.${field}`)),
];

/**
 * Lines go out in blocks of up to 4 KiB, and at least every 100 ms: one write per line would cost
 * a service answering thousands of requests a second more than the line itself. pino flushes what
 * is left when the process exits.
 */
const STDOUT_BUFFER = { dest: 1, sync: false, minLength: 4096, periodicFlush: 100 } as const;

const JWT_TEXT = /\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;
const BEARER_TEXT = /\bBearer\s+[A-Za-z0-9\-._~+/]+=*/gi;

/** A second guard for free text (error messages, third-party warnings): no JWT or bearer credential survives. */
export function scrubSecrets(text: string): string {
  return text.replace(JWT_TEXT, '[token]').replace(BEARER_TEXT, 'Bearer [redacted]');
}

export function createLogger(service: string, options: LoggingOptions): Logger {
  const out = options.destination ?? pino.destination(STDOUT_BUFFER);
  return pino(
    {
      name: service,
      level: options.level,
      base: { service },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      hooks: {
        logMethod(args, method) {
          method.apply(
            this,
            args.map((arg) => (typeof arg === 'string' ? scrubSecrets(arg) : arg)) as Parameters<typeof method>,
          );
        },
      },
    },
    options.format === 'json' ? out : prettyLines(out, options.colour),
  );
}

/**
 * Pretty lines, made in this thread as each line is logged (no worker, so a stopping service loses no
 * line) by pino-pretty's formatter called directly: its stream form splits and re-reads every line
 * through a chain of Node streams, and its `translateTime` formats the time with a general date
 * formatter.
 */
function prettyLines(out: DestinationStream, colour: boolean): DestinationStream {
  const prettify = prettyFactory({
    colorize: colour,
    hideObject: true,
    // No key to drop (`base` sets no pid or hostname): an empty list spares a copy of each line's object.
    ignore: '',
    translateTime: false,
    // UTC's `HH:MM:ss.mmm`, cut from the ISO form.
    customPrettifiers: { time: (epochMs) => `[${new Date(Number(epochMs)).toISOString().slice(11, 23)}]` },
  });
  const flushable = out as DestinationStream & { flush?: (done: (error?: Error) => void) => void };
  return {
    write(line: string) {
      const text = prettify(line);
      if (text !== undefined) out.write(text);
    },
    // The logger's flush at shutdown reaches stdout's buffer, as in JSON.
    flush(done?: (error?: Error) => void) {
      if (flushable.flush) flushable.flush(done ?? (() => undefined));
      else done?.();
    },
  } as DestinationStream;
}

/** What a hop line says, as fields (JSON) and as one sentence (the message). */
export interface HopLine {
  fields: Record<string, unknown>;
  message: string;
  failed: boolean;
}

const ARROW = '→';

/** The line for a hop span (or a served request's span); undefined for any other span. */
export function hopLine(span: Pick<ReadableSpan, 'attributes' | 'duration' | 'status' | 'kind' | 'spanContext'>): HopLine | undefined {
  const a = span.attributes;
  const from = text(a[HOP.from]);
  const to = text(a[HOP.to]);
  const participant = text(a[HOP.participant]);
  if ((from === undefined || to === undefined) && participant === undefined) return undefined;
  const label = text(a[HOP.label]) ?? '';
  const durationMs = Math.round(hrTimeToMilliseconds(span.duration) * 10) / 10;
  const failed = span.status.code === SpanStatusCode.ERROR;
  const fields: Record<string, unknown> = {
    task: text(a[HOP.taskId]),
    employee: text(a[HOP.employee]),
    from: from ?? undefined,
    to: to ?? participant,
    served: participant !== undefined && from === undefined ? true : undefined,
    hop: label,
    status: a['http.response.status_code'],
    state: text(a[HOP.taskState]),
    polls: a[HOP.pollCount],
    outcome: text(a[HOP.outcome]),
    error: failed ? (text(a['error.type']) ?? span.status.message ?? 'error') : undefined,
    durationMs,
    traceId: span.spanContext().traceId,
    spanId: span.spanContext().spanId,
  };
  const parts: string[] = [];
  if (fields.task !== undefined) parts.push(`task ${shortId(fields.task as string)}`);
  if (fields.employee !== undefined) parts.push(fields.employee as string);
  parts.push(from !== undefined && to !== undefined ? `${from} ${ARROW} ${to}` : `${ARROW} ${participant} (served)`);
  parts.push(label);
  const result = [
    fields.status === undefined ? undefined : String(fields.status),
    fields.state === label ? undefined : (fields.state as string | undefined),
    fields.outcome as string | undefined,
    fields.polls === undefined ? undefined : fields.polls === 1 ? '1 poll' : `${String(fields.polls)} polls`,
    fields.error === undefined ? undefined : `failed: ${String(fields.error)}`,
  ].filter((p): p is string => p !== undefined);
  if (result.length > 0) parts.push(result.join(', '));
  // A moment (a state change, a decision, a push sent) is no call: no duration to show.
  if (span.kind !== SpanKind.INTERNAL || durationMs >= 1) parts.push(`${durationMs} ms`);
  return { fields: withoutUndefined(fields), message: parts.join(' · '), failed };
}

/** Logs every hop as its span ends: the one source of the services' hop lines. */
export function hopLogProcessor(logger: Logger): SpanProcessor {
  return {
    onStart() {},
    onEnd(span) {
      const line = hopLine(span);
      if (!line) return;
      if (line.failed) logger.warn(line.fields, line.message);
      else logger.info(line.fields, line.message);
    },
    forceFlush: async () => {},
    shutdown: async () => {},
  };
}

/** A warning that happened within a hop (a retry, `slow_down`, a 429), logged at once with the hop's context. */
export function warningLine(attributes: Attributes, event: string, detail: Attributes): HopLine {
  const from = text(attributes[HOP.from]);
  const to = text(attributes[HOP.to]);
  const fields: Record<string, unknown> = {
    task: text(attributes[HOP.taskId]),
    employee: text(attributes[HOP.employee]),
    from,
    to,
    hop: text(attributes[HOP.label]),
    event,
    ...detail,
  };
  const parts: string[] = [];
  if (fields.task !== undefined) parts.push(`task ${shortId(fields.task as string)}`);
  if (fields.employee !== undefined) parts.push(fields.employee as string);
  if (from !== undefined && to !== undefined) parts.push(`${from} ${ARROW} ${to}`);
  if (fields.hop !== undefined) parts.push(fields.hop as string);
  const said = Object.entries(detail)
    .map(([key, value]) => `${key} ${String(value)}`)
    .join(', ');
  parts.push(said === '' ? event : `${event} (${said})`);
  return { fields: withoutUndefined(fields), message: parts.join(' · '), failed: true };
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function withoutUndefined(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) if (value !== undefined) out[key] = value;
  return out;
}
