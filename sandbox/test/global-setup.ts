import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { ensureLocalTls } from '../local-ca.ts';
import { repoRoot } from './processes.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The state folder holding the test CA (`<dir>/ca/ca.pem`) and server certificate. */
    tlsStateDir: string;
  }
}

/**
 * Runs once before the test workers start: makes the local CA that the HTTPS
 * tenant tests use and tells Node to trust it, exactly as the README tells a
 * user to (`NODE_EXTRA_CA_CERTS`). Workers and the processes they spawn inherit it.
 */
export default async function setup(project: TestProject): Promise<void> {
  const stateDir = join(repoRoot, '.sandbox', 'test');
  const { caCertPath } = await ensureLocalTls(stateDir);
  process.env.NODE_EXTRA_CA_CERTS = caCertPath;
  project.provide('tlsStateDir', stateDir);
}
