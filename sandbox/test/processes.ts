import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../cache.mjs';

/** Test support for running the project's commands as a user would: as child processes. */

export { repoRoot };

/** Ports the OS just handed out, for services that must be told their port before they start. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => {
      const server = createServer();
      return new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve(server));
      });
    }),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** The environment of an `npm run sandbox` under test: five free ports and a new state folder, plus `extra`. */
export async function sandboxEnv(extra: Record<string, string> = {}): Promise<Record<string, string>> {
  const [agent, hrApi, tenant, gemini, flowConsole] = await freePorts(5);
  return {
    HR_AGENT_PORT: String(agent),
    HR_API_PORT: String(hrApi),
    TENANT_PORT: String(tenant),
    MOCK_GEMINI_PORT: String(gemini),
    FLOW_CONSOLE_PORT: String(flowConsole),
    SANDBOX_STATE_DIR: mkdtempSync(join(tmpdir(), 'sandbox-state-')),
    ...extra,
  };
}

export interface RunningCommand {
  child: ChildProcess;
  output(): string;
  stdout(): string;
  stderr(): string;
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends a signal to the whole process group, as a terminal's Ctrl-C does. */
  signalGroup(signal: NodeJS.Signals): void;
  groupAlive(): boolean;
}

export function runCommand(
  command: string,
  args: string[],
  env: Record<string, string>,
  /** `keepChars`: keep only the end of each output stream, for long-running services that log much. */
  options: { stdin?: boolean; keepChars?: number } = {},
): RunningCommand {
  const limit = options.keepChars;
  const tail = (text: string) => (limit !== undefined && text.length > limit ? text.slice(-limit) : text);
  // Cut only once the held text is twice the limit: each cut copies it, so a service that logs a line per
  // request costs its reader a copy per `limit` characters, not one per line.
  const append = (held: string, chunk: Buffer) => {
    const text = held + chunk.toString();
    return limit !== undefined && text.length > 2 * limit ? tail(text) : text;
  };
  const child = spawn(command, args, {
    cwd: repoRoot,
    env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1', ...env },
    detached: true,
    stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters = new Set<() => void>();
  const notify = () => waiters.forEach((w) => w());
  child.stdout!.on('data', (d: Buffer) => {
    stdout = append(stdout, d);
    notify();
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr = append(stderr, d);
    notify();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => {
      notify();
      resolve({ code, signal });
    }),
  );
  const pgid = child.pid!;
  return {
    child,
    output: () => tail(stdout) + tail(stderr),
    stdout: () => tail(stdout),
    stderr: () => tail(stderr),
    exited,
    waitForOutput(pattern, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (pattern.test(stdout + stderr)) {
            cleanup();
            resolve();
          } else if (child.exitCode !== null || child.signalCode !== null) {
            cleanup();
            reject(new Error(`exited before ${pattern}:\n${stdout}${stderr}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${pattern}:\n${stdout}${stderr}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    signalGroup(signal) {
      try {
        process.kill(-pgid, signal);
      } catch {
        // already gone
      }
    },
    groupAlive() {
      try {
        process.kill(-pgid, 0);
        return true;
      } catch {
        return false;
      }
    },
  };
}

export async function waitUntil<T>(probe: () => Promise<T | undefined>, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
