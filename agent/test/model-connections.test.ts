import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { GoogleGenAI } from '@google/genai';
import { afterEach, describe, expect, it } from 'vitest';
import { createCallPolicy, type CallPolicy } from '../call-policy.ts';
import { modelHttpOptions } from '../server.ts';

/** The agent's model client shares the call policy's bounded pool: a burst of model calls opens 64 connections at most. */

const POOL_LIMIT = 64;
const CALLS = POOL_LIMIT + 16;

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

/** A Gemini-shaped endpoint that holds the first requests until `POOL_LIMIT` are waiting at once, then answers all. */
async function holdingModel() {
  const sockets = new Set<Socket>();
  const paths: string[] = [];
  const held: ServerResponse[] = [];
  let released = false;
  const answer = (res: ServerResponse) =>
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ candidates: [{ content: { role: 'model', parts: [{ text: 'ok' }] }, finishReason: 'STOP' }] }));
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    sockets.add(req.socket);
    paths.push(req.url ?? '');
    req.resume();
    req.on('end', () => {
      if (released) return answer(res);
      held.push(res);
      if (held.length < POOL_LIMIT) return;
      released = true;
      for (const waiting of held.splice(0)) answer(waiting);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    sockets,
    paths,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())).then(() => undefined),
    server,
  };
}

describe("the agent's model client", () => {
  it(`opens at most ${POOL_LIMIT} connections to the model when ${CALLS} tasks ask it at once, and answers every call`, async () => {
    const model = await holdingModel();
    const policy: CallPolicy = createCallPolicy();
    close = async () => {
      await policy.close();
      model.server.closeAllConnections();
      await model.close();
    };
    const genai = new GoogleGenAI({ apiKey: 'test-key', httpOptions: modelHttpOptions(policy, model.url) });

    const answers = await Promise.all(
      Array.from({ length: CALLS }, (_, i) => genai.models.generateContent({ model: 'gemini-2.5-flash', contents: `question ${i}` })),
    );

    expect(answers.map((answer) => answer.text)).toEqual(Array.from({ length: CALLS }, () => 'ok'));
    expect(model.paths).toHaveLength(CALLS);
    expect(model.paths[0]).toContain('/models/gemini-2.5-flash:generateContent');
    expect(model.sockets.size).toBeGreaterThan(1);
    expect(model.sockets.size).toBeLessThanOrEqual(POOL_LIMIT);
  }, 30_000);
});
