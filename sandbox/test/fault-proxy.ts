import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { closeServer, listenLocal } from '../http-listener.ts';

/**
 * A small HTTP proxy for fault-injection tests: it forwards to one target,
 * and for each request a rule may answer a status instead, hold the request
 * without ever answering, cut the connection, or hold a good answer back. Each request is recorded
 * with what was done to it, so a test can wait on what happened.
 */

export type Fault =
  | { kind: 'status'; status: number; headers?: Record<string, string>; body?: string }
  | { kind: 'hang' }
  | { kind: 'reset' }
  /** Forward the request at once but hold a 2xx answer until `until` settles: an answer that arrives after its caller gave up. */
  | { kind: 'late'; until: Promise<void> };

export interface ProxiedRequest {
  method: string;
  path: string;
  /** The form-encoded or JSON body, as text. */
  body: string;
  fault: Fault['kind'] | 'passed';
}

export interface FaultProxy {
  url: string;
  /** Every request seen so far, in order. */
  readonly requests: ProxiedRequest[];
  /** Chooses the fault for each request; `undefined` passes it on. */
  setRule(rule: ((request: Omit<ProxiedRequest, 'fault'>) => Fault | undefined) | undefined): void;
  setTarget(url: string): void;
  /** Resolves once `predicate` holds for a recorded request (checked on every new one). */
  waitFor(predicate: (request: ProxiedRequest) => boolean, timeoutMs?: number): Promise<ProxiedRequest>;
  close(): Promise<void>;
}

export interface FaultProxyOptions {
  /**
   * Pass the Host header on unchanged, for an OpenID Provider whose issuer is
   * this proxy: it builds its endpoint URLs from that header, and they must
   * point back here or clients would bypass the proxy. Otherwise the target's.
   */
  preserveHost?: boolean;
}

export async function startFaultProxy(target?: string, options: FaultProxyOptions = {}): Promise<FaultProxy> {
  let targetUrl = target ? new URL(target) : undefined;
  let rule: ((request: Omit<ProxiedRequest, 'fault'>) => Fault | undefined) | undefined;
  const requests: ProxiedRequest[] = [];
  const waiters = new Set<() => void>();
  const held = new Set<Socket>();

  const record = (entry: ProxiedRequest) => {
    requests.push(entry);
    for (const waiter of [...waiters]) waiter();
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const seen = { method: req.method ?? 'GET', path: req.url ?? '/', body: body.toString('utf8') };
    const fault = rule?.(seen);
    record({ ...seen, fault: fault?.kind ?? 'passed' });
    if (fault?.kind === 'hang') {
      held.add(req.socket);
      return;
    }
    if (fault?.kind === 'reset') {
      req.socket.resetAndDestroy();
      return;
    }
    if (fault?.kind === 'status') {
      res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers });
      res.end(fault.body ?? JSON.stringify({ error: 'injected_fault' }));
      return;
    }
    if (!targetUrl) {
      req.socket.resetAndDestroy();
      return;
    }
    const upstream = request(
      new URL(req.url ?? '/', targetUrl),
      { method: req.method, headers: options.preserveHost ? req.headers : { ...req.headers, host: targetUrl.host } },
      (answer) => {
        const pass = () => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        };
        const status = answer.statusCode ?? 502;
        if (fault?.kind === 'late' && status >= 200 && status < 300) void fault.until.then(pass, pass);
        else pass();
      },
    );
    upstream.on('error', () => req.socket.resetAndDestroy());
    upstream.end(body);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => req.socket.destroy());
  });
  const url = await listenLocal(server);

  return {
    url,
    requests,
    setRule(next) {
      rule = next;
    },
    setTarget(next) {
      targetUrl = new URL(next);
    },
    waitFor(predicate, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = requests.find(predicate);
          if (!found) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`No proxied request matched within ${timeoutMs} ms (${requests.length} seen)`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async close() {
      for (const socket of held) socket.destroy();
      await closeServer(server);
    },
  };
}
