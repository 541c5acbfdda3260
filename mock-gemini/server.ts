import express, { type ErrorRequestHandler, type Express, type NextFunction, type Request, type Response } from 'express';
import { GeminiError, invalidArgument, notFound } from './errors.ts';
import { type Plan, planReply } from './planner.ts';
import { type GenerateContentRequest, parseGenerateContentRequest } from './request.ts';
import { generateContentResponse } from './response.ts';
import { appListener } from '../sandbox/http-listener.ts';
import { hostAllowlist } from '../sandbox/host-allowlist.ts';

export interface MockGeminiOptions {
  /** Refuse calls without an `x-goog-api-key` header, as Google does (403 PERMISSION_DENIED). */
  requireApiKey?: boolean;
  /** When set, any other key is refused as Google refuses an invalid key (400 INVALID_ARGUMENT). */
  apiKey?: string;
  /** How many requests `calls` keeps, oldest dropped first. Default 200. */
  maxRecordedCalls?: number;
  /** Largest accepted request body. Default 4 MiB. */
  bodyLimitBytes?: number;
  /** The URL the agent uses; its host is answered besides loopback's on the bound port. */
  publicUrl?: string;
  /** Further host names answered (`SANDBOX_ALLOWED_HOSTS`). */
  allowedHosts?: readonly string[];
}

/** One request as the server saw it; the API key itself is never kept. */
export interface RecordedCall {
  method: string;
  path: string;
  model: string | undefined;
  stream: boolean;
  apiKeyPresent: boolean;
  status: number;
  /** The parsed JSON body (undefined for GETs and unparseable bodies). */
  body: unknown;
  request: GenerateContentRequest | undefined;
  reply: Plan | undefined;
}

export interface MockGemini {
  app: Express;
  /** Starts listening; resolves to the base URL to hand to `httpOptions.baseUrl`. */
  listen(port: number, host: string): Promise<string>;
  close(): Promise<void>;
  /** The most recent requests, oldest first (bounded by `maxRecordedCalls`). */
  readonly calls: readonly RecordedCall[];
}

/** Model names listed by `GET /v1beta/models`; any well-formed name is served. */
export const LISTED_MODELS = ['gemini-2.5-flash', 'gemini-2.5-pro', 'gemini-2.0-flash'] as const;

type Route =
  | { kind: 'generate'; model: string; stream: boolean }
  | { kind: 'listModels' }
  | { kind: 'getModel'; model: string };

const API_VERSIONS = new Set(['v1beta', 'v1', 'v1alpha']);
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Parses `/{version}/models/{model}:{method}` and friends; undefined for anything else. */
function routeOf(method: string, rawPath: string): Route | undefined {
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    return undefined;
  }
  const segments = path.split('/');
  if (segments.length < 3 || segments[0] !== '' || !API_VERSIONS.has(segments[1] ?? '')) return undefined;
  const collection = segments[2];
  if (collection !== 'models' && collection !== 'tunedModels') return undefined;
  if (segments.length === 3) return method === 'GET' && collection === 'models' ? { kind: 'listModels' } : undefined;
  if (segments.length !== 4) return undefined;
  const [name = '', action] = (segments[3] ?? '').split(':', 3);
  if (!MODEL_NAME.test(name)) return undefined;
  if (action === undefined) return method === 'GET' ? { kind: 'getModel', model: name } : undefined;
  if (method !== 'POST') return undefined;
  if (action === 'generateContent') return { kind: 'generate', model: name, stream: false };
  if (action === 'streamGenerateContent') return { kind: 'generate', model: name, stream: true };
  return undefined;
}

function modelResource(model: string) {
  return {
    name: `models/${model}`,
    version: '001',
    displayName: `${model} (mock-gemini)`,
    description: 'A deterministic local stand-in for the Gemini API.',
    inputTokenLimit: 1_048_576,
    outputTokenLimit: 65_536,
    supportedGenerationMethods: ['generateContent', 'streamGenerateContent'],
  };
}

function sendError(res: Response, error: GeminiError): void {
  res.status(error.httpStatus).json(error.toJSON());
}

