import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The tenant file: a readable declaration of the local tenant's APIs,
 * applications and users, shaped after what an Auth0 tenant holds.
 * It comes from disk (possibly a user's own copy), so it is validated
 * as untrusted input and every problem is reported with its path.
 */

export const DEFAULT_TENANT_FILE = fileURLToPath(new URL('./tenant.json', import.meta.url));

export const CIBA_GRANT_TYPE = 'urn:openid:params:grant-type:ciba';
export type GrantType = 'client_credentials' | typeof CIBA_GRANT_TYPE;
export type ExpiryError = 'expired_token' | 'access_denied';
export type PolicyAction = 'approve' | 'deny' | 'ignore';

/** Placeholders a tenant file may use in identifiers and URLs. */
export const TENANT_VARIABLES = ['ISSUER', 'HR_AGENT_URL'] as const;
export type TenantVariable = (typeof TENANT_VARIABLES)[number];
export type TenantVariables = Partial<Record<TenantVariable, string>>;

export interface TenantSettings {
  /** Accepted `/bc-authorize` requests per user per rolling minute; 0 turns the limit off. */
  cibaRateLimitPerUserPerMinute: number;
  /** `/bc-authorize` calls accepted from one IP address per rolling minute (Auth0: 500); 0 turns the limit off. */
  cibaRateLimitPerIpPerMinute: number;
  /** Seconds a CIBA request lives when the client sends no `requested_expiry` (Auth0: 300). */
  cibaDefaultExpiry: number;
  /** Seconds a client must wait between polls, sent as `interval` (Auth0: 5). */
  cibaInterval: number;
  /** What a poll answers after expiry: CIBA's `expired_token`, or Auth0's `access_denied`. */
  expiryError: ExpiryError;
  /** Seconds an access token lives (Auth0's default: 86400). */
  accessTokenLifetime: number;
}

export const DEFAULT_SETTINGS: TenantSettings = {
  cibaRateLimitPerUserPerMinute: 5,
  cibaRateLimitPerIpPerMinute: 500,
  cibaDefaultExpiry: 300,
  cibaInterval: 5,
  expiryError: 'access_denied',
  accessTokenLifetime: 86_400,
};

export interface TenantScope {
  value: string;
  description: string;
}

export interface TenantApi {
  name: string;
  /** The audience; may contain `{{ISSUER}}`. */
  identifier: string;
  scopes: TenantScope[];
  /**
   * Auth0's resource server `authorization_details`: the RFC 9396 types a client may send in
   * `authorization_details` for this API ("Configure Rich Authorization Requests"). None by default.
   */
  authorization_details?: { type: string }[];
}

/** Auth0's `async_approval_notification_channels` values: how a CIBA request reaches the user. */
export type NotificationChannel = 'guardian-push' | 'email';
export const NOTIFICATION_CHANNELS: readonly NotificationChannel[] = ['guardian-push', 'email'];

export interface ClientGrant {
  audience: string;
  scope: string[];
}

export interface CibaRegistration {
  delivery_mode: 'poll' | 'ping';
  /** Required for ping; may contain `{{HR_AGENT_URL}}`, resolved when a notification is sent. */
  client_notification_endpoint?: string;
  /** APIs this application may name as `audience` in `/bc-authorize`. */
  audiences: string[];
}

export interface TenantApplication {
  name: string;
  client_id: string;
  client_secret: string;
  grant_types: GrantType[];
  ciba?: CibaRegistration;
  client_grants: ClientGrant[];
  /**
   * Auth0's "Allowed Origins (CORS)" and "Allowed Web Origins": browser origins (`https://app.example`)
   * whose scripts may call the token and /bc-authorize endpoints as this application. None by default.
   */
  allowed_origins?: string[];
  web_origins?: string[];
  /**
   * Auth0's `async_approval_notification_channels`: the CIBA channels this application may use,
   * `guardian-push` (requested_expiry up to 300 s) and `email` (301 to 259200 s). Default `["guardian-push"]`.
   */
  async_approval_notification_channels?: NotificationChannel[];
}

export interface GuardianPolicy {
  action: PolicyAction;
  afterMs: number;
}

export interface TenantUser {
  user_id: string;
  email: string;
  email_verified: boolean;
  name: string;
  given_name?: string;
  family_name?: string;
  created_at: string;
  guardian: { push: boolean; policy?: GuardianPolicy };
}

export interface TenantFile {
  name: string;
  settings: TenantSettings;
  apis: TenantApi[];
  applications: TenantApplication[];
  users: TenantUser[];
}

export class TenantFileError extends Error {
  readonly code = 'invalid_tenant_file';
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`Invalid tenant file ${source}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'TenantFileError';
  }
}

export function loadTenantFile(path: string = DEFAULT_TENANT_FILE): TenantFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new TenantFileError(path, [`cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new TenantFileError(path, [`is not valid JSON: ${(error as Error).message}`]);
  }
  return parseTenantFile(json, path);
}

