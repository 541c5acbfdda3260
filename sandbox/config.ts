import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseEnv } from 'node:util';

/**
 * The one place that reads the environment. Every service's `main` calls
 * `loadConfig()` and hands the typed slices to its factory.
 */

export type IdentityBackend = 'local' | 'auth0';
export type CibaDeliveryMode = 'poll' | 'ping';

export interface ClientCredentials {
  clientId: string;
  clientSecret: string;
}

export interface SandboxConfig {
  host: string;
  ports: { agent: number; hrApi: number; tenant: number; mockGemini: number; flowConsole: number };
  urls: { agent: string; hrApi: string; tenant: string; mockGemini: string; flowConsole: string };
  identity: {
    backend: IdentityBackend;
    /** Issuer with Auth0's trailing slash, e.g. `https://staff0.us.auth0.com/`. */
    issuer: string;
    managementAudience: string;
    agentAudience: string;
    apiAudience: string;
    a2aClient: ClientCredentials;
    hrAgentClient: ClientCredentials;
  };
  /** Where services keep their state (see sandbox/storage/database.ts). */
  storage: {
    /** `DATABASE_URL`: a PostgreSQL server shared by every service; undefined: each its own PGlite folder under `stateDir`. */
    databaseUrl: string | undefined;
    /** `SANDBOX_STATE_DIR`, resolved: signing keys, the local CA and the PGlite folders (`db/<service>`). */
    stateDir: string;
    /** `AGENT_STATE`: the HR Agent keeps its work in the database (`database`) or in its memory only (`memory`). */
    agentState: 'database' | 'memory';
  };
  hrApi: {
    /** `HR_EMPLOYEES_FILE`: employee records replacing `hr-api/employees.json`. */
    employeesFile: string | undefined;
  };
  tenant: {
    /** A tenant file replacing the built-in one (local backend only). */
    file: string | undefined;
    /** Git-ignored folder for generated signing keys and the local CA. */
    stateDir: string;
    https: boolean;
  };
  gemini: {
    mode: 'mock' | 'google';
    apiKey: string;
    model: string;
    /** Base URL handed to @google/genai; undefined means Google's own. */
    baseUrl: string | undefined;
  };
  /** Test users for the scenario catalogue against a real tenant (`npm run scenarios` in auth0 mode). */
  scenarios: {
    employeeEmail: string | undefined;
    secondEmployeeEmail: string | undefined;
    formerEmployeeEmail: string | undefined;
    unknownEmail: string;
  };
  /** How the HR Agent treats the services it calls and the tasks it holds (README "Deadlines, retries and limits"). */
  agent: {
    /** Per service: each attempt's deadline and the retries of transient failures. */
    calls: Record<'identity' | 'hrApi' | 'model', { attemptTimeoutMs: number; retries: number }>;
    /** Finished tasks are forgotten after `maxAgeMs` or beyond `maxFinished`, oldest first. */
    retention: { maxAgeMs: number; maxFinished: number };
    /** Tasks running at once; a new message beyond it gets 503 with Retry-After. */
    maxActiveTasks: number;
    /** V8's old-space limit for the agent process (`--max-old-space-size`), so garbage is collected before it piles up. */
    maxHeapMb: number;
    /**
     * V8's young-generation semi-space for the agent process (`--max-semi-space-size`), in MiB; undefined leaves
     * V8's own (16 MiB on 64-bit). The default is `EMBEDDED_AGENT_SEMI_SPACE_MB` when the agent keeps its work in
     * its embedded database, and V8's own otherwise.
     */
    semiSpaceMb: number | undefined;
  };
  ciba: {
    deliveryMode: CibaDeliveryMode;
    /** Seconds; undefined lets the identity backend choose (Auth0: 300). */
    requestedExpiry: number | undefined;
  };
  /** Who may reach the services and where the agent may send (README "Security notes"). */
  security: {
    /** `SANDBOX_EXPOSE`: binding `SANDBOX_HOST` to a non-loopback address was asked for explicitly. */
    exposed: boolean;
    /** `SANDBOX_ALLOWED_HOSTS`: extra `Host` names every service answers to (`name` for any port, or `name:port`). */
    allowedHosts: string[];
    /** `SANDBOX_CONTROL_SECRET`: required by the control API and Guardian page when set; `npm run sandbox` makes one when exposed. */
    controlSecret: string | undefined;
    /** `PUSH_WEBHOOK_ALLOW_LOOPBACK` / `PUSH_WEBHOOK_ALLOW_PRIVATE`: address ranges push webhooks may use. */
    webhooks: { allowLoopback: boolean; allowPrivate: boolean };
    /** `TOKEN_CLOCK_TOLERANCE_SECONDS`: how far in the future a token's `iat`/`nbf` may be (agent and HR API). */
    clockToleranceSeconds: number;
  };
  /** Spans of every hop (README "Logs and traces"); read by sandbox/telemetry/setup.ts. */
  telemetry: {
    /** `OTEL_SDK_DISABLED=true`: no span leaves the process (hop log lines still print). */
    enabled: boolean;
    /** OTLP/HTTP JSON traces URL of the flow console: `${urls.flowConsole}/v1/traces`. */
    flowConsole: string;
    /**
     * A collector that gets the same spans (`OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`, or
     * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as is); undefined: the flow console only.
     */
    collector: { url: string; protocol: OtlpProtocol } | undefined;
  };
  /** What each service prints: one line per hop (README "Logs and traces"). */
  logging: {
    /** `LOG_FORMAT`: `pretty` lines for people, `json` (one object per line) for log pipelines. */
    format: LogFormat;
    /** `LOG_LEVEL`: `info` shows every hop, `warn` only retries and failures, `silent` nothing. */
    level: LogLevel;
    /** `LOG_COLOR`: colour pretty lines; `auto` when the output is a terminal (`npm run sandbox` passes its own). */
    colour: boolean | 'auto';
  };
}

