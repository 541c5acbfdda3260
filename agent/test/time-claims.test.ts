import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonRpc, wireSendParams } from './a2a-caller.ts';
import type { ScriptedGemini } from './scripted-gemini.ts';
import { AGENT_AUDIENCE, startStandaloneAgent, type StandaloneAgent } from './standalone-agent.ts';
import type { TestIssuer } from './test-issuer.ts';

/** RFC 7519 §4.1.5–4.1.6 at the agent: a caller's token dated in the future is refused (TOKEN_CLOCK_TOLERANCE_SECONDS). */

let standalone: StandaloneAgent;
let issuer: TestIssuer;
let gemini: ScriptedGemini;
let url: string;

beforeAll(async () => {
  standalone = await startStandaloneAgent({ clockToleranceSeconds: 10 });
  ({ issuer, gemini, url } = standalone);
});

afterAll(async () => {
  await standalone.close();
});

const tokenWith = (claims: Record<string, number>) =>
  issuer.token({ sub: 'a2a-client@clients', aud: AGENT_AUDIENCE, scope: 'read:employee_status', azp: 'a2a-client', ...claims });

describe('time claims at the agent', () => {
  it.each([
    ['iat', { iat: 3600 }],
    ['nbf', { nbf: 3600 }],
    ['iat just past the tolerance', { iat: 30 }],
  ])('answers a token with a future %s 401 invalid_token and creates no task', async (_what, ahead) => {
    const now = Math.floor(Date.now() / 1000);
    const claims = Object.fromEntries(Object.entries(ahead).map(([name, seconds]) => [name, now + seconds]));
    const before = gemini.requests.length;
    const response = await jsonRpc(url, 'SendMessage', wireSendParams('hello'), `Bearer ${await tokenWith(claims)}`);
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toMatch(/^Bearer realm="staff0-hr-agent", error="invalid_token"/);
    expect(gemini.requests.length).toBe(before);
  });

  it('accepts a token a few seconds ahead, within its tolerance', async () => {
    const now = Math.floor(Date.now() / 1000);
    const response = await jsonRpc(url, 'GetTask', { id: 'unknown-task' }, `Bearer ${await tokenWith({ iat: now + 5, nbf: now + 5 })}`);
    expect(response.status).toBe(200);
  });
});