const PLACEHOLDER = /\{\{([^{}]*)\}\}/g;

/** Replaces `{{NAME}}` placeholders; throws when a needed value is not known yet. */
export function renderTemplate(template: string, vars: TenantVariables): string {
  return template.replace(PLACEHOLDER, (_whole, name: string) => {
    const value = vars[name as TenantVariable];
    if (value === undefined) throw new Error(`the tenant variable ${name} has no value`);
    return value;
  });
}

/** Removes a trailing slash so `{{HR_AGENT_URL}}/path` never doubles it. */
export function normalizeBaseUrl(url: string): string {
  return url.replace(/\/+$/, '');
}

const SAMPLE_VARS: Required<TenantVariables> = { ISSUER: 'https://tenant.example/', HR_AGENT_URL: 'https://agent.example' };
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/; // RFC 6749 §3.3 scope-token
const USER_ID = /^[A-Za-z0-9|_.@:+-]{1,200}$/;
const EMAIL = /^[^\s@<>"]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,}$/;

type Json = Record<string, unknown>;

/** Checks shape and cross-references; the result is safe to use as typed. */
export function parseTenantFile(input: unknown, source = 'tenant file'): TenantFile {
  const problems: string[] = [];
  const v = new Reader(problems);

  const root = v.object(input, '(root)');
  if (!root) throw new TenantFileError(source, problems);
  v.onlyKeys(root, '(root)', ['name', 'settings', 'apis', 'applications', 'users']);

  const name = v.text(root.name, 'name', 200) ?? 'Local tenant';
  const settings = parseSettings(v, root.settings);

  const apis: TenantApi[] = [];
  v.array(root.apis, 'apis').forEach((raw, i) => {
    const path = `apis[${i}]`;
    const api = v.object(raw, path);
    if (!api) return;
    v.onlyKeys(api, path, ['name', 'identifier', 'scopes', 'authorization_details']);
    const apiName = v.text(api.name, `${path}.name`, 200);
    const identifier = v.template(api.identifier, `${path}.identifier`, true);
    const scopes: TenantScope[] = [];
    v.array(api.scopes, `${path}.scopes`).forEach((rawScope, j) => {
      const sp = `${path}.scopes[${j}]`;
      const scope = v.object(rawScope, sp);
      if (!scope) return;
      v.onlyKeys(scope, sp, ['value', 'description']);
      const value = v.text(scope.value, `${sp}.value`, 200);
      if (value !== undefined && !SCOPE_TOKEN.test(value)) problems.push(`${sp}.value "${value}" is not a valid scope token`);
      const description = v.text(scope.description, `${sp}.description`, 500) ?? '';
      if (value !== undefined) scopes.push({ value, description });
    });
    const detailTypes =
      api.authorization_details === undefined
        ? undefined
        : v.array(api.authorization_details, `${path}.authorization_details`).flatMap((rawType, j) => {
            const tp = `${path}.authorization_details[${j}]`;
            const entry = v.object(rawType, tp);
            if (!entry) return [];
            v.onlyKeys(entry, tp, ['type']);
            const type = v.text(entry.type, `${tp}.type`, 255);
            return type === undefined ? [] : [{ type }];
          });
    if (detailTypes) v.unique(detailTypes.map((t) => t.type), `${path}.authorization_details[].type`);
    if (apiName !== undefined && identifier !== undefined) {
      apis.push({ name: apiName, identifier, scopes, ...(detailTypes ? { authorization_details: detailTypes } : {}) });
    }
  });
  v.unique(apis.map((a) => a.identifier), 'apis[].identifier');
  const apiByIdentifier = new Map(apis.map((a) => [a.identifier, a]));

  const applications: TenantApplication[] = [];
  v.array(root.applications, 'applications').forEach((raw, i) => {
    const path = `applications[${i}]`;
    const app = v.object(raw, path);
    if (!app) return;
    v.onlyKeys(app, path, [
      'name',
      'client_id',
      'client_secret',
      'grant_types',
      'ciba',
      'client_grants',
      'allowed_origins',
      'web_origins',
      'async_approval_notification_channels',
    ]);
    let channels: NotificationChannel[] | undefined;
    if (app.async_approval_notification_channels !== undefined) {
      const cp = `${path}.async_approval_notification_channels`;
      channels = v.array(app.async_approval_notification_channels, cp).flatMap((c, k) => {
        if (c === 'guardian-push' || c === 'email') return [c];
        problems.push(`${cp}[${k}] must be "guardian-push" or "email"`);
        return [];
      });
      // Auth0's Management API asks for at least one channel (minItems 1).
      if (channels.length === 0) problems.push(`${cp} must name at least one channel`);
      v.unique(channels, cp);
    }
    const origins = (field: 'allowed_origins' | 'web_origins'): string[] | undefined =>
      app[field] === undefined
        ? undefined
        : v.array(app[field], `${path}.${field}`).flatMap((raw, k) => {
            const value = v.text(raw, `${path}.${field}[${k}]`, 300);
            if (value === undefined) return [];
            const url = URL.parse(value);
            // An exact origin, as browsers send it in Origin: scheme, host and port, no path or wildcard.
            if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin !== value || url.hostname.includes('*')) {
              problems.push(`${path}.${field}[${k}] must be an origin such as https://app.example (no path, no trailing slash, no wildcard)`);
              return [];
            }
            return [value];
          });
    const allowedOrigins = origins('allowed_origins');
    const webOrigins = origins('web_origins');
    const appName = v.text(app.name, `${path}.name`, 200);
    const clientId = v.text(app.client_id, `${path}.client_id`, 200);
    if (clientId !== undefined && !/^[A-Za-z0-9._~-]+$/.test(clientId)) {
      problems.push(`${path}.client_id may only use letters, digits and ._~-`);
    }
    const clientSecret = v.text(app.client_secret, `${path}.client_secret`, 500);
    if (clientSecret !== undefined && clientSecret.length < 16) problems.push(`${path}.client_secret must be at least 16 characters`);
    const grantTypes: GrantType[] = [];
    v.array(app.grant_types, `${path}.grant_types`).forEach((g, j) => {
      if (g === 'client_credentials' || g === CIBA_GRANT_TYPE) grantTypes.push(g);
      else problems.push(`${path}.grant_types[${j}] must be "client_credentials" or "${CIBA_GRANT_TYPE}"`);
    });

    const clientGrants: ClientGrant[] = [];
    v.array(app.client_grants ?? [], `${path}.client_grants`).forEach((rawGrant, j) => {
      const gp = `${path}.client_grants[${j}]`;
      const grant = v.object(rawGrant, gp);
      if (!grant) return;
      v.onlyKeys(grant, gp, ['audience', 'scope']);
      const audience = v.template(grant.audience, `${gp}.audience`, true);
      const api = audience === undefined ? undefined : apiByIdentifier.get(audience);
      if (audience !== undefined && !api) problems.push(`${gp}.audience "${audience}" is not one of the declared apis`);
      const scope = v.array(grant.scope, `${gp}.scope`).flatMap((s, k) => {
        const value = v.text(s, `${gp}.scope[${k}]`, 200);
        if (value !== undefined && api && !api.scopes.some((x) => x.value === value)) {
          problems.push(`${gp}.scope[${k}] "${value}" is not a scope of ${api.identifier}`);
        }
        return value === undefined ? [] : [value];
      });
      if (audience !== undefined) clientGrants.push({ audience, scope });
    });
    if (clientGrants.length > 0 && !grantTypes.includes('client_credentials')) {
      problems.push(`${path}.client_grants need the "client_credentials" grant type`);
    }

    let ciba: CibaRegistration | undefined;
    if (app.ciba !== undefined) {
      const cp = `${path}.ciba`;
      const rawCiba = v.object(app.ciba, cp);
      if (rawCiba) {
        v.onlyKeys(rawCiba, cp, ['delivery_mode', 'client_notification_endpoint', 'audiences']);
        const mode = rawCiba.delivery_mode;
        if (mode !== 'poll' && mode !== 'ping') problems.push(`${cp}.delivery_mode must be "poll" or "ping"`);
        const endpoint =
          rawCiba.client_notification_endpoint === undefined
            ? undefined
            : v.template(rawCiba.client_notification_endpoint, `${cp}.client_notification_endpoint`, true);
        if (mode === 'ping' && rawCiba.client_notification_endpoint === undefined) {
          problems.push(`${cp}.client_notification_endpoint is required for ping delivery`);
        }
        const audiences = v.array(rawCiba.audiences ?? [], `${cp}.audiences`).flatMap((a, k) => {
          const audience = v.template(a, `${cp}.audiences[${k}]`, true);
          if (audience !== undefined && !apiByIdentifier.has(audience)) {
            problems.push(`${cp}.audiences[${k}] "${audience}" is not one of the declared apis`);
          }
          return audience === undefined ? [] : [audience];
        });
        if (mode === 'poll' || mode === 'ping') {
          ciba = { delivery_mode: mode, audiences, ...(endpoint === undefined ? {} : { client_notification_endpoint: endpoint }) };
        }
      }
    }
    if (grantTypes.includes(CIBA_GRANT_TYPE) !== (app.ciba !== undefined)) {
      problems.push(`${path} needs a "ciba" block exactly when its grant_types include ${CIBA_GRANT_TYPE}`);
    }

    if (appName !== undefined && clientId !== undefined && clientSecret !== undefined) {
      applications.push({
        name: appName,
        client_id: clientId,
        client_secret: clientSecret,
        grant_types: grantTypes,
        client_grants: clientGrants,
        ...(ciba ? { ciba } : {}),
        ...(allowedOrigins ? { allowed_origins: allowedOrigins } : {}),
        ...(webOrigins ? { web_origins: webOrigins } : {}),
        ...(channels ? { async_approval_notification_channels: channels } : {}),
      });
    }
  });
  v.unique(applications.map((a) => a.client_id), 'applications[].client_id');

  const users: TenantUser[] = [];
  v.array(root.users, 'users').forEach((raw, i) => {
    const path = `users[${i}]`;
    const user = v.object(raw, path);
    if (!user) return;
    v.onlyKeys(user, path, ['user_id', 'email', 'email_verified', 'name', 'given_name', 'family_name', 'created_at', 'guardian']);
    const userId = v.text(user.user_id, `${path}.user_id`, 200);
    if (userId !== undefined && !USER_ID.test(userId)) problems.push(`${path}.user_id "${userId}" has characters a user id cannot have`);
    const email = v.text(user.email, `${path}.email`, 254);
    if (email !== undefined && !EMAIL.test(email)) problems.push(`${path}.email "${email}" is not an email address`);
    const userName = v.text(user.name, `${path}.name`, 200);
    const given = user.given_name === undefined ? undefined : v.text(user.given_name, `${path}.given_name`, 200);
    const family = user.family_name === undefined ? undefined : v.text(user.family_name, `${path}.family_name`, 200);
    let emailVerified = true;
    if (user.email_verified !== undefined) {
      if (typeof user.email_verified === 'boolean') emailVerified = user.email_verified;
      else problems.push(`${path}.email_verified must be true or false`);
    }
    let createdAt = '2024-01-15T09:00:00.000Z';
    if (user.created_at !== undefined) {
      const text = v.text(user.created_at, `${path}.created_at`, 40);
      if (text !== undefined && Number.isNaN(Date.parse(text))) problems.push(`${path}.created_at must be an ISO date`);
      else if (text !== undefined) createdAt = new Date(text).toISOString();
    }
    const guardian = parseGuardian(v, user.guardian, `${path}.guardian`);
    if (userId !== undefined && email !== undefined && userName !== undefined && guardian) {
      users.push({
        user_id: userId,
        email,
        email_verified: emailVerified,
        name: userName,
        ...(given === undefined ? {} : { given_name: given }),
        ...(family === undefined ? {} : { family_name: family }),
        created_at: createdAt,
        guardian,
      });
    }
  });
  v.unique(users.map((u) => u.user_id), 'users[].user_id');
  v.unique(users.map((u) => u.email.toLowerCase()), 'users[].email');

  if (problems.length > 0) throw new TenantFileError(source, problems);
  return { name, settings, apis, applications, users };
}

