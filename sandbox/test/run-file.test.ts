import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { namesServiceLocations } from '../config.ts';
import { readRunFile, runFilePath, writeRunFile } from '../run-file.ts';

/** How `npm run client` finds the running `npm run sandbox` when its environment does not say where it is. */

const running = {
  pid: process.pid,
  backend: 'local' as const,
  agentUrl: 'http://127.0.0.1:40001',
  issuer: 'https://localhost:40003/',
  caCertPath: '/tmp/state/ca/ca.pem',
};

describe('the run file', () => {
  it('tells the client the running sandbox’s agent, issuer and CA, and holds no secret', () => {
    const dir = mkdtempSync(join(tmpdir(), 'run-file-'));
    writeRunFile(dir, running);
    expect(readRunFile(dir)).toEqual(running);
    expect(readFileSync(runFilePath(dir), 'utf8')).not.toMatch(/secret/i);
  });

  it('is ignored once its sandbox process is gone, when missing, and when malformed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'run-file-'));
    expect(readRunFile(dir)).toBeUndefined();
    writeRunFile(dir, running);
    expect(readRunFile(dir, () => false)).toBeUndefined();
    writeFileSync(runFilePath(dir), JSON.stringify({ ...running, agentUrl: 'not a url' }));
    expect(readRunFile(dir)).toBeUndefined();
    writeFileSync(runFilePath(dir), '{');
    expect(readRunFile(dir)).toBeUndefined();
  });

  it('is removed when its sandbox stops, unless another sandbox has written its own since', () => {
    const dir = mkdtempSync(join(tmpdir(), 'run-file-'));
    const remove = writeRunFile(dir, running);
    remove();
    expect(readRunFile(dir)).toBeUndefined();
    const removeFirst = writeRunFile(dir, { ...running, pid: 1 });
    writeRunFile(dir, running);
    removeFirst();
    expect(readRunFile(dir)?.pid).toBe(process.pid);
  });
});

describe('whether the environment places the services itself', () => {
  it('does when it sets a port, URL, host, HTTPS or backend of the agent or identity backend; not for other settings', () => {
    expect(namesServiceLocations({})).toBe(false);
    expect(namesServiceLocations({ GEMINI_MODEL: 'x', HR_API_PORT: '1', SANDBOX_STATE_DIR: '/tmp/x', TENANT_PORT: ' ' })).toBe(false);
    for (const name of ['HR_AGENT_URL', 'HR_AGENT_PORT', 'SANDBOX_HOST', 'TENANT_PORT', 'TENANT_HTTPS', 'IDENTITY_BACKEND', 'HR_AUTH0_DOMAIN']) {
      expect(namesServiceLocations({ [name]: 'x' })).toBe(true);
    }
  });
});
