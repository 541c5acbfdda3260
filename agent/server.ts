import { AgentCard } from '@a2a-js/sdk';
import { DefaultRequestHandler } from '@a2a-js/sdk/server';
import { agentCardHandler, jsonRpcHandler, restHandler, type UserBuilder } from '@a2a-js/sdk/server/express';
import type { GoogleGenAI } from '@google/genai';
import express, { type ErrorRequestHandler, type Express, type RequestHandler } from 'express';
import { requireBearer, type Principal } from '../sandbox/bearer.ts';
import { AGENT_DEFAULTS } from '../sandbox/config.ts';
import type { CallerUser } from './authorization-details.ts';
import { AGENT_SCOPE, JSONRPC_PATH, REST_PATH, agentInterfaces, buildAgentCard } from './agent-card.ts';
import { createCallPolicy, type CallLimitOverrides, type CallPolicy, type Service } from './call-policy.ts';
import { createCibaAuthorizer } from './ciba.ts';
import { createPingNotifications } from './ciba-notifications.ts';
import { createExecutor, type HrAgentExecutor, type TaskDeadlines } from './executor.ts';
import { createHrApiClient } from './hr-api.ts';
import { createIdentityClient } from './identity.ts';
import { createManagementClient } from './management.ts';
import { createPlanner } from './planner.ts';
import { jsonRpcVersionGate } from './protocol-version.ts';
import { createCheckedPushStore, createPushSender } from './push-sender.ts';
import { createWebhookPolicy, type Resolver } from './webhook-policy.ts';
import type { TaskRetention } from './task-store.ts';
import type { Database } from '../sandbox/storage/database.ts';
import { databaseState, memoryState } from './durable-state.ts';
import { contextOf, createEventRelay, RelayingRequestHandler } from './event-relay.ts';
import type { LeaseTimes } from './task-ledger.ts';
import { createTaskResumer, type TaskResumer } from './task-resumer.ts';
import { createTools } from './tools.ts';
import { appListener } from '../sandbox/http-listener.ts';
import { hostAllowlist } from '../sandbox/host-allowlist.ts';
import { traceRequests } from '../sandbox/telemetry/served-requests.ts';
import { enableAsyncContext, noTelemetry, type Telemetry } from '../sandbox/telemetry/setup.ts';
import { describeClaims } from '../sandbox/telemetry/token-claims.ts';
import { requestTrace } from '../sandbox/telemetry/trace-context.ts';

/**
 * The Staff0 HR Agent: an A2A v1.0 server (JSON-RPC and HTTP+JSON) whose one
 * skill reads the HR API only after the employee approves through CIBA.
 */

export interface AgentOptions {
  /** The URL advertised in the agent card; defaults to the URL `listen()` binds. */
  publicUrl?: string;
  identity: {
    /** Issuer with Auth0's trailing slash. */
    issuer: string;
    /** Audience of tokens that callers present to this agent. */
    agentAudience: string;
    /** Audience of the HR API, requested through CIBA. */
    apiAudience: string;
    /** Audience (and base URL) of the Management API. */
    managementAudience: string;
    /** The agent's own application at the identity backend. */
    client: { clientId: string; clientSecret: string };
  };
  hrApiUrl: string;
  gemini: { apiKey: string; model: string; baseUrl?: string };
  ciba: {
    deliveryMode: 'poll' | 'ping';
    /** Seconds (CIBA §7.1); undefined lets the identity backend choose. */
    requestedExpiry?: number;
    bindingMessage?: string;
  };
  /** Allow an `http://` issuer (the local tenant only). */
  allowInsecureHttp?: boolean;
  /** Employees one task may ask for approval. */
  maxConsentRequests?: number;
  /** Deadlines and retries of calls to other services (agent/call-policy.ts defaults otherwise). */
  calls?: CallLimitOverrides;
  /** How long finished tasks stay readable (GetTask, ListTasks, SubscribeToTask). */
  retention?: TaskRetention;
  /** Tasks running at once (pending consents included); a new message beyond it gets 503 with Retry-After. */
  maxActiveTasks?: number;
  /** Where push-notification webhooks may point (see agent/webhook-policy.ts); loopback and private refused by default. */
  webhooks?: { allowLoopback?: boolean; allowPrivate?: boolean; resolve?: Resolver; timeoutMs?: number; log?: (line: string) => void };
  /** Host names answered besides the public and bound URL's and loopback's (`SANDBOX_ALLOWED_HOSTS`). */
  allowedHosts?: readonly string[];
  /** Seconds a caller's token may be ahead of our clock (`TOKEN_CLOCK_TOLERANCE_SECONDS`). */
  clockToleranceSeconds?: number;
  /**
   * Keep tasks, push configs, conversations and pending consents here, so a restart (or another agent
   * process on the same PostgreSQL) finishes them; may still be opening. In memory without it.
   */
  database?: Database | Promise<Database>;
  /** Leases on work in flight (agent/task-ledger.ts); for tests. */
  lease?: LeaseTimes & { scanEveryMs?: number };
  /** Where the agent reports work it could not resume; stderr by default. */
  log?: (line: string) => void;
  /** Spans of every hop and the log lines made from them (sandbox/telemetry/setup.ts); none by default. */
  telemetry?: Telemetry;
}

