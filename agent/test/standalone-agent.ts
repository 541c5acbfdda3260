import { createAgent, type AgentHandle, type AgentOptions } from '../server.ts';
import { startScriptedGemini, type ScriptedGemini } from './scripted-gemini.ts';
import { startTestIssuer, type TestIssuer } from './test-issuer.ts';

/**
 * The HR Agent alone, for tests of its HTTP surface: a test issuer that signs
 * whatever caller tokens a test needs, a scripted model, and no HR API.
 */

export const AGENT_AUDIENCE = 'https://staff0/agent';

export interface StandaloneAgent {
  issuer: TestIssuer;
  gemini: ScriptedGemini;
  agent: AgentHandle;
  url: string;
  /** A caller token the agent accepts, with any claim overridden. */
  callerToken(sub?: string, extra?: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

export async function startStandaloneAgent(options: Partial<AgentOptions> = {}): Promise<StandaloneAgent> {
  const issuer = await startTestIssuer();
  const gemini = await startScriptedGemini();
  const agent = createAgent({
    identity: {
      issuer: issuer.issuer,
      agentAudience: AGENT_AUDIENCE,
      apiAudience: 'https://staff0/api',
      managementAudience: `${issuer.issuer}api/v2/`,
      client: { clientId: 'hr-agent', clientSecret: 'unused' },
    },
    hrApiUrl: 'http://127.0.0.1:9',
    gemini: { apiKey: 'test', model: 'gemini-test', baseUrl: gemini.baseUrl },
    ciba: { deliveryMode: 'poll' },
    allowInsecureHttp: true,
    ...options,
  });
  const url = await agent.listen(0, '127.0.0.1');
  return {
    issuer,
    gemini,
    agent,
    url,
    callerToken: (sub = 'a2a-client@clients', extra = {}) =>
      issuer.token({ sub, aud: AGENT_AUDIENCE, scope: 'read:employee_status', azp: 'a2a-client', ...extra }),
    async close() {
      await agent.close();
      await gemini.close();
      await issuer.close();
    },
  };
}
