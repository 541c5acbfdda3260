import { setTimeout as sleep } from 'node:timers/promises';
import { context, SpanKind, trace, type Attributes, type Span } from '@opentelemetry/api';
import type { Agent, request } from 'undici';
import { AGENT_DEFAULTS } from '../sandbox/config.ts';
import { endHop, hopWarning, startHop, type HopEnd, type HopStart } from '../sandbox/telemetry/hop-spans.ts';
import type { Participant } from '../sandbox/telemetry/hops.ts';
import { noTelemetry, type Telemetry } from '../sandbox/telemetry/setup.ts';
import { injectTraceHeaders } from '../sandbox/telemetry/trace-context.ts';
import { loadUndici } from '../sandbox/on-first-use.ts';
import { AgentError } from './errors.ts';

/**
 * The one policy for every call the agent makes to another service (the
 * identity backend, the HR API, the language model): each attempt has a
 * deadline, and a transient failure (network error, timeout, 429, 5xx) is
 * retried with exponential backoff and full jitter, honouring `Retry-After`
 * (RFC 9110 §10.2.3), until the retries or the call's deadline run out.
 * Anything else is the caller's answer and is thrown as it is.
 *
 * It is also the one place that traces them: a call made with a `hop` is one
 * hop span for all its attempts (retries are its events), and every request
 * carries the active trace context as W3C `traceparent`.
 */

export type Service = 'identity' | 'hrApi' | 'model';

export interface CallLimits {
  /** One attempt is abandoned after this long. */
  attemptTimeoutMs: number;
  /** Attempts after the first, for transient failures only. */
  retries: number;
  /** The first wait between attempts; it doubles with each retry. */
  backoffMs: number;
  /** No wait between attempts is longer than this (a longer `Retry-After` ends the call). */
  maxBackoffMs: number;
}

export type CallLimitOverrides = Partial<Record<Service, Partial<CallLimits>>>;

/** Deadlines and retries as documented in sandbox/config.ts; the backoff steps are the agent's own. */
export const DEFAULT_CALL_LIMITS: Readonly<Record<Service, CallLimits>> = {
  identity: { ...AGENT_DEFAULTS.calls.identity, backoffMs: 250, maxBackoffMs: 5_000 },
  hrApi: { ...AGENT_DEFAULTS.calls.hrApi, backoffMs: 250, maxBackoffMs: 5_000 },
  model: { ...AGENT_DEFAULTS.calls.model, backoffMs: 1_000, maxBackoffMs: 10_000 },
};

/** Why an attempt failed in a way that a later attempt may not. */
export interface TransientFailure {
  reason: string;
  retryAfterMs?: number;
}

/** The arrow a call draws (sandbox/telemetry/hops.ts), from the agent to the service called. */
export interface CallHop<T> {
  /** `POST /bc-authorize`: the method and the path, no identifiers. */
  label: string;
  attributes?: Attributes;
  /** Tokens the request carries, by name; only their description reaches the span. */
  tokens?: HopStart['tokens'];
  /** What the answer adds to the span (tokens received, a status other than 200). */
  describe?: (result: T) => HopEnd;
}

export interface CallOptions<T = unknown> {
  /** The caller's signal (CancelTask, the task watchdog): ends the call at once. */
  signal: AbortSignal;
  /** Names the service in the error, e.g. "The language model (gemini-2.5-flash)". */
  label?: string;
  /** Whether an error may pass with time; defaults to `transientFailure`. */
  classify?: (error: unknown) => TransientFailure | undefined;
  /** Trace the call as this hop. */
  hop?: CallHop<T>;
}

export interface CallPolicy {
  /**
   * The fetch every outbound call goes through: a bounded pool of kept-alive
   * connections per origin, so a thousand pending consents share a few
   * dozen sockets to the identity backend instead of opening one each.
   */
  fetch: typeof fetch;
  /**
   * The same pool for a service outside the sandbox's trace (the language model): no trace headers, whose
   * baggage names the task. A URL with a string body (what the model's SDK sends) goes the way `fetch` does;
   * anything else (a `Request`, a stream body) through Node's own `fetch` on the same pool.
   */
  externalFetch: typeof fetch;
  limits(service: Service): CallLimits;
  /** The longest one call can take, retries and waits included: what a task may wait on the service. */
  deadlineMs(service: Service): number;
  /** One attempt under the service's attempt deadline; a timeout throws `AttemptTimeout`. */
  attempt<T>(service: Service, run: (signal: AbortSignal) => Promise<T>, signal: AbortSignal): Promise<T>;
  /** Attempts until one succeeds, an error is not transient, or the limits are reached (`AgentError` `unavailable`). */
  call<T>(service: Service, run: (signal: AbortSignal) => Promise<T>, options: CallOptions<T>): Promise<T>;
  /** Closes the pooled connections. */
  close(): Promise<void>;
}

