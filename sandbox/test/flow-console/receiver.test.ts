import { gzipSync } from 'node:zlib';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { redactText } from '../../flow-console/redaction.ts';
import { createFlowConsole, type FlowConsole, type FlowConsoleOptions } from '../../flow-console/server.ts';
import type { TaskDetail, TaskSummary } from '../../flow-console/task-traces.ts';
import { HOP } from '../../telemetry/hops.ts';
import { approvedTask, deniedTask, exportRequestOf, JWT_LIKE, newTraceId, PLANTED, postSpans } from './synthetic-spans.ts';

/** The flow console's OTLP/HTTP receiver and the page's API, fed synthetic OTLP JSON. */

const running: FlowConsole[] = [];

async function startConsole(options: FlowConsoleOptions = {}): Promise<string> {
  const flowConsole = createFlowConsole(options);
  running.push(flowConsole);
  return flowConsole.listen(0, '127.0.0.1');
}

afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.close()));
});

async function tasks(url: string, init?: RequestInit): Promise<TaskSummary[]> {
  const response = await fetch(`${url}/api/tasks`, init);
  expect(response.status).toBe(200);
  return ((await response.json()) as { tasks: TaskSummary[] }).tasks;
}

async function task(url: string, id: string): Promise<{ detail: TaskDetail; raw: string }> {
  const response = await fetch(`${url}/api/tasks/${encodeURIComponent(id)}`);
  expect(response.status).toBe(200);
  const raw = await response.text();
  return { detail: JSON.parse(raw) as TaskDetail, raw };
}

function span(traceId: string, spanId: string, startMs: number, attributes: Record<string, string>): unknown {
  const ns = (ms: number) => `${BigInt(1_700_000_000_000 + ms) * 1_000_000n}`;
  return {
    traceId,
    spanId,
    name: 'hop',
    startTimeUnixNano: ns(startMs),
    endTimeUnixNano: ns(startMs + 10),
    attributes: Object.entries(attributes).map(([key, value]) => ({ key, value: { stringValue: value } })),
  };
}

function exportOf(spans: unknown[]): unknown {
  return { resourceSpans: [{ scopeSpans: [{ spans }] }] };
}

