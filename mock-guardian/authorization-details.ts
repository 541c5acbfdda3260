import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import type { NotificationChannel, TenantApi } from './tenant-file.ts';

/**
 * Rich Authorization Requests (RFC 9396) on `/bc-authorize`, as Auth0 runs
 * them ("User Authorization with CIBA", "Configure Rich Authorization
 * Requests"): `authorization_details` is a JSON array of objects, each with a
 * `type` registered on the API named by `audience`. Auth0 checks the types
 * only; what else an object holds is the API's business, so it is kept as sent
 * and shown to the user as text.
 */

export interface AuthorizationDetail {
  readonly type: string;
  readonly [field: string]: unknown;
}

/** The parameter's size and shape limits: generous for a consent prompt, small enough to bound the work. */
export const AUTHORIZATION_DETAILS_LIMITS = { maxLength: 8192, maxEntries: 10, maxTypeLength: 255, maxDepth: 5 } as const;

/** RFC 9396 §5: a malformed or unacceptable `authorization_details` is `invalid_authorization_details`. */
function invalid(description: string): errors.InvalidAuthorizationDetails {
  return new errors.InvalidAuthorizationDetails(description);
}

function depthOf(value: unknown, depth = 0): number {
  if (typeof value !== 'object' || value === null) return depth;
  let deepest = depth + 1;
  for (const child of Object.values(value)) deepest = Math.max(deepest, depthOf(child, depth + 1));
  return deepest;
}

/**
 * Parses and checks `authorization_details`. `api` is the audience's API (undefined when none was
 * named): only the types it registers are accepted. Throws oidc-provider errors the endpoint renders.
 */
export function parseAuthorizationDetails(raw: unknown, api: TenantApi | undefined): AuthorizationDetail[] {
  if (typeof raw !== 'string') throw invalid('authorization_details must be a single JSON array');
  if (raw.length > AUTHORIZATION_DETAILS_LIMITS.maxLength) {
    throw invalid(`authorization_details must be at most ${AUTHORIZATION_DETAILS_LIMITS.maxLength} characters`);
  }
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw invalid('authorization_details must be valid JSON: an array of objects with a "type"');
  }
  // RFC 9396 §2: a JSON array of objects.
  if (!Array.isArray(value) || value.length === 0) throw invalid('authorization_details must be a non-empty JSON array of objects');
  if (value.length > AUTHORIZATION_DETAILS_LIMITS.maxEntries) {
    throw invalid(`authorization_details may hold at most ${AUTHORIZATION_DETAILS_LIMITS.maxEntries} objects`);
  }
  if (depthOf(value) > AUTHORIZATION_DETAILS_LIMITS.maxDepth + 1) {
    throw invalid(`authorization_details may nest at most ${AUTHORIZATION_DETAILS_LIMITS.maxDepth} levels deep`);
  }
  const registered = new Set((api?.authorization_details ?? []).map((t) => t.type));
  return value.map((entry: unknown, i) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw invalid(`authorization_details[${i}] must be an object`);
    }
    const type = (entry as Record<string, unknown>).type;
    // RFC 9396 §2: `type` is REQUIRED, a string.
    if (typeof type !== 'string' || type === '' || type.length > AUTHORIZATION_DETAILS_LIMITS.maxTypeLength) {
      throw invalid(`authorization_details[${i}].type must be a non-empty string`);
    }
    if (!api) throw invalid('authorization_details need an audience: their types are registered on an API');
    if (!registered.has(type)) {
      throw invalid(`authorization_details[${i}].type "${type.slice(0, 100)}" is not registered on the API ${api.identifier}`);
    }
    return entry as AuthorizationDetail;
  });
}

/**
 * The prefix of types in Auth0's own schema, the one the Guardian app shows: one object with a
 * human-readable `instruction` and `properties` of `{display, name, display_order, value}`
 * ("Configure Rich Authorization Requests", section "Auth0 Guardian app").
 */
export const AUTH0_DETAILS_SCHEMA = 'urn:auth0:schemas:authorization-details:v1:';

/**
 * What the channel can show. Auth0: "If you're using the Auth0 Guardian app, then the
 * authorization_details parameter value must have only one object in the array, and that object must
 * conform to" Auth0's schema; other channels (the email channel's consent page) take any registered type.
 */
export function checkDetailsForChannel(details: readonly AuthorizationDetail[], channel: NotificationChannel): void {
  if (channel === 'guardian-push') {
    if (details.length !== 1) throw invalid('Guardian push shows exactly one authorization_details object');
    const [detail] = details;
    if (detail && !detail.type.startsWith(AUTH0_DETAILS_SCHEMA)) {
      throw invalid(`Guardian push shows only authorization_details of Auth0's schema (type ${AUTH0_DETAILS_SCHEMA}<name>)`);
    }
  }
  for (const [i, detail] of details.entries()) {
    if (!detail.type.startsWith(AUTH0_DETAILS_SCHEMA)) continue;
    if (typeof detail.instruction !== 'string' || detail.instruction === '') {
      throw invalid(`authorization_details[${i}].instruction must be a human-readable message (Auth0's schema)`);
    }
    const properties = detail.properties;
    if (typeof properties !== 'object' || properties === null || Array.isArray(properties)) {
      throw invalid(`authorization_details[${i}].properties must be an object (Auth0's schema)`);
    }
    for (const [key, property] of Object.entries(properties)) {
      const p = property as Record<string, unknown> | null;
      if (typeof p !== 'object' || p === null || Array.isArray(p) || typeof p.name !== 'string' || !('value' in p)) {
        throw invalid(`authorization_details[${i}].properties.${key.slice(0, 50)} must be {display, name, display_order, value}`);
      }
    }
  }
}

/** The raw parameter of a `/bc-authorize` request, when sent (kept by `extraParams`). */
export function requestedAuthorizationDetails(ctx: KoaContextWithOIDC): unknown {
  const value = ctx.oidc.params?.authorization_details;
  return value === undefined || value === '' ? undefined : value;
}
