import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { createLocalJWKSet, type JWK } from 'jose';
import { errors, type default as Provider } from 'oidc-provider';
import { createAuthorizationServer, OIDC_SCOPES } from './authorization-server.ts';
import { AUTH0_DENIED, createRateLimiter } from './ciba.ts';
import { createConsentRegistry, type ConsentRecord, type ConsentRegistry, type Outcome } from './consent-requests.ts';
import { createControlApi } from './control-api.ts';
import { createGuardianPage } from './guardian-page.ts';
import { createMailboxPage } from './mailbox-page.ts';
import { createManagementApi } from './management-api.ts';
import { createProviderStorage } from './provider-storage.ts';
import { createTenantState } from './tenant-state.ts';
import type { Database } from '../sandbox/storage/database.ts';
import { loadOrCreateSigningKey, type PrivateRsaJwk } from './signing-key.ts';
import { createTenantDirectory, type TenantDirectory } from './tenant-directory.ts';
import { baseUrl, closeServer, listenOn } from '../sandbox/http-listener.ts';
import { hostAllowlist } from '../sandbox/host-allowlist.ts';
import { endHop, markHop, startHop } from '../sandbox/telemetry/hop-spans.ts';
import { HOP, shortId } from '../sandbox/telemetry/hops.ts';
import { traceRequests } from '../sandbox/telemetry/served-requests.ts';
import { noTelemetry, type Telemetry } from '../sandbox/telemetry/setup.ts';
import { contextOfCarrier, injectTraceHeaders } from '../sandbox/telemetry/trace-context.ts';
import { loadUndici } from '../sandbox/on-first-use.ts';
import { trace, type Context } from '@opentelemetry/api';
import type { Agent, request } from 'undici';
import {
  loadTenantFile,
  parseTenantFile,
  TenantFileError,
  validateSettings,
  type TenantFile,
  type TenantSettings,
  type TenantVariables,
} from './tenant-file.ts';

/**
 * The local Auth0-shaped tenant: OpenID Provider with CIBA, Management API
 * subset, Guardian page and its control API, on one Express app.
 */

export interface TenantOptions {
  /** A tenant file path, or its contents (validated the same way). Default: `mock-guardian/tenant.json`. */
  tenantFile?: string | TenantFile;
  /** Issuer with trailing slash; default `http(s)://<host>:<bound port>/`, known after `listen`. */
  issuer?: string;
  /** Folder to keep the generated signing key in (git-ignored); omitted: a new key in memory. */
  keysDir?: string;
  /** The signing key, when it was asked for earlier (`loadOrCreateSigningKey(keysDir)`); otherwise loaded or made at `listen`. */
  signingKey?: Promise<PrivateRsaJwk>;
  /** Values for the tenant file's placeholders; change later with `setVariable`. */
  vars?: { HR_AGENT_URL?: string };
  /** Overrides of the tenant file's settings (short intervals and expiries for tests). */
  settings?: Partial<TenantSettings>;
  /** Serve HTTPS with this key and certificate (PEM). */
  https?: { key: string | Buffer; cert: string | Buffer };
  /** Where warnings go (failed pings, failed automatic decisions). Default: console.warn. */
  log?: (line: string) => void;
  /**
   * Clock (epoch ms) for the per-user rate limit window, so tests need not wait a minute.
   * Request and token expiry follow oidc-provider's real clock, and so does the consent registry.
   */
  rateLimitClock?: () => number;
  /** Milliseconds a CIBA ping waits for the application's answer (default 5000; shorter in tests). */
  pingTimeoutMs?: number;
  /**
   * Keep the tenant's state (CIBA requests, grants, Guardian requests) in this database, so a restart
   * loses nothing; it may still be opening. Omitted: in memory only, gone with the tenant.
   */
  database?: Promise<Database>;
  /** Host names answered besides the issuer's and loopback's on the bound port (`SANDBOX_ALLOWED_HOSTS`). */
  allowedHosts?: readonly string[];
  /** Required by the control API (and so the Guardian page) when set: the sandbox is exposed beyond loopback. */
  controlSecret?: string;
  /**
   * Hops of the employee's side (the push, the answer, the ping) in the asking client's trace
   * (sandbox/telemetry/setup.ts); none by default.
   */
  telemetry?: Telemetry;
}

