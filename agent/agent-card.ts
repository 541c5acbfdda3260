import type { AgentCard, AgentInterface } from '@a2a-js/sdk';

/**
 * The public agent card (A2A §8): who the agent is, its one skill, where to
 * reach it, and how to get a token for it (an OAuth 2.0 client-credentials
 * flow at the identity backend's token endpoint).
 */

export const AGENT_SCOPE = 'read:employee_status';
export const SECURITY_SCHEME = 'staff0_oauth2';
export const JSONRPC_PATH = '/a2a/jsonrpc';
export const REST_PATH = '/a2a/rest';

export interface AgentCardOptions {
  /** Where callers reach the agent, without a trailing slash. */
  url: string;
  /** The identity backend's token endpoint, e.g. `https://TENANT/oauth/token`. */
  tokenUrl: string;
}

export function buildAgentCard(options: AgentCardOptions): AgentCard {
  return {
    name: 'Staff0 HR Agent',
    description:
      'Answers whether a person is an active employee of Staff0. The employee approves each request on their phone first.',
    supportedInterfaces: agentInterfaces(options.url),
    provider: { organization: 'Staff0', url: 'https://staff0.com' },
    version: '1.0.0',
    capabilities: { streaming: true, pushNotifications: true, extensions: [], extendedAgentCard: false },
    securitySchemes: {
      [SECURITY_SCHEME]: {
        scheme: {
          $case: 'oauth2SecurityScheme',
          value: {
            description: 'OAuth 2.0 client credentials from the Staff0 identity backend',
            flows: {
              flow: {
                $case: 'clientCredentials',
                value: {
                  tokenUrl: options.tokenUrl,
                  refreshUrl: '',
                  scopes: { [AGENT_SCOPE]: 'Ask whether someone is an active employee' },
                },
              },
            },
            oauth2MetadataUrl: '',
          },
        },
      },
    },
    securityRequirements: [{ schemes: { [SECURITY_SCHEME]: { list: [AGENT_SCOPE] } } }],
    defaultInputModes: ['text/plain'],
    defaultOutputModes: ['text/plain'],
    skills: [
      {
        id: 'is_active_employee',
        name: 'Check employment status',
        description:
          'Given a work email address or employee id, answers whether the person is an active employee of Staff0, after the employee approves.',
        tags: ['hr', 'employment verification', 'ciba'],
        examples: ['Does John Doe with email jdoe@staff0.com work at Staff0?'],
        inputModes: ['text/plain'],
        outputModes: ['text/plain'],
        securityRequirements: [],
      },
    ],
    signatures: [],
  };
}

export function agentInterfaces(url: string): AgentInterface[] {
  const base = url.replace(/\/+$/, '');
  return [
    { url: `${base}${JSONRPC_PATH}`, protocolBinding: 'JSONRPC', tenant: '', protocolVersion: '1.0' },
    { url: `${base}${REST_PATH}`, protocolBinding: 'HTTP+JSON', tenant: '', protocolVersion: '1.0' },
  ];
}
