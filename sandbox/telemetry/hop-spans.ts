import {
  context,
  createContextKey,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type TimeInput,
} from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { HOP, type HopEvent, type Participant } from './hops.ts';
import { scrubSecrets, warningLine } from './hop-log.ts';
import type { Telemetry } from './setup.ts';
import { describeToken } from './token-claims.ts';
import { taskIdOf, withTaskBaggage } from './trace-context.ts';

/**
 * How a service makes a hop span: one arrow of the sequence diagram, with the
 * task and the employee it belongs to, the tokens it carried described (never
 * kept), its outcome and its warnings. Every hop of every service is made
 * here, so they all say the same things the same way. With telemetry off the
 * spans are non-recording and nothing here computes an attribute.
 */

export interface HopStart {
  from: Participant;
  to: Participant;
  /** Short and free of identifiers: `POST /bc-authorize`, `push to Guardian`, `approves`. */
  label: string;
  /** Default CLIENT between two participants, INTERNAL within one. */
  kind?: SpanKind;
  attributes?: Attributes;
  /** Raw tokens on this hop, by name (`access_token`); only their description is recorded (token-claims.ts). */
  tokens?: Readonly<Record<string, string | undefined>>;
  startTime?: TimeInput;
}

export interface HopEnd {
  attributes?: Attributes;
  tokens?: Readonly<Record<string, string | undefined>>;
  /** Ends the hop as failed, naming the error's code. */
  error?: unknown;
}

/** The A2A task whose work a context is doing: every hop made in it carries the task and, once known, the employee. */
export interface TaskScope {
  readonly taskId: string;
  /** Set once the task knows whom it asks about (an email or a user id). */
  employee: string | undefined;
}

const TASK_SCOPE = createContextKey('a2a task of the hops made in this context');

/** `into` working for `scope`; the task id also travels to other services as W3C Baggage. */
export function withTaskScope(into: Context, scope: TaskScope): Context {
  return withTaskBaggage(into, scope.taskId).setValue(TASK_SCOPE, scope);
}

export function taskScopeOf(from: Context = context.active()): TaskScope | undefined {
  return from.getValue(TASK_SCOPE) as TaskScope | undefined;
}

export function startHop(telemetry: Telemetry, hop: HopStart, parent: Context = context.active()): Span {
  const kind = hop.kind ?? (hop.from === hop.to ? SpanKind.INTERNAL : SpanKind.CLIENT);
  const span = telemetry.tracer.startSpan(hop.label, { kind, ...(hop.startTime === undefined ? {} : { startTime: hop.startTime }) }, parent);
  if (!span.isRecording()) return span;
  const scope = taskScopeOf(parent);
  const taskId = scope?.taskId ?? taskIdOf(parent);
  span.setAttributes({
    [HOP.from]: hop.from,
    [HOP.to]: hop.to,
    [HOP.label]: hop.label,
    ...(taskId === undefined ? {} : { [HOP.taskId]: taskId }),
    ...(scope?.employee === undefined ? {} : { [HOP.employee]: scope.employee }),
    ...hop.attributes,
  });
  describeTokens(span, hop.tokens);
  return span;
}

export function endHop(span: Span, end: HopEnd = {}, endTime?: TimeInput): void {
  if (span.isRecording()) {
    if (end.attributes) span.setAttributes(end.attributes);
    describeTokens(span, end.tokens);
    if (end.error !== undefined) failHop(span, end.error);
  }
  span.end(endTime);
}

/**
 * Runs `run` as the hop (its span active, so outbound requests carry it), ending it with what
 * `describe` reads from the result, or as failed with the error.
 */
export async function inHop<T>(
  telemetry: Telemetry,
  hop: HopStart,
  run: (span: Span) => Promise<T>,
  describe?: (result: T) => HopEnd,
  parent: Context = context.active(),
): Promise<T> {
  const span = startHop(telemetry, hop, parent);
  try {
    const result = await context.with(trace.setSpan(parent, span), () => run(span));
    endHop(span, span.isRecording() && describe ? describe(result) : {});
    return result;
  } catch (error) {
    endHop(span, { error });
    throw error;
  }
}

/** A hop that is a moment (a decision, a state change, a push sent): ended as soon as made. Returns its context. */
export function markHop(telemetry: Telemetry, hop: HopStart, parent: Context = context.active()): Context {
  const span = startHop(telemetry, { kind: SpanKind.INTERNAL, ...hop }, parent);
  span.end(hop.startTime);
  return trace.setSpan(parent, span);
}

/** Something that went wrong within a hop and was handled (a retry, `slow_down`, a 429): a span event and a warning line. */
export function hopWarning(telemetry: Telemetry, span: Span | undefined, event: HopEvent, detail: Attributes): void {
  if (!span?.isRecording()) return;
  span.addEvent(event, detail);
  if (!telemetry.logger) return;
  const line = warningLine((span as Partial<ReadableSpan>).attributes ?? {}, event, detail);
  telemetry.logger.warn(line.fields, line.message);
}

/** Marks a span failed with the error's stable code (`access_denied`, `unavailable`, …) and a scrubbed message. */
export function failHop(span: Span, error: unknown): void {
  span.setAttribute('error.type', errorType(error));
  const message = error instanceof Error ? scrubSecrets(error.message).slice(0, 300) : undefined;
  span.setStatus({ code: SpanStatusCode.ERROR, ...(message === undefined ? {} : { message }) });
}

/** An OAuth error code (`error`), else the error's `code`, else its name. */
export function errorType(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const { error: oauthCode, code, name } = error as { error?: unknown; code?: unknown; name?: unknown };
    if (typeof oauthCode === 'string') return oauthCode;
    if (typeof code === 'string') return code;
    if (typeof name === 'string') return name;
  }
  return 'error';
}

function describeTokens(span: Span, tokens: HopStart['tokens']): void {
  if (!tokens) return;
  for (const [name, token] of Object.entries(tokens)) {
    if (token === undefined) continue;
    const description = describeToken(token);
    if (description !== undefined) span.setAttribute(`${HOP.tokenPrefix}${name}`, description);
  }
}
