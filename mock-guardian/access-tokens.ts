import { errors, type Configuration, type KoaContextWithOIDC, type ResourceServer } from 'oidc-provider';
import { CIBA_GRANT_TYPE } from './tenant-file.ts';
import type { TenantDirectory } from './tenant-directory.ts';

/**
 * Access tokens shaped like Auth0's: RS256 JWTs for the API named by
 * `audience`, with `iss` (trailing slash), `aud`, `scope`, `azp`, and for
 * machine-to-machine tokens `sub: <client_id>@clients` and
 * `gty: client-credentials`. oidc-provider speaks RFC 8707 `resource`;
 * Auth0 clients send `audience`, so it is mapped onto the resource.
 */

type Features = NonNullable<Configuration['features']>;

/** An OAuth error with an HTTP status other than oidc-provider's default 400. */
export function oauthError(code: string, description: string, status = 400): errors.OIDCProviderError {
  const error = new errors.CustomOIDCProviderError(code, description);
  error.status = status;
  error.statusCode = status;
  return error;
}

/** Auth0 answers 403 access_denied when an application asks for an API it has no grant for. */
function notAuthorized(audience: string): errors.OIDCProviderError {
  return oauthError(
    'access_denied',
    `Client is not authorized to access "${audience}". You need to create a "client-grant" associated to this API.`,
    403,
  );
}

/**
 * Auth0's `audience` parameter. Read from the body because oidc-provider keeps
 * only registered parameters at the token endpoint (extraParams are not among them).
 */
function requestedAudience(ctx: KoaContextWithOIDC): string | undefined {
  const body = ctx.oidc.body as Record<string, unknown> | undefined;
  const audience = body?.audience ?? ctx.oidc.params?.audience;
  if (audience === undefined || audience === '') return undefined;
  if (typeof audience !== 'string') throw new errors.InvalidRequest('audience must be a single value');
  return audience;
}

function grantType(ctx: KoaContextWithOIDC): unknown {
  return ctx.oidc.params?.grant_type;
}

export function resourceIndicators(directory: TenantDirectory): NonNullable<Features['resourceIndicators']> {
  return {
    enabled: true,
    defaultResource(ctx, _client, oneOf) {
      if (oneOf) return oneOf;
      const audience = requestedAudience(ctx);
      if (audience !== undefined) return audience;
      if (ctx.oidc.route === 'token' && grantType(ctx) === 'client_credentials') {
        throw oauthError('access_denied', 'No audience parameter was provided, and no default audience has been configured', 403);
      }
      return undefined;
    },
    // A CIBA request made with `openid` would otherwise yield a userinfo token (DESIGN.md).
    useGrantedResource: () => true,
    getResourceServerInfo(ctx, identifier, client): ResourceServer {
      const api = directory.findApi(identifier);
      if (!api) throw oauthError('access_denied', `Service not found: ${identifier}`, 403);
      const allScopes = api.scopes.map((s) => s.value);
      const info = (scopes: string[]): ResourceServer => ({
        scope: scopes.join(' '),
        audience: api.identifier,
        accessTokenFormat: 'jwt',
        accessTokenTTL: directory.settings.accessTokenLifetime,
        jwt: { sign: { alg: 'RS256' } },
      });

      if (ctx.oidc.route === 'backchannel_authentication' || grantType(ctx) === CIBA_GRANT_TYPE) {
        if (!directory.cibaAudienceAllowed(client.clientId, identifier)) throw notAuthorized(identifier);
        return info(allScopes);
      }
      if (grantType(ctx) === 'client_credentials') {
        const granted = directory.clientGrantScopes(client.clientId, identifier);
        if (granted === undefined) throw notAuthorized(identifier);
        // Auth0 grants every scope of the client grant when the request names none.
        if (ctx.oidc.params && (ctx.oidc.params.scope === undefined || ctx.oidc.params.scope === '')) {
          ctx.oidc.params.scope = granted.join(' ');
        }
        return info(granted);
      }
      throw notAuthorized(identifier);
    },
  };
}

/** Rewrites oidc-provider's JWT access token claims into Auth0's shape. */
type JwtCustomizer = NonNullable<NonNullable<NonNullable<Configuration['formats']>['customizers']>['jwt']>;

export const auth0Claims: JwtCustomizer = (_ctx, token, { payload }) => {
  const clientId = payload.client_id;
  delete payload.client_id;
  payload.azp = clientId;
  if (token.kind === 'ClientCredentials') {
    payload.sub = `${String(clientId)}@clients`;
    payload.gty = 'client-credentials';
  }
  if (payload.scope === undefined) payload.scope = '';
};
