/**
 * The console's second guard. Services promise never to put a secret or a raw
 * token in a span (sandbox/telemetry/hops.ts), but spans arrive from anything
 * that can reach the receiver, and a bug upstream must not put a bearer token
 * on a screen. Every string is cleaned here, once, when a span is received.
 */

export const REDACTED = '[redacted]';

/** A JWS/JWT (RFC 7515 §7.1 compact form): its header always starts `eyJ` (base64url of `{"`); an unsecured JWT has an empty signature. */
const JWT = /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/g;
/** Any other three long base64url segments joined by dots: a token in some other encoding, or a JWE's first three parts. */
const DOTTED_SEGMENTS = /[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]{8,}){2,}/g;
/** An HTTP credential as it appears in an `Authorization` header (RFC 6750 §2.1, RFC 7617 §2, RFC 9449 §7.1). */
const AUTH_SCHEME = /\b(Bearer|Basic|DPoP|Digest|Token)(\s+)[A-Za-z0-9._~+/=-]{6,}/gi;
/** `name=value` or `"name": "value"` for names that carry credentials, in query strings, form bodies and JSON text. */
const SECRET_PAIR =
  /\b(client_secret|client_assertion|assertion|secret|password|passwd|api[_-]?key|access_token|refresh_token|id_token|subject_token|code_verifier|code|auth_req_id|x-control-secret|authorization)("?\s*[:=]\s*"?)([^\s&"',;}]+)/gi;
/** A Google API key (the real-Gemini mode's `GOOGLE_API_KEY`). */
const GOOGLE_API_KEY = /AIza[0-9A-Za-z_-]{30,}/g;

/** Attribute names whose value is a credential whatever it looks like (`http.request.header.authorization`, …). */
const SECRET_KEY = /(^|[._-])(authorization(?!_details)|proxy-authorization|cookie|set-cookie|password|passwd|secret|client_secret|api[_-]?key|x-api-key|x-control-secret|credentials?|private[_-]?key|access_token|refresh_token|id_token|assertion)($|[._-])/i;

/** The string with every credential-looking part replaced by `[redacted]`. */
export function redactText(value: string): string {
  return value
    .replace(JWT, REDACTED)
    .replace(DOTTED_SEGMENTS, REDACTED)
    .replace(AUTH_SCHEME, (_m, scheme: string, space: string) => `${scheme}${space}${REDACTED}`)
    .replace(SECRET_PAIR, (match, name: string, separator: string, secret: string) =>
      secret === REDACTED || (name.toLowerCase() === 'code' && !separator.includes('=')) ? match : `${name}${separator}${REDACTED}`,
    )
    .replace(GOOGLE_API_KEY, REDACTED);
}

/** Whether an attribute (or claim) of this name holds a credential, so its value is never kept. */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}
