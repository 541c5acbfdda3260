import { DefaultAgentCardResolver } from '@a2a-js/sdk/client';
import { clientCredentialsTokens } from '../sandbox/agent-client.ts';
import type { SandboxConfig } from '../sandbox/config.ts';
import { agentIdentity, LOCAL_TENANT_DEFAULTS, managementAudienceOf } from '../sandbox/config.ts';
import { startLocalStack, startServices, type LocalStack, type Services } from '../sandbox/local-stack.ts';
import { auth0Personas, localPersonas, PARTNER_APP, scenarioEmployees, scenarioTenant, type Personas } from './personas.ts';
import type { Caller, Scenario } from './scenario.ts';

/**
 * What a scenario runs against. Locally every scenario gets its own stack on
 * port 0 (so scenarios run in parallel without seeing each other's consent
 * requests); against Auth0 the services run in-process pointed at the tenant.
 */
export interface ScenarioStack {
  mode: 'local' | 'auth0';
  issuer: string;
  services: Services;
  /** The local tenant (control API, users, settings); undefined against Auth0. */
  local: LocalStack | undefined;
  personas: Personas;
  guardianUrl: string | undefined;
  /** Seconds between polls the identity backend asks for. */
  pollInterval: number;
  /** A token (or none) for the given caller, as the scenario declares it. */
  tokenFor(caller: Exclude<Caller, 'a2a-client'>): Promise<string | undefined>;
  /** The agent's JSON-RPC endpoint, read from its card. */
  jsonRpcUrl(): Promise<string>;
  hrAgentClient: { clientId: string; clientSecret: string };
  close(): Promise<void>;
}

const LOCAL_INTERVAL = 1;

async function jsonRpcUrlOf(agentUrl: string): Promise<string> {
  const card = await new DefaultAgentCardResolver().resolve(agentUrl);
  const jsonRpc = card.supportedInterfaces.find((i) => i.protocolBinding === 'JSONRPC');
  if (!jsonRpc) throw new Error('The agent card lists no JSON-RPC interface');
  return jsonRpc.url;
}

function tokenSource(issuer: string, credentials: { clientId: string; clientSecret: string }, audience: string) {
  return clientCredentialsTokens({ issuer, tokenUrl: new URL('oauth/token', issuer).href, credentials, audience, scopes: [] });
}

export async function startLocalScenarioStack(scenario: Scenario): Promise<ScenarioStack> {
  const expiredToken = scenario.kind === 'refused-call' && scenario.caller === 'expired-token';
  const local = await startLocalStack({
    tenantFile: scenarioTenant(),
    employees: scenarioEmployees(),
    tenantSettings: {
      cibaInterval: LOCAL_INTERVAL,
      // One second of token life makes "expired token" a real, signed, expired token.
      ...(expiredToken ? { accessTokenLifetime: 1 } : {}),
    },
    ...(scenario.kind === 'conversation' && scenario.requestedExpiry ? { ciba: { requestedExpiry: scenario.requestedExpiry } } : {}),
  });
  const { issuer } = local;
  return {
    mode: 'local',
    issuer,
    services: local,
    local,
    personas: localPersonas(),
    guardianUrl: new URL('guardian', issuer).href,
    pollInterval: LOCAL_INTERVAL,
    hrAgentClient: LOCAL_TENANT_DEFAULTS.hrAgentClient,
    async tokenFor(caller) {
      switch (caller) {
        case 'no-token':
          return undefined;
        case 'wrong-audience':
          return tokenSource(issuer, LOCAL_TENANT_DEFAULTS.hrAgentClient, managementAudienceOf(issuer)).get();
        case 'wrong-scope':
          return tokenSource(issuer, PARTNER_APP, LOCAL_TENANT_DEFAULTS.agentAudience).get();
        case 'expired-token': {
          const token = await tokenSource(issuer, LOCAL_TENANT_DEFAULTS.a2aClient, LOCAL_TENANT_DEFAULTS.agentAudience).get();
          await new Promise((r) => setTimeout(r, 2_100)); // past exp, whole seconds
          return token;
        }
      }
    },
    jsonRpcUrl: () => jsonRpcUrlOf(local.agentUrl),
    close: () => local.close(),
  };
}

/** The test users named in the environment for a run against a real tenant. */
export function configuredPersonas(config: SandboxConfig): Personas {
  return auth0Personas({
    john: config.scenarios.employeeEmail,
    jane: config.scenarios.secondEmployeeEmail,
    brenda: config.scenarios.formerEmployeeEmail,
    unknown: config.scenarios.unknownEmail,
  });
}

export async function startAuth0ScenarioStack(config: SandboxConfig, scenario: Scenario): Promise<ScenarioStack> {
  const { identity } = config;
  const services = await startServices({
    identity: { ...agentIdentity(config), a2aClient: identity.a2aClient },
    ...(scenario.kind === 'conversation' && scenario.requestedExpiry ? { ciba: { requestedExpiry: scenario.requestedExpiry } } : {}),
  });
  return {
    mode: 'auth0',
    issuer: identity.issuer,
    services,
    local: undefined,
    personas: configuredPersonas(config),
    guardianUrl: undefined,
    pollInterval: 5,
    hrAgentClient: identity.hrAgentClient,
    async tokenFor(caller) {
      if (caller === 'no-token') return undefined;
      if (caller === 'wrong-audience') return tokenSource(identity.issuer, identity.hrAgentClient, identity.managementAudience).get();
      throw new Error(`The ${caller} caller needs the local tenant`);
    },
    jsonRpcUrl: () => jsonRpcUrlOf(services.agentUrl),
    close: () => services.close(),
  };
}
