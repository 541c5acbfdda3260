import { accessSync, constants } from 'node:fs';
import { type Browser, chromium, type LaunchOptions } from 'playwright';

/**
 * Where a system Chromium lives on Debian/Ubuntu. Playwright cannot download
 * its own browser everywhere (offline CI, distro ARM images), so a distro
 * build is preferred when one is installed.
 */
export const SYSTEM_CHROMIUM_PATHS = ['/usr/bin/chromium', '/usr/bin/chromium-browser'] as const;

/** Flags a distro Chromium needs to run headless in containers and CI without phoning home. */
export const SYSTEM_CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
] as const;

export class BrowserUnavailableError extends Error {
  readonly code = 'browser_unavailable';
  constructor(readonly tried: readonly string[], cause: unknown) {
    super(
      'No Chromium found for the browser tests. Install one with `apt-get install chromium` (Debian/Ubuntu) ' +
        `or \`npx playwright install chromium\`. Looked for: ${tried.join(', ')}, then Playwright's own browser.`,
      { cause },
    );
    this.name = 'BrowserUnavailableError';
  }
}

export interface LaunchChromiumOptions {
  /** Defaults to true; set false to watch a scenario run. */
  headless?: boolean;
  /** System executables to try, in order. */
  candidates?: readonly string[];
}

/** The first candidate that exists and is executable, if any. */
export function findSystemChromium(candidates: readonly string[] = SYSTEM_CHROMIUM_PATHS): string | undefined {
  return candidates.find((path) => {
    try {
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Launches Chromium for Playwright: the distro's build when installed,
 * otherwise Playwright's own. Throws `BrowserUnavailableError` (never skips)
 * when neither can start, so a missing browser fails CI loudly.
 */
export async function launchChromium(options: LaunchChromiumOptions = {}): Promise<Browser> {
  const candidates = options.candidates ?? SYSTEM_CHROMIUM_PATHS;
  const launch: LaunchOptions = { headless: options.headless ?? true };
  const system = findSystemChromium(candidates);
  if (system !== undefined) {
    return chromium.launch({ ...launch, executablePath: system, args: [...SYSTEM_CHROMIUM_ARGS] });
  }
  try {
    return await chromium.launch(launch);
  } catch (error) {
    // Playwright reports a missing download as "Executable doesn't exist at …".
    if (error instanceof Error && /Executable doesn't exist|playwright install/i.test(error.message)) {
      throw new BrowserUnavailableError(candidates, error);
    }
    throw error;
  }
}
