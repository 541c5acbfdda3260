import type { AgentCard } from '@a2a-js/sdk';
import {
  ClientFactory,
  ClientFactoryOptions,
  DefaultAgentCardResolver,
  JsonRpcTransportFactory,
  RestTransportFactory,
  createAuthenticatingFetchWithRetry,
  type Client,
} from '@a2a-js/sdk/client';
import { rootCertificates } from 'node:tls';
import * as oidc from 'openid-client';
import { Agent } from 'undici';
import type { ClientCredentials } from './config.ts';
import { context, trace } from '@opentelemetry/api';
import { injectTraceHeaders } from './telemetry/trace-context.ts';

/**
 * How an A2A caller reaches the HR Agent: read the (untrusted) agent card,
 * take the OAuth2 client-credentials flow it advertises, get a token from the
 * identity backend and send it on every call.
 */

export class AgentCardError extends Error {
  readonly code = 'invalid_agent_card';
  constructor(message: string) {
    super(message);
    this.name = 'AgentCardError';
  }
}

/** The identity backend could not be reached for a token (as opposed to refusing one, an `oidc.ResponseBodyError`). */
export class IdentityUnreachableError extends Error {
  readonly code = 'identity_unreachable';
  constructor(readonly tokenUrl: string, options: { cause: unknown }) {
    super(`Could not reach the identity backend at ${new URL(tokenUrl).origin} for a token`, options);
    this.name = 'IdentityUnreachableError';
  }
}

export interface ClientCredentialsFlow {
  tokenUrl: string;
  scopes: string[];
}

export interface AgentConnection {
  client: Client;
  card: AgentCard;
  flow: ClientCredentialsFlow;
  /** The current access token (fetched on first use, renewed when it expires or is refused). */
  accessToken(): Promise<string>;
}

export interface ConnectOptions {
  agentUrl: string;
  /** The identity backend the caller trusts; the card's tokenUrl must belong to it. */
  issuer: string;
  audience: string;
  credentials: ClientCredentials;
  transport?: 'JSONRPC' | 'HTTP+JSON';
  fetch?: typeof fetch;
  /**
   * A CA (PEM) to trust besides the system's, such as the local CA of an HTTPS
   * tenant (sandbox/local-ca.ts), for a process started without `NODE_EXTRA_CA_CERTS`.
   */
  ca?: string;
}

/** `fetch` that also trusts `ca`, for this caller's requests only (the process's trust store is left alone). */
export function fetchTrusting(ca: string): typeof fetch {
  const dispatcher = new Agent({ connect: { ca: [...rootCertificates, ca] } });
  return (input, init) => fetch(input, { ...init, dispatcher } as RequestInit);
}

/** Picks the client-credentials flow out of the card, refusing anything a caller should not trust. */
export function clientCredentialsFlow(card: AgentCard, issuer: string): ClientCredentialsFlow {
  for (const scheme of Object.values(card.securitySchemes ?? {})) {
    if (scheme.scheme?.$case !== 'oauth2SecurityScheme') continue;
    const flow = scheme.scheme.value.flows?.flow;
    if (flow?.$case !== 'clientCredentials') continue;
    let tokenUrl: URL;
    try {
      tokenUrl = new URL(flow.value.tokenUrl);
    } catch {
      throw new AgentCardError('The agent card advertises a tokenUrl that is not a URL');
    }
    // Sending our client secret wherever a card points would hand it to anyone
    // who can serve a card: only the identity backend we already trust gets it.
    if (tokenUrl.origin !== new URL(issuer).origin) {
      throw new AgentCardError(
        `The agent card's tokenUrl (${tokenUrl.origin}) is not on the configured identity backend (${new URL(issuer).origin})`,
      );
    }
    const scopes = Object.keys(flow.value.scopes ?? {}).filter((s) => /^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s));
    return { tokenUrl: tokenUrl.href, scopes };
  }
  throw new AgentCardError('The agent card advertises no OAuth2 client-credentials flow');
}