/** Connections to one origin at most; more requests wait for one in the pool. */
const CONNECTIONS_PER_ORIGIN = 64;
/** Idle pooled connections are kept this long (the sandbox's servers keep theirs 65 s). */
const POOL_KEEP_ALIVE_MS = 30_000;

/** The lane each service is drawn in; the model is the agent's own step. */
const LANES: Record<Service, Participant> = { identity: 'identity', hrApi: 'hr-api', model: 'agent' };

const LABELS: Record<Service, string> = {
  identity: 'The identity backend',
  hrApi: 'The HR API',
  model: 'The language model',
};

/** An attempt that outlived its deadline. */
export class AttemptTimeout extends Error {
  readonly code = 'attempt_timeout';
  constructor(readonly timeoutMs: number) {
    super(`did not answer within ${formatSeconds(timeoutMs)}`);
    this.name = 'AttemptTimeout';
  }
}

/** A non-2xx HTTP answer, thrown by the agent's own fetch-based clients so the policy can judge it. */
export class HttpStatusError extends Error {
  readonly code = 'http_status';
  constructor(
    readonly status: number,
    readonly retryAfterMs: number | undefined,
  ) {
    super(`answered HTTP ${status}`);
    this.name = 'HttpStatusError';
  }
}

export function createCallPolicy(
  overrides: CallLimitOverrides = {},
  random: () => number = Math.random,
  telemetry: Telemetry = noTelemetry(),
): CallPolicy {
  const table: Record<Service, CallLimits> = {
    identity: { ...DEFAULT_CALL_LIMITS.identity, ...overrides.identity },
    hrApi: { ...DEFAULT_CALL_LIMITS.hrApi, ...overrides.hrApi },
    model: { ...DEFAULT_CALL_LIMITS.model, ...overrides.model },
  };
  const backoff = (limits: CallLimits, retry: number) =>
    // Full jitter (a random wait up to the exponential step) keeps many tasks from retrying in step.
    Math.round(random() * Math.min(limits.maxBackoffMs, limits.backoffMs * 2 ** (retry - 1)));

  // The pool is made with the first call (sandbox/on-first-use.ts).
  let loading: Promise<Pool> | undefined;
  const pool = () =>
    (loading ??= loadUndici().then(({ Agent, request }) => ({
      dispatcher: new Agent({ connections: CONNECTIONS_PER_ORIGIN, keepAliveTimeout: POOL_KEEP_ALIVE_MS }),
      request,
    })));
  const policy: CallPolicy = {
    fetch: pooledFetch(pool, { traceHeaders: true }),
    externalFetch: pooledFetch(pool, {
      traceHeaders: false,
      // The pool's dispatcher given to Node's fetch (undici's `dispatcher` option, which the DOM types lack).
      otherwise: async (input, init) => fetch(input, { ...init, dispatcher: (await pool()).dispatcher } as RequestInit),
    }),
    close: async () => {
      if (loading) await (await loading).dispatcher.close();
    },
    limits: (service) => table[service],
    deadlineMs(service) {
      const limits = table[service];
      return (limits.retries + 1) * limits.attemptTimeoutMs + limits.retries * limits.maxBackoffMs;
    },
    attempt: (service, run, signal) => withDeadline(table[service].attemptTimeoutMs, run, signal),
    async call(service, run, options) {
      const { hop } = options;
      if (!hop) return attempts(service, run, options, undefined);
      const span = startHop(telemetry, {
        from: 'agent',
        to: LANES[service],
        label: hop.label,
        // A model call leaves the process, though it is drawn as the agent's own step.
        ...(service === 'model' ? { kind: SpanKind.CLIENT } : {}),
        attributes: hop.attributes,
        tokens: hop.tokens,
      });
      try {
        const result = await context.with(trace.setSpan(context.active(), span), () => attempts(service, run, options, span));
        const described = span.isRecording() && hop.describe ? hop.describe(result) : {};
        endHop(span, { ...described, attributes: { 'http.response.status_code': 200, ...described.attributes } });
        return result;
      } catch (error) {
        // The last attempt's status, also when the policy gave up on it (`unavailable`, its cause).
        const status = statusOf(error) ?? (error instanceof Error ? statusOf(error.cause) : undefined);
        endHop(span, { error, ...(status === undefined ? {} : { attributes: { 'http.response.status_code': status } }) });
        throw error;
      }
    },
  };

  /** Attempts until one succeeds, an error is not transient, or the limits are reached; retries are the span's events. */
  async function attempts<T>(
    service: Service,
    run: (signal: AbortSignal) => Promise<T>,
    { signal, label = LABELS[service], classify = transientFailure }: CallOptions<T>,
    span: Span | undefined,
  ): Promise<T> {
    const limits = table[service];
    const giveUpAt = Date.now() + policy.deadlineMs(service);
    for (let attempt = 1; ; attempt += 1) {
      let failure: TransientFailure | undefined;
      try {
        return await withDeadline(limits.attemptTimeoutMs, run, signal);
      } catch (error) {
        if (signal.aborted) throw canceled(error);
        failure = classify(error);
        if (!failure) throw error;
        const wait = failure.retryAfterMs ?? backoff(limits, attempt);
        if (attempt > limits.retries || wait > limits.maxBackoffMs || Date.now() + wait > giveUpAt) {
          throw new AgentError('unavailable', `${label} ${failure.reason}, after ${attemptsText(attempt)}`, { cause: error });
        }
        const rateLimited = statusOf(error) === 429;
        hopWarning(telemetry, span, rateLimited ? 'rate_limited' : 'retry', {
          reason: failure.reason,
          attempt,
          wait_ms: wait,
          ...(rateLimited && failure.retryAfterMs !== undefined ? { retry_after_ms: failure.retryAfterMs } : {}),
        });
        try {
          await sleep(wait, undefined, { signal });
        } catch {
          throw canceled(error);
        }
      }
    }
  }
  return policy;
}

