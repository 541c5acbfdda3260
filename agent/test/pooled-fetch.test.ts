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

  it('reads a body once, by any of its readers, as Response does', async () => {
    const text = await policy.fetch(`${base}/oauth/token`);
    expect(text.bodyUsed).toBe(false);
    expect(await text.text()).toBe(JSON.stringify(PENDING));
    expect(text.bodyUsed).toBe(true);
    await expect(text.text()).rejects.toThrow(TypeError);
    await expect(text.json()).rejects.toThrow(TypeError);
    await expect(text.arrayBuffer()).rejects.toThrow(TypeError);
    await expect(text.blob()).rejects.toThrow(TypeError);
    // A body already read is still a stream, locked by the read.
    expect(text.body).toBeInstanceOf(ReadableStream);
    expect(text.body!.locked).toBe(true);

    const bytes = await policy.fetch(`${base}/oauth/token`);
    const buffer = await bytes.arrayBuffer();
    expect(new TextDecoder().decode(buffer)).toBe(JSON.stringify(PENDING));
    await expect(bytes.json()).rejects.toThrow(TypeError);

    const asBytes = await policy.fetch(`${base}/oauth/token`);
    expect(new TextDecoder().decode(await asBytes.bytes())).toBe(JSON.stringify(PENDING));
    await expect(asBytes.bytes()).rejects.toThrow(TypeError);

    const blob = await policy.fetch(`${base}/oauth/token`);
    expect(await (await blob.blob()).text()).toBe(JSON.stringify(PENDING));
    expect(blob.bodyUsed).toBe(true);
    await expect(blob.text()).rejects.toThrow(TypeError);
  });

  it('gives its body as a stream, and a body read through the stream is used for every other reader', async () => {
    const answer = await policy.fetch(`${base}/oauth/token`);
    const body = answer.body!;
    expect(body).toBeInstanceOf(ReadableStream);
    expect(answer.body).toBe(body);
    expect(answer.bodyUsed).toBe(false);
    const chunks: Uint8Array[] = [];
    const reader = body.getReader();
    for (let read = await reader.read(); !read.done; read = await reader.read()) chunks.push(read.value);
    expect(new TextDecoder().decode(Buffer.concat(chunks))).toBe(JSON.stringify(PENDING));
    expect(answer.bodyUsed).toBe(true);
    await expect(answer.text()).rejects.toThrow(TypeError);
    expect(() => answer.clone()).toThrow(TypeError);

    // What openid-client does with an error answer: reads a clone, then cancels the original's stream unread.
    const cancelled = await policy.fetch(`${base}/oauth/token`);
    expect(await cancelled.clone().json()).toEqual(PENDING);
    await cancelled.body!.cancel();
    expect(cancelled.bodyUsed).toBe(true);
    await expect(cancelled.json()).rejects.toThrow(TypeError);
  });

  it("hands out each reader's bytes as its own", async () => {
    const answer = await policy.fetch(`${base}/oauth/token`);
    const copy = answer.clone();
    const first = new Uint8Array(await answer.arrayBuffer());
    first.fill(0);
    expect(await copy.json()).toEqual(PENDING);
  });

  it('clones an answer without a body as one without a body', async () => {
    const answer = await policy.fetch(`${base}/empty`);
    const copy = answer.clone();
    expect(copy.status).toBe(204);
    expect(copy.body).toBeNull();
    expect(copy.headers.get('x-kind')).toBe('empty');
    // A response without a body reads as empty, as often as asked, and is never used.
    expect(await answer.text()).toBe('');
    expect(await answer.text()).toBe('');
    expect((await answer.arrayBuffer()).byteLength).toBe(0);
    expect(answer.bodyUsed).toBe(false);
    await expect(answer.json()).rejects.toThrow(SyntaxError);
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