export type OtlpProtocol = 'http/json';
export type LogFormat = 'pretty' | 'json';
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export class ConfigError extends Error {
  readonly code = 'invalid_config';
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Fixed, documented credentials of the local tenant's applications (see README). */
export const LOCAL_TENANT_DEFAULTS = {
  a2aClient: { clientId: 'a2a-client', clientSecret: 'a2a-client-local-secret' },
  hrAgentClient: { clientId: 'hr-agent', clientSecret: 'hr-agent-local-secret' },
  /** The same agent registered for CIBA ping delivery (CIBA §10.2). */
  hrAgentPingClient: { clientId: 'hr-agent-ping', clientSecret: 'hr-agent-ping-local-secret' },
  agentAudience: 'https://staff0/agent',
  apiAudience: 'https://staff0/api',
} as const;

/** Auth0's Management API: `<issuer>api/v2/` is both its token audience and its base URL. */
export function managementAudienceOf(issuer: string): string {
  return `${issuer}api/v2/`;
}

/** The longest `requested_expiry` Auth0 accepts: 72 hours, by email ("Email notifications with CIBA"). */
export const MAX_REQUESTED_EXPIRY = 259_200;

export const DEFAULT_PORTS = { agent: 10050, hrApi: 10051, tenant: 10052, mockGemini: 10053, flowConsole: 10054 } as const;
export const DEFAULT_GEMINI_MODEL = 'gemini-2.5-flash';
/** The HR Agent's documented defaults (README "Deadlines, retries and limits"). */
export const AGENT_DEFAULTS: SandboxConfig['agent'] = {
  calls: {
    identity: { attemptTimeoutMs: 10_000, retries: 3 },
    hrApi: { attemptTimeoutMs: 10_000, retries: 3 },
    model: { attemptTimeoutMs: 30_000, retries: 2 },
  },
  retention: { maxAgeMs: 3600_000, maxFinished: 1000 },
  maxActiveTasks: 2000,
  maxHeapMb: 256,
  semiSpaceMb: undefined,
};
/**
 * The agent's semi-space (MiB) when it keeps its work in its embedded database, as `npm run sandbox` runs it: its
 * main thread's young generation, its background threads keeping their own (background-thread.ts). With two malloc
 * arenas (services.ts), V8's 16 MiB took the agent's peak RSS at a thousand concurrent consents in poll mode to
 * 296–302 MiB, beside PGlite's WebAssembly memory and threads; 8 MiB read 284–285 MiB, and 2 MiB 277–282 MiB for
 * about 2 ms more of the agent's CPU per consent in ping mode (more young-generation collections; `npm run bench --
 * --only consents-ping-embedded,consents-poll-embedded`, scenarios/bench/HISTORY.md).
 */
export const EMBEDDED_AGENT_SEMI_SPACE_MB = 8;
/** Seconds a token's `iat`/`nbf` may lie ahead of this machine's clock (as express-oauth2-jwt-bearer's default). */
export const DEFAULT_CLOCK_TOLERANCE_SECONDS = 5;

/** `127.0.0.0/8`, `::1` and `localhost`: reachable from this machine only. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  return bare === 'localhost' || bare === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare);
}

export type Env = Record<string, string | undefined>;

/** Reads `.env` (if present) under the real environment, which wins. */
export function readEnv(cwd = process.cwd(), env: Env = process.env): Env {
  const file = resolve(cwd, '.env');
  const fromFile = existsSync(file) ? parseEnv(readFileSync(file, 'utf8')) : {};
  return { ...fromFile, ...env };
}

export function loadConfig(env: Env = readEnv()): SandboxConfig {
  const problems: string[] = [];
  const get = (name: string) => {
    const value = env[name]?.trim();
    return value === '' ? undefined : value;
  };
  const port = (name: string, fallback: number) => {
    const raw = get(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || n < 0 || n > 65535) {
      problems.push(`${name} must be a port number from 0 to 65535 (got "${raw}")`);
      return fallback;
    }
    return n;
  };
  const oneOf = <T extends string>(name: string, values: readonly T[], fallback: T): T => {
    const raw = get(name);
    if (raw === undefined) return fallback;
    if ((values as readonly string[]).includes(raw)) return raw as T;
    problems.push(`${name} must be one of ${values.join(', ')} (got "${raw}")`);
    return fallback;
  };

  const host = get('SANDBOX_HOST') ?? '127.0.0.1';
  const flag = (name: string, fallback: boolean) => oneOf(name, ['true', 'false'], fallback ? 'true' : 'false') === 'true';
  // Binding beyond loopback puts the control API, which approves consents, on the network: never by accident.
  const exposed = flag('SANDBOX_EXPOSE', false);
  if (!isLoopbackHost(host) && !exposed) {
    problems.push(
      `SANDBOX_HOST=${host} is not a loopback address: every service, the consent control API included, would be reachable from the network. Set SANDBOX_EXPOSE=true to allow it.`,
    );
  }
  const allowedHosts = (get('SANDBOX_ALLOWED_HOSTS') ?? '').split(',').map((h) => h.trim().toLowerCase()).filter(Boolean);
  for (const name of allowedHosts) {
    if (!/^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d{1,5})?$/.test(name)) {
      problems.push(`SANDBOX_ALLOWED_HOSTS must be comma-separated host names, each optionally with :port (got "${name}")`);
    }
  }
  const controlSecret = get('SANDBOX_CONTROL_SECRET');
  if (controlSecret !== undefined && !/^[A-Za-z0-9_-]{32,256}$/.test(controlSecret)) {
    problems.push('SANDBOX_CONTROL_SECRET must be 32 to 256 letters, digits, "-" or "_"');
  }
  const webhooks = {
    // A test's webhook receiver on 127.0.0.1 works locally; once exposed, loopback is someone else's machine's inside.
    allowLoopback: flag('PUSH_WEBHOOK_ALLOW_LOOPBACK', !exposed),
    allowPrivate: flag('PUSH_WEBHOOK_ALLOW_PRIVATE', false),
  };
  const toleranceRaw = get('TOKEN_CLOCK_TOLERANCE_SECONDS');
  let clockToleranceSeconds = DEFAULT_CLOCK_TOLERANCE_SECONDS;
  if (toleranceRaw !== undefined) {
    if (!/^\d+$/.test(toleranceRaw) || Number(toleranceRaw) > 300) {
      problems.push(`TOKEN_CLOCK_TOLERANCE_SECONDS must be whole seconds from 0 to 300 (got "${toleranceRaw}")`);
    } else {
      clockToleranceSeconds = Number(toleranceRaw);
    }
  }
  const ports = {
    agent: port('HR_AGENT_PORT', DEFAULT_PORTS.agent),
    hrApi: port('HR_API_PORT', DEFAULT_PORTS.hrApi),
    tenant: port('TENANT_PORT', DEFAULT_PORTS.tenant),
    mockGemini: port('MOCK_GEMINI_PORT', DEFAULT_PORTS.mockGemini),
    flowConsole: port('FLOW_CONSOLE_PORT', DEFAULT_PORTS.flowConsole),
  };
  const backend = oneOf<IdentityBackend>('IDENTITY_BACKEND', ['local', 'auth0'], 'local');
  const https = oneOf('TENANT_HTTPS', ['true', 'false'], 'false') === 'true';
  // Over HTTPS the tenant is named `localhost`, as the local CA's certificate and an
  // auth0-mode `HR_AUTH0_DOMAIN=localhost:<port>` both expect.
  const tenantOrigin = https ? `https://localhost:${ports.tenant}` : `http://${host}:${ports.tenant}`;
  const urls = {
    agent: get('HR_AGENT_URL') ?? `http://${host}:${ports.agent}`,
    hrApi: get('HR_API_URL') ?? `http://${host}:${ports.hrApi}`,
    tenant: tenantOrigin,
    mockGemini: `http://${host}:${ports.mockGemini}`,
    flowConsole: `http://${host}:${ports.flowConsole}`,
  };

  let issuer = `${urls.tenant}/`;
  const deliveryMode = oneOf<CibaDeliveryMode>('CIBA_DELIVERY_MODE', ['poll', 'ping'], 'poll');
  const localAgentClient =
    deliveryMode === 'ping' ? LOCAL_TENANT_DEFAULTS.hrAgentPingClient : LOCAL_TENANT_DEFAULTS.hrAgentClient;
  if (backend === 'auth0') {
    const required = [
      ['HR_AUTH0_DOMAIN', 'your tenant domain, e.g. staff0.us.auth0.com'],
      ['A2A_CLIENT_AUTH0_CLIENT_ID', 'the client id of the "A2A Client" application'],
      ['A2A_CLIENT_AUTH0_CLIENT_SECRET', 'the client secret of the "A2A Client" application'],
      ['HR_AGENT_AUTH0_CLIENT_ID', 'the client id of the "HR Agent" application'],
      ['HR_AGENT_AUTH0_CLIENT_SECRET', 'the client secret of the "HR Agent" application'],
    ] as const;
    for (const [name, what] of required) {
      if (get(name) === undefined) problems.push(`${name} is required when IDENTITY_BACKEND=auth0: ${what}`);
    }
    const domain = get('HR_AUTH0_DOMAIN');
    if (domain !== undefined) {
      const bare = domain.replace(/^https:\/\//, '').replace(/\/+$/, '');
      if (!/^[a-z0-9.-]+(:\d{1,5})?$/i.test(bare)) {
        problems.push(`HR_AUTH0_DOMAIN must be a host name such as staff0.us.auth0.com (got "${domain}")`);
      }
      issuer = `https://${bare}/`;
    }
    // Auth0 delivers CIBA results by polling only; ping is the local tenant's extension.
    if (deliveryMode === 'ping') {
      problems.push(
        'CIBA_DELIVERY_MODE=ping is a local-tenant extension: Auth0 delivers CIBA results by poll only; ' +
          'unset CIBA_DELIVERY_MODE or set it to poll when IDENTITY_BACKEND=auth0',
      );
    }
  }
  // Auth0's Management API audience is the tenant's canonical domain even when HR_AUTH0_DOMAIN is a custom
  // domain ("Configure custom domains": the Management API is not served on a custom domain).
  let managementAudience = managementAudienceOf(issuer);
  const managementDomain = get('HR_AUTH0_MANAGEMENT_DOMAIN');
  if (managementDomain !== undefined) {
    const bare = managementDomain.replace(/^https:\/\//, '').replace(/\/+$/, '');
    if (!/^[a-z0-9.-]+(:\d{1,5})?$/i.test(bare)) {
      problems.push(`HR_AUTH0_MANAGEMENT_DOMAIN must be a host name such as staff0.us.auth0.com (got "${managementDomain}")`);
    } else if (backend !== 'auth0') {
      problems.push('HR_AUTH0_MANAGEMENT_DOMAIN applies to IDENTITY_BACKEND=auth0 only');
    } else {
      managementAudience = managementAudienceOf(`https://${bare}/`);
    }
  }
  // Locally the tenant's documented credentials are the defaults; the same variables override them.
  const a2aClient: ClientCredentials = {
    clientId: get('A2A_CLIENT_AUTH0_CLIENT_ID') ?? LOCAL_TENANT_DEFAULTS.a2aClient.clientId,
    clientSecret: get('A2A_CLIENT_AUTH0_CLIENT_SECRET') ?? LOCAL_TENANT_DEFAULTS.a2aClient.clientSecret,
  };
  const hrAgentClient: ClientCredentials = {
    clientId: get('HR_AGENT_AUTH0_CLIENT_ID') ?? localAgentClient.clientId,
    clientSecret: get('HR_AGENT_AUTH0_CLIENT_SECRET') ?? localAgentClient.clientSecret,
  };

  const apiKey = get('GOOGLE_API_KEY') ?? '';
  const geminiMode = apiKey === '' || apiKey === 'mock' ? 'mock' : 'google';

  const expiryRaw = get('CIBA_REQUESTED_EXPIRY');
  let requestedExpiry: number | undefined;
  if (expiryRaw !== undefined) {
    requestedExpiry = Number(expiryRaw);
    // Auth0: up to 300 s by Guardian push, 301–259200 s (72 h) by email; nothing longer.
    if (!/^\d+$/.test(expiryRaw) || requestedExpiry < 1 || requestedExpiry > MAX_REQUESTED_EXPIRY) {
      problems.push(
        `CIBA_REQUESTED_EXPIRY must be whole seconds from 1 to ${MAX_REQUESTED_EXPIRY} ` +
          `(up to 300 for Guardian push, 301 and more for email) (got "${expiryRaw}")`,
      );
      requestedExpiry = undefined;
    }
  }

  const databaseUrl = get('DATABASE_URL');
  if (databaseUrl !== undefined) {
    const url = URL.parse(databaseUrl);
    if (!url || (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') || url.hostname === '') {
      problems.push('DATABASE_URL must be a PostgreSQL URL such as postgres://user:password@127.0.0.1:5432/sandbox');
    }
  }
  const stateDir = resolve(get('SANDBOX_STATE_DIR') ?? '.sandbox');

  const whole = <Fallback extends number | undefined>(name: string, fallback: Fallback, min: number, max: number): number | Fallback => {
    const raw = get(name);
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max} (got "${raw}")`);
      return fallback;
    }
    return Number(raw);
  };
  const agentState = oneOf('AGENT_STATE', ['database', 'memory'], 'database');
  const agentUsesEmbeddedDatabase = databaseUrl === undefined && agentState === 'database';
  const agent: SandboxConfig['agent'] = {
    calls: {
      identity: {
        attemptTimeoutMs: whole('IDENTITY_TIMEOUT_MS', AGENT_DEFAULTS.calls.identity.attemptTimeoutMs, 100, 600_000),
        retries: whole('IDENTITY_RETRIES', AGENT_DEFAULTS.calls.identity.retries, 0, 20),
      },
      hrApi: {
        attemptTimeoutMs: whole('HR_API_TIMEOUT_MS', AGENT_DEFAULTS.calls.hrApi.attemptTimeoutMs, 100, 600_000),
        retries: whole('HR_API_RETRIES', AGENT_DEFAULTS.calls.hrApi.retries, 0, 20),
      },
      model: {
        attemptTimeoutMs: whole('MODEL_TIMEOUT_MS', AGENT_DEFAULTS.calls.model.attemptTimeoutMs, 100, 600_000),
        retries: whole('MODEL_RETRIES', AGENT_DEFAULTS.calls.model.retries, 0, 20),
      },
    },
    retention: {
      maxAgeMs: whole('TASK_RETENTION_SECONDS', AGENT_DEFAULTS.retention.maxAgeMs / 1000, 1, 30 * 24 * 3600) * 1000,
      maxFinished: whole('TASK_RETENTION_MAX', AGENT_DEFAULTS.retention.maxFinished, 0, 1_000_000),
    },
    maxActiveTasks: whole('AGENT_MAX_ACTIVE_TASKS', AGENT_DEFAULTS.maxActiveTasks, 1, 1_000_000),
    maxHeapMb: whole('AGENT_MAX_HEAP_MB', AGENT_DEFAULTS.maxHeapMb, 64, 65_536),
    semiSpaceMb: whole('AGENT_SEMI_SPACE_MB', agentUsesEmbeddedDatabase ? EMBEDDED_AGENT_SEMI_SPACE_MB : AGENT_DEFAULTS.semiSpaceMb, 1, 256),
  };

  const telemetry = telemetrySlice(get, flag, problems, urls.flowConsole);
  const logging: SandboxConfig['logging'] = {
    format: oneOf<LogFormat>('LOG_FORMAT', ['pretty', 'json'], 'pretty'),
    level: oneOf<LogLevel>('LOG_LEVEL', LOG_LEVELS, 'info'),
    // no-color.org: NO_COLOR (any value) turns colour off unless LOG_COLOR says otherwise.
    colour: ((value) => (value === 'auto' ? 'auto' : value === 'true'))(
      oneOf('LOG_COLOR', ['auto', 'true', 'false'], get('NO_COLOR') === undefined ? 'auto' : 'false'),
    ),
  };

  const config: SandboxConfig = {
    host,
    ports,
    urls,
    identity: {
      backend,
      issuer,
      managementAudience,
      agentAudience: get('HR_AGENT_AUTH0_AUDIENCE') ?? LOCAL_TENANT_DEFAULTS.agentAudience,
      apiAudience: get('HR_API_AUTH0_AUDIENCE') ?? LOCAL_TENANT_DEFAULTS.apiAudience,
      a2aClient,
      hrAgentClient,
    },
    storage: { databaseUrl, stateDir, agentState },
    hrApi: { employeesFile: get('HR_EMPLOYEES_FILE') },
    tenant: {
      file: get('TENANT_FILE'),
      stateDir,
      https,
    },
    gemini: {
      mode: geminiMode,
      apiKey: geminiMode === 'mock' ? 'mock-gemini-key' : apiKey,
      model: get('GEMINI_MODEL') ?? DEFAULT_GEMINI_MODEL,
      baseUrl: geminiMode === 'mock' ? urls.mockGemini : get('GEMINI_BASE_URL'),
    },
    scenarios: {
      employeeEmail: get('SCENARIO_EMPLOYEE_EMAIL'),
      secondEmployeeEmail: get('SCENARIO_SECOND_EMPLOYEE_EMAIL'),
      formerEmployeeEmail: get('SCENARIO_FORMER_EMPLOYEE_EMAIL'),
      unknownEmail: get('SCENARIO_UNKNOWN_EMAIL') ?? 'nobody@staff0.com',
    },
    agent,
    ciba: {
      deliveryMode,
      requestedExpiry,
    },
    security: { exposed, allowedHosts, controlSecret, webhooks, clockToleranceSeconds },
    telemetry,
    logging,
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/**
 * The standard OpenTelemetry variables (OTLP exporter specification): a traces endpoint is used as
 * given, a base endpoint gets `/v1/traces`. Only OTLP over HTTP with JSON bodies is sent: the installed
 * exporter (`@opentelemetry/exporter-trace-otlp-http`) speaks nothing else, so another protocol is a
 * configuration error rather than spans silently lost.
 */
function telemetrySlice(
  get: (name: string) => string | undefined,
  flag: (name: string, fallback: boolean) => boolean,
  problems: string[],
  flowConsoleUrl: string,
): SandboxConfig['telemetry'] {
  const enabled = !flag('OTEL_SDK_DISABLED', false);
  const signalEndpoint = get('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  const baseEndpoint = get('OTEL_EXPORTER_OTLP_ENDPOINT');
  const protocolName = get('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') !== undefined ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL' : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  const protocol = get(protocolName) ?? 'http/json';
  let collector: SandboxConfig['telemetry']['collector'];
  const endpointName = signalEndpoint !== undefined ? 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' : 'OTEL_EXPORTER_OTLP_ENDPOINT';
  const endpoint = signalEndpoint ?? (baseEndpoint === undefined ? undefined : `${baseEndpoint.replace(/\/+$/, '')}/v1/traces`);
  if (protocol !== 'http/json') {
    problems.push(
      `${protocolName}=${protocol} is not supported: the sandbox sends OTLP over HTTP with JSON bodies only; ` +
        'set it to http/json (every OpenTelemetry Collector, Jaeger and Tempo accept it on port 4318)',
    );
  }
  if (endpoint !== undefined) {
    const url = URL.parse(endpoint);
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '') {
      problems.push(`${endpointName} must be an http(s) URL without credentials, such as http://127.0.0.1:4318 (got "${endpoint}")`);
    } else {
      collector = { url: url.href, protocol: 'http/json' };
    }
  }
  return { enabled, flowConsole: `${flowConsoleUrl}/v1/traces`, collector };
}

/** For a command's entry point: the config, or undefined once `report` has been told what is wrong. */
export function loadConfigOrReport(report: (message: string) => void = (m) => console.error(m)): SandboxConfig | undefined {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      report(error.message);
      return undefined;
    }
    throw error;
  }
}

/** The identity backend as the HR Agent sees it: where to ask, for what, and as whom. */
export function agentIdentity({ identity }: SandboxConfig) {
  return {
    issuer: identity.issuer,
    agentAudience: identity.agentAudience,
    apiAudience: identity.apiAudience,
    managementAudience: identity.managementAudience,
    client: identity.hrAgentClient,
  };
}

/** The variables that say where the HR Agent and the identity backend are (as opposed to how they behave). */
const SERVICE_LOCATION_VARIABLES = [
  'HR_AGENT_URL',
  'HR_AGENT_PORT',
  'SANDBOX_HOST',
  'TENANT_PORT',
  'TENANT_HTTPS',
  'IDENTITY_BACKEND',
  'HR_AUTH0_DOMAIN',
] as const;

/**
 * Whether the environment (or `.env`) places the agent or the identity backend itself;
 * when it does not, `npm run client` follows the running sandbox's run file (sandbox/run-file.ts).
 */
export function namesServiceLocations(env: Env = readEnv()): boolean {
  return SERVICE_LOCATION_VARIABLES.some((name) => (env[name]?.trim() ?? '') !== '');
}
