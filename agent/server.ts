import { AgentCard } from '@a2a-js/sdk';
import {
  DefaultPushNotificationSender,
  DefaultRequestHandler,
  InMemoryPushNotificationStore,
  InMemoryTaskStore,
  type User,
} from '@a2a-js/sdk/server';
import { agentCardHandler, jsonRpcHandler, restHandler, type UserBuilder } from '@a2a-js/sdk/server/express';
import { GoogleGenAI } from '@google/genai';
import express, { type ErrorRequestHandler, type Express } from 'express';
import { requireBearer, type Principal } from '../sandbox/bearer.ts';
import { AGENT_SCOPE, JSONRPC_PATH, REST_PATH, agentInterfaces, buildAgentCard } from './agent-card.ts';
import { createCibaAuthorizer } from './ciba.ts';
import { createPingNotifications } from './ciba-notifications.ts';
import { createConversations } from './conversations.ts';
import { createExecutor } from './executor.ts';
import { createHrApiClient } from './hr-api.ts';
import { createIdentityClient } from './identity.ts';
import { createManagementClient } from './management.ts';
import { createPlanner } from './planner.ts';
import { createTools } from './tools.ts';
import { appListener } from '../sandbox/http-listener.ts';

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
}

export interface AgentHandle {
  app: Express;
  /** Resolves with the agent's base URL. */
  listen(port: number, host: string): Promise<string>;
  close(): Promise<void>;
}

export const REALM = 'staff0-hr-agent';

export function createAgent(options: AgentOptions): AgentHandle {
  const identity = createIdentityClient({
    issuer: options.identity.issuer,
    client: options.identity.client,
    allowInsecureHttp: options.allowInsecureHttp,
  });
  const notifications = createPingNotifications();
  const tools = createTools({
    management: createManagementClient({ identity, managementAudience: options.identity.managementAudience }),
    ciba: createCibaAuthorizer({
      identity,
      apiAudience: options.identity.apiAudience,
      deliveryMode: options.ciba.deliveryMode,
      requestedExpiry: options.ciba.requestedExpiry,
      bindingMessage: options.ciba.bindingMessage,
      notifications,
    }),
    hrApi: createHrApiClient({ baseUrl: options.hrApiUrl }),
    maxConsentRequests: options.maxConsentRequests,
  });
  const genai = new GoogleGenAI({
    apiKey: options.gemini.apiKey,
    ...(options.gemini.baseUrl ? { httpOptions: { baseUrl: options.gemini.baseUrl } } : {}),
  });
  const planner = createPlanner({
    generateContent: (params) => genai.models.generateContent(params),
    model: options.gemini.model,
  });
  const executor = createExecutor({ planner, tools, conversations: createConversations() });

  const card = buildAgentCard({
    url: options.publicUrl ?? 'http://127.0.0.1',
    tokenUrl: new URL('oauth/token', options.identity.issuer).href,
  });
  const pushStore = new InMemoryPushNotificationStore();
  const requestHandler = new DefaultRequestHandler(
    card,
    new InMemoryTaskStore(),
    executor,
    undefined,
    pushStore,
    new DefaultPushNotificationSender(pushStore),
  );

  const guard = requireBearer({
    issuer: options.identity.issuer,
    audience: options.identity.agentAudience,
    scopes: [AGENT_SCOPE],
    realm: REALM,
  });
  // Tasks, contexts and push configs are scoped by this name (the caller's `sub`).
  const userBuilder: UserBuilder = async (req) => {
    const principal = req.res?.locals.principal as Principal | undefined;
    if (!principal) throw new Error('A2A route reached without a verified bearer token');
    const user: User = { isAuthenticated: true, userName: principal.sub };
    return user;
  };

  const app = express();
  app.disable('x-powered-by');
  app.get('/health', (_req, res) => {
    res.json({ ok: true });
  });
  app.use(
    '/.well-known/agent-card.json',
    agentCardHandler({
      // The SDK's handler serialises the internal oneof shape; hand it spec JSON instead.
      agentCardProvider: async () => AgentCard.toJSON(card) as AgentCard,
      cache: { maxAge: 60 },
    }),
  );
  app.post('/ciba/notify', express.json({ limit: '8kb' }), (req, res) => notifications.handle(req, res));
  app.use(JSONRPC_PATH, guard, jsonRpcHandler({ requestHandler, userBuilder }));
  app.use(REST_PATH, guard, restHandler({ requestHandler, userBuilder }));
  app.use((_req, res) => {
    res.status(404).json({ error: 'not_found', error_description: 'No such route' });
  });
  app.use(finalErrorHandler);

  const listener = appListener(app, 'The HR Agent');
  return {
    app,
    async listen(port, host) {
      const url = await listener.listen(port, host);
      card.supportedInterfaces = agentInterfaces(options.publicUrl ?? url);
      return url;
    },
    async close() {
      executor.abortAll();
      notifications.close();
      await listener.close();
    },
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