function parseSettings(v: Reader, raw: unknown): TenantSettings {
  if (raw === undefined) return { ...DEFAULT_SETTINGS };
  const settings = v.object(raw, 'settings');
  if (!settings) return { ...DEFAULT_SETTINGS };
  v.onlyKeys(settings, 'settings', Object.keys(DEFAULT_SETTINGS));
  return validateSettings({ ...DEFAULT_SETTINGS, ...settings }, v.problems, 'settings');
}

/** Validates a full settings object (also used for programmatic overrides). */
export function validateSettings(raw: Record<string, unknown>, problems: string[], path: string): TenantSettings {
  const int = (key: keyof TenantSettings, min: number, max: number): number => {
    const value = raw[key];
    if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return value;
    problems.push(`${path}.${key} must be a whole number from ${min} to ${max}`);
    return DEFAULT_SETTINGS[key] as number;
  };
  const expiryError = raw.expiryError;
  if (expiryError !== 'expired_token' && expiryError !== 'access_denied') {
    problems.push(`${path}.expiryError must be "expired_token" or "access_denied"`);
  }
  return {
    cibaRateLimitPerUserPerMinute: int('cibaRateLimitPerUserPerMinute', 0, 10_000),
    cibaRateLimitPerIpPerMinute: int('cibaRateLimitPerIpPerMinute', 0, 1_000_000),
    cibaDefaultExpiry: int('cibaDefaultExpiry', 1, 300),
    cibaInterval: int('cibaInterval', 1, 60),
    expiryError: expiryError === 'access_denied' ? 'access_denied' : 'expired_token',
    // Below Auth0's floor of 60 s on purpose: expired-token tests need tokens that expire in a second.
    accessTokenLifetime: int('accessTokenLifetime', 1, 2_592_000),
  };
}