export interface AgentHandle {
  app: Express;
  /** Resolves with the agent's base URL. */
  listen(port: number, host: string): Promise<string>;
  close(): Promise<void>;
}

export const REALM = 'staff0-hr-agent';

/**
 * How the model's SDK reaches the model: through the call policy's pool (64 connections per origin at most), so a
 * thousand tasks asking at once share a few dozen sockets, which close once idle, rather than opening one each.
 */
export function modelHttpOptions(policy: Pick<CallPolicy, 'externalFetch'>, baseUrl: string | undefined) {
  return { fetch: policy.externalFetch, ...(baseUrl ? { baseUrl } : {}) };
}

export function createAgent(options: AgentOptions): AgentHandle {
  const telemetry = options.telemetry ?? noTelemetry();
  // Each task's hops find their parent in the async context (openid-client's requests among them).
  if (telemetry.recording) enableAsyncContext();
  const policy = createCallPolicy(options.calls, undefined, telemetry);
  const identity = createIdentityClient({
    issuer: options.identity.issuer,
    client: options.identity.client,
    allowInsecureHttp: options.allowInsecureHttp,
    policy,
  });
  const state = options.database ? databaseState(options.database, options.retention, options.lease) : memoryState(options.retention);
  const relay = options.database ? createEventRelay() : undefined;
  // A CIBA ping for a consent another agent process waits on is passed to it (CIBA §10.2 names one endpoint).
  const notifications = createPingNotifications({
    relay: async (tokenDigest, authReqId) => {
      const durable = await state.durable;
      if (!durable || !(await durable.ledger.pendingWithDigest(authReqId, tokenDigest))) return false;
      await durable.database.notify(CIBA_PINGS, authReqId);
      return true;
    },
  });
  const tools = createTools({
    management: createManagementClient({ identity, managementAudience: options.identity.managementAudience, policy }),
    ciba: createCibaAuthorizer({
      identity,
      apiAudience: options.identity.apiAudience,
      deliveryMode: options.ciba.deliveryMode,
      requestedExpiry: options.ciba.requestedExpiry,
      bindingMessage: options.ciba.bindingMessage,
      notifications,
      policy,
      telemetry,
    }),
    hrApi: createHrApiClient({ baseUrl: options.hrApiUrl, policy }),
    maxConsentRequests: options.maxConsentRequests,
  });
  // The model's client is loaded with the first question: it is the largest module the agent runs, and
  // loading it at start cost about 0.15 s of CPU while every other service was starting too.
  let genai: Promise<GoogleGenAI> | undefined;
  const model = () =>
    (genai ??= import('@google/genai').then(
      ({ GoogleGenAI }) => new GoogleGenAI({ apiKey: options.gemini.apiKey, httpOptions: modelHttpOptions(policy, options.gemini.baseUrl) }),
    ));
  const planner = createPlanner({
    generateContent: async (params) => (await model()).models.generateContent(params),
    model: options.gemini.model,
    policy,
  });
  const executor = createExecutor({
    planner,
    tools,
    conversations: state.conversations,
    ledger: state.ledger,
    deadlines: taskDeadlines(policy),
    telemetry,
  });
  const taskStore = state.taskStore;

  const card = buildAgentCard({
    url: options.publicUrl ?? 'http://127.0.0.1',
    tokenUrl: new URL('oauth/token', options.identity.issuer).href,
  });
  let boundUrl: string | undefined;
  const webhookPolicy = createWebhookPolicy({
    allowLoopback: options.webhooks?.allowLoopback ?? false,
    allowPrivate: options.webhooks?.allowPrivate ?? false,
    // The sandbox's own services are never a webhook, whatever ranges are allowed.
    ownServices: () =>
      [options.identity.issuer, options.hrApiUrl, options.gemini.baseUrl, options.publicUrl, boundUrl].filter(
        (url): url is string => url !== undefined,
      ),
    ...(options.webhooks?.resolve ? { resolve: options.webhooks.resolve } : {}),
  });
  const pushStore = createCheckedPushStore(state.pushStore, webhookPolicy);
  const webhookSender = createPushSender({
    store: pushStore,
    policy: webhookPolicy,
    ...(options.webhooks?.timeoutMs === undefined ? {} : { timeoutMs: options.webhooks.timeoutMs }),
    ...(options.webhooks?.log ? { log: options.webhooks.log } : {}),
  });
  // Every saved task event reaches the push sender; with a database, other agent processes hear of it too.
  const pushSender = relay ? relay.sender(webhookSender) : webhookSender;
  const requestHandler = relay
    ? new RelayingRequestHandler(relay, card, taskStore, executor, relay.busManager, pushStore, pushSender)
    : new DefaultRequestHandler(card, taskStore, executor, undefined, pushStore, pushSender);

  // Once the database is open: live updates between processes, pings relayed to their owner, and the work
  // an earlier start (or a process that died) left behind taken over.
  const log = options.log ?? ((line: string) => console.error(line));
  let resumer: TaskResumer | undefined;
  let stopped = false;
  const stopListening: (() => Promise<void>)[] = [];
  const resuming = state.durable.then(async (durable) => {
    if (!durable || !relay || stopped) return;
    // One process owns a PGlite folder: there is nobody to tell, and every NOTIFY would cost a query.
    if (durable.database.kind === 'postgres') {
      await relay.start(durable.database, durable.ledger.processId, {
        load: (owner, taskId) => taskStore.load(taskId, contextOf(owner)),
        changedElsewhere: (owner, taskId) => state.changedElsewhere(owner, taskId),
        onCancel: (_owner, taskId, bus) => {
          if (bus && executor.isRunning(taskId)) void executor.cancelTask(taskId, bus);
        },
      });
      stopListening.push(await durable.database.listen(CIBA_PINGS, (authReqId) => void notifications.wake(authReqId)));
    }
    if (stopped) return;
    resumer = createTaskResumer({
      durable,
      executor,
      taskStore,
      busManager: relay.busManager,
      pushSender,
      log,
      ...(options.lease?.scanEveryMs === undefined ? {} : { scanEveryMs: options.lease.scanEveryMs }),
    });
    await resumer.start();
  });
  resuming.catch((error: unknown) => log(`The HR Agent could not resume its stored work: ${(error as Error).message}`));

  const guard = requireBearer({
    issuer: options.identity.issuer,
    audience: options.identity.agentAudience,
    scopes: [AGENT_SCOPE],
    realm: REALM,
    ...(options.clockToleranceSeconds === undefined ? {} : { clockToleranceSeconds: options.clockToleranceSeconds }),
  });
  // Tasks, contexts and push configs are scoped by this name (the caller's `sub`).
  const userBuilder: UserBuilder = async (req) => {
    const principal = req.res?.locals.principal as Principal | undefined;
    if (!principal) throw new Error('A2A route reached without a verified bearer token');
    // The caller's application (`azp`) is named to the employee in each consent request (agent/authorization-details.ts).
    const user: CallerUser = {
      isAuthenticated: true,
      userName: principal.sub,
      clientId: principal.clientId,
      // The task's span continues the caller's trace and shows what its token said.
      trace: requestTrace(req),
      tokenDescription: describeClaims(principal.header, principal.claims),
    };
    return user;
  };

  const app = express();
  app.disable('x-powered-by');
  app.use(hostAllowlist({ names: options.allowedHosts ?? [], urls: () => [options.publicUrl, boundUrl] }));
  app.get('/health', (_req, res) => {
    res.json({ ok: true });
  });
  // The caller's trace context on every request; the identity backend's ping (CIBA §10.2) gets a span of its own.
  app.use(traceRequests(telemetry, { participant: 'agent', route: (req) => (req.method === 'POST' && req.url === '/ciba/notify' ? 'POST /ciba/notify' : undefined) }));
  app.use(
    '/.well-known/agent-card.json',
    agentCardHandler({
      // The SDK's handler serialises the internal oneof shape; hand it spec JSON instead.
      agentCardProvider: async () => AgentCard.toJSON(card) as AgentCard,
      cache: { maxAge: 60 },
    }),
  );
  app.post('/ciba/notify', express.json({ limit: '8kb' }), (req, res) => notifications.handle(req, res));
  const admit = admission(executor, options.maxActiveTasks ?? AGENT_DEFAULTS.maxActiveTasks);
  app.use(JSONRPC_PATH, guard, jsonRpcVersionGate({ requestHandler }), express.json(), admit, jsonRpcHandler({ requestHandler, userBuilder }));
  app.use(REST_PATH, guard, admit, restHandler({ requestHandler, userBuilder }));
  app.use((_req, res) => {
    res.status(404).json({ error: 'not_found', error_description: 'No such route' });
  });
  app.use(finalErrorHandler);

  const listener = appListener(app, 'The HR Agent');
  return {
    app,
    async listen(port, host) {
      const url = await listener.listen(port, host);
      boundUrl = url;
      card.supportedInterfaces = agentInterfaces(options.publicUrl ?? url);
      return url;
    },
    async close() {
      // Nothing is marked failed: pending consents and tasks stay in the database for the next start.
      stopped = true;
      executor.abortAll();
      notifications.close();
      await resuming.catch(() => undefined);
      await resumer?.close();
      relay?.finishAll();
      const durable = await state.durable.catch(() => undefined);
      await durable?.ledger.release().catch(() => undefined);
      for (const stop of stopListening.splice(0)) await stop().catch(() => undefined);
      await relay?.close();
      state.close();
      await listener.close();
      await policy.close();
    },
  };
}

