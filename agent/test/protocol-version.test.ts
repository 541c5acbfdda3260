import { createServer } from 'node:http';
import { format } from 'node:util';
import { DefaultRequestHandler, InMemoryTaskStore, type AgentExecutor } from '@a2a-js/sdk/server';
import { jsonRpcHandler, UserBuilder } from '@a2a-js/sdk/server/express';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { closeServer, listenLocal } from '../../sandbox/http-listener.ts';
import { buildAgentCard } from '../agent-card.ts';
import type { AgentHandle } from '../server.ts';
import type { ScriptedGemini } from './scripted-gemini.ts';
import { AGENT_AUDIENCE, startStandaloneAgent, type StandaloneAgent } from './standalone-agent.ts';
import type { TestIssuer } from './test-issuer.ts';

/** A2A §3.6: an unsupported A2A-Version is answered -32009, exactly as the SDK answers it, in one log line. */

let standalone: StandaloneAgent;
let issuer: TestIssuer;
let gemini: ScriptedGemini;
let agent: AgentHandle;
let agentUrl: string;
let token: string;
let bareUrl: string;
const bare = createServer();

beforeAll(async () => {
  standalone = await startStandaloneAgent();
  ({ issuer, gemini, agent, url: agentUrl } = standalone);
  token = await issuer.token({ sub: 'a2a-client@clients', aud: AGENT_AUDIENCE, scope: 'read:employee_status', azp: 'a2a-client' });

  // The SDK's own handler with the same card, to compare answers with.
  const card = buildAgentCard({ url: 'http://127.0.0.1', tokenUrl: 'http://127.0.0.1/oauth/token' });
  const executor: AgentExecutor = { execute: async () => undefined, cancelTask: async () => undefined };
  const app = express();
  app.use(jsonRpcHandler({ requestHandler: new DefaultRequestHandler(card, new InMemoryTaskStore(), executor), userBuilder: UserBuilder.noAuthentication }));
  bare.on('request', app);
  bareUrl = await listenLocal(bare);
});

afterAll(async () => {
  await agent.close();
  await closeServer(bare);
  await gemini.close();
  await issuer.close();
});

function post(url: string, headers: Record<string, string>, body: string): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
}

/** Everything written through console while `run` runs. */
async function consoleDuring(run: () => Promise<void>): Promise<string[]> {
  const lines: string[] = [];
  const spies = (['log', 'info', 'warn', 'error', 'debug'] as const).map((name) =>
    vi.spyOn(console, name).mockImplementation((...args: unknown[]) => {
      lines.push(format(...args));
    }),
  );
  try {
    await run();
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
  return lines;
}

describe('protocol version errors', () => {
  it.each([
    ['no A2A-Version header', {}],
    ['A2A-Version 0.3', { 'a2a-version': '0.3' }],
    ['A2A-Version 9.9', { 'a2a-version': '9.9' }],
  ])('answers %s with -32009, as the SDK does, in one log line without a stack', async (_what, headers) => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 'req-7', method: 'GetTask', params: { id: 'x' } });
    let ours: unknown;
    const lines = await consoleDuring(async () => {
      const response = await post(`${agentUrl}/a2a/jsonrpc`, { authorization: `Bearer ${token}`, ...headers }, body);
      expect(response.status).toBe(200);
      ours = await response.json();
    });
    let sdk: unknown;
    // The bare SDK logs the error with its stack: that is what the agent must not do.
    const sdkLines = await consoleDuring(async () => {
      sdk = await (await post(bareUrl, headers, body)).json();
    });
    expect(sdkLines.join('\n')).toContain('\n    at ');
    expect(ours).toEqual(sdk);
    expect(ours).toMatchObject({ id: 'req-7', error: { code: -32009 } });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^JSON-RPC GetTask refused: A2A-Version .* is not supported \(-32009\)$/);
    expect(lines.join('\n')).not.toContain(token);
  });

  it('leaves a wrong content type and broken JSON to the SDK, answered as before', async () => {
    for (const [headers, body] of [
      [{ 'content-type': 'text/plain' }, '{}'],
      [{}, '{not json'],
    ] as const) {
      const ours = (await (await post(`${agentUrl}/a2a/jsonrpc`, { authorization: `Bearer ${token}`, ...headers }, body)).json()) as unknown;
      const sdk = (await (await post(bareUrl, headers, body)).json()) as unknown;
      expect(ours).toEqual(sdk);
    }
  });
});