/**
 * A Fetch API front on undici's `request` through one dispatcher: the same
 * Request/Response contract openid-client, the model's SDK and our clients
 * expect, at about half the CPU per call of `fetch` (no WHATWG streams on the
 * way), which counts when a thousand consents poll every second. Redirects are
 * not followed: none of the services the agent calls answer with one. A
 * `Request` or a body other than a string or a form goes to `otherwise`, or
 * is refused without it.
 */
interface Pool {
  dispatcher: Agent;
  request: typeof request;
}

function pooledFetch(pool: () => Promise<Pool>, options: { traceHeaders: boolean; otherwise?: typeof fetch }): typeof fetch {
  return async (input, init = {}) => {
    const body = init.body;
    const pooled = typeof input === 'string' || input instanceof URL;
    if (!pooled || (body !== undefined && body !== null && typeof body !== 'string' && !(body instanceof URLSearchParams))) {
      if (options.otherwise) return options.otherwise(input, init);
      throw new TypeError(pooled ? 'pooledFetch sends string or form bodies only' : 'pooledFetch takes a URL, not a Request');
    }
    const sent: Record<string, string> = {};
    (init.headers instanceof Headers ? init.headers : new Headers(init.headers)).forEach((value, name) => {
      sent[name] = value;
    });
    // W3C Trace Context: the service called continues the trace of the hop that calls it.
    if (options.traceHeaders) injectTraceHeaders(sent);
    const { dispatcher, request } = await pool();
    const answer = await request(input, {
      dispatcher,
      method: (init.method ?? 'GET') as 'GET',
      headers: sent,
      ...(body === undefined || body === null ? {} : { body: body.toString() }),
      ...(init.signal ? { signal: init.signal } : {}),
    });
    const bytes = Buffer.from(await answer.body.arrayBuffer());
    const headers = new Headers();
    for (const [name, value] of Object.entries(answer.headers)) {
      if (value === undefined) continue;
      for (const one of Array.isArray(value) ? value : [value]) headers.append(name, one);
    }
    // Fetch forbids a body on these statuses.
    const empty = answer.statusCode === 204 || answer.statusCode === 205 || answer.statusCode === 304;
    return new BufferedResponse(empty ? null : bytes, { status: answer.statusCode, headers });
  };
}

