import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { type Browser, chromium, type LaunchOptions } from 'playwright';

/**
 * Which Chromium the browser tests and scenarios drive, in this order:
 * Playwright's own build when it is downloaded (the version Playwright is made
 * for); otherwise, when the test command may fetch it, Playwright's own
 * download; otherwise a distro build (offline CI, images Playwright has no
 * build for). Only when none works do the browser tests fail, never skip.
 */

/** Where a system Chromium lives on Debian/Ubuntu. */
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
      "No Chromium found for the browser tests: Playwright's own is not downloaded and could not be fetched " +
        '(is the network reachable?), and no system Chromium is installed. Install one with ' +
        `\`npx playwright install chromium\` or \`apt-get install chromium\` (Debian/Ubuntu). Looked for: Playwright's own browser, ${tried.join(', ')}.`,
      { cause },
    );
    this.name = 'BrowserUnavailableError';
  }
}

export type ChromiumChoice =
  | { source: 'playwright'; downloaded: boolean }
  | { source: 'system'; executablePath: string };

/** What `chooseChromium` asks of the machine; tests inject their own. */
export interface ChromiumProbes {
  /** Whether Playwright's own Chromium is downloaded and starts. */
  playwrightChromium(): Promise<boolean>;
  /** Fetches Playwright's own Chromium with its installer; false when that fails (offline, no build for this OS). */
  downloadPlaywrightChromium(): Promise<boolean>;
  /** The path of an installed system Chromium, if any. */
  systemChromium(): string | undefined;
}

export interface ChooseOptions {
  /** Whether fetching Playwright's Chromium is allowed (the test command's set-up: yes; each test file: no). */
  download: boolean;
  /** System executables named in the error. */
  candidates?: readonly string[];
}

/**
 * Playwright's own Chromium when it is downloaded, else the system's when one is installed, else Playwright's
 * download when allowed and the network gives it. A system browser comes before a download: a CI runner that
 * installed one (`.ci/run`) never waits on a download its network may not allow.
 */
export async function chooseChromium(probes: ChromiumProbes, options: ChooseOptions): Promise<ChromiumChoice> {
  if (await probes.playwrightChromium()) return { source: 'playwright', downloaded: false };
  const system = probes.systemChromium();
  if (system !== undefined) return { source: 'system', executablePath: system };
  let downloadError: unknown;
  if (options.download) {
    try {
      if ((await probes.downloadPlaywrightChromium()) && (await probes.playwrightChromium())) return { source: 'playwright', downloaded: true };
    } catch (error) {
      downloadError = error;
    }
  }
  throw new BrowserUnavailableError(options.candidates ?? SYSTEM_CHROMIUM_PATHS, downloadError);
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

/** Starts Playwright's own Chromium once and closes it: the one reliable answer to "is it there and does it run". */
async function playwrightChromiumStarts(): Promise<boolean> {
  try {
    await (await chromium.launch({ headless: true })).close();
    return true;
  } catch {
    return false;
  }
}

/** Longest a download may take before it counts as impossible here. */
const DOWNLOAD_TIMEOUT_MS = 10 * 60_000;

/** `playwright install chromium`, with the CLI of the Playwright version this project uses. */
function installPlaywrightChromium(report: (line: string) => void): Promise<boolean> {
  const cli = join(dirname(createRequire(import.meta.url).resolve('playwright/package.json')), 'cli.js');
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, 'install', 'chromium'], { stdio: ['ignore', 'pipe', 'pipe'], timeout: DOWNLOAD_TIMEOUT_MS });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', () => resolve(false));
    child.once('close', (code) => {
      const lines = output.trim().split('\n');
      const reason = lines.find((line) => /error/i.test(line)) ?? lines.at(-1) ?? `exit ${code}`;
      if (code !== 0) report(`Could not download Playwright's Chromium: ${reason.trim()}`);
      resolve(code === 0);
    });
  });
}

/** The machine's own probes: launching, Playwright's installer and the distro paths. */
export function machineProbes(options: { candidates?: readonly string[]; report?: (line: string) => void } = {}): ChromiumProbes {
  const report = options.report ?? (() => undefined);
  return {
    playwrightChromium: playwrightChromiumStarts,
    downloadPlaywrightChromium: () => {
      report("Downloading Playwright's Chromium for the browser tests (npx playwright install chromium)…");
      return installPlaywrightChromium(report);
    },
    systemChromium: () => findSystemChromium(options.candidates),
  };
}

/**
 * Makes sure a Chromium is there before the browser tests run (the test command's
 * global set-up): Playwright's own if downloaded, else the system's, else
 * Playwright's download when the network allows it.
 */
export async function ensureChromium(report: (line: string) => void): Promise<ChromiumChoice> {
  return chooseChromium(machineProbes({ report }), { download: true });
}

export interface LaunchChromiumOptions {
  /** Defaults to true; set false to watch a scenario run. */
  headless?: boolean;
  /** System executables to try, in order. */
  candidates?: readonly string[];
}

/**
 * Launches Chromium for Playwright, chosen as `chooseChromium` does without
 * downloading: Playwright's own when downloaded, otherwise the distro's. Throws
 * `BrowserUnavailableError` (never skips) when neither can start, so a missing
 * browser fails CI loudly.
 */
export async function launchChromium(options: LaunchChromiumOptions = {}): Promise<Browser> {
  const candidates = options.candidates ?? SYSTEM_CHROMIUM_PATHS;
  const launch: LaunchOptions = { headless: options.headless ?? true };
  let own: Browser | undefined;
  let ownError: unknown;
  const probes: ChromiumProbes = {
    // The probe's launch is the launch: no second start of a browser that is there.
    playwrightChromium: async () => {
      try {
        own = await chromium.launch(launch);
        return true;
      } catch (error) {
        ownError = error;
        return false;
      }
    },
    downloadPlaywrightChromium: async () => false,
    systemChromium: () => findSystemChromium(candidates),
  };
  let choice: ChromiumChoice;
  try {
    choice = await chooseChromium(probes, { download: false, candidates });
  } catch (error) {
    // Playwright reports a missing download as "Executable doesn't exist at …"; any other failure is the one to show.
    const missing = ownError instanceof Error && /Executable doesn't exist|playwright install/i.test(ownError.message);
    throw missing || ownError === undefined ? error : ownError;
  }
  if (choice.source === 'system') return chromium.launch({ ...launch, executablePath: choice.executablePath, args: [...SYSTEM_CHROMIUM_ARGS] });
  return own ?? chromium.launch(launch);
}
