import type { IncomingMessage } from 'node:http';
import { context, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import type { RequestHandler } from 'express';
import { HOP, type Participant } from './hops.ts';
import type { Telemetry } from './setup.ts';
import { extractTraceHeaders, requestTrace, setRequestTrace, taskIdOf } from './trace-context.ts';

/**
 * The inbound side of every service, as Express middleware: the caller's W3C
 * trace context is taken from the request (and kept on it, see
 * `requestTrace`), and requests worth a line of their own get a SERVER span
 * marked with the service's lane (`hop.participant`). That span is no arrow:
 * the caller's hop span, its parent, is.
 */

export interface TraceRequestsOptions {
  participant: Participant;
  /**
   * The span name for a request that gets a span of its own, as a route template (`GET /employees/:id`,
   * never the path with its identifiers); undefined: the trace context is only passed on.
   */
  route?: (req: IncomingMessage) => string | undefined;
}

export function traceRequests(telemetry: Telemetry, options: TraceRequestsOptions): RequestHandler {
  return (req, res, next) => {
    const parent = extractTraceHeaders(req.headers);
    const route = options.route?.(req);
    if (route === undefined) {
      setRequestTrace(req, parent);
      context.with(parent, next);
      return;
    }
    const span = telemetry.tracer.startSpan(route, { kind: SpanKind.SERVER }, parent);
    const active = trace.setSpan(parent, span);
    setRequestTrace(req, active);
    if (span.isRecording()) {
      const taskId = taskIdOf(parent);
      span.setAttributes({
        [HOP.participant]: options.participant,
        [HOP.label]: route,
        'http.request.method': req.method,
        'http.route': route.slice(route.indexOf(' ') + 1),
        ...(taskId === undefined ? {} : { [HOP.taskId]: taskId }),
      });
      // 'close' comes last whether the answer was sent or the connection dropped: one listener per request.
      res.once('close', () => {
        span.setAttribute('http.response.status_code', res.statusCode);
        // OpenTelemetry's HTTP conventions: a server span fails on 5xx only; a 4xx is the client's error.
        if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        if (!res.writableFinished) span.setAttribute('error.type', 'connection_closed');
        span.end();
      });
    } else {
      res.once('close', () => span.end());
    }
    context.with(active, next);
  };
}

/** The SERVER span of a request `traceRequests` gave one (to add what only the route learns, such as the employee). */
export function servedSpan(req: IncomingMessage): Span | undefined {
  return trace.getSpan(requestTrace(req));
}