export interface TenantHandle {
  app: Express;
  /** Binds, builds the provider for the resulting issuer, and resolves to that issuer (trailing slash). */
  listen(port?: number, host?: string): Promise<string>;
  /** Undefined until `listen` resolves. */
  readonly issuer: string | undefined;
  readonly settings: TenantSettings;
  /** The consent registry (every CIBA request), for tests and tools. */
  readonly requests: ConsentRegistry;
  /** Once `listen` resolves: settles when the stored state is loaded (at once without a database), rejecting if it cannot be. */
  readonly ready: Promise<void>;
  /** Changes a placeholder's value, e.g. the HR Agent's URL once it listens; later pings use it. */
  setVariable(name: 'HR_AGENT_URL', value: string): void;
  close(): Promise<void>;
}

interface Running {
  issuer: string;
  provider: Provider;
  directory: TenantDirectory;
  callback: (req: IncomingMessage, res: ServerResponse) => void;
  managementApi: express.Router;
  ownOrigins: Set<string>;
  /**
   * The connections the pings go out on: undici's `request` rather than Node's `fetch` (no WHATWG streams; about a
   * third of the CPU per ping here). No cap on connections, as `fetch` had none: a capped pool would keep a ping
   * waiting for a connection, and a ping given up on before it was sent is lost, where one sent late is still read.
   * Made with the first ping (sandbox/on-first-use.ts): undici cost the tenant's start about 70 ms of CPU.
   */
  pings?: Promise<PingClient>;
}

interface PingClient {
  agent: Agent;
  request: typeof request;
}

const PING_TIMEOUT_MS = 5000;

