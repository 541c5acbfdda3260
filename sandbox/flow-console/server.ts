import { readFileSync } from 'node:fs';
import express, { type Express, type NextFunction, type Request, type Response, Router } from 'express';
import { secretGuard } from '../../mock-guardian/control-api.ts';
import { browserPages, setSecurityHeaders } from '../../mock-guardian/guardian-page.ts';
import { appListener } from '../http-listener.ts';
import { hostAllowlist } from '../host-allowlist.ts';
import { OtlpFormatError, parseExportRequest } from './otlp.ts';
import { createTaskTraces, type TaskChange, type TaskTraces, type TaskTracesOptions } from './task-traces.ts';

/**
 * The flow console: an OTLP/HTTP receiver for the sandbox's spans and a page
 * drawing each A2A task's hops as the original sample's sequence diagram, live.
 *
 * - `POST /v1/traces` — OTLP/HTTP with the JSON encoding (the path and answers of the OTLP specification, "OTLP/HTTP")
 * - `GET /api/tasks` — recent tasks, newest first
 * - `GET /api/tasks/:id` — a task's hops in start order, with offsets and durations
 * - `GET /api/events` — Server-Sent Events: `task` (a summary changed) and `removed`
 * - `GET /` — the page; `GET /health`
 */

export interface FlowConsoleOptions extends TaskTracesOptions {
  /** The URL browsers and exporters use; its host is answered besides loopback's on the bound port. */
  publicUrl?: string;
  /** Further host names answered (`SANDBOX_ALLOWED_HOSTS`). */
  allowedHosts?: readonly string[];
  /** Largest export request accepted, in bytes (after decompression). */
  maxBodyBytes?: number;
  /** Event streams open at once; more get 503. */
  maxEventStreams?: number;
  /** Milliseconds between SSE keep-alive comments. */
  keepAliveMs?: number;
  /**
   * When set (the sandbox is exposed beyond loopback), the page's API needs it in
   * `X-Control-Secret` (the event stream: `?secret=`), as the tenant's control API does.
   */
  secret?: string;
}

export interface FlowConsole {
  app: Express;
  traces: TaskTraces;
  /** Starts listening; resolves to the base URL, e.g. `http://127.0.0.1:10054`. */
  listen(port: number, host: string): Promise<string>;
  close(): Promise<void>;
}

export const FLOW_CONSOLE_DEFAULTS = { maxBodyBytes: 4 * 1024 * 1024, maxEventStreams: 32, keepAliveMs: 15_000 } as const;

/** google.rpc.Code values, which OTLP/HTTP error bodies carry (`Status.code`). */
const RPC_CODE = { invalidArgument: 3, resourceExhausted: 8, unimplemented: 12, unavailable: 14 } as const;
const PROTOBUF_TYPES = new Set(['application/x-protobuf', 'application/protobuf']);

const ASSETS = {
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/diagram.js': { file: 'diagram.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
  '/favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' },
} as const;

function otlpError(res: Response, status: number, code: number, message: string): void {
  res.status(status).json({ code, message });
}

