import { errors, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { oauthError } from './access-tokens.ts';
import { isOriginAllowed } from './allowed-origins.ts';
import {
  checkDetailsForChannel,
  parseAuthorizationDetails,
  requestedAuthorizationDetails,
  type AuthorizationDetail,
} from './authorization-details.ts';
import type { ConsentRegistry } from './consent-requests.ts';
import { CIBA_GRANT_TYPE } from './tenant-file.ts';
import type { TenantDirectory } from './tenant-directory.ts';
import { checkReachable, parseRequestedExpiry, selectChannel } from './notification-channels.ts';
import { markHop } from '../sandbox/telemetry/hop-spans.ts';
import { HOP, shortId } from '../sandbox/telemetry/hops.ts';
import { noTelemetry, type Telemetry } from '../sandbox/telemetry/setup.ts';
import { carrierOf, requestTrace } from '../sandbox/telemetry/trace-context.ts';

/**
 * CIBA as Auth0 runs it (Guardian push or email, with Rich Authorization Requests), on top of oidc-provider's
 * backchannel authentication endpoint and CIBA grant: Auth0's request rules
 * at `/bc-authorize`, and at the token endpoint the parts oidc-provider
 * leaves out (`interval`, `slow_down`, Auth0's error texts).
 */

type Features = NonNullable<Configuration['features']>;
type CibaFeature = NonNullable<Features['ciba']>;
type KoaMiddleware = (ctx: KoaContextWithOIDC, next: () => Promise<void>) => Promise<void>;

export const AUTH0_DENIED = 'The end-user denied the authorization request or it has been expired';
const AUTH0_PENDING = 'The end-user authorization is pending';

/** Auth0: up to 64 letters, digits, spaces and `+-_.,:#`. */
const BINDING_MESSAGE = /^[A-Za-z0-9 +\-_.,:#]{1,64}$/;
/** RFC 6750 §2.1 b64token, as CIBA §7.1 asks of client_notification_token. */
const NOTIFICATION_TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
const MAX_LOGIN_HINT = 1024;

export interface CibaOptions {
  directory: TenantDirectory;
  registry: ConsentRegistry;
  /** Requests sent to one user (Auth0: 5 a minute). */
  rateLimiter: RateLimiter;
  /** `/bc-authorize` calls from one IP address (Auth0: 500 a minute); omitted: no limit. */
  ipRateLimiter?: RateLimiter;
  /** The push (or email) to the employee is a hop of the asking client's trace. */
  telemetry?: Telemetry;
}

export interface RateLimiter {
  /** Records one use for `key`; returns the seconds to wait instead when the limit is reached. */
  take(key: string): { ok: true } | { ok: false; retryAfter: number };
}

export function createRateLimiter(limit: number, windowMs: number, now: () => number = Date.now): RateLimiter {
  const uses = new Map<string, number[]>();
  return {
    take(key) {
      if (limit <= 0) return { ok: true };
      const t = now();
      const recent = (uses.get(key) ?? []).filter((at) => at > t - windowMs);
      if (recent.length >= limit) {
        uses.set(key, recent);
        return { ok: false, retryAfter: Math.max(1, Math.ceil(((recent[0] ?? t) + windowMs - t) / 1000)) };
      }
      recent.push(t);
      uses.set(key, recent);
      return { ok: true };
    },
  };
}

/** Seconds a new request lives: `requested_expiry` when sent (validated below), else the tenant default. */
export function cibaRequestTtl(directory: TenantDirectory) {
  return (ctx: KoaContextWithOIDC | undefined): number => requestExpiry(ctx, directory);
}

function requestExpiry(ctx: KoaContextWithOIDC | undefined, directory: TenantDirectory): number {
  const requested = ctx?.oidc.params?.requested_expiry;
  if (typeof requested === 'string' && /^\d+$/.test(requested)) return Number(requested);
  return directory.settings.cibaDefaultExpiry;
}

/** The request's details, already checked in validateRequestContext. */
function authorizationDetailsOf(ctx: KoaContextWithOIDC, directory: TenantDirectory): AuthorizationDetail[] | undefined {
  const raw = requestedAuthorizationDetails(ctx);
  if (raw === undefined) return undefined;
  const audience = ctx.oidc.params?.audience;
  return parseAuthorizationDetails(raw, typeof audience === 'string' ? directory.findApi(audience) : undefined);
}

interface LoginHint {
  format: 'iss_sub';
  iss: string;
  sub: string;
}

function parseLoginHint(raw: string | undefined): LoginHint {
  const invalid = (why: string) => new errors.InvalidRequest(`login_hint ${why}`);
  if (raw === undefined) throw invalid('is required');
  if (raw.length > MAX_LOGIN_HINT) throw invalid(`must be at most ${MAX_LOGIN_HINT} characters`);
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw invalid('must be a JSON object such as {"format":"iss_sub","iss":"<issuer>","sub":"<user_id>"}');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('must be a JSON object');
  const hint = value as Record<string, unknown>;
  if (hint.format !== 'iss_sub') throw invalid('format must be "iss_sub"');
  if (typeof hint.iss !== 'string' || hint.iss === '') throw invalid('iss must be a string');
  if (typeof hint.sub !== 'string' || hint.sub === '') throw invalid('sub must be a string');
  return { format: 'iss_sub', iss: hint.iss, sub: hint.sub };
}

const withoutSlash = (url: string) => url.replace(/\/+$/, '');

/** The client_notification_token of a ping request (CIBA §7.1); oidc-provider does not see it, see below. */
export function notificationToken(ctx: KoaContextWithOIDC): string | undefined {
  const body = ctx.oidc.body as Record<string, unknown> | undefined;
  const value = body?.client_notification_token;
  return typeof value === 'string' ? value : undefined;
}

export function cibaFeature({ directory, registry, rateLimiter, ipRateLimiter, telemetry = noTelemetry() }: CibaOptions): CibaFeature {
  return {
    enabled: true,
    // Ping applications are registered with oidc-provider as poll applications because it only accepts
    // https notification endpoints and the local HR Agent is http; the tenant sends the CIBA §10.2 ping itself.
    deliveryModes: ['poll', 'ping'],

    async validateRequestContext(ctx) {
      // Auth0 has no request_context; this hook runs once all parameters are parsed, before the user is looked up.
      if (ipRateLimiter) {
        const verdict = ipRateLimiter.take(ctx.ip);
        if (!verdict.ok) {
          ctx.set('Retry-After', String(verdict.retryAfter));
          throw oauthError('too_many_requests', 'Too many backchannel authentication requests from this address; try again later', 429);
        }
      }
      const app = ctx.oidc.client ? directory.findApplication(ctx.oidc.client.clientId) : undefined;
      const expiry = parseRequestedExpiry(ctx.oidc.params?.requested_expiry) ?? directory.settings.cibaDefaultExpiry;
      const channel = selectChannel(app, expiry);
      const details = authorizationDetailsOf(ctx, directory);
      if (details) checkDetailsForChannel(details, channel);
      // A browser script may start a consent only from an origin the application lists (Auth0's CORS settings).
      const origin = ctx.get('Origin');
      if (origin !== '' && !isOriginAllowed(app, origin)) throw new errors.InvalidRequest('this origin is not allowed for the application');
      if (app?.ciba?.delivery_mode === 'ping') {
        const token = notificationToken(ctx);
        if (token === undefined || token === '') throw new errors.InvalidRequest('client_notification_token is required for ping delivery');
        if (token.length > 1024 || !NOTIFICATION_TOKEN.test(token)) {
          throw new errors.InvalidRequest('client_notification_token must be a bearer token of at most 1024 characters');
        }
      }
    },

    async validateBindingMessage(_ctx, bindingMessage) {
      if (bindingMessage === undefined || bindingMessage === '') throw new errors.InvalidRequest('binding_message is required');
      if (!BINDING_MESSAGE.test(bindingMessage)) {
        throw new errors.InvalidBindingMessage(
          'binding_message must be 1 to 64 characters of letters, digits, spaces and +-_.,:#',
        );
      }
    },

    async processLoginHint(ctx, loginHint) {
      const hint = parseLoginHint(loginHint);
      if (withoutSlash(hint.iss) !== withoutSlash(directory.issuer)) {
        throw new errors.InvalidRequest(`login_hint iss must be this tenant's issuer ${directory.issuer}`);
      }
      const user = directory.findUser(hint.sub);
      if (!user) throw new errors.UnknownUserId('The user in login_hint does not exist');
      const app = ctx.oidc.client ? directory.findApplication(ctx.oidc.client.clientId) : undefined;
      checkReachable(user, selectChannel(app, requestExpiry(ctx, directory)));
      const verdict = rateLimiter.take(user.user_id);
      if (!verdict.ok) {
        ctx.set('Retry-After', String(verdict.retryAfter));
        throw oauthError('too_many_requests', 'Too many backchannel authentication requests for this user; try again later', 429);
      }
      return user.user_id;
    },

    async processLoginHintToken() {
      throw new errors.InvalidRequest('login_hint_token is not supported; use login_hint in the iss_sub format');
    },

    // Auth0 has no user_code for CIBA.
    async verifyUserCode() {},

    async triggerAuthenticationDevice(ctx, request, account, client) {
      const user = directory.findUser(account.accountId);
      const app = directory.findApplication(client.clientId);
      // `exp` is computed while saving and only lands in storage, so read the request back.
      const saved = request.jti === undefined ? undefined : await ctx.oidc.provider.BackchannelAuthenticationRequest.find(request.jti);
      if (!user || !app || !saved?.jti || saved.exp === undefined) {
        throw new Error('the accepted CIBA request does not match the tenant');
      }
      const audience = typeof request.resource === 'string' ? request.resource : null;
      const token = app.ciba?.delivery_mode === 'ping' ? notificationToken(ctx) : undefined;
      const details = authorizationDetailsOf(ctx, directory);
      const channel = selectChannel(app, requestExpiry(ctx, directory));
      // The employee is reached as the request is recorded; their answer later continues this trace.
      const reached = markHop(
        telemetry,
        {
          from: 'identity',
          to: 'employee',
          label: channel === 'email' ? 'email with approval link' : 'push to Guardian',
          attributes: { [HOP.channel]: channel, [HOP.authReqId]: shortId(saved.jti), [HOP.employee]: user.email },
        },
        requestTrace(ctx.req),
      );
      const traceCarrier = carrierOf(reached);
      await registry.create({
        authReqId: saved.jti,
        user: { user_id: user.user_id, name: user.name, email: user.email },
        client: { client_id: app.client_id, name: app.name },
        bindingMessage: String(ctx.oidc.params?.binding_message ?? ''),
        scopes: (request.scope ?? '').split(' ').filter(Boolean),
        audience,
        apiName: audience === null ? null : (directory.findApi(audience)?.name ?? null),
        createdAt: Date.now(),
        expiresAt: saved.exp * 1000,
        ...(token === undefined ? {} : { notificationToken: token }),
        ...(traceCarrier === undefined ? {} : { traceCarrier }),
        // A user's automatic answer is their Guardian app's; an email waits for a person.
        ...(user.guardian.policy && channel === 'guardian-push' ? { policy: user.guardian.policy } : {}),
        channel,
        ...(details === undefined ? {} : { authorizationDetails: details }),
      });
      // oidc-provider never sends `interval` (CIBA §7.3); Auth0 does.
      const body = ctx.body as { auth_req_id: string; expires_in: number };
      ctx.body = { auth_req_id: body.auth_req_id, expires_in: body.expires_in, interval: directory.settings.cibaInterval };
    },
  };
}

/**
 * Post-processes CIBA token requests (CIBA §11): counts polls, turns a too-early
 * `authorization_pending` into `slow_down` with `Retry-After`, and applies the
 * tenant's choice of expiry error. Runs around oidc-provider's router.
 */
export function cibaPollRules({ directory, registry }: Pick<CibaOptions, 'directory' | 'registry'>): KoaMiddleware {
  return async (ctx, next) => {
    await next();
    const oidc = (ctx as Partial<KoaContextWithOIDC>).oidc;
    if (oidc?.route !== 'token' || oidc.params?.grant_type !== CIBA_GRANT_TYPE) return;
    const authReqId = oidc.params.auth_req_id;
    const clientId = oidc.client?.clientId;
    const body = ctx.body as { error?: unknown } | undefined;
    const error = ctx.status >= 400 && typeof body?.error === 'string' ? body.error : undefined;

    if (typeof authReqId === 'string' && clientId !== undefined) {
      const verdict = await registry.recordPoll(authReqId, clientId, error === 'authorization_pending');
      if (verdict?.slowDown) {
        ctx.status = 400;
        ctx.set('Retry-After', String(verdict.interval));
        ctx.body = {
          error: 'slow_down',
          error_description: `You are polling faster than allowed. Try again in ${verdict.interval} seconds.`,
        };
        return;
      }
    }
    if (error === 'authorization_pending') {
      ctx.body = { error, error_description: AUTH0_PENDING };
    } else if (error === 'expired_token') {
      // Auth0 answers a lapsed request as it answers a denial. A request expired early through the control
      // API (a local aid, no Auth0 equivalent) keeps CIBA §11's own code, or no client could tell it from a denial.
      const early = typeof authReqId === 'string' && registry.findByAuthReqId(authReqId)?.view.expired_early === true;
      ctx.body =
        directory.settings.expiryError === 'access_denied' && !early
          ? { error: 'access_denied', error_description: AUTH0_DENIED }
          : { error, error_description: 'The backchannel authentication request has expired' };
    }
  };
}
