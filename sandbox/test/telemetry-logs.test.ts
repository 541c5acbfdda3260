import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import tenantFile from '../../mock-guardian/tenant.json' with { type: 'json' };
import type { LogFormat } from '../config.ts';
import { runTurn, type TurnResult } from '../conversation.ts';
import { startLocalStack, type TracedService } from '../local-stack.ts';
import { createLogger } from '../telemetry/hop-log.ts';
import { HOP } from '../telemetry/hops.ts';
import { createTelemetry } from '../telemetry/setup.ts';
import { startOtlpReceiver, type OtlpReceiver } from './otlp-receiver.ts';

/**
 * The services' logs during a whole approved question: one line per hop,
 * made from the hop's span, readable on a terminal and one JSON object per
 * line with LOG_FORMAT=json, and never a secret or a token.
 */

const QUESTION = 'Does John Doe with email jdoe@staff0.com work at Staff0?';
const JWT_LIKE = /[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/;
const SECRETS = tenantFile.applications.map((app) => app.client_secret).filter((s): s is string => typeof s === 'string');

function capture(): { stream: Writable; text(): string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return { stream, text: () => text };
}

interface Run {
  turn: TurnResult;
  logs: Map<TracedService, string>;
  receiver: OtlpReceiver;
}

/** One approved question (poll mode) with every service logging in `format`, also exporting its spans to compare. */
async function approvedQuestion(format: LogFormat): Promise<Run> {
  const receiver = await startOtlpReceiver();
  const outputs = new Map<TracedService, ReturnType<typeof capture>>();
  const stack = await startLocalStack({
    tenantSettings: { cibaInterval: 1 },
    telemetry: (service) => {
      const output = capture();
      outputs.set(service, output);
      return createTelemetry({
        service,
        exportTo: [receiver.url],
        batchDelayMs: 20,
        logging: { format, level: 'info', colour: false, destination: output.stream },
      });
    },
  });
  let turn: TurnResult;
  try {
    const { client } = await stack.connect();
    let approving: Promise<unknown> | undefined;
    turn = await runTurn(client, QUESTION, {}, {
      signal: AbortSignal.timeout(30_000),
      onEvent(event) {
        if (event.kind === 'state' && event.state === 'AUTH_REQUIRED' && !approving) {
          approving = stack.pendingRequestFor('auth0|jdoe').then((pending) => stack.decide(pending.id, 'approve'));
        }
      },
    });
    await approving;
  } finally {
    // Closing the stack shuts each service's telemetry down: every span is sent and every line written.
    await stack.close();
  }
  const logs = new Map([...outputs].map(([service, output]) => [service, output.text()] as const));
  return { turn, logs, receiver };
}

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line.trim() !== '');
}

function expectNoSecret(text: string): void {
  for (const secret of SECRETS) expect(text).not.toContain(secret);
  expect(text).not.toMatch(JWT_LIKE);
  expect(text).not.toMatch(/Bearer /i);
}

describe('LOG_FORMAT=json', () => {
  let run: Run;
  let logs: Map<TracedService, string>;
  beforeAll(async () => {
    run = await approvedQuestion('json');
    logs = run.logs;
  }, 60_000);
  afterAll(() => run?.receiver.close());

  it('writes one JSON object per line', () => {
    expect(run.turn.finalState).toBe('COMPLETED');
    for (const [service, text] of logs) {
      expect(lines(text).length, service).toBeGreaterThan(0);
      for (const line of lines(text)) {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        expect(parsed).toMatchObject({ service, level: expect.any(Number), msg: expect.any(String) });
      }
    }
  });

  it('has exactly one line for each hop (and each request served) of each service', () => {
    for (const [service, text] of logs) {
      const logged = lines(text)
        .map((line) => JSON.parse(line) as { spanId?: string })
        .flatMap((line) => (line.spanId === undefined ? [] : [line.spanId]));
      const hops = run.receiver.spans
        .filter((s) => s.service === service && (s.attributes[HOP.from] !== undefined || s.attributes[HOP.participant] !== undefined))
        .map((s) => s.spanId);
      expect(hops.length, service).toBeGreaterThan(0);
      expect([...logged].sort(), service).toEqual([...hops].sort());
    }
  });

  it('says who, what, for which task and employee, and how long', () => {
    const agentLines = lines(logs.get('hr-agent') ?? '').map((line) => JSON.parse(line) as Record<string, unknown>);
    const wait = agentLines.find((line) => line.hop === 'POST /oauth/token (CIBA)');
    expect(wait).toMatchObject({
      service: 'hr-agent',
      task: run.turn.taskId,
      employee: 'jdoe@staff0.com',
      from: 'agent',
      to: 'identity',
      outcome: 'approved',
      durationMs: expect.any(Number),
    });
    expect(String(wait?.msg)).toMatch(/^task \S{8}… · jdoe@staff0\.com · agent → identity · POST \/oauth\/token \(CIBA\) · 200, approved, \d+ polls? · [\d.]+ ms$/);
  });

  it('logs no secret and no token', () => {
    for (const text of logs.values()) expectNoSecret(text);
  });
});