export function createMockGemini(options: MockGeminiOptions = {}): MockGemini {
  const maxRecordedCalls = Math.max(0, options.maxRecordedCalls ?? 200);
  const calls: RecordedCall[] = [];
  const record = (call: RecordedCall) => {
    if (maxRecordedCalls === 0) return;
    calls.push(call);
    while (calls.length > maxRecordedCalls) calls.shift();
  };

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(hostAllowlist({ names: options.allowedHosts ?? [], urls: () => [options.publicUrl] }));

  app.get('/health', (_req, res) => {
    res.json({ ok: true });
  });

  app.use((req: Request, res: Response, next: NextFunction) => {
    const route = routeOf(req.method === 'HEAD' ? 'GET' : req.method, req.path);
    if (route === undefined) {
      sendError(res, notFound(`The requested URL ${req.method} ${req.path.slice(0, 200)} was not found on this server.`));
      return;
    }
    res.locals.route = route;
    // The SDK sends the key in this header only; keys in URLs would end up in logs.
    const key = req.get('x-goog-api-key');
    const present = key !== undefined && key !== '';
    res.locals.apiKeyPresent = present;
    if (options.requireApiKey && !present) {
      sendError(
        res,
        new GeminiError(
          'PERMISSION_DENIED',
          "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consent.",
        ),
      );
      return;
    }
    if (options.apiKey !== undefined && present && key !== options.apiKey) {
      sendError(res, invalidArgument('API key not valid. Please pass a valid API key.'));
      return;
    }
    next();
  });

  // Any content type is read as JSON: Gemini itself does not insist on the header.
  app.use(express.json({ limit: options.bodyLimitBytes ?? 4 * 1024 * 1024, type: () => true }));

  app.use((req: Request, res: Response) => {
    const route = res.locals.route as Route;
    if (route.kind === 'listModels') {
      res.json({ models: LISTED_MODELS.map(modelResource) });
      return;
    }
    if (route.kind === 'getModel') {
      res.json(modelResource(route.model));
      return;
    }
    const call: RecordedCall = {
      method: req.method,
      path: req.path,
      model: route.model,
      stream: route.stream,
      apiKeyPresent: res.locals.apiKeyPresent === true,
      status: 200,
      body: req.body as unknown,
      request: undefined,
      reply: undefined,
    };
    try {
      const request = parseGenerateContentRequest(req.body ?? {});
      const reply = planReply(request);
      const body = generateContentResponse(reply, route.model, req.body);
      record({ ...call, request, reply });
      if (route.stream) {
        // Server-sent events as `alt=sse` returns them; one chunk carries the whole turn.
        res.status(200).set({ 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
        res.end(`data: ${JSON.stringify(body)}\r\n\r\n`);
        return;
      }
      res.json(body);
    } catch (error) {
      const failure = error instanceof GeminiError ? error : new GeminiError('INTERNAL', 'Internal error encountered.');
      record({ ...call, status: failure.httpStatus });
      sendError(res, failure);
    }
  });

  const onError: ErrorRequestHandler = (error: unknown, req, res, _next) => {
    if (res.headersSent) return;
    const type = typeof error === 'object' && error !== null && 'type' in error ? String(error.type) : '';
    const status = typeof error === 'object' && error !== null && 'status' in error ? Number(error.status) : 500;
    let failure: GeminiError;
    if (type === 'entity.parse.failed') {
      failure = invalidArgument('Invalid JSON payload received. Unexpected token; the body is not valid JSON.');
    } else if (type === 'entity.too.large') {
      failure = invalidArgument(`Request payload size exceeds the limit: ${options.bodyLimitBytes ?? 4 * 1024 * 1024} bytes.`);
    } else if (status >= 400 && status < 500) {
      failure = invalidArgument('The request body could not be read.');
    } else {
      failure = new GeminiError('INTERNAL', 'Internal error encountered.');
    }
    const route = res.locals.route as Route | undefined;
    if (route?.kind === 'generate') {
      record({
        method: req.method,
        path: req.path,
        model: route.model,
        stream: route.stream,
        apiKeyPresent: res.locals.apiKeyPresent === true,
        status: failure.httpStatus,
        body: undefined,
        request: undefined,
        reply: undefined,
      });
    }
    sendError(res, failure);
  };
  app.use(onError);

  return { app, calls, ...appListener(app, 'mock-gemini') };
}
