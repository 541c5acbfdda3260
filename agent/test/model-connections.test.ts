import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { GoogleGenAI } from '@google/genai';
import { context, propagation, ROOT_CONTEXT, trace, TraceFlags } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { createCallPolicy, type CallPolicy } from '../call-policy.ts';
import { modelHttpOptions } from '../server.ts';
import { enableAsyncContext } from '../../sandbox/telemetry/setup.ts';

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
  const headers: IncomingMessage['headers'][] = [];
  const held: ServerResponse[] = [];
  let released = false;
  const answer = (res: ServerResponse) =>
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ candidates: [{ content: { role: 'model', parts: [{ text: 'ok' }] }, finishReason: 'STOP' }] }));
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    sockets.add(req.socket);
    paths.push(req.url ?? '');
    headers.push(req.headers);
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
    headers,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())).then(() => undefined),
    server,
  };
}

/** The holding model and a call policy, both closed after the test. */
async function modelBehindPolicy() {
  const model = await holdingModel();
  const policy: CallPolicy = createCallPolicy();
  close = async () => {
    await policy.close();
    model.server.closeAllConnections();
    await model.close();
  };
  return { model, policy };
}

describe("the agent's model client", () => {
  it(`opens at most ${POOL_LIMIT} connections to the model when ${CALLS} tasks ask it at once, and answers every call`, async () => {
    const { model, policy } = await modelBehindPolicy();
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

  it("sends no trace headers (their baggage names the task) from inside a task's trace, while the sandbox's own calls do", async () => {
    enableAsyncContext();
    const { model, policy } = await modelBehindPolicy();
    const inTask = propagation.setBaggage(
      trace.setSpanContext(ROOT_CONTEXT, { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: TraceFlags.SAMPLED }),
      propagation.createBaggage({ 'sandbox.task.id': { value: 'task-1' } }),
    );
    const genai = new GoogleGenAI({ apiKey: 'test-key', httpOptions: modelHttpOptions(policy, model.url) });
    const held = Array.from({ length: POOL_LIMIT - 2 }, () => genai.models.generateContent({ model: 'gemini-2.5-flash', contents: 'held' }));
    await context.with(inTask, async () => {
      const calls = [
        genai.models.generateContent({ model: 'gemini-2.5-flash', contents: 'in a task' }),
        // A sandbox service's call, through the same pool: it carries the trace on.
        policy.fetch(`${model.url}/sandbox-call`, { method: 'POST', body: '{}' }),
      ];
      await Promise.all([...held, ...calls]);
    });
    expect(model.paths).toHaveLength(POOL_LIMIT);
    const sandboxCall = model.headers[model.paths.indexOf('/sandbox-call')];
    expect(sandboxCall?.traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01$/);
    expect(sandboxCall?.baggage).toContain('sandbox.task.id=task-1');
    const modelCalls = model.headers.filter((_, i) => model.paths[i]!.includes(':generateContent'));
    expect(modelCalls).toHaveLength(POOL_LIMIT - 1);
    for (const sent of modelCalls) {
      expect(sent.traceparent).toBeUndefined();
      expect(sent.baggage).toBeUndefined();
      expect(sent['x-goog-api-key']).toBe('test-key');
    }
  }, 30_000);

  it('takes a Request, or a body that is no string, through Node\'s own fetch on the same pool', async () => {
    const { model, policy } = await modelBehindPolicy();
    const answers = await Promise.all([
      ...Array.from({ length: POOL_LIMIT - 2 }, () => policy.externalFetch(`${model.url}/string-body`, { method: 'POST', body: '{}' })),
      policy.externalFetch(new Request(`${model.url}/request`, { method: 'POST', body: '{}' })),
      policy.externalFetch(`${model.url}/bytes`, { method: 'POST', body: new TextEncoder().encode('{}') }),
    ]);
    expect(answers.map((answer) => answer.status)).toEqual(Array.from({ length: POOL_LIMIT }, () => 200));
    expect(await answers.at(-1)!.json()).toMatchObject({ candidates: [{ finishReason: 'STOP' }] });
    expect(model.paths.filter((path) => path !== '/string-body').sort()).toEqual(['/bytes', '/request']);
  }, 30_000);
});