/** NOTIFY channel carrying the `auth_req_id` of a CIBA ping received by a process that does not wait for it. */
const CIBA_PINGS = 'agent_ciba_pings';

const NEW_WORK_METHODS = new Set(['SendMessage', 'SendStreamingMessage']);

/**
 * Load is shed, not dropped: past `maxActive` running tasks a new message is
 * refused at once with 503 and `Retry-After` (RFC 9110 §15.6.4), which the
 * sandbox's client retries; reads, cancels and subscriptions always pass.
 */
function admission(executor: HrAgentExecutor, maxActive: number): RequestHandler {
  return (req, res, next) => {
    const body: unknown = req.body;
    const method = typeof body === 'object' && body !== null ? (body as { method?: unknown }).method : undefined;
    const startsWork = req.method === 'POST' && (NEW_WORK_METHODS.has(String(method)) || /\/message:(send|stream)$/.test(req.path));
    if (!startsWork || executor.activeTasks() < maxActive) return next();
    res
      .status(503)
      .set('Retry-After', '1')
      .json({ error: 'overloaded', error_description: `The agent is running ${maxActive} tasks, its limit; try again shortly` });
  };
}

/**
 * The watchdog's limits, from the call policy: before a consent is pending,
 * two model calls and three identity calls; past its expiry, one more call to
 * the identity backend, the HR API and the model.
 */
function taskDeadlines(policy: CallPolicy): TaskDeadlines {
  const deadline = (service: Service) => policy.deadlineMs(service);
  return {
    beforeConsentMs: 2 * deadline('model') + 3 * deadline('identity'),
    afterConsentExpiryMs: deadline('identity') + deadline('hrApi') + deadline('model'),
  };
}

/** Malformed bodies get a 400 with an OAuth-style error body; nothing else leaks. */
const finalErrorHandler: ErrorRequestHandler = (error: unknown, _req, res, next) => {
  if (res.headersSent) return next(error);
  const status =
    typeof error === 'object' && error !== null && 'status' in error && typeof error.status === 'number' ? error.status : 500;
  if (status >= 400 && status < 500) {
    res.status(status).json({ error: 'invalid_request', error_description: 'The request could not be read' });
    return;
  }
  res.status(500).json({ error: 'server_error', error_description: 'The agent could not handle the request' });
};
