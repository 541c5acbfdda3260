import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { context, propagation, ROOT_CONTEXT, type Context, type TextMapGetter } from '@opentelemetry/api';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';

/**
 * W3C Trace Context (and W3C Baggage, which carries the A2A task id) on the
 * wire: injected into every outbound request of a service, extracted from
 * every inbound one. The propagator is an instance, not the global API's, so
 * services that share a process (tests, benchmarks) never depend on what
 * another registered.
 */

const PROPAGATOR = new CompositePropagator({
  propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
});

/** The headers that carry a trace: what `inject` may write and `extract` reads. */
export const TRACE_HEADERS: readonly string[] = PROPAGATOR.fields();

const HEADER_GETTER: TextMapGetter<IncomingHttpHeaders> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};

/** Adds `traceparent` (and `baggage`) for `from` to a header record; nothing when no span is active. */
export function injectTraceHeaders(headers: Record<string, string>, from: Context = context.active()): Record<string, string> {
  PROPAGATOR.inject(from, headers, {
    set: (carrier, key, value) => {
      carrier[key] = value;
    },
  });
  return headers;
}

/** The trace a request belongs to, from its headers (the root context when it carries none). */
export function extractTraceHeaders(headers: IncomingHttpHeaders, into: Context = ROOT_CONTEXT): Context {
  // Without a traceparent nothing is there to extract; skipping the parse keeps untraced calls at no cost.
  if (headers.traceparent === undefined && headers.baggage === undefined) return into;
  return PROPAGATOR.extract(into, headers, HEADER_GETTER);
}

/**
 * A trace context as plain strings (`traceparent`, `tracestate`, `baggage`), for keeping it with a
 * record that outlives the request (a consent request waits minutes for the employee).
 */
export type TraceCarrier = Readonly<Record<string, string>>;

export function carrierOf(from: Context): TraceCarrier | undefined {
  const carrier = injectTraceHeaders({}, from);
  return carrier.traceparent === undefined ? undefined : carrier;
}

export function contextOfCarrier(carrier: TraceCarrier | undefined): Context {
  if (!carrier) return ROOT_CONTEXT;
  return PROPAGATOR.extract(ROOT_CONTEXT, carrier, {
    keys: (c) => Object.keys(c),
    get: (c, key) => c[key],
  });
}

/** The baggage entry that names the A2A task a request works for, across services (W3C Baggage). */
export const TASK_BAGGAGE = 'a2a.task.id';

export function withTaskBaggage(into: Context, taskId: string): Context {
  return propagation.setBaggage(into, propagation.createBaggage({ [TASK_BAGGAGE]: { value: taskId } }));
}

export function taskIdOf(from: Context): string | undefined {
  return propagation.getBaggage(from)?.getEntry(TASK_BAGGAGE)?.value;
}

/** Where a request keeps its trace (set by the `traceRequests` middleware). */
const TRACE = Symbol('trace context of this request');

/**
 * The trace an inbound request belongs to: code far from the HTTP layer (oidc-provider's CIBA hooks,
 * the A2A user builder) finds it on the request object instead of relying on the async context
 * surviving body parsers. The root context when the request carried none.
 */
export function requestTrace(req: IncomingMessage): Context {
  return (req as IncomingMessage & { [TRACE]?: Context })[TRACE] ?? ROOT_CONTEXT;
}

export function setRequestTrace(req: IncomingMessage, trace: Context): void {
  (req as IncomingMessage & { [TRACE]?: Context })[TRACE] = trace;
}
