import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { BrowserUnavailableError, chooseChromium, machineProbes } from '../../scenarios/browser.ts';
import { ensureLocalTls } from '../local-ca.ts';
import { repoRoot } from './processes.ts';

/** A failed download of Playwright's Chromium is not tried again for this long (each try costs seconds offline). */
const DOWNLOAD_RETRY_AFTER_MS = 24 * 3600_000;

/**
 * Gets a Chromium for the browser tests where it can (scenarios/browser.ts says in which order).
 * When none works, the browser tests fail with the install message; the other suites still run.
 */
async function ensureBrowser(stateDir: string): Promise<void> {
  const failedMarker = join(stateDir, 'playwright-download-failed');
  const probes = machineProbes({ report: (line) => console.log(line) });
  const recentlyFailed = existsSync(failedMarker) && Date.now() - statSync(failedMarker).mtimeMs < DOWNLOAD_RETRY_AFTER_MS;
  try {
    const choice = await chooseChromium(
      {
        ...probes,
        downloadPlaywrightChromium: async () => {
          if (recentlyFailed) return false;
          const done = await probes.downloadPlaywrightChromium();
          if (!done) writeFileSync(failedMarker, `${new Date().toISOString()}\n`);
          return done;
        },
      },
      { download: true },
    );
    if (choice.source === 'system') console.log(`Browser tests use the system Chromium at ${choice.executablePath}.`);
    else if (choice.downloaded) console.log("Browser tests use Playwright's Chromium, just downloaded.");
  } catch (error) {
    if (!(error instanceof BrowserUnavailableError)) throw error;
    console.error(`${error.message}\n`);
  }
}

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
  mkdirSync(stateDir, { recursive: true });
  await ensureBrowser(stateDir);
  process.env.NODE_EXTRA_CA_CERTS = caCertPath;
  project.provide('tlsStateDir', stateDir);
}