describe('the flow console receiving OTLP/HTTP JSON', () => {
  it('groups an approved task’s hops by task, in start order, with offsets, durations and its final state', async () => {
    const url = await startConsole();
    const approved = approvedTask();
    // Hops arrive out of order, as span batches do: a parent span ends (and is exported) after its children.
    const late = approved.hops.slice(0, 4);
    expect((await postSpans(url, exportRequestOf(approved, approved.hops.slice(4), 1_700_000_000_000))).status).toBe(200);
    expect((await postSpans(url, exportRequestOf(approved, late, 1_700_000_000_000))).status).toBe(200);

    const [summary] = await tasks(url);
    expect(summary).toMatchObject({
      id: approved.taskId,
      state: 'COMPLETED',
      terminal: true,
      employee: 'jdoe@staff0.com',
      channel: 'guardian-push',
      startedAt: new Date(1_700_000_000_000).toISOString(),
      hopCount: approved.hops.length,
    });

    const { detail } = await task(url, approved.taskId);
    expect(detail.participants.map((p) => p.label)).toEqual(['A2A Client', 'HR Agent', 'Identity backend', 'Employee', 'HR API']);
    expect(detail.hops.map((h) => h.label)).toEqual(approved.hops.map((h) => h.label));
    expect(detail.hops.map((h) => h.offsetMs)).toEqual(approved.hops.map((h) => h.atMs));
    expect(detail.hops.map((h) => h.durationMs)).toEqual(approved.hops.map((h) => h.durationMs));
    const bcAuthorize = detail.hops.find((h) => h.label === 'POST /bc-authorize')!;
    expect(bcAuthorize).toMatchObject({ from: 'agent', to: 'identity', method: 'POST', path: '/bc-authorize', status: 200, authReqId: 'AbCdEfGh…', deliveryMode: 'poll' });
    const failedPoll = detail.hops.find((h) => h.pollCount === 1)!;
    expect(failedPoll).toMatchObject({ status: 400, error: expect.stringContaining('authorization_pending') });
    const token = detail.hops.find((h) => h.pollCount === 2)!.tokens.find((t) => t.name === 'access_token')!;
    expect(token.header).toEqual({ alg: 'RS256', typ: 'JWT', kid: 'tenant-key-1' });
    expect(token.claims).toMatchObject({
      sub: 'auth0|jdoe',
      aud: 'https://staff0/api',
      scope: 'openid read:employee',
      azp: 'hr-agent',
      authorization_details: [{ type: 'employment_verification', employee_id: 'auth0|jdoe' }],
    });
    expect(detail.hops.find((h) => h.label === 'task COMPLETED')?.taskState).toBe('COMPLETED');
  });

  it('lists recent tasks newest first, a denied one as REJECTED', async () => {
    const url = await startConsole();
    const approved = approvedTask();
    const denied = deniedTask('jsmith@staff0.com');
    await postSpans(url, exportRequestOf(approved, approved.hops, 1_700_000_000_000));
    await postSpans(url, exportRequestOf(denied, denied.hops, 1_700_000_060_000));
    const list = await tasks(url);
    expect(list.map((t) => [t.id, t.state, t.employee])).toEqual([
      [denied.taskId, 'REJECTED', 'jsmith@staff0.com'],
      [approved.taskId, 'COMPLETED', 'jdoe@staff0.com'],
    ]);
  });

  it('puts a hop without a task id into the task its trace names, even when the task id comes later', async () => {
    const url = await startConsole();
    const traceId = newTraceId();
    await postSpans(url, exportOf([span(traceId, '1'.repeat(16), 0, { [HOP.from]: 'client', [HOP.to]: 'identity', [HOP.label]: 'token' })]));
    expect((await tasks(url)).map((t) => t.id)).toEqual([`trace:${traceId}`]);

    const events = await fetch(`${url}/api/events`);
    const reader = events.body!.pipeThrough(new TextDecoderStream()).getReader();
    await postSpans(url, exportOf([span(traceId, '2'.repeat(16), 5, { [HOP.from]: 'client', [HOP.to]: 'agent', [HOP.taskId]: 'task-1' })]));
    await postSpans(url, exportOf([span(traceId, '3'.repeat(16), 9, { [HOP.from]: 'agent', [HOP.to]: 'agent', [HOP.label]: 'model' })]));
    let stream = '';
    while (!stream.includes('"hopCount":3')) stream += (await reader.read()).value ?? '';
    await reader.cancel();
    expect(stream).toContain(`event: removed\ndata: {"id":"trace:${traceId}","mergedInto":"task-1"}`);
    expect(stream).toMatch(/event: task\ndata: \{"id":"task-1"/);

    expect((await tasks(url)).map((t) => [t.id, t.hopCount])).toEqual([['task-1', 3]]);
    expect((await task(url, 'task-1')).detail.hops.map((h) => h.label)).toEqual(['token', 'hop', 'model']);
  });

  it('ignores spans that are not hops', async () => {
    const url = await startConsole();
    const response = await postSpans(url, exportOf([span(newTraceId(), 'a'.repeat(16), 0, { 'http.request.method': 'GET' }), span(newTraceId(), 'b'.repeat(16), 0, { [HOP.from]: 'nobody' })]));
    expect(response.status).toBe(200);
    expect(await tasks(url)).toEqual([]);
  });

  it('keeps a bounded number of tasks and hops, dropping the oldest', async () => {
    const url = await startConsole({ maxTasks: 2, maxHopsPerTask: 3 });
    for (const id of ['t1', 't2', 't3']) {
      await postSpans(url, exportOf([span(newTraceId(), 'c'.repeat(16), 0, { [HOP.from]: 'client', [HOP.to]: 'agent', [HOP.taskId]: id })]));
    }
    expect((await tasks(url)).map((t) => t.id).sort()).toEqual(['t2', 't3']);
    expect((await fetch(`${url}/api/tasks/t1`)).status).toBe(404);

    const traceId = newTraceId();
    const hops = [0, 1, 2, 3, 4].map((i) => span(traceId, `${i + 1}`.repeat(16), i * 100, { [HOP.from]: 'agent', [HOP.to]: 'identity', [HOP.label]: `poll ${i}`, [HOP.taskId]: 't3' }));
    await postSpans(url, exportOf(hops));
    const { detail } = await task(url, 't3');
    expect(detail.hops.map((h) => h.label)).toEqual(['poll 2', 'poll 3', 'poll 4']);
    // Its first hop and the two earliest polls.
    expect(detail.task.droppedHops).toBe(3);
  });

  it('counts spans it cannot read as rejected, keeping the rest', async () => {
    const url = await startConsole();
    const good = span(newTraceId(), 'd'.repeat(16), 0, { [HOP.from]: 'client', [HOP.to]: 'agent', [HOP.taskId]: 'ok' });
    const bad = [
      { ...(good as object), traceId: 'not-hex' },
      { ...(good as object), spanId: '0'.repeat(16) },
      { ...(good as object), endTimeUnixNano: '1' },
      'a string',
    ];
    const response = await postSpans(url, exportOf([good, ...bad]));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ partialSuccess: { rejectedSpans: '4', errorMessage: expect.any(String) } });
    expect((await tasks(url)).map((t) => t.id)).toEqual(['ok']);
  });

  it('answers 415 for protobuf (naming http/json), 415 for other types, 413 over the limit, 400 for malformed JSON', async () => {
    const url = await startConsole({ maxBodyBytes: 2_000 });
    const post = (body: string | Uint8Array<ArrayBuffer>, headers: Record<string, string>) => fetch(`${url}/v1/traces`, { method: 'POST', headers, body });

    const protobuf = await post(new Uint8Array([0x0a, 0x00]), { 'content-type': 'application/x-protobuf' });
    expect(protobuf.status).toBe(415);
    expect(((await protobuf.json()) as { message: string }).message).toContain('OTEL_EXPORTER_OTLP_PROTOCOL=http/json');
    expect((await post('{}', { 'content-type': 'text/plain' })).status).toBe(415);

    const big = await post(JSON.stringify({ resourceSpans: [], padding: 'x'.repeat(3_000) }), { 'content-type': 'application/json' });
    expect(big.status).toBe(413);
    // The limit holds after decompression too.
    const zipped = await post(new Uint8Array(gzipSync(JSON.stringify({ resourceSpans: [], padding: 'x'.repeat(50_000) }))), { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(zipped.status).toBe(413);

    for (const body of ['{"resourceSpans": [', 'null', '[]', '{"resourceSpans": 5}']) {
      const response = await post(body, { 'content-type': 'application/json' });
      expect(response.status, body).toBe(400);
      expect(await response.json()).toEqual({ code: 3, message: expect.any(String) });
    }
    expect((await post(JSON.stringify({ resourceSpans: [] }), { 'content-type': 'application/json; charset=utf-8' })).status).toBe(200);
    expect((await fetch(`${url}/v1/traces`)).status).toBe(405);
  });

  it('accepts a gzip-compressed export', async () => {
    const url = await startConsole();
    const denied = deniedTask();
    const response = await fetch(`${url}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: new Uint8Array(gzipSync(JSON.stringify(exportRequestOf(denied)))),
    });
    expect(response.status).toBe(200);
    expect((await tasks(url))[0]).toMatchObject({ id: denied.taskId, state: 'REJECTED' });
  });

  it('receives what the OpenTelemetry OTLP/HTTP JSON exporter sends', async () => {
    const url = await startConsole();
    const exporter = new OTLPTraceExporter({ url: `${url}/v1/traces` });
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': 'staff0-hr-agent' }),
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    const span = provider.getTracer('test').startSpan('POST /bc-authorize', {
      attributes: { [HOP.from]: 'agent', [HOP.to]: 'identity', [HOP.taskId]: 'exported', [HOP.pollCount]: 3, 'http.response.status_code': 200 },
    });
    span.end();
    await provider.forceFlush();
    await provider.shutdown();
    const { detail } = await task(url, 'exported');
    expect(detail.hops).toEqual([expect.objectContaining({ label: 'POST /bc-authorize', service: 'staff0-hr-agent', pollCount: 3, status: 200 })]);
  });
});

describe('the flow console keeping credentials off the screen', () => {
  it('redacts raw JWTs, bearer and basic credentials, client secrets and API keys at ingestion', async () => {
    const url = await startConsole();
    const approved = approvedTask();
    await postSpans(url, exportRequestOf(approved));
    const { detail, raw } = await task(url, approved.taskId);
    const list = JSON.stringify(await tasks(url));
    for (const text of [raw, list]) {
      expect(text).not.toMatch(JWT_LIKE);
      for (const secret of Object.values(PLANTED)) expect(text).not.toContain(secret);
    }
    const poll = detail.hops.find((h) => h.pollCount === 2)!;
    expect(poll.tokens.find((t) => t.name === 'raw')).toEqual({ name: 'raw', readable: false });
    expect(poll.tokens.find((t) => t.name === 'access_token')?.claims?.act).toEqual({ token: '[redacted]' });
    expect(detail.hops.find((h) => h.pollCount === 1)?.error).toBe('authorization_pending: authorization_pending (token was [redacted])');
  });

  it.each([
    ['Authorization: Bearer abc.def-ghi_jkl', 'Authorization: [redacted] [redacted]'],
    ['grant_type=client_credentials&client_secret=s3cr3t-value&audience=x', 'grant_type=client_credentials&client_secret=[redacted]&audience=x'],
    ['{"password": "hunter2", "user": "jdoe"}', '{"password": "[redacted]", "user": "jdoe"}'],
    [`${PLANTED.jwt} expired`, '[redacted] expired'],
    ['eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.', '[redacted]'],
    ['GET /employees/auth0|jdoe', 'GET /employees/auth0|jdoe'],
    ['POST /oauth/token 400 authorization_pending', 'POST /oauth/token 400 authorization_pending'],
    ['jdoe@staff0.com approved "Check employment status" at staff0.us.auth0.com', 'jdoe@staff0.com approved "Check employment status" at staff0.us.auth0.com'],
  ])('redactText(%j)', (input, output) => {
    expect(redactText(input)).toBe(output);
  });
});

describe('the flow console as a service', () => {
  it('answers only its own host names', async () => {
    const url = await startConsole({ allowedHosts: ['console.lan'] });
    const { request } = await import('node:http');
    const status = (host: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request(`${url}/health`, { headers: { host } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
    expect(await status(new URL(url).host)).toBe(200);
    expect(await status('console.lan')).toBe(200);
    expect(await status('evil.example')).toBe(421);
  });

  it('serves its page under the Guardian page’s CSP, and its API only with the secret when exposed', async () => {
    const secret = 'x'.repeat(43);
    const url = await startConsole({ secret });
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await page.text()).toContain('<meta name="flow-console-api-base" content="/api">');
    expect((await fetch(`${url}/page-kit.js`)).status).toBe(200);
    expect((await fetch(`${url}/api/tasks`)).status).toBe(403);
    expect(await tasks(url, { headers: { 'X-Control-Secret': secret } })).toEqual([]);
    // Exporters know no secret: the receiver stays open.
    expect((await postSpans(url, { resourceSpans: [] })).status).toBe(200);
  });

  it('bounds its event streams', async () => {
    const url = await startConsole({ maxEventStreams: 1 });
    const first = await fetch(`${url}/api/events`);
    expect(first.status).toBe(200);
    expect((await fetch(`${url}/api/events`)).status).toBe(503);
    await first.body!.cancel();
  });
});