/** Fetch's UTF-8 decode (a leading byte-order mark dropped), as Response's `text()` reads. */
const UTF8 = new TextDecoder();

/**
 * A Response over a body already read in full, which makes no stream unless one is asked for. Response keeps its
 * body as a WHATWG stream, and making one for each answer, reading it through a reader, and teeing it for
 * `clone()` (openid-client clones every error answer to read it: every CIBA poll answered `authorization_pending`)
 * weighed on the agent's memory churn: about 56 KiB allocated per pending poll, 48 KiB without them. Here `text()`,
 * `json()`, `arrayBuffer()` and `bytes()` read the bytes, and a clone shares them. `body`, `blob()` and
 * `formData()` hand over to a Response made from the bytes, which then answers for the body, so a stream locked or
 * read through `body` leaves the other readers unusable as in Response. As in Response, a body is read once, and
 * a body already read cannot be cloned.
 */
class BufferedResponse extends Response {
  readonly #bytes: Buffer<ArrayBuffer> | null;
  #read = false;
  /** Made when the body is asked for as a stream (or a Blob or FormData); from then on it holds the body. */
  #streamed: Response | undefined;

  constructor(bytes: Buffer<ArrayBuffer> | null, init: ResponseInit) {
    super(null, init);
    this.#bytes = bytes;
  }

  /** The body's Response, made on first use; made from a body already read, it is already used too. */
  #stream(): Response {
    if (!this.#streamed) {
      this.#streamed = new Response(this.#bytes, { status: this.status, statusText: this.statusText, headers: this.headers });
      // As Response leaves it once read: locked by the reader that read it, and closed.
      if (this.#read) void this.#streamed.body?.getReader().cancel();
    }
    return this.#streamed;
  }

