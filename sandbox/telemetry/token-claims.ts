import { decodeJwt, decodeProtectedHeader, type JWTPayload, type ProtectedHeaderParameters } from 'jose';

/**
 * What a token says, fit for a span attribute (`hop.token.<name>`, see
 * hops.ts): its header's `alg`, `kid`, `typ` and the claims that explain an
 * authorization decision. Everything else is left out, the signature and the
 * token itself always: an attribute is shown in the flow console and sent to
 * any collector, so a token that could be replayed must never reach one.
 */

const HEADER_FIELDS = ['alg', 'kid', 'typ'] as const;
const CLAIM_FIELDS = [
  'iss',
  'sub',
  'aud',
  'azp',
  'client_id',
  'scope',
  'gty',
  'exp',
  'iat',
  'nbf',
  'auth_time',
  'authorization_details',
] as const;

export interface TokenDescription {
  header: Partial<Record<(typeof HEADER_FIELDS)[number], string>>;
  claims: Partial<Record<(typeof CLAIM_FIELDS)[number], unknown>>;
}

/** The allowed header fields and claims of a verified token, as the JSON string an attribute holds. */
export function describeClaims(header: Partial<ProtectedHeaderParameters>, claims: JWTPayload): string {
  const description: TokenDescription = { header: {}, claims: {} };
  for (const field of HEADER_FIELDS) {
    const value = header[field];
    if (typeof value === 'string') description.header[field] = value;
  }
  for (const field of CLAIM_FIELDS) {
    if (claims[field] !== undefined) description.claims[field] = claims[field];
  }
  return JSON.stringify(description);
}

/**
 * The same for a raw JWT, decoded without verification (the agent describes tokens it was handed,
 * whose signature is the receiver's business); undefined for anything that is not a JWT.
 */
export function describeToken(token: string): string | undefined {
  try {
    return describeClaims(decodeProtectedHeader(token), decodeJwt(token));
  } catch {
    return undefined;
  }
}