function parseGuardian(v: Reader, raw: unknown, path: string): TenantUser['guardian'] | undefined {
  const guardian = v.object(raw, path);
  if (!guardian) return undefined;
  v.onlyKeys(guardian, path, ['push', 'policy']);
  if (typeof guardian.push !== 'boolean') {
    v.problems.push(`${path}.push must be true or false`);
    return undefined;
  }
  if (guardian.policy === undefined) return { push: guardian.push };
  const policy = v.object(guardian.policy, `${path}.policy`);
  if (!policy) return undefined;
  v.onlyKeys(policy, `${path}.policy`, ['action', 'afterMs']);
  const { action, afterMs = 0 } = policy;
  if (action !== 'approve' && action !== 'deny' && action !== 'ignore') {
    v.problems.push(`${path}.policy.action must be "approve", "deny" or "ignore"`);
    return undefined;
  }
  if (typeof afterMs !== 'number' || !Number.isInteger(afterMs) || afterMs < 0 || afterMs > 3_600_000) {
    v.problems.push(`${path}.policy.afterMs must be whole milliseconds from 0 to 3600000`);
    return undefined;
  }
  if (!guardian.push) v.problems.push(`${path}.policy needs push enrolment (push: true)`);
  return { push: guardian.push, policy: { action, afterMs } };
}

