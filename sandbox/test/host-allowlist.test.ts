import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAllowedHost } from '../host-allowlist.ts';
import { startLocalStack, type LocalStack } from '../local-stack.ts';

/** One GET with a chosen Host header; resolves at the response head (event streams never end by themselves). */
function getWithHost(url: string, host: string): Promise<{ status: number; body: string; type: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host, accept: 'text/event-stream, application/json, text/html' } }, (res) => {
      const status = res.statusCode ?? 0;
      const type = res.headers['content-type'];
      if (type?.startsWith('text/event-stream')) {
        res.destroy();
        resolve({ status, body: '', type });
        return;
      }
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status, body, type }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('isAllowedHost', () => {
  const own = { urls: () => ['https://agent.staff0.example', 'http://127.0.0.1:10050', undefined], names: ['box.lan', 'proxy.lan:8443'] };

  it('answers loopback names on the port the request arrived on only', () => {
    expect(isAllowedHost('127.0.0.1:4000', 4000, false, {})).toBe(true);
    expect(isAllowedHost('LOCALHOST:4000', 4000, false, {})).toBe(true);
    expect(isAllowedHost('[::1]:4000', 4000, false, {})).toBe(true);
    expect(isAllowedHost('localhost:4001', 4000, false, {})).toBe(false);
    expect(isAllowedHost('localhost', 80, false, {})).toBe(true);
  });

  it('answers its configured URLs and names, and nothing else', () => {
    expect(isAllowedHost('agent.staff0.example', 10050, false, own)).toBe(false);
    expect(isAllowedHost('agent.staff0.example', 443, true, own)).toBe(true);
    expect(isAllowedHost('agent.staff0.example:443', 10050, false, own)).toBe(true);
    expect(isAllowedHost('box.lan:10050', 10050, false, own)).toBe(true);
    expect(isAllowedHost('proxy.lan:8443', 10050, false, own)).toBe(true);
    expect(isAllowedHost('proxy.lan:8444', 10050, false, own)).toBe(false);
    for (const host of ['rebind.attacker.example', 'rebind.attacker.example:10050', 'localhost.attacker.example:10050', '127.0.0.1.nip.io:10050', '', 'a b', 'user@localhost:10050']) {
      expect(isAllowedHost(host, 10050, false, own), host).toBe(false);
    }
    expect(isAllowedHost(undefined, 10050, false, own)).toBe(false);
  });
});

describe('every service refuses a foreign Host before any handler runs', () => {
  let stack: LocalStack;
  beforeAll(async () => {
    stack = await startLocalStack();
  });
  afterAll(async () => {
    await stack?.close();
  });

  const FOREIGN = 'rebind.attacker.example';
  const targets = () => [
    ['tenant health', `${stack.issuer}health`],
    ['tenant discovery', `${stack.issuer}.well-known/openid-configuration`],
    ['control API users', `${stack.controlUrl}users`],
    ['control API requests', `${stack.controlUrl}requests`],
    ['control API event stream', `${stack.controlUrl}events?user_id=auth0%7Cjdoe`],
    ['Guardian page', `${stack.issuer}guardian`],
    ['HR API', `${stack.hrApiUrl}/health`],
    ['mock-gemini', `${stack.geminiUrl}/v1beta/models`],
    ['agent card', `${stack.agentUrl}/.well-known/agent-card.json`],
  ];

  it('answers 421 with a JSON error to a rebinding name, on every service and the event stream', async () => {
    for (const [what, url] of targets()) {
      const port = new URL(url as string).port;
      for (const host of [FOREIGN, `${FOREIGN}:${port}`]) {
        const answer = await getWithHost(url as string, host);
        expect(answer.status, `${what} with Host ${host}`).toBe(421);
        expect(JSON.parse(answer.body), what).toMatchObject({ error: 'misdirected_request' });
        expect(answer.body, what).not.toContain('auth0|jdoe');
      }
    }
  });

  it('answers its own names: 127.0.0.1 and localhost with its port', async () => {
    for (const [what, url] of targets()) {
      const port = new URL(url as string).port;
      for (const host of [`127.0.0.1:${port}`, `localhost:${port}`]) {
        const answer = await getWithHost(url as string, host);
        expect(answer.status, `${what} with Host ${host}`).toBe(200);
      }
    }
  });
});