  /** The bytes, once: a second read is refused as Response refuses it. A response without a body reads as empty. */
  #take(): Buffer<ArrayBuffer> {
    if (this.#bytes === null) return Buffer.alloc(0);
    if (this.#read) throw new TypeError('Body is unusable: Body has already been read');
    this.#read = true;
    return this.#bytes;
  }

  override get body(): ReadableStream<Uint8Array<ArrayBuffer>> | null {
    return this.#bytes === null ? null : this.#stream().body;
  }

  override get bodyUsed(): boolean {
    return this.#streamed ? this.#streamed.bodyUsed : this.#read;
  }

  override async text(): Promise<string> {
    if (this.#streamed) return this.#streamed.text();
    return UTF8.decode(this.#take());
  }

  override async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  override async arrayBuffer(): Promise<ArrayBuffer> {
    if (this.#streamed) return this.#streamed.arrayBuffer();
    const bytes = this.#take();
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  }

  override async bytes(): Promise<Uint8Array<ArrayBuffer>> {
    return new Uint8Array(await this.arrayBuffer());
  }

  override blob(): Promise<Blob> {
    return this.#stream().blob();
  }

  override formData(): Promise<FormData> {
    return this.#stream().formData();
  }

  override clone(): Response {
    if (this.#streamed) return this.#streamed.clone();
    if (this.#read) throw new TypeError('Response.clone: Body has already been consumed.');
    return new BufferedResponse(this.#bytes, { status: this.status, statusText: this.statusText, headers: this.headers });
  }
}

/**
 * Runs `run` with a signal that aborts after `timeoutMs` or when `signal`
 * does, and settles as soon as either happens even if `run` ignores its
 * signal. Listener and timer are released when the attempt ends, so a
 * long-lived task signal does not collect one per attempt.
 */
export async function withDeadline<T>(timeoutMs: number, run: (signal: AbortSignal) => Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) throw canceled(signal.reason);
  const controller = new AbortController();
  let expired = false;
  let stop: (error: unknown) => void = () => undefined;
  const stopped = new Promise<never>((_resolve, reject) => (stop = reject));
  const onAbort = () => {
    controller.abort(signal.reason);
    stop(canceled(signal.reason));
  };
  const timer = setTimeout(() => {
    expired = true;
    const timeout = new AttemptTimeout(timeoutMs);
    controller.abort(timeout);
    stop(timeout);
  }, timeoutMs);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const running = run(controller.signal);
    running.catch(() => undefined);
    return await Promise.race([running, stopped]);
  } catch (error) {
    if (expired && !signal.aborted) throw new AttemptTimeout(timeoutMs);
    throw error;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
  }
}

export interface JsonAnswer {
  status: number;
  /** The parsed body of a 2xx answer; undefined for other statuses or a body that is not JSON. */
  body: unknown;
}

/**
 * GET with a bearer token under the policy. Headers and body are both read
 * within the attempt's deadline, so a server that stalls mid-body is a
 * timeout like any other; 429 and 5xx are retried.
 */
export function getJson(
  policy: CallPolicy,
  service: Service,
  url: URL,
  options: { bearer: string; signal: AbortSignal; label?: string; hop?: CallHop<JsonAnswer> },
): Promise<JsonAnswer> {
  return policy.call(
    service,
    async (attempt) => {
      const response = await policy.fetch(url, {
        headers: { authorization: `Bearer ${options.bearer}`, accept: 'application/json' },
        signal: attempt,
      });
      if (response.status === 429 || response.status >= 500) {
        await response.body?.cancel();
        throw new HttpStatusError(response.status, parseRetryAfter(response.headers.get('retry-after')));
      }
      if (!response.ok) {
        await response.body?.cancel();
        return { status: response.status, body: undefined };
      }
      const text = await response.text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      return { status: response.status, body };
    },
    {
      signal: options.signal,
      ...(options.label ? { label: options.label } : {}),
      ...(options.hop
        ? {
            hop: {
              ...options.hop,
              attributes: { 'http.request.method': 'GET', 'url.path': url.pathname, ...options.hop.attributes },
              // The bearer token is the hop's credential: described on the span, never kept.
              tokens: { access_token: options.bearer, ...options.hop.tokens },
              describe: (answer) => ({ attributes: { 'http.response.status_code': answer.status } }),
            },
          }
        : {}),
    },
  );
}

function canceled(cause: unknown): AgentError {
  return cause instanceof AgentError ? cause : new AgentError('canceled', 'The request was canceled', { cause });
}

const TRANSIENT_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);
const TRANSIENT_NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/**
 * The failures any HTTP call may outgrow: no connection, no answer in time,
 * or a status that says "later" (429, 5xx). Knows the error shapes of fetch,
 * openid-client, @google/genai and the agent's own clients.
 */
export function transientFailure(error: unknown): TransientFailure | undefined {
  if (error instanceof AttemptTimeout) return { reason: error.message };
  const status = statusOf(error);
  if (status !== undefined) {
    if (!TRANSIENT_STATUS.has(status)) return undefined;
    const retryAfterMs = retryAfterOf(error);
    return { reason: `answered HTTP ${status}`, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
  }
  for (let cause: unknown = error, depth = 0; cause instanceof Error && depth < 5; cause = cause.cause, depth += 1) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && TRANSIENT_NETWORK_CODES.has(code)) return { reason: `could not be reached (${code})` };
    if (code === 'OAUTH_TIMEOUT' || cause.name === 'TimeoutError') return { reason: 'did not answer in time' };
    if (cause instanceof TypeError && cause.message === 'fetch failed') return { reason: 'could not be reached' };
  }
  return undefined;
}

/** The HTTP status behind an error, wherever the library put it. */
export function statusOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const record = error as { status?: unknown; cause?: unknown };
  if (typeof record.status === 'number') return record.status;
  // openid-client: an unexpected status arrives as a ClientError whose cause is the Response.
  if (record.cause instanceof Response) return record.cause.status;
  return undefined;
}

function retryAfterOf(error: unknown): number | undefined {
  if (error instanceof HttpStatusError) return error.retryAfterMs;
  const record = error as { response?: unknown; cause?: unknown };
  const response = record.response instanceof Response ? record.response : record.cause instanceof Response ? record.cause : undefined;
  return parseRetryAfter(response?.headers.get('retry-after') ?? null);
}

/** RFC 9110 §10.2.3: delay-seconds or an HTTP-date. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function attemptsText(n: number): string {
  return n === 1 ? '1 attempt' : `${n} attempts`;
}

export function formatSeconds(ms: number): string {
  const seconds = ms / 1000;
  return `${Number.isInteger(seconds) ? seconds : seconds.toFixed(1)} s`;
}
