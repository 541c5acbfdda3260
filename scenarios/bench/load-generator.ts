import { connect, type Socket } from 'node:net';

/**
 * A closed-loop HTTP/1.1 load generator, run as its own process so it never
 * shares an event loop with the servers it measures. The parent sends one job
 * at a time over IPC; each of `concurrency` keep-alive connections sends the
 * same prepared GET, reads the response (status line and Content-Length,
 * RFC 9112 §6.2), and sends the next until the duration is up. Working on raw
 * sockets keeps the client's own cost per request far below a server's, so
 * the server, not the client, is what runs out of CPU. It exits when the
 * parent disconnects.
 */

export interface LoadJob {
  kind: 'run';
  url: string;
  headers: Record<string, string>;
  concurrency: number;
  durationMs: number;
}

export interface LoadResult {
  kind: 'result';
  url: string;
  /** Responses with status 200. */
  ok: number;
  /** Other statuses, unreadable responses and connection errors. */
  failed: number;
  elapsedMs: number;
  requestsPerSecond: number;
  /** This process's CPU time over the run as a share of one core (1 = one core busy throughout). */
  cpuCores: number;
  /** The first 200 response's body, to check that servers answer alike. */
  sampleBody: string | undefined;
  statuses: Record<string, number>;
}

const MAX_CONCURRENCY = 256;
const MAX_DURATION_MS = 60_000;
const HEADER_END = Buffer.from('\r\n\r\n');

function isLoadJob(value: unknown): value is LoadJob {
  if (typeof value !== 'object' || value === null) return false;
  const job = value as Record<string, unknown>;
  const url = typeof job.url === 'string' ? URL.parse(job.url) : null;
  return (
    job.kind === 'run' &&
    url !== null &&
    url.protocol === 'http:' &&
    // Loopback only: the bench never sends load anywhere else.
    url.hostname === '127.0.0.1' &&
    typeof job.headers === 'object' &&
    job.headers !== null &&
    Object.entries(job.headers).every(([k, v]) => /^[A-Za-z0-9-]+$/.test(k) && typeof v === 'string' && !/[\r\n]/.test(v)) &&
    Number.isInteger(job.concurrency) &&
    (job.concurrency as number) >= 1 &&
    (job.concurrency as number) <= MAX_CONCURRENCY &&
    Number.isInteger(job.durationMs) &&
    (job.durationMs as number) >= 1 &&
    (job.durationMs as number) <= MAX_DURATION_MS
  );
}

interface Counts {
  ok: number;
  failed: number;
  sampleBody: string | undefined;
  statuses: Record<string, number>;
}

/** One keep-alive connection sending requests back to back until `endAt`. */
function connection(url: URL, request: Buffer, endAt: number, counts: Counts): Promise<void> {
  return new Promise((resolve) => {
    const socket: Socket = connect(Number(url.port), url.hostname);
    socket.setNoDelay(true);
    let buffered: Buffer = Buffer.alloc(0);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve();
    };
    const next = () => {
      if (performance.now() >= endAt) return finish();
      socket.write(request);
    };
    socket.on('connect', next);
    socket.on('error', () => {
      counts.failed++;
      finish();
    });
    socket.on('close', finish);
    socket.on('data', (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      for (;;) {
        const headerEnd = buffered.indexOf(HEADER_END);
        if (headerEnd < 0) return;
        const head = buffered.subarray(0, headerEnd).toString('latin1');
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
        const length = /\r\ncontent-length: *(\d+)/i.exec(head)?.[1];
        if (status === 0 || length === undefined) {
          // Only Content-Length responses are expected from these servers; anything else ends the connection.
          counts.failed++;
          return finish();
        }
        const end = headerEnd + HEADER_END.length + Number(length);
        if (buffered.length < end) return;
        counts.statuses[status] = (counts.statuses[status] ?? 0) + 1;
        if (status === 200) {
          counts.ok++;
          counts.sampleBody ??= buffered.subarray(headerEnd + HEADER_END.length, end).toString('utf8');
        } else {
          counts.failed++;
        }
        buffered = buffered.subarray(end);
        next();
      }
    });
  });
}

async function runLoad(job: LoadJob): Promise<LoadResult> {
  const url = new URL(job.url);
  const headers = { host: url.host, connection: 'keep-alive', ...job.headers };
  const request = Buffer.from(
    `GET ${url.pathname}${url.search} HTTP/1.1\r\n${Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('')}\r\n`,
    'latin1',
  );
  const counts: Counts = { ok: 0, failed: 0, sampleBody: undefined, statuses: {} };
  const cpuBefore = process.cpuUsage();
  const startedAt = performance.now();
  const endAt = startedAt + job.durationMs;
  await Promise.all(Array.from({ length: job.concurrency }, () => connection(url, request, endAt, counts)));
  const elapsedMs = performance.now() - startedAt;
  const cpu = process.cpuUsage(cpuBefore);
  return {
    kind: 'result',
    url: job.url,
    ...counts,
    elapsedMs,
    requestsPerSecond: (counts.ok / elapsedMs) * 1000,
    cpuCores: (cpu.user + cpu.system) / 1000 / elapsedMs,
  };
}

// An entry point (like a service's main.ts): the benchmark forks it with an IPC channel and imports only its types.
if (!process.send) {
  console.error('load-generator.ts is started by the HR API benchmark (scenarios/bench/hr-api-overhead.ts) with an IPC channel.');
  process.exit(1);
} else {
  process.on('message', (message: unknown) => {
    if (!isLoadJob(message)) {
      process.send?.({ kind: 'error', message: 'not a valid load job' });
      return;
    }
    runLoad(message).then(
      (result) => process.send?.(result),
      (error: unknown) => process.send?.({ kind: 'error', message: error instanceof Error ? error.message : String(error) }),
    );
  });
  process.on('disconnect', () => process.exit(0));
}