function mediaTypeOf(req: Request): string {
  return (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

function createReceiver(traces: TaskTraces, maxBodyBytes: number): Router {
  const router = Router();
  router.post(
    '/v1/traces',
    (req, res, next) => {
      const type = mediaTypeOf(req);
      if (type === 'application/json') return next();
      const message = PROTOBUF_TYPES.has(type)
        ? 'The flow console reads OTLP/HTTP JSON only: set OTEL_EXPORTER_OTLP_PROTOCOL=http/json, or send protobuf to a collector'
        : 'Send OTLP/HTTP JSON with Content-Type: application/json';
      otlpError(res, 415, RPC_CODE.unimplemented, message);
    },
    express.json({ limit: maxBodyBytes, strict: true, type: () => true }),
    (req, res) => {
      try {
        const { spans, rejected } = parseExportRequest(req.body);
        traces.add(spans);
        res.json(
          rejected === 0
            ? {}
            : { partialSuccess: { rejectedSpans: String(rejected), errorMessage: `${rejected} span(s) lacked a valid trace id, span id or times` } },
        );
      } catch (error) {
        if (error instanceof OtlpFormatError) return otlpError(res, 400, RPC_CODE.invalidArgument, error.message);
        throw error;
      }
    },
  );
  router.all('/v1/traces', (_req, res) => {
    res.set('Allow', 'POST');
    otlpError(res, 405, RPC_CODE.unimplemented, 'Only POST is supported');
  });
  router.use('/v1/traces', (error: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(error);
    const { status, type } = error as { status?: unknown; type?: unknown };
    if (status === 413) return otlpError(res, 413, RPC_CODE.resourceExhausted, `The export request is larger than ${maxBodyBytes} bytes; export smaller batches`);
    if (status === 415 || type === 'encoding.unsupported') return otlpError(res, 415, RPC_CODE.unimplemented, 'Unsupported Content-Encoding; use gzip or none');
    if (typeof status === 'number' && status >= 400 && status < 500) return otlpError(res, 400, RPC_CODE.invalidArgument, 'The body is not valid JSON');
    otlpError(res, 500, RPC_CODE.unavailable, 'Unexpected error');
  });
  return router;
}

function createPageApi(traces: TaskTraces, options: { maxEventStreams: number; keepAliveMs: number; secret?: string }): Router {
  const router = Router();
  let openStreams = 0;
  router.use((_req, res, next) => {
    res.set({ 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
    next();
  });
  if (options.secret !== undefined) router.use(secretGuard(options.secret));

  router.get('/tasks', (_req, res) => {
    res.json({ tasks: traces.list() });
  });

  router.get('/tasks/:id', (req: Request<{ id: string }>, res: Response) => {
    const detail = req.params.id.length <= 200 ? traces.get(req.params.id) : undefined;
    if (!detail) {
      res.status(404).json({ error: 'not_found', error_description: 'No recent task has this id' });
      return;
    }
    res.json(detail);
  });

  router.get('/events', (req, res) => {
    if (openStreams >= options.maxEventStreams) {
      res.status(503).set('Retry-After', '5').json({ error: 'too_many_streams', error_description: 'Too many consoles are open; close one' });
      return;
    }
    openStreams += 1;
    res.status(200).set({ 'Content-Type': 'text/event-stream; charset=utf-8', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.flushHeaders();
    res.write(': connected\n\n');
    const unsubscribe = traces.subscribe((changes: readonly TaskChange[]) => {
      for (const change of changes) {
        const { type, ...data } = change;
        res.write(`event: ${type}\ndata: ${JSON.stringify(type === 'task' ? change.task : data)}\n\n`);
      }
    });
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), options.keepAliveMs);
    keepAlive.unref();
    let stopped = false;
    const stop = () => {
      if (stopped) return;
      stopped = true;
      openStreams -= 1;
      clearInterval(keepAlive);
      unsubscribe();
    };
    req.on('close', stop);
    res.on('error', stop);
  });

  router.all(['/tasks', '/tasks/:id', '/events'], (_req, res) => {
    res.status(405).set('Allow', 'GET, HEAD').json({ error: 'method_not_allowed', error_description: 'Only GET is supported' });
  });
  router.use((_req, res) => {
    res.status(404).json({ error: 'not_found', error_description: 'Unknown API route' });
  });
  return router;
}

export function createFlowConsole(options: FlowConsoleOptions = {}): FlowConsole {
  const traces = createTaskTraces(options);
  const assetDir = new URL('./console-page/', import.meta.url);
  const guardianDir = new URL('../../mock-guardian/guardian-page/', import.meta.url);

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(hostAllowlist({ names: options.allowedHosts ?? [], urls: () => [options.publicUrl] }));

  app.get('/health', (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ ok: true });
  });
  app.use(createReceiver(traces, options.maxBodyBytes ?? FLOW_CONSOLE_DEFAULTS.maxBodyBytes));
  app.use(
    '/api',
    createPageApi(traces, {
      maxEventStreams: options.maxEventStreams ?? FLOW_CONSOLE_DEFAULTS.maxEventStreams,
      keepAliveMs: options.keepAliveMs ?? FLOW_CONSOLE_DEFAULTS.keepAliveMs,
      ...(options.secret === undefined ? {} : { secret: options.secret }),
    }),
  );
  // The page is served as the tenant's pages are: same template filling, same CSP and headers,
  // and the same page kit (DOM built from text only, the banner's secret read from the fragment).
  app.use(
    browserPages({
      controlBasePath: '/api',
      pages: { '/': readFileSync(new URL('index.html', assetDir), 'utf8') },
      assets: new Map([
        ...Object.entries(ASSETS).map(([path, { file, type }]) => [path, { type, body: readFileSync(new URL(file, assetDir)) }] as const),
        ['/page-kit.js', { type: 'text/javascript; charset=utf-8', body: readFileSync(new URL('page-kit.js', guardianDir)) }] as const,
      ]),
    }),
  );
  app.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(error);
    setSecurityHeaders(res);
    res.status(500).json({ error: 'server_error', error_description: 'Unexpected error' });
  });

  const listener = appListener(app, 'The flow console');
  return { app, traces, listen: listener.listen, close: listener.close };
}