export function createTenant(options: TenantOptions = {}): TenantHandle {
  const pingTimeoutMs = options.pingTimeoutMs ?? PING_TIMEOUT_MS;
  const file = resolveTenantFile(options.tenantFile);
  const problems: string[] = [];
  const settings = validateSettings({ ...file.settings, ...options.settings }, problems, 'settings');
  if (problems.length > 0) throw new TenantFileError('settings overrides', problems);
  const tenantFile: TenantFile = { ...file, settings };
  const log = options.log ?? ((line: string) => console.warn(line));
  const telemetry = options.telemetry ?? noTelemetry();
  const variables: TenantVariables = { ...(options.vars?.HR_AGENT_URL ? { HR_AGENT_URL: options.vars.HR_AGENT_URL } : {}) };

  let running: Running | undefined;
  let server: Server | undefined;
  const pendingPings = new Set<Promise<void>>();

  const settle = async (record: ConsentRecord, outcome: Outcome): Promise<void> => {
    if (!running) throw new Error('the tenant is not listening');
    const { provider } = running;
    if (outcome !== 'expired-by-time') {
      const request = await provider.BackchannelAuthenticationRequest.find(record.authReqId, { ignoreExpiration: true });
      if (!request) throw new Error('the backchannel authentication request is gone');
      if (outcome === 'approved') {
        const grant = new provider.Grant({ accountId: record.userId, clientId: record.clientId });
        const scopes = (request.scope ?? '').split(' ').filter(Boolean);
        grant.addOIDCScope(scopes.filter((s) => (OIDC_SCOPES as readonly string[]).includes(s)).join(' '));
        if (typeof request.resource === 'string') grant.addResourceScope(request.resource, scopes.join(' '));
        await grant.save();
        await provider.backchannelResult(request, grant, { authTime: Math.floor(Date.now() / 1000) });
      } else if (outcome === 'denied') {
        // backchannelResult copies the description to a property that is not saved (DESIGN.md), so set it here.
        request.errorDescription = AUTH0_DENIED;
        await provider.backchannelResult(request, new errors.AccessDenied(AUTH0_DENIED));
      } else {
        // Expiring now is natural expiry brought forward: the CIBA grant then answers expired_token itself.
        request.exp = Math.floor(Date.now() / 1000);
        await request.save();
      }
    }
  };

  /** Once the result is stored: the answer as a hop of the trace, and the ping that tells the application. */
  const announce = (record: ConsentRecord, outcome: Outcome): void => {
    if (!running) return;
    const answered = traceOutcome(record, outcome);
    const ping = sendPing(running, record, answered).finally(() => pendingPings.delete(ping));
    pendingPings.add(ping);
  };

  /** The employee's answer (or the request's lapse) as a hop of the trace that asked, continued from the stored request. */
  const traceOutcome = (record: ConsentRecord, outcome: Outcome): Context => {
    const asked = contextOfCarrier(record.traceCarrier);
    const attributes = {
      [HOP.authReqId]: shortId(record.authReqId),
      [HOP.employee]: record.view.user_email,
      ...(record.view.channel === undefined ? {} : { [HOP.channel]: record.view.channel }),
    };
    if (outcome === 'approved' || outcome === 'denied') {
      const decisionMs = Math.max(0, Date.now() - Date.parse(record.view.created_at));
      return markHop(
        telemetry,
        { from: 'employee', to: 'identity', label: outcome === 'approved' ? 'approves' : 'denies', attributes: { ...attributes, [HOP.decisionMs]: decisionMs } },
        asked,
      );
    }
    return markHop(telemetry, { from: 'identity', to: 'identity', label: 'request expired', attributes }, asked);
  };

  /** CIBA §10.2: tells a ping application that the result can be fetched. Failures are logged, never thrown. */
  const sendPing = async (running: Running, record: ConsentRecord, answered: Context): Promise<void> => {
    const { directory } = running;
    if (record.notificationToken === undefined) return;
    let endpoint: string | undefined;
    try {
      endpoint = directory.notificationEndpoint(record.clientId);
    } catch (error) {
      log(`ciba ping for ${record.clientId} not sent: ${(error as Error).message}`);
      return;
    }
    if (endpoint === undefined) return;
    const span = startHop(
      telemetry,
      {
        from: 'identity',
        to: 'agent',
        label: 'POST /ciba/notify (ping)',
        attributes: {
          'http.request.method': 'POST',
          'url.path': new URL(endpoint).pathname,
          [HOP.deliveryMode]: 'ping',
          [HOP.authReqId]: shortId(record.authReqId),
          [HOP.employee]: record.view.user_email,
        },
      },
      answered,
    );
    try {
      const headers = { authorization: `Bearer ${record.notificationToken}`, 'content-type': 'application/json' };
      // No redirect is followed (undici's `request` follows none).
      running.pings ??= loadUndici().then(({ Agent, request }) => ({ agent: new Agent({ keepAliveTimeout: 30_000 }), request }));
      const { agent, request } = await running.pings;
      const response = await request(endpoint, {
        method: 'POST',
        dispatcher: agent,
        // The agent's side of the ping continues the trace (W3C Trace Context).
        headers: injectTraceHeaders(headers, trace.setSpan(answered, span)),
        body: JSON.stringify({ auth_req_id: record.authReqId }),
        signal: AbortSignal.timeout(pingTimeoutMs),
      });
      await response.body.dump();
      const status = response.statusCode;
      if (status !== 200 && status !== 204) {
        log(`ciba ping to ${endpoint} answered HTTP ${status} (expected 204)`);
        endHop(span, { attributes: { 'http.response.status_code': status }, error: new Error(`HTTP ${status}`) });
      } else {
        endHop(span, { attributes: { 'http.response.status_code': status } });
      }
    } catch (error) {
      // A ping sent but not answered in time may still be read: a busy application takes it once its event loop
      // gets to it, so say so rather than that it was lost.
      log(
        error instanceof Error && error.name === 'TimeoutError'
          ? `ciba ping to ${endpoint} got no answer within ${pingTimeoutMs} ms; the application may still receive it`
          : `ciba ping to ${endpoint} failed: ${(error as Error).message}`,
      );
      endHop(span, { error });
    }
  };

  const state = options.database ? createTenantState(options.database) : undefined;
  const registry = createConsentRegistry({
    interval: settings.cibaInterval,
    settle,
    announce,
    ...(state ? { ledger: state.ledger } : {}),
    onError: (message, error) => log(`${message}: ${error instanceof Error ? error.message : String(error)}`),
  });
  const rateLimiter = createRateLimiter(settings.cibaRateLimitPerUserPerMinute, 60_000, options.rateLimitClock);
  const storage = state?.providerStorage ?? createProviderStorage();
  let restored: Promise<void> | undefined;
  let stateIs: 'opening' | 'ready' | 'failed' = 'opening';

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  // First, so the control API, its event stream and the Guardian page never answer a rebinding name.
  app.use(hostAllowlist({ names: options.allowedHosts ?? [], urls: () => [running?.issuer ?? options.issuer] }));
  // Each request's trace context, for the hops the CIBA request leads to (no span per request: polls are many).
  app.use(traceRequests(telemetry, { participant: 'identity' }));
  app.get('/health', (_req, res) => {
    res.json(state ? { ok: true, state: stateIs } : { ok: true });
  });
  // The tenant listens at once (PGlite's first start takes seconds); what reads or changes the state waits for it.
  app.use((req, res, next) => {
    const statelessFile = ['/guardian', '/mailbox', '/.well-known/'].some((prefix) => req.path.startsWith(prefix));
    if (!restored || stateIs === 'ready' || statelessFile) return next();
    restored.then(
      () => next(),
      () => res.status(503).json({ error: 'temporarily_unavailable', error_description: "The tenant's state store cannot be used" }),
    );
  });
  app.use(
    '/control',
    createControlApi({
      registry,
      users: tenantFile.users,
      ownOrigins: () => running?.ownOrigins ?? new Set(),
      ...(options.controlSecret === undefined ? {} : { secret: options.controlSecret }),
    }),
  );
  app.use('/guardian', createGuardianPage({ controlBasePath: '/control' }));
  app.use('/mailbox', createMailboxPage({ controlBasePath: '/control' }));
  app.use('/api/v2', (req, res, next) => {
    if (!running) return notListening(res);
    running.managementApi(req, res, next);
  });
  // Everything else is the OpenID Provider's (it answers unknown routes with an OAuth error).
  app.use((req, res) => {
    if (!running) return notListening(res);
    running.callback(req, res);
  });
  app.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(error);
    log(`unexpected error: ${error instanceof Error ? error.message : String(error)}`);
    res.status(500).json({ error: 'server_error', error_description: 'Unexpected error' });
  });

  return {
    app,
    settings,
    requests: registry,
    get ready() {
      return restored ?? Promise.resolve();
    },
    get issuer() {
      return running?.issuer;
    },
    setVariable(name: 'HR_AGENT_URL', value: string) {
      if (!URL.canParse(value)) throw new TypeError(`${name} must be an absolute URL (got "${value}")`);
      variables[name] = value;
    },
    async listen(port = 0, host = '127.0.0.1') {
      if (server) throw new Error('the tenant is already listening');
      const signingKey = await (options.signingKey ?? loadOrCreateSigningKey(options.keysDir));
      const handler = (req: IncomingMessage, res: ServerResponse) => app(req, res);
      const created = options.https ? createHttpsServer({ key: options.https.key, cert: options.https.cert }, handler) : createHttpServer(handler);
      server = created;
      const bound = await listenOn(created, port, host);
      const scheme = options.https ? 'https' : 'http';
      const issuer = normalizeIssuer(options.issuer ?? `${baseUrl(scheme, host, bound)}/`);
      const directory = createTenantDirectory(tenantFile, issuer, () => variables);
      const provider = createAuthorizationServer({ directory, registry, storage, signingKey, rateLimiter, log, telemetry });
      const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicJwk } = signingKey;
      const jwks = createLocalJWKSet({ keys: [publicJwk as JWK] });
      running = {
        issuer,
        provider,
        directory,
        callback: provider.callback(),
        managementApi: createManagementApi({ issuer, jwks, users: tenantFile.users }),
        ownOrigins: new Set([
          new URL(issuer).origin,
          `${scheme}://127.0.0.1:${bound}`,
          `${scheme}://localhost:${bound}`,
          `${scheme}://[::1]:${bound}`,
        ]),
      };
      if (state) {
        restored = Promise.all([state.loadModels(), state.loadConsents()]).then(([, consents]) => {
          registry.restore(consents);
          stateIs = 'ready';
        });
        restored.catch((error: unknown) => {
          stateIs = 'failed';
          log(`the tenant's stored state could not be loaded: ${error instanceof Error ? error.message : String(error)}`);
        });
      }
      return issuer;
    },
    async close() {
      await registry.close();
      await Promise.allSettled([...pendingPings]);
      const current = server;
      server = undefined;
      await closeServer(current);
      storage.clear();
      await (await running?.pings)?.agent.close();
      running = undefined;
    },
  };
}

function resolveTenantFile(input: TenantOptions['tenantFile']): TenantFile {
  if (input === undefined) return loadTenantFile();
  if (typeof input === 'string') return loadTenantFile(input);
  return parseTenantFile(input, 'tenantFile option');
}

function normalizeIssuer(issuer: string): string {
  const url = URL.parse(issuer);
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.search || url.hash) {
    throw new TypeError(`issuer must be an http(s) URL without query or fragment (got "${issuer}")`);
  }
  return issuer.endsWith('/') ? issuer : `${issuer}/`;
}

function notListening(res: Response): void {
  res.status(503).json({ error: 'temporarily_unavailable', error_description: 'The tenant is starting' });
}
