import { Worker } from 'node:worker_threads';
import { TraceFlags, type Attributes, type HrTime, type SpanKind, type SpanStatus } from '@opentelemetry/api';
import type { ReadableSpan, SpanProcessor, TimedEvent } from '@opentelemetry/sdk-trace-base';
import { backgroundThreadLimits } from '../background-thread.ts';

/**
 * Exporting spans on a thread of its own. Turning spans into OTLP JSON and
 * sending them costs about as much CPU per span as a small request of the HR
 * API spends on its own work in tens of microseconds, and on the thread that
 * serves requests that was most of what tracing cost a busy service. Here that
 * thread only copies each finished span's fields into a plain record and hands
 * them over in bunches; span-export-worker.mjs batches and exports them as
 * the SDK's BatchSpanProcessor and OTLP/HTTP exporter do in process.
 */

export interface ExportThreadOptions {
  /** OTLP/HTTP JSON trace endpoints (full URLs). */
  urls: readonly string[];
  /** The service's resource attributes (`service.name`, …). */
  resource: Record<string, string>;
  exportTimeoutMs: number;
  batchDelayMs: number;
  /** Spans waiting in the thread's batches; beyond it new spans are dropped (at most `HANDOVER_MAX` wait to be handed over). */
  maxQueue: number;
  maxBatch: number;
  /** Exports in flight per endpoint. */
  concurrentExports: number;
  /** An endpoint stopped taking spans (`error`) or takes them again; also the thread failing (no `url`). */
  onEndpoint(change: { url?: string; ok: boolean; message?: string }): void;
}

/** A finished span as it crosses to the export thread: plain data, sent as JSON. */
export interface SpanRecord {
  traceId: string;
  spanId: string;
  traceFlags: number;
  traceState: string | undefined;
  parentSpanId: string | undefined;
  parentIsRemote: boolean | undefined;
  name: string;
  kind: SpanKind;
  startTime: HrTime;
  endTime: HrTime;
  duration: HrTime;
  status: SpanStatus;
  attributes: Attributes;
  events: TimedEvent[];
  links: { context: { traceId: string; spanId: string; traceFlags: number; isRemote?: boolean; traceState?: string }; attributes?: Attributes; droppedAttributesCount?: number }[];
  droppedAttributesCount: number;
  droppedEventsCount: number;
  droppedLinksCount: number;
  scope: string;
}

/** How long finished spans gather before they are handed over, and how many at most (each hand-over costs a message). */
const HANDOVER_MS = 20;
const HANDOVER_MAX = 256;

export function toSpanRecord(span: ReadableSpan): SpanRecord {
  const context = span.spanContext();
  const parent = span.parentSpanContext;
  return {
    traceId: context.traceId,
    spanId: context.spanId,
    traceFlags: context.traceFlags,
    traceState: context.traceState?.serialize(),
    parentSpanId: parent?.spanId,
    parentIsRemote: parent?.isRemote,
    name: span.name,
    kind: span.kind,
    startTime: span.startTime,
    endTime: span.endTime,
    duration: span.duration,
    status: span.status,
    attributes: span.attributes,
    events: span.events,
    links: span.links.map((link) => ({
      ...link,
      context: {
        traceId: link.context.traceId,
        spanId: link.context.spanId,
        traceFlags: link.context.traceFlags,
        ...(link.context.isRemote === undefined ? {} : { isRemote: link.context.isRemote }),
        ...(link.context.traceState ? { traceState: link.context.traceState.serialize() } : {}),
      },
    })),
    droppedAttributesCount: span.droppedAttributesCount,
    droppedEventsCount: span.droppedEventsCount,
    droppedLinksCount: span.droppedLinksCount,
    scope: span.instrumentationScope.name,
  };
}

/**
 * A span processor that exports through span-export-worker.mjs. The thread starts with the first span handed over,
 * not with the service: loading the exporter's modules cost each service about 0.3 s of CPU, which at start-up
 * competed with the other services starting on the same cores. It never holds the process up.
 */
export function exportThreadProcessor(options: ExportThreadOptions): SpanProcessor {
  const { onEndpoint, ...workerData } = options;
  let worker: Worker | undefined;
  let pending: SpanRecord[] = [];
  let timer: NodeJS.Timeout | undefined;
  let failed = false;
  let stopped: Promise<void> | undefined;
  let nextId = 0;
  const waiting = new Map<number, () => void>();
  // Settles what waits on a thread that is gone.
  const settleAll = () => {
    for (const resolve of waiting.values()) resolve();
    waiting.clear();
  };
  const thread = (): Worker => {
    if (worker) return worker;
    const started = new Worker(new URL('./span-export-worker.mjs', import.meta.url), {
      workerData: { ...workerData, urls: [...workerData.urls] },
      resourceLimits: backgroundThreadLimits(),
    });
    started.unref();
    started.on('message', (message: { type: 'endpoint'; url: string; ok: boolean; message?: string } | { type: 'done'; id: number }) => {
      if (message.type === 'done') {
        waiting.get(message.id)?.();
        waiting.delete(message.id);
      } else {
        onEndpoint(message);
      }
    });
    started.on('error', (error) => {
      failed = true;
      pending = [];
      settleAll();
      onEndpoint({ ok: false, message: `the export thread failed: ${error.message}` });
    });
    started.on('exit', () => {
      failed = true;
      settleAll();
    });
    return (worker = started);
  };

  const handOver = () => {
    clearTimeout(timer);
    timer = undefined;
    if (pending.length === 0 || failed) return;
    thread().postMessage({ type: 'spans', json: JSON.stringify(pending) });
    pending = [];
  };
  /** Hands over what is pending, then asks the thread to `type` and waits for its answer. */
  const ask = (type: 'flush' | 'shutdown') => {
    handOver();
    // No thread yet: nothing was ever handed over, so there is nothing to flush.
    if (failed || worker === undefined) return Promise.resolve();
    const started = worker;
    const id = nextId++;
    return new Promise<void>((resolve) => {
      waiting.set(id, resolve);
      started.postMessage({ type, id });
    });
  };

  return {
    onStart() {},
    onEnd(span) {
      if (failed || stopped || (span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
      pending.push(toSpanRecord(span));
      if (pending.length >= HANDOVER_MAX) handOver();
      else timer ??= setTimeout(handOver, HANDOVER_MS).unref();
    },
    forceFlush: () => (stopped ? Promise.resolve() : ask('flush')),
    shutdown() {
      stopped ??= ask('shutdown').then(() => worker?.terminate().then(() => undefined));
      return stopped;
    },
  };
}
