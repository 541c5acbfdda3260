import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRunning } from './cache.mjs';

/**
 * `<SANDBOX_STATE_DIR>/run.json`: where the running `npm run sandbox` serves,
 * so `npm run client` finds it when the sandbox was started with other ports
 * or an HTTPS tenant and the client's environment names neither. It holds
 * URLs and a CA path only, never a secret.
 */

export interface RunningSandbox {
  /** The `npm run sandbox` process; a file whose process is gone is stale. */
  pid: number;
  backend: 'local' | 'auth0';
  agentUrl: string;
  /** The identity backend's issuer, with Auth0's trailing slash. */
  issuer: string;
  /** The local CA that signed an HTTPS tenant's certificate. */
  caCertPath: string | undefined;
}

export function runFilePath(stateDir: string): string {
  return join(stateDir, 'run.json');
}

/** Writes the file and returns the function that removes it (only while it is still this process's). */
export function writeRunFile(stateDir: string, running: RunningSandbox): () => void {
  const path = runFilePath(stateDir);
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(path, `${JSON.stringify(running, null, 2)}\n`, { mode: 0o644 });
  return () => {
    if (readRunFile(stateDir, () => true)?.pid === running.pid) rmSync(path, { force: true });
  };
}

/** The running sandbox described in `stateDir`, if the file is there, well formed and its process alive. */
export function readRunFile(stateDir: string, alive: (pid: number) => boolean = isRunning): RunningSandbox | undefined {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(runFilePath(stateDir), 'utf8'));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { pid, backend, agentUrl, issuer, caCertPath } = value as Record<string, unknown>;
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0) return undefined;
  if (backend !== 'local' && backend !== 'auth0') return undefined;
  if (typeof agentUrl !== 'string' || !URL.canParse(agentUrl)) return undefined;
  if (typeof issuer !== 'string' || !URL.canParse(issuer)) return undefined;
  if (caCertPath !== undefined && typeof caCertPath !== 'string') return undefined;
  if (!alive(pid)) return undefined;
  return { pid, backend, agentUrl, issuer, caCertPath };
}
