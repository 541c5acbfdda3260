import { context, ProxyTracerProvider, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOnSampler, BasicTracerProvider, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { Logger } from 'pino';
import type { SandboxConfig } from '../config.ts';
import { exportThreadProcessor } from './export-thread.ts';
import { createLogger, hopLogProcessor, type LoggingOptions } from './hop-log.ts';

/**
 * The one telemetry setup of every service: a tracer whose hop spans (see
 * hops.ts) go to the flow console and any OTLP collector over OTLP/HTTP
 * JSON, and become the service's log lines. Each service's factory takes a
 * `Telemetry`; without one it gets `noTelemetry()`, whose tracer records
 * nothing, so services started by tests stay silent and pay nothing.
 *
 * Exporting never holds a service up: spans are batched and exported on a
 * thread of their own (export-thread.ts), each export has a short deadline, a
 * queue that is full drops spans, and a console or collector that is down only
 * costs one log line.
 */

export interface Telemetry {
  /** The service's name in spans (`service.name`) and log lines. */
  readonly service: string;
  readonly tracer: Tracer;
  /** False for `noTelemetry()`: spans are not recorded, nothing is exported or logged. */
  readonly recording: boolean;
  /** The service's logger when it logs (hop lines come from spans; `hopWarning` writes warnings). */
  readonly logger: Logger | undefined;
  /** Sends what is batched and stops; bounded by `SHUTDOWN_DEADLINE_MS`. */
  shutdown(): Promise<void>;
}

export interface TelemetryOptions {
  service: string;
  /** OTLP/HTTP JSON trace endpoints (full URLs, `…/v1/traces`); none: spans are logged only. */
  exportTo?: readonly string[];
  /** Hop lines and warnings; none: the service logs nothing of its hops. */
  logging?: LoggingOptions;
  /** One export's deadline (default 3 s). */
  exportTimeoutMs?: number;
  /** How long spans wait to be sent together (default 200 ms: the console draws hops as they happen). */
  batchDelayMs?: number;
}

const SHUTDOWN_DEADLINE_MS = 3_000;
const EXPORT_TIMEOUT_MS = 3_000;
const BATCH_DELAY_MS = 200;
/**
 * How spans are batched for export. `maxQueue`: spans waiting to be sent; beyond it new spans are dropped
 * (a thousand pending consents make a few each). `concurrentExports`: exports in flight per endpoint, enough
 * for a full queue at once (a stop sends everything waiting together); an endpoint that hangs is given no
 * more, and each export has its deadline.
 */
export const EXPORT_BATCHING = { maxQueue: 8_192, maxBatch: 512, concurrentExports: 8_192 / 512 } as const;

/** A tracer that records nothing (but passes an incoming trace context on). */
export function noTelemetry(service = 'untraced'): Telemetry {
  return {
    service,
    // A provider of our own, not the global one: whatever else in the process registered stays out.
    tracer: new ProxyTracerProvider().getTracer(service),
    recording: false,
    logger: undefined,
    shutdown: async () => {},
  };
}

export function createTelemetry(options: TelemetryOptions): Telemetry {
  const exportTo = options.exportTo ?? [];
  if (exportTo.length === 0 && !options.logging) return noTelemetry(options.service);
  const logger = options.logging ? createLogger(options.service, options.logging) : undefined;
  const processors: SpanProcessor[] = [];
  if (logger) processors.push(hopLogProcessor(logger));
  const resource = { [ATTR_SERVICE_NAME]: options.service, 'service.namespace': 'headless-agent-auth-sandbox' };
  if (exportTo.length > 0) {
    processors.push(
      exportThreadProcessor({
        urls: exportTo,
        resource,
        exportTimeoutMs: options.exportTimeoutMs ?? EXPORT_TIMEOUT_MS,
        batchDelayMs: options.batchDelayMs ?? BATCH_DELAY_MS,
        ...EXPORT_BATCHING,
        onEndpoint: ({ url, ok, message }) => {
          // Said once per outage, instead of failing silently or loudly.
          if (ok) logger?.info(`Spans reach ${url} again`);
          else if (url) logger?.info(`Spans could not be sent to ${url} (${message ?? 'no answer'}); they are dropped until it answers`);
          else logger?.info(`Spans can no longer be exported: ${message ?? 'no reason given'}`);
        },
      }),
    );
  }
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes(resource),
    sampler: new AlwaysOnSampler(),
    spanProcessors: processors,
  });
  let stopped: Promise<void> | undefined;
  return {
    service: options.service,
    tracer: provider.getTracer('headless-agent-auth-sandbox'),
    recording: true,
    logger,
    shutdown() {
      stopped ??= (async () => {
        let timer: NodeJS.Timeout | undefined;
        const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, SHUTDOWN_DEADLINE_MS)));
        await Promise.race([provider.shutdown().catch(() => undefined), deadline]);
        clearTimeout(timer);
        logger?.flush();
      })();
      return stopped;
    },
  };
}

/**
 * What a service's `main` passes to `createTelemetry`: the flow console and the collector of the
 * environment as export targets (none with `OTEL_SDK_DISABLED=true`), and its log settings.
 */
export function telemetryOptions(
  config: Pick<SandboxConfig, 'telemetry' | 'logging'>,
  service: string,
  overrides: { destination?: LoggingOptions['destination']; isTerminal?: boolean } = {},
): TelemetryOptions {
  const { telemetry, logging } = config;
  const exportTo = telemetry.enabled ? [telemetry.flowConsole, ...(telemetry.collector ? [telemetry.collector.url] : [])] : [];
  const isTerminal = overrides.isTerminal ?? Boolean(process.stdout.isTTY);
  return {
    service,
    exportTo,
    ...(logging.level === 'silent'
      ? {}
      : {
          logging: {
            format: logging.format,
            level: logging.level,
            colour: logging.colour === 'auto' ? isTerminal : logging.colour,
            ...(overrides.destination ? { destination: overrides.destination } : {}),
          },
        }),
  };
}

/**
 * The one process-wide piece, for a service whose hops are made far from the request they belong to
 * (the agent: its HTTP clients find the active hop to send as `traceparent`): OpenTelemetry's API
 * finds the active span through a global context manager, AsyncLocalStorage. Registered once; later
 * calls find it in place. Services that pass contexts explicitly (the HR API, the tenant) do without,
 * and without its cost on every promise.
 */
export function enableAsyncContext(): void {
  const manager = new AsyncLocalStorageContextManager();
  if (!context.setGlobalContextManager(manager.enable())) manager.disable();
}
