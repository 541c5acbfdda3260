import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeServer, listenLocal } from '../../sandbox/http-listener.ts';
import type { Resolver } from '../webhook-policy.ts';
import { jsonRpc, wireSendParams } from './a2a-caller.ts';
import type { ScriptedGemini } from './scripted-gemini.ts';
import { AGENT_AUDIENCE, startStandaloneAgent, type StandaloneAgent } from './standalone-agent.ts';
import type { TestIssuer } from './test-issuer.ts';

/**
 * Push notifications (A2A §9) through the agent's own sender and checked store:
 * refused URLs never get stored, an allowed receiver still gets its POSTs,
 * and a name re-pointed inside between registration and delivery gets nothing.
 */


interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

interface Receiver {
  url: string;
  port: number;
  received: Received[];
  /** Resolves with the first notification to `path`, received or yet to come. */
  first(path: string): Promise<Received>;
  status: number;
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const received: Received[] = [];
  const waiters: { path: string; resolve: (r: Received) => void }[] = [];
  const receiver: Partial<Receiver> = { status: 200 };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const entry = { path: req.url ?? '', headers: req.headers, body };
      received.push(entry);
      res.writeHead(receiver.status ?? 200).end();
      for (const waiter of waiters.splice(0)) {
        if (entry.path === waiter.path) waiter.resolve(entry);
        else waiters.push(waiter);
      }
    });
  });
  const url = await listenLocal(server);
  return Object.assign(receiver, {
    url,
    port: Number(new URL(url).port),
    received,
    first: (path: string) =>
      new Promise<Received>((resolve) => {
        const seen = received.find((r) => r.path === path);
        if (seen) resolve(seen);
        else waiters.push({ path, resolve });
      }),
    close: () => closeServer(server),
  }) as Receiver;
}

let standalone: StandaloneAgent;
let issuer: TestIssuer;
let gemini: ScriptedGemini;
let agentUrl: string;
let receiver: Receiver;
let token: string;
const logs: string[] = [];
const dns = new Map<string, string>();
const resolve: Resolver = async (name) => {
  const address = dns.get(name);
  if (address === undefined) throw Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' });
  return [{ address, family: address.includes(':') ? 6 : 4 }];
};

beforeAll(async () => {
  standalone = await startStandaloneAgent({ webhooks: { allowLoopback: true, resolve, timeoutMs: 2000, log: (line) => logs.push(line) } });
  ({ issuer, gemini, url: agentUrl } = standalone);
  gemini.reply(() => [{ text: 'I can only answer whether someone is an active Staff0 employee.' }]);
  receiver = await startReceiver();
  token = await issuer.token({ sub: 'a2a-client@clients', aud: AGENT_AUDIENCE, scope: 'read:employee_status', azp: 'a2a-client' });
});

afterAll(async () => {
  await standalone.close();
  await receiver.close();
});

interface RpcAnswer {
  result?: { id?: string; task?: { id: string }; status?: { state?: string } };
  error?: { code: number; message: string; data?: unknown };
}

async function rpc(method: string, params: unknown): Promise<RpcAnswer> {
  const response = await jsonRpc(agentUrl, method, params, `Bearer ${token}`);
  expect(response.status).toBe(200);
  return (await response.json()) as RpcAnswer;
}

/** A completed task to attach push configs to. */
async function completedTaskId(): Promise<string> {
  const answer = await rpc('SendMessage', wireSendParams('What is the weather?'));
  const id = answer.result?.task?.id;
  if (!id) throw new Error(`no task in ${JSON.stringify(answer)}`);
  return id;
}

const sendWithWebhook = (url: string, text = 'What is the weather?') =>
  rpc('SendMessage', {
    ...wireSendParams(text),
    configuration: { taskPushNotificationConfig: { url, token: 'receiver-check-token' } },
  });

