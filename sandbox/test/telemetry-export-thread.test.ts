import { once } from 'node:events';
import { createServer } from 'node:net';
import { SpanKind, SpanStatusCode, trace, TraceFlags, ROOT_CONTEXT, type Tracer } from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, SimpleSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { exportThreadProcessor, type ExportThreadOptions } from '../telemetry/export-thread.ts';
import { EXPORT_BATCHING } from '../telemetry/setup.ts';
import { startOtlpReceiver, type OtlpReceiver } from './otlp-receiver.ts';

/**
 * Spans exported on a thread of their own (export-thread.ts) reach the
 * endpoint exactly as the SDK's exporter sends them in process, nothing
 * batched is lost at shutdown, and an endpoint that does not answer is said
 * once, not per export.
 */

const RESOURCE = { 'service.name': 'hr-api', 'service.namespace': 'headless-agent-auth-sandbox' };

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function receiver(): Promise<OtlpReceiver> {
  const started = await startOtlpReceiver();
  closers.push(() => started.close());
  return started;
}

/** The ids of the worker threads this process starts from now until the test ends. */
function threadsStarted(): number[] {
  const threads: number[] = [];
  const onWorker = (worker: { threadId: number }) => threads.push(worker.threadId);
  process.on('worker', onWorker);
  closers.push(async () => process.off('worker', onWorker));
  return threads;
}

function threadOptions(urls: string[], overrides: Partial<ExportThreadOptions> = {}): ExportThreadOptions {
  return {
    urls,
    resource: RESOURCE,
    exportTimeoutMs: 3_000,
    batchDelayMs: 20,
    ...EXPORT_BATCHING,
    onEndpoint: () => {},
    ...overrides,
  };
}

function tracerWith(...processors: SpanProcessor[]): { tracer: Tracer; provider: BasicTracerProvider } {
  const provider = new BasicTracerProvider({ resource: resourceFromAttributes(RESOURCE), spanProcessors: processors });
  closers.push(() => provider.shutdown());
  return { tracer: provider.getTracer('headless-agent-auth-sandbox'), provider };
}

/** A span with every part the exporter encodes: remote parent and trace state, kinds of attribute, an event, a link, an error status. */
function richSpan(tracer: Tracer, n: number): void {
  const parent = trace.setSpanContext(ROOT_CONTEXT, {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
    traceState: new TraceState('vendor=opaque,other=1'),
  });
  const span = tracer.startSpan(
    'GET /employees/:id',
    {
      kind: SpanKind.SERVER,
      attributes: { 'hop.participant': 'hr-api', 'http.response.status_code': 200, 'hop.ok': true, ratio: 0.25, 'token.scope': ['read:employee', 'openid'] },
      links: [{ context: { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: TraceFlags.SAMPLED, traceState: new TraceState('k=v') }, attributes: { why: 'retry' } }],
    },
    parent,
  );
  span.addEvent('poll', { 'ciba.poll': n });
  span.setStatus({ code: SpanStatusCode.ERROR, message: `failed #${n}` });
  span.end();
}

interface OtlpBody {
  resourceSpans: { resource: unknown; scopeSpans: { scope: unknown; spans: { spanId: string }[] }[] }[];
}

/** Every span sent, with the resource and scope it came under, in span id order (exports may arrive in any order). */
function sentSpans(target: OtlpReceiver): { span: { spanId: string } }[] {
  return target.bodies
    .flatMap((text) =>
      (JSON.parse(text) as OtlpBody).resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans.map((span) => ({ resource: r.resource, scope: s.scope, span })))),
    )
    .sort((a, b) => a.span.spanId.localeCompare(b.span.spanId));
}

describe('spans exported on a thread of their own', () => {
  it('reach the endpoint exactly as the in-process exporter sends them', async () => {
    const [threaded, inProcess] = await Promise.all([receiver(), receiver()]);
    const { tracer, provider } = tracerWith(
      exportThreadProcessor(threadOptions([threaded.url])),
      new SimpleSpanProcessor(new OTLPTraceExporter({ url: inProcess.url })),
    );
    for (let n = 0; n < 3; n++) richSpan(tracer, n);
    await provider.shutdown();
    await Promise.all([threaded.waitFor((s) => s.length === 3), inProcess.waitFor((s) => s.length === 3)]);

    const expected = sentSpans(inProcess);
    expect(expected).toHaveLength(3);
    expect(sentSpans(threaded)).toEqual(expected);
    // What the comparison covers is really there.
    expect(JSON.stringify(expected)).toContain('vendor=opaque,other=1');
    expect(JSON.stringify(expected)).toContain('00f067aa0ba902b7');
  });

  it('loses nothing batched when the service stops', async () => {
    const target = await receiver();
    // A long batch delay: without the shutdown's flush these spans would still be waiting.
    const { tracer, provider } = tracerWith(exportThreadProcessor(threadOptions([target.url], { batchDelayMs: 60_000 })));
    for (let n = 0; n < 1_500; n++) tracer.startSpan(`hop ${n}`).end();
    await provider.shutdown();
    expect(target.spans).toHaveLength(1_500);
    expect(new Set(target.spans.map((s) => s.name)).size).toBe(1_500);
  });

  it('starts its thread with the first span, not with the service', async () => {
    const threads = threadsStarted();
    const target = await receiver();
    const { tracer, provider } = tracerWith(exportThreadProcessor(threadOptions([target.url])));
    // A flush with nothing ever handed over needs no thread.
    await provider.forceFlush();
    expect(threads).toEqual([]);
    tracer.startSpan('first hop').end();
    await provider.forceFlush();
    expect(threads).toHaveLength(1);
    tracer.startSpan('second hop').end();
    await provider.shutdown();
    expect(threads).toHaveLength(1);
    expect(target.spans.map((s) => s.name).sort()).toEqual(['first hop', 'second hop']);
  });

  it('stops at once when no span was ever handed over', async () => {
    const threads = threadsStarted();
    const { provider } = tracerWith(exportThreadProcessor(threadOptions(['http://127.0.0.1:9/v1/traces'])));
    await provider.shutdown();
    expect(threads).toEqual([]);
  });

  it('says once that an endpoint does not answer, and goes on', async () => {
    // A port that refuses connections: listened on, then closed.
    const server = createServer().listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    await new Promise((resolve) => server.close(resolve));
    const changes: { url?: string; ok: boolean; message?: string }[] = [];
    const { tracer, provider } = tracerWith(
      exportThreadProcessor(threadOptions([`http://127.0.0.1:${port}/v1/traces`], { exportTimeoutMs: 1_000, onEndpoint: (change) => changes.push(change) })),
    );
    for (let round = 0; round < 3; round++) {
      tracer.startSpan(`hop ${round}`).end();
      await provider.forceFlush();
    }
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({ url: `http://127.0.0.1:${port}/v1/traces`, ok: false });
    expect(changes[0]?.message).toBeTruthy();
  });
});
