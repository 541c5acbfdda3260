import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createCallPolicy, HttpStatusError } from '../call-policy.ts';
import { HOP } from '../../sandbox/telemetry/hops.ts';
import { createTelemetry, type Telemetry } from '../../sandbox/telemetry/setup.ts';
import { startOtlpReceiver, type OtlpReceiver } from '../../sandbox/test/otlp-receiver.ts';

/** A call through the policy is one hop span, whatever its retries: they are its events and warning lines. */

let receiver: OtlpReceiver | undefined;
let telemetry: Telemetry | undefined;
afterEach(async () => {
  await telemetry?.shutdown();
  await receiver?.close();
});

async function traced(): Promise<{ telemetry: Telemetry; receiver: OtlpReceiver; log: () => string }> {
  receiver = await startOtlpReceiver();
  let text = '';
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  telemetry = createTelemetry({
    service: 'hr-agent',
    exportTo: [receiver.url],
    batchDelayMs: 10,
    logging: { format: 'json', level: 'info', colour: false, destination },
  });
  return { telemetry, receiver, log: () => text };
}

describe('a traced call', () => {
  it('is one hop span for all its attempts, each retry an event and a warning line', async () => {
    const { telemetry, receiver, log } = await traced();
    const policy = createCallPolicy({ hrApi: { retries: 3, backoffMs: 1, maxBackoffMs: 5 } }, () => 0.5, telemetry);
    const failures = [new HttpStatusError(503, undefined), new HttpStatusError(429, 2)];
    const answer = await policy.call(
      'hrApi',
      async () => {
        const failure = failures.shift();
        if (failure) throw failure;
        return 'ok';
      },
      { signal: new AbortController().signal, hop: { label: 'GET /employees/:id' } },
    );
    expect(answer).toBe('ok');
    await telemetry.shutdown();
    await policy.close();

    const hops = receiver.spans.filter((s) => s.attributes[HOP.label] === 'GET /employees/:id');
    expect(hops).toHaveLength(1);
    expect(hops[0]?.attributes).toMatchObject({ [HOP.from]: 'agent', [HOP.to]: 'hr-api', 'http.response.status_code': 200 });
    expect(hops[0]?.events.map((e) => e.name)).toEqual(['retry', 'rate_limited']);

    const lines = log()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { level: number; event?: string; msg: string });
    expect(lines.filter((l) => l.level === 40).map((l) => l.event)).toEqual(['retry', 'rate_limited']);
    expect(lines.filter((l) => l.level === 30)).toHaveLength(1);
    expect(lines[0]?.msg).toMatch(/^agent → hr-api · GET \/employees\/:id · retry \(reason answered HTTP 503, attempt 1, wait_ms \d+\)$/);
  });

  it('ends failed with the error code and the HTTP status when the service keeps failing', async () => {
    const { telemetry, receiver } = await traced();
    const policy = createCallPolicy({ identity: { retries: 0 } }, Math.random, telemetry);
    await expect(
      policy.call('identity', async () => Promise.reject(new HttpStatusError(502, undefined)), {
        signal: new AbortController().signal,
        hop: { label: 'POST /bc-authorize' },
      }),
    ).rejects.toMatchObject({ code: 'unavailable' });
    await telemetry.shutdown();
    await policy.close();
    const hop = receiver.spans.find((s) => s.attributes[HOP.label] === 'POST /bc-authorize');
    expect(hop?.status.code).toBe(2);
    expect(hop?.attributes).toMatchObject({ 'error.type': 'unavailable' });
  });
});