/** One cached client-credentials token source for a token endpoint. */
export function clientCredentialsTokens(options: {
  issuer: string;
  tokenUrl: string;
  credentials: ClientCredentials;
  audience: string;
  scopes: string[];
  fetch?: typeof fetch;
}): { get(): Promise<string>; renew(): Promise<string> } {
  const server: oidc.ServerMetadata = { issuer: options.issuer, token_endpoint: options.tokenUrl };
  const config = new oidc.Configuration(server, options.credentials.clientId, options.credentials.clientSecret);
  if (new URL(options.tokenUrl).protocol === 'http:') oidc.allowInsecureRequests(config);
  const fetchImpl = options.fetch;
  if (fetchImpl) config[oidc.customFetch] = (url, init) => fetchImpl(url, init as RequestInit);
  let current: Promise<{ token: string; expiresAt: number }> | undefined;
  const fetchToken = async () => {
    const params: Record<string, string> = { audience: options.audience };
    if (options.scopes.length > 0) params.scope = options.scopes.join(' ');
    let response: Awaited<ReturnType<typeof oidc.clientCredentialsGrant>>;
    try {
      response = await oidc.clientCredentialsGrant(config, params);
    } catch (error) {
      // A refusal (invalid_client, access_denied) has a body; anything else never got an answer.
      if (error instanceof oidc.ResponseBodyError) throw error;
      throw new IdentityUnreachableError(options.tokenUrl, { cause: error });
    }
    const lifetime = response.expiresIn() ?? 60;
    return { token: response.access_token, expiresAt: Date.now() + Math.max(lifetime - 30, 1) * 1000 };
  };
  const renew = () => {
    current = fetchToken();
    current.catch(() => {
      current = undefined;
    });
    return current.then((t) => t.token);
  };
  return {
    async get() {
      const cached = current && (await current.catch(() => undefined));
      if (cached && cached.expiresAt > Date.now()) return cached.token;
      return renew();
    },
    renew,
  };
}

const OVERLOAD_RETRIES = 8;
const OVERLOAD_MAX_WAIT_MS = 10_000;

/**
 * An agent that sheds load answers 503 (or 429) with `Retry-After` before
 * doing any work (RFC 9110 §15.6.4), so the same request can be sent again:
 * wait as told, with a little jitter so shed callers do not return in step.
 */
export function retryWhenOverloaded(fetchImpl: typeof fetch, random: () => number = Math.random): typeof fetch {
  return async (input, init) => {
    for (let attempt = 0; ; attempt += 1) {
      const response = await fetchImpl(input, init);
      const retryAfter = response.headers.get('retry-after');
      if ((response.status !== 503 && response.status !== 429) || retryAfter === null || attempt >= OVERLOAD_RETRIES) return response;
      const seconds = /^\d+$/.test(retryAfter.trim()) ? Number(retryAfter) : 1;
      await response.body?.cancel();
      const wait = Math.min(OVERLOAD_MAX_WAIT_MS, seconds * 1000 * (1 + random()));
      await new Promise((resolve) => setTimeout(resolve, wait));
      if (init?.signal?.aborted) throw init.signal.reason;
    }
  };
}

/**
 * Sends the caller's active trace (W3C `traceparent`) with each request, so that a caller that traces
 * its turns (a span active around `runTurn`) sees the agent's task in its own trace; without one the
 * agent starts the trace.
 */
export function withTraceContext(fetchImpl: typeof fetch): typeof fetch {
  return (input, init) => {
    const active = context.active();
    if (!trace.getSpanContext(active)) return fetchImpl(input, init);
    const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
    for (const [name, value] of Object.entries(injectTraceHeaders({}, active))) headers.set(name, value);
    return fetchImpl(input, { ...init, headers });
  };
}

export async function connectToAgent(options: ConnectOptions): Promise<AgentConnection> {
  const trusting = options.ca === undefined ? undefined : fetchTrusting(options.ca);
  const fetchImpl = retryWhenOverloaded(withTraceContext(options.fetch ?? trusting ?? fetch));
  const card = await new DefaultAgentCardResolver({ fetchImpl }).resolve(options.agentUrl);
  const flow = clientCredentialsFlow(card, options.issuer);
  const tokens = clientCredentialsTokens({
    issuer: options.issuer,
    tokenUrl: flow.tokenUrl,
    credentials: options.credentials,
    audience: options.audience,
    scopes: flow.scopes,
    ...(trusting ? { fetch: trusting } : {}),
  });
  const authFetch = createAuthenticatingFetchWithRetry(fetchImpl, {
    headers: async () => ({ Authorization: `Bearer ${await tokens.get()}` }),
    // RFC 6750 §3.1: invalid_token means "get a new one"; anything else will not improve by retrying.
    shouldRetryWithHeaders: async (_req, res) =>
      res.status === 401 && /error="invalid_token"/.test(res.headers.get('WWW-Authenticate') ?? '')
        ? { Authorization: `Bearer ${await tokens.renew()}` }
        : undefined,
  });
  const factory = new ClientFactory(
    ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
      transports: [new JsonRpcTransportFactory({ fetchImpl: authFetch }), new RestTransportFactory({ fetchImpl: authFetch })],
      preferredTransports: [options.transport ?? 'JSONRPC'],
    }),
  );
  const client = await factory.createFromAgentCard(card);
  return { client, card, flow, accessToken: () => tokens.get() };
}
