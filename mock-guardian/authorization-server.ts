import { randomBytes } from 'node:crypto';
import Provider, { type ClientMetadata, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { auth0Claims, resourceIndicators } from './access-tokens.ts';
import { isOriginAllowed } from './allowed-origins.ts';
import { cibaFeature, cibaPollRules, cibaRequestTtl, createRateLimiter, type RateLimiter } from './ciba.ts';
import type { ConsentRegistry } from './consent-requests.ts';
import type { ProviderStorage } from './provider-storage.ts';
import type { PrivateRsaJwk } from './signing-key.ts';
import { CIBA_GRANT_TYPE, type TenantApplication } from './tenant-file.ts';
import type { TenantDirectory } from './tenant-directory.ts';
import type { Telemetry } from '../sandbox/telemetry/setup.ts';

/**
 * The OpenID Provider behind the tenant: oidc-provider configured with
 * Auth0's routes (`/oauth/token`, `/bc-authorize`, `/.well-known/jwks.json`),
 * the tenant's applications as clients and its users as accounts.
 */

export interface AuthorizationServerOptions {
  directory: TenantDirectory;
  registry: ConsentRegistry;
  storage: ProviderStorage;
  signingKey: PrivateRsaJwk;
  rateLimiter: RateLimiter;
  log: (line: string) => void;
  telemetry?: Telemetry;
}

export const OIDC_SCOPES = ['openid', 'profile', 'email', 'offline_access'] as const;

function clientMetadata(app: TenantApplication): ClientMetadata {
  return {
    client_id: app.client_id,
    client_secret: app.client_secret,
    client_name: app.name,
    grant_types: [...app.grant_types],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_post',
    // Registered as poll even for ping: see cibaFeature.
    ...(app.ciba ? { backchannel_token_delivery_mode: 'poll', backchannel_user_code_parameter: false } : {}),
  };
}

type JwtCustomizer = NonNullable<NonNullable<NonNullable<Configuration['formats']>['customizers']>['jwt']>;

/**
 * RFC 9396 §7 and §9: the details the user approved go into the token response and the access token.
 * The CIBA grant is found by its auth_req_id; only the request's own details are ever copied.
 */
function approvedDetails(registry: ConsentRegistry, ctx: KoaContextWithOIDC | undefined) {
  const oidc = ctx?.oidc;
  if (oidc?.route !== 'token' || oidc.params?.grant_type !== CIBA_GRANT_TYPE) return undefined;
  const authReqId = oidc.params.auth_req_id;
  const record = typeof authReqId === 'string' ? registry.findByAuthReqId(authReqId) : undefined;
  if (!record || record.clientId !== oidc.client?.clientId || record.view.status !== 'approved') return undefined;
  return record.view.authorization_details;
}

function claimsWithAuthorizationDetails(registry: ConsentRegistry): JwtCustomizer {
  return async (ctx, token, jwt) => {
    await auth0Claims(ctx, token, jwt);
    const details = approvedDetails(registry, ctx);
    if (details !== undefined) jwt.payload.authorization_details = details;
  };
}

function authorizationDetailsInTokenResponse(registry: ConsentRegistry) {
  return async (ctx: KoaContextWithOIDC, next: () => Promise<void>): Promise<void> => {
    await next();
    const body = ctx.body as Record<string, unknown> | undefined;
    if (ctx.status !== 200 || typeof body?.access_token !== 'string') return;
    const details = approvedDetails(registry, (ctx as Partial<KoaContextWithOIDC>).oidc ? ctx : undefined);
    if (details !== undefined) ctx.body = { ...body, authorization_details: details };
  };
}

/** Unknown routes and methods get a JSON error like every other answer (oidc-provider leaves Koa's text). */
async function jsonNotFound(ctx: KoaContextWithOIDC, next: () => Promise<void>): Promise<void> {
  await next();
  if (ctx.status === 404 && (ctx.body === undefined || ctx.body === null)) {
    ctx.status = 404;
    ctx.body = { error: 'not_found', error_description: `No endpoint answers ${ctx.method} ${ctx.path.slice(0, 200)}` };
  }
}

/**
 * Discovery and the JWKS are public: like Auth0's, they answer any origin with `*`
 * (oidc-provider echoes the Origin instead, which also needs `Vary: Origin`).
 */
async function publicDocumentsForAnyOrigin(ctx: KoaContextWithOIDC, next: () => Promise<void>): Promise<void> {
  await next();
  const route = (ctx as Partial<KoaContextWithOIDC>).oidc?.route;
  if ((route === 'discovery' || route === 'jwks') && ctx.response.get('Access-Control-Allow-Origin') !== '') {
    ctx.set('Access-Control-Allow-Origin', '*');
  }
}

/**
 * Discovery says what Auth0's says: CIBA delivery by `poll` only. The tenant's ping delivery
 * (CIBA §10.2) is a local extension, named apart so that no client mistakes it for Auth0's.
 */
async function auth0Discovery(ctx: KoaContextWithOIDC, next: () => Promise<void>): Promise<void> {
  await next();
  const body = ctx.body as Record<string, unknown> | undefined;
  if ((ctx as Partial<KoaContextWithOIDC>).oidc?.route !== 'discovery' || ctx.status !== 200 || !body) return;
  ctx.body = {
    ...body,
    backchannel_token_delivery_modes_supported: ['poll'],
    x_local_extensions: { backchannel_token_delivery_modes_supported: ['ping'] },
  };
}

/**
 * oidc-provider sends no CORS headers from /bc-authorize; an origin the application lists
 * gets them, as at the token endpoint (others are refused in validateRequestContext).
 */
function backchannelCors(directory: TenantDirectory) {
  return async (ctx: KoaContextWithOIDC, next: () => Promise<void>): Promise<void> => {
    await next();
    const oidc = (ctx as Partial<KoaContextWithOIDC>).oidc;
    const origin = ctx.get('Origin');
    if (oidc?.route !== 'backchannel_authentication' || origin === '' || !oidc.client) return;
    ctx.vary('Origin');
    if (isOriginAllowed(directory.findApplication(oidc.client.clientId), origin)) ctx.set('Access-Control-Allow-Origin', origin);
  };
}

/**
 * RFC 6749 §5.2 and CIBA §13 name a grant the client may not use `unauthorized_client`;
 * oidc-provider answers `invalid_request`.
 */
async function unauthorizedClient(ctx: KoaContextWithOIDC, next: () => Promise<void>): Promise<void> {
  await next();
  const oidc = (ctx as Partial<KoaContextWithOIDC>).oidc;
  const body = ctx.body as { error?: unknown } | undefined;
  if (!oidc?.client || ctx.status !== 400 || body?.error !== 'invalid_request') return;
  const grantType =
    oidc.route === 'backchannel_authentication' ? CIBA_GRANT_TYPE : oidc.route === 'token' ? oidc.params?.grant_type : undefined;
  if (typeof grantType === 'string' && !oidc.client.grantTypeAllowed(grantType) && grantType !== '') {
    ctx.body = { error: 'unauthorized_client', error_description: `The application may not use the ${grantType} grant` };
  }
}

export function createAuthorizationServer(options: AuthorizationServerOptions): Provider {
  const { directory, registry, storage, signingKey, rateLimiter, log, telemetry } = options;
  const { settings } = directory;

  const configuration: Configuration = {
    adapter: storage.adapter,
    clients: directory.applications.map(clientMetadata),
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    scopes: [...OIDC_SCOPES],
    claims: {
      openid: ['sub'],
      profile: ['name', 'given_name', 'family_name', 'nickname'],
      email: ['email', 'email_verified'],
    },
    async findAccount(_ctx, sub) {
      const user = directory.findUser(sub);
      if (!user) return undefined;
      return {
        accountId: user.user_id,
        claims: () => ({
          sub: user.user_id,
          name: user.name,
          given_name: user.given_name,
          family_name: user.family_name,
          nickname: user.email.split('@')[0],
          email: user.email,
          email_verified: user.email_verified,
        }),
      };
    },
    // Auth0's `audience` parameter, mapped onto RFC 8707 resource by defaultResource; and RFC 9396
    // `authorization_details` on /bc-authorize, checked by the CIBA feature (oidc-provider's own RAR
    // feature is experimental and knows no CIBA).
    extraParams: ['audience', 'authorization_details'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      userinfo: { enabled: true },
      ciba: cibaFeature({
        directory,
        registry,
        rateLimiter,
        ipRateLimiter: createRateLimiter(settings.cibaRateLimitPerIpPerMinute, 60_000),
        ...(telemetry ? { telemetry } : {}),
      }),
      resourceIndicators: resourceIndicators(directory),
    },
    formats: { customizers: { jwt: claimsWithAuthorizationDetails(registry) } },
    routes: {
      token: '/oauth/token',
      backchannel_authentication: '/bc-authorize',
      jwks: '/.well-known/jwks.json',
      userinfo: '/userinfo',
    },
    ttl: {
      AccessToken: settings.accessTokenLifetime,
      ClientCredentials: settings.accessTokenLifetime,
      BackchannelAuthenticationRequest: cibaRequestTtl(directory),
      Grant: settings.accessTokenLifetime,
      IdToken: 36_000,
      RefreshToken: 30 * 86_400,
      AuthorizationCode: 60,
      Interaction: 3600,
      Session: 86_400,
      DeviceCode: 600,
    },
    // The tenant is an API: errors are JSON even for a browser.
    async renderError(ctx, out) {
      ctx.type = 'json';
      ctx.body = out;
    },
    // As Auth0: a browser script may call /oauth/token or /bc-authorize only from an origin the application lists.
    clientBasedCORS: (_ctx, origin, client) => isOriginAllowed(directory.findApplication(client.clientId), origin),
  };

  const provider = new Provider(directory.issuer, configuration);
  provider.use(jsonNotFound);
  provider.use(publicDocumentsForAnyOrigin);
  provider.use(auth0Discovery);
  provider.use(backchannelCors(directory));
  provider.use(unauthorizedClient);
  provider.use(cibaPollRules({ directory, registry }));
  provider.use(authorizationDetailsInTokenResponse(registry));
  provider.on('server_error', (ctx, error) => log(`${ctx.method} ${ctx.path} failed: ${error.stack ?? error.message}`));
  return provider;
}
