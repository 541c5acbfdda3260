import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCallPolicy, type CallPolicy } from '../call-policy.ts';

/**
 * The call policy's fetch answers with Responses whose body is already read; their `clone()` is made from
 * those bytes instead of Response's tee. These tests hold it to Response's own contract, and to what
 * openid-client does with it on every CIBA poll that is still pending.
 */

const PENDING = { error: 'authorization_pending', error_description: 'The end-user authorization is pending' };

let policy: CallPolicy;
let base: string;
let stop: () => Promise<void>;

beforeAll(async () => {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url === '/empty') return res.writeHead(204, { 'x-kind': 'empty' }).end();
      res.writeHead(400, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-kind': 'pending' });
      res.end(JSON.stringify(PENDING));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  policy = createCallPolicy();
  stop = async () => {
    await policy.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
});

afterAll(() => stop());

describe("the call policy's fetch", () => {
  it('clones an answer with its status, headers and body, each read on its own', async () => {
    const answer = await policy.fetch(`${base}/oauth/token`, { method: 'POST', body: 'a=b' });
    const copy = answer.clone();
    expect(copy).toBeInstanceOf(Response);
    expect(copy).not.toBe(answer);
    expect(copy.status).toBe(400);
    expect(copy.statusText).toBe(answer.statusText);
    expect(copy.headers.get('x-kind')).toBe('pending');
    expect(copy.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await copy.json()).toEqual(PENDING);
    expect(copy.bodyUsed).toBe(true);
    // Reading the copy left the original unread.
    expect(answer.bodyUsed).toBe(false);
    expect(await answer.text()).toBe(JSON.stringify(PENDING));
    // A copy's headers are its own.
    copy.headers.set('x-kind', 'changed');
    expect(answer.headers.get('x-kind')).toBe('pending');
  });

  it('refuses to clone a body already read or being read, as Response does', async () => {
    const read = await policy.fetch(`${base}/oauth/token`);
    await read.arrayBuffer();
    expect(() => read.clone()).toThrow(TypeError);

    const reading = await policy.fetch(`${base}/oauth/token`);
    reading.body?.getReader();
    expect(() => reading.clone()).toThrow(TypeError);
  });

  it('clones an answer without a body as one without a body', async () => {
    const answer = await policy.fetch(`${base}/empty`);
    const copy = answer.clone();
    expect(copy.status).toBe(204);
    expect(copy.body).toBeNull();
    expect(copy.headers.get('x-kind')).toBe('empty');
  });

  it("gives openid-client a pending CIBA poll's error, as the agent's polls read it", async () => {
    const config = new oidc.Configuration({ issuer: `${base}/`, token_endpoint: `${base}/oauth/token` }, 'hr-agent', undefined, oidc.ClientSecretPost('secret'));
    config[oidc.customFetch] = (url, init) => policy.fetch(url, init as RequestInit);
    oidc.allowInsecureRequests(config);
    const poll = oidc.genericGrantRequest(config, 'urn:openid:params:grant-type:ciba', { auth_req_id: 'request-1' });
    const error = await poll.then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(oidc.ResponseBodyError);
    expect((error as oidc.ResponseBodyError).error).toBe('authorization_pending');
    expect((error as oidc.ResponseBodyError).error_description).toBe(PENDING.error_description);
    expect((error as oidc.ResponseBodyError).status).toBe(400);
  });
});