describe('LOG_FORMAT=pretty', () => {
  let run: Run;
  let logs: Map<TracedService, string>;
  beforeAll(async () => {
    run = await approvedQuestion('pretty');
    logs = run.logs;
  }, 60_000);
  afterAll(() => run?.receiver.close());

  it('prints one readable line per hop, without colour when told so', () => {
    const hops = run.receiver.spans.filter((s) => s.service === 'hr-agent' && s.attributes[HOP.from] !== undefined);
    const text = logs.get('hr-agent') ?? '';
    const hopLines = lines(text).filter((line) => / · /.test(line));
    expect(hopLines).toHaveLength(hops.length);
    expect(text).not.toMatch(/\u001b\[/);
    expect(hopLines.some((line) => /INFO \(hr-agent\): task \S+ · jdoe@staff0\.com · agent → hr-api · GET \/employees\/:id · 200 · [\d.]+ ms/.test(line))).toBe(true);
    for (const line of lines(text)) expect(() => JSON.parse(line)).toThrow();
  });

  it('logs no secret and no token', () => {
    for (const text of logs.values()) expectNoSecret(text);
  });
});

describe('the logger', () => {
  it('prints a pretty line as `[HH:MM:ss.mmm] LEVEL (service): message`, UTC, without the fields, coloured only when told', () => {
    const plain = capture();
    const coloured = capture();
    const before = new Date();
    for (const [output, colour] of [[plain, false], [coloured, true]] as const) {
      const logger = createLogger('hr-agent', { format: 'pretty', level: 'info', colour, destination: output.stream });
      logger.info({ task: 'a-task-id', employee: 'jdoe@staff0.com' }, 'task a-task-i… · agent → hr-api · GET /employees/:id · 200 · 3 ms');
      logger.warn({ task: 'a-task-id' }, 'retrying');
      logger.debug('below the level');
    }
    const after = new Date();
    const [first, second, ...rest] = lines(plain.text());
    expect(rest).toEqual([]);
    expect(first).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(hr-agent\): task a-task-i… · agent → hr-api · GET \/employees\/:id · 200 · 3 ms$/);
    expect(second).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN \(hr-agent\): retrying$/);
    // The time printed is UTC's clock, between the test's own readings of it (a run across midnight wraps).
    const printed = /^\[([\d:.]+)\]/.exec(first ?? '')?.[1] ?? '';
    const [from, to] = [before, after].map((at) => at.toISOString().slice(11, 23));
    expect(from! <= to! ? printed >= from! && printed <= to! : printed >= from! || printed <= to!).toBe(true);
    expect(plain.text()).not.toContain('jdoe@staff0.com');
    expect(coloured.text()).toMatch(/\u001b\[32mINFO\u001b\[39m/);
  });

  it('redacts secret-looking fields and scrubs tokens from free text, as a second guard', () => {
    const output = capture();
    const logger = createLogger('test', { format: 'json', level: 'info', colour: false, destination: output.stream });
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhdXRoMHxqZG9lIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ';
    logger.warn(
      { client_secret: 'a2a-client-local-secret', headers: { authorization: `Bearer ${jwt}`, 'x-control-secret': 'c'.repeat(40) } },
      `upstream said Bearer ${jwt} and ${jwt}`,
    );
    logger.flush();
    const text = output.text();
    expect(text).toContain('[redacted]');
    expect(text).not.toContain('a2a-client-local-secret');
    expect(text).not.toContain('c'.repeat(40));
    expect(text).not.toContain(jwt.split('.')[1]);
    expect(text).not.toMatch(JWT_LIKE);
    expect(text).toContain('upstream said Bearer [token] and [token]');
  });
});
