import { parentPort, workerData } from 'node:worker_threads';
import { ExportResultCode, TraceState } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';

// The body of export-thread.ts's worker thread: the OTLP/HTTP exporters and
// their batching, away from the thread that serves requests. Finished spans
// arrive as plain records (export-thread.ts's `SpanRecord`, in JSON); each is
// made a span again and handed to one BatchSpanProcessor per endpoint.
// Plain JavaScript so that it loads the same way under tsx, Vitest and plain Node.

const port = parentPort;
/** @type {{ urls: string[]; resource: Record<string, string>; exportTimeoutMs: number; batchDelayMs: number; maxQueue: number; maxBatch: number; concurrentExports: number }} */
const options = workerData;

const resource = resourceFromAttributes(options.resource);
/** One scope object per name: the exporter groups spans by scope. */
const scopes = new Map();
function scope(name) {
  let found = scopes.get(name);
  if (!found) scopes.set(name, (found = { name }));
  return found;
}

function traceState(serialized) {
  return serialized === undefined ? undefined : new TraceState(serialized);
}

/** A record as a ReadableSpan: what the processor and the exporter read of one. */
function toSpan(record) {
  const context = { traceId: record.traceId, spanId: record.spanId, traceFlags: record.traceFlags, traceState: traceState(record.traceState) };
  return {
    name: record.name,
    kind: record.kind,
    spanContext: () => context,
    parentSpanContext:
      record.parentSpanId === undefined
        ? undefined
        : { traceId: record.traceId, spanId: record.parentSpanId, traceFlags: record.traceFlags, isRemote: record.parentIsRemote },
    startTime: record.startTime,
    endTime: record.endTime,
    duration: record.duration,
    ended: true,
    status: record.status,
    attributes: record.attributes,
    links: record.links.map((link) => ({ ...link, context: { ...link.context, traceState: traceState(link.context.traceState) } })),
    events: record.events,
    resource,
    instrumentationScope: scope(record.scope),
    droppedAttributesCount: record.droppedAttributesCount,
    droppedEventsCount: record.droppedEventsCount,
    droppedLinksCount: record.droppedLinksCount,
  };
}

/** Tells the service when an endpoint stops taking spans and when it takes them again (once per change). */
function reporting(exporter, url) {
  let failing = false;
  return {
    export(spans, done) {
      exporter.export(spans, (result) => {
        const ok = result.code === ExportResultCode.SUCCESS;
        if (ok === failing) port.postMessage({ type: 'endpoint', url, ok, message: ok ? undefined : (result.error?.message ?? 'no answer') });
        failing = !ok;
        done(result);
      });
    },
    shutdown: () => exporter.shutdown(),
    forceFlush: () => exporter.forceFlush?.() ?? Promise.resolve(),
  };
}

const processors = options.urls.map((url) => {
  const exporter = new OTLPTraceExporter({
    url,
    timeoutMillis: options.exportTimeoutMs,
    concurrencyLimit: options.concurrentExports,
    // Plain JSON whatever OTEL_EXPORTER_OTLP_COMPRESSION says: every receiver reads it, and loopback needs no gzip.
    compression: 'none',
  });
  return new BatchSpanProcessor(reporting(exporter, url), {
    maxQueueSize: options.maxQueue,
    maxExportBatchSize: options.maxBatch,
    scheduledDelayMillis: options.batchDelayMs,
    exportTimeoutMillis: options.exportTimeoutMs,
  });
});

port.on('message', (message) => {
  if (message.type === 'spans') {
    for (const record of JSON.parse(message.json)) {
      const span = toSpan(record);
      for (const processor of processors) processor.onEnd(span);
    }
  } else if (message.type === 'flush' || message.type === 'shutdown') {
    const settle = (processor) => (message.type === 'flush' ? processor.forceFlush() : processor.shutdown()).catch(() => undefined);
    void Promise.all(processors.map(settle)).then(() => port.postMessage({ type: 'done', id: message.id }));
  }
});