class Reader {
  constructor(readonly problems: string[]) {}

  object(value: unknown, path: string): Json | undefined {
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Json;
    this.problems.push(`${path} must be an object`);
    return undefined;
  }

  array(value: unknown, path: string): unknown[] {
    if (Array.isArray(value)) return value;
    this.problems.push(`${path} must be an array`);
    return [];
  }

  text(value: unknown, path: string, max: number): string | undefined {
    if (typeof value === 'string' && value.trim() !== '' && value.length <= max) return value;
    this.problems.push(`${path} must be a non-empty string of at most ${max} characters`);
    return undefined;
  }

  /** A string that may hold known placeholders; when `url`, it must be an absolute URL once filled in. */
  template(value: unknown, path: string, url: boolean): string | undefined {
    const text = this.text(value, path, 2000);
    if (text === undefined) return undefined;
    for (const match of text.matchAll(PLACEHOLDER)) {
      if (!(TENANT_VARIABLES as readonly string[]).includes(match[1] ?? '')) {
        this.problems.push(`${path} uses the unknown placeholder {{${match[1]}}} (known: ${TENANT_VARIABLES.join(', ')})`);
        return undefined;
      }
    }
    if (url && !URL.canParse(renderTemplate(text, SAMPLE_VARS))) {
      this.problems.push(`${path} "${text}" is not an absolute URL`);
      return undefined;
    }
    return text;
  }

  onlyKeys(value: Json, path: string, allowed: readonly string[]): void {
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) this.problems.push(`${path} has the unknown field "${key}" (allowed: ${allowed.join(', ')})`);
    }
  }

  unique(values: string[], path: string): void {
    const seen = new Set<string>();
    for (const value of values) {
      if (seen.has(value)) this.problems.push(`${path} "${value}" appears more than once`);
      seen.add(value);
    }
  }
}