describe('push notification configs', () => {
  it.each([
    ['file:///etc/passwd', 'scheme'],
    ['gopher://127.0.0.1:6379/_INFO', 'scheme'],
    ['http://169.254.169.254/latest/meta-data/', 'link_local_address'],
    ['http://2852039166/latest/meta-data/', 'link_local_address'],
    ['http://[::ffff:169.254.169.254]/', 'link_local_address'],
    ['http://0.0.0.0:8080/', 'unspecified_address'],
    ['http://10.0.0.8/hook', 'private_address'],
  ])('CreateTaskPushNotificationConfig refuses %s with invalid params naming %s', async (url, rule) => {
    const taskId = await completedTaskId();
    const answer = await rpc('CreateTaskPushNotificationConfig', { taskId, url });
    expect(answer.error?.code).toBe(-32602);
    expect(answer.error?.message).toContain(`(${rule})`);
  });

  it("refuses the sandbox's own services: the identity backend, mock-gemini and the agent itself", async () => {
    const taskId = await completedTaskId();
    for (const url of [`${issuer.issuer}control/requests/x/approve`, `${gemini.baseUrl}/v1beta/models`, `${agentUrl}/a2a/jsonrpc`]) {
      const answer = await rpc('CreateTaskPushNotificationConfig', { taskId, url });
      expect(answer.error?.code, url).toBe(-32602);
      expect(answer.error?.message, url).toContain('(own_service)');
    }
  });

  it('refuses a name that resolves to a metadata address', async () => {
    dns.set('inside.example.test', '169.254.169.254');
    const taskId = await completedTaskId();
    const answer = await rpc('CreateTaskPushNotificationConfig', { taskId, url: 'http://inside.example.test/' });
    expect(answer.error?.message).toContain('(link_local_address)');
  });

  it('refuses an inline webhook in SendMessage before any work starts', async () => {
    const before = gemini.requests.length;
    const answer = await sendWithWebhook('http://[::ffff:a9fe:a9fe]/latest/meta-data/');
    expect(answer.error?.code).toBe(-32602);
    expect(answer.error?.message).toContain('(link_local_address)');
    expect(gemini.requests.length).toBe(before);
  });

  it('refuses it on the HTTP+JSON binding with 400 too', async () => {
    const response = await fetch(`${agentUrl}/a2a/rest/message:send`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'a2a-version': '1.0', authorization: `Bearer ${token}` },
      body: JSON.stringify({ ...wireSendParams('hello'), configuration: { taskPushNotificationConfig: { url: 'http://169.254.169.254/' } } }),
    });
    expect(response.status).toBe(400);
    expect(JSON.stringify(await response.json())).toContain('link_local_address');
  });

  it('delivers to an allowed loopback receiver, with its token', async () => {
    const answer = await sendWithWebhook(`${receiver.url}/hooks/a2a`);
    expect(answer.error).toBeUndefined();
    const first = await receiver.first('/hooks/a2a');
    expect(first.headers['x-a2a-notification-token']).toBe('receiver-check-token');
    expect(first.headers['content-type']).toBe('application/a2a+json');
    expect(JSON.stringify(JSON.parse(first.body))).toContain(answer.result?.task?.id);
  });

  it('logs a failed delivery with the origin only, never the path or query', async () => {
    receiver.status = 500;
    try {
      logs.length = 0;
      await sendWithWebhook(`${receiver.url}/hooks/secret-path-1234?key=query-secret-5678`);
      await receiver.first('/hooks/secret-path-1234?key=query-secret-5678');
      await expect.poll(() => logs.length).toBeGreaterThan(0);
      expect(logs[0]).toMatch(new RegExp(`to ${receiver.url.replace(/[.]/g, '\\.')} answered HTTP 500$`));
      expect(logs.join('\n')).not.toMatch(/secret-path|query-secret/);
    } finally {
      receiver.status = 200;
    }
  });

  it('never follows a redirect, and gives up on a receiver that never answers', async () => {
    const hits: string[] = [];
    const tricky: Server = createServer((req, res) => {
      hits.push(req.url ?? '');
      // Drain the body so the redirect answer goes out; the hanging path never answers.
      req.resume();
      if (req.url === '/redirect') req.on('end', () => res.writeHead(307, { location: `${receiver.url}/followed` }).end());
    });
    const trickyUrl = await listenLocal(tricky);
    try {
      logs.length = 0;
      await sendWithWebhook(`${trickyUrl}/redirect`);
      await sendWithWebhook(`${trickyUrl}/hang`);
      await expect.poll(() => logs.some((l) => l.endsWith('answered HTTP 307')), { timeout: 5000 }).toBe(true);
      await expect.poll(() => logs.some((l) => l.endsWith('failed: no answer within 2000 ms')), { timeout: 8000 }).toBe(true);
      expect(receiver.received.filter((r) => r.path === '/followed')).toEqual([]);
      expect(logs.every((l) => !l.includes('/redirect') && !l.includes('/hang'))).toBe(true);
    } finally {
      await closeServer(tricky);
    }
  });

  it('re-checks at delivery: a name re-pointed at a metadata address after registration gets nothing', async () => {
    dns.set('rebind.example.test', '127.0.0.1');
    logs.length = 0;
    // The store checks once (127.0.0.1, allowed); from then on the name answers the metadata address.
    const realResolve = dns.get.bind(dns);
    let checks = 0;
    dns.get = (name: string) => (name === 'rebind.example.test' && ++checks > 1 ? '169.254.169.254' : realResolve(name));
    try {
      const answer = await sendWithWebhook(`http://rebind.example.test:${receiver.port}/rebound-hook`);
      expect(answer.error).toBeUndefined();
      await expect.poll(() => logs.find((l) => l.includes('rebind.example.test'))).toBeDefined();
      expect(logs.find((l) => l.includes('rebind.example.test'))).toMatch(/refused \(link_local_address\)$/);
      expect(receiver.received.filter((r) => r.path === '/rebound-hook')).toEqual([]);
    } finally {
      dns.get = realResolve;
    }
  });
});
