import { allowInsecureRequests, discovery, type Configuration } from 'openid-client';
import { LOCAL_TENANT_DEFAULTS } from '../../sandbox/config.ts';
import { createTenant, type TenantHandle, type TenantOptions } from '../tenant.ts';

/** What the tests need to act as the tenant's applications: openid-client configs and raw OAuth requests. */

export const A2A = LOCAL_TENANT_DEFAULTS.a2aClient;
export const HR_AGENT = LOCAL_TENANT_DEFAULTS.hrAgentClient;
export const HR_AGENT_PING = LOCAL_TENANT_DEFAULTS.hrAgentPingClient;
export const CIBA_GRANT = 'urn:openid:params:grant-type:ciba';

export interface RunningTenant {
  tenant: TenantHandle;
  issuer: string;
  warnings: string[];
}

/** A tenant on 127.0.0.1:0 with a one-second interval and no rate limit unless overridden. */
export async function startTenant(options: TenantOptions = {}): Promise<RunningTenant> {
  const warnings: string[] = [];
  const tenant = createTenant({
    log: (line) => warnings.push(line),
    ...options,
    settings: { cibaInterval: 1, cibaRateLimitPerUserPerMinute: 0, ...options.settings },
  });
  const issuer = await tenant.listen(0, '127.0.0.1');
  return { tenant, issuer, warnings };
}

export function relyingParty(issuer: string, client: { clientId: string; clientSecret: string }): Promise<Configuration> {
  return discovery(new URL(issuer), client.clientId, client.clientSecret, undefined, { execute: [allowInsecureRequests] });
}

export function loginHint(issuer: string, sub: string): string {
  return JSON.stringify({ format: 'iss_sub', iss: issuer, sub });
}

export interface RawResponse {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

export async function postForm(
  issuer: string,
  path: string,
  params: Record<string, string | string[]>,
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  const body = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    for (const v of Array.isArray(value) ? value : [value]) body.append(key, v);
  }
  const response = await fetch(new URL(path, issuer), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers },
    body,
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> };
}

/** A valid `/bc-authorize` request for the HR Agent, with overrides. */
export function bcAuthorize(
  issuer: string,
  overrides: Record<string, string | undefined> = {},
  client: { clientId: string; clientSecret: string } = HR_AGENT,
): Promise<RawResponse> {
  const params: Record<string, string> = {
    client_id: client.clientId,
    client_secret: client.clientSecret,
    scope: 'openid read:employee',
    audience: 'https://staff0/api',
    login_hint: loginHint(issuer, 'auth0|jdoe'),
    binding_message: 'Check employment 42',
  };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) delete params[key];
    else params[key] = value;
  }
  return postForm(issuer, '/bc-authorize', params);
}

export function pollToken(
  issuer: string,
  authReqId: string,
  client: { clientId: string; clientSecret: string } = HR_AGENT,
): Promise<RawResponse> {
  return postForm(issuer, '/oauth/token', {
    grant_type: CIBA_GRANT,
    client_id: client.clientId,
    client_secret: client.clientSecret,
    auth_req_id: authReqId,
  });
}

export async function control(
  issuer: string,
  path: string,
  init: { method?: 'GET' | 'POST'; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; headers: Headers; body: unknown }> {
  const response = await fetch(new URL(`control${path}`, issuer), {
    method: init.method ?? 'GET',
    headers: init.method === 'POST' ? { 'content-type': 'application/json', ...init.headers } : (init.headers ?? {}),
    ...(init.method === 'POST' ? { body: init.body ?? '{}' } : {}),
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON; keep the text
  }
  return { status: response.status, headers: response.headers, body };
}

export function decodeJwtPayload(jwt: string): Record<string, unknown> {
  const payload = jwt.split('.')[1] ?? '';
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
}
