import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { fetchTrusting } from '../agent-client.ts';
import { freePorts, runCommand, sandboxEnv, waitUntil, type RunningCommand } from './processes.ts';

/**
 * `npm run sandbox` and `npm run client` exactly as a user runs them, as
 * child processes; the employee decides through the tenant's control API.
 */

const QUESTION = 'Does John Doe with email jdoe@staff0.com work at Staff0?';
/**
 * Each test starts Node processes (tsx compiles on start): on a machine busy
 * with other work that takes many seconds, so every wait here is on a state,
 * bounded generously rather than by Vitest's default.
 */
const PROCESS_TEST_TIMEOUT = { timeout: 120_000 };

/** The services `npm run sandbox` started in its process group: each one's pid and main module. */
function sandboxServices(sandbox: RunningCommand): { pid: number; main: string }[] {
  return execFileSync('ps', ['-o', 'pid=,pgid=,args=', '-e'], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter(([, pgid, ...args]) => Number(pgid) === sandbox.child.pid && args.at(-1)?.endsWith('/main.js'))
    .map(([pid, , ...args]) => ({ pid: Number(pid), main: args.at(-1) as string }));
}

interface RequestView {
  id: string;
  user_id: string;
  status: string;
}


describe('npm run sandbox with npm run client', PROCESS_TEST_TIMEOUT, () => {
  let env: Record<string, string>;
  let sandbox: RunningCommand;
  let control: string;

  const pending = (userId: string) =>
    waitUntil(async () => {
      const res = await fetch(`${control}/requests?user_id=${encodeURIComponent(userId)}&status=pending`);
      const body = (await res.json()) as { requests: RequestView[] };
      return body.requests[0];
    }, 60_000);
  const decide = async (id: string, decision: 'approve' | 'deny') => {
    const res = await fetch(`${control}/requests/${id}/${decision}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(res.status).toBe(200);
  };
  const client = (args: string[], extraEnv: Record<string, string> = {}) =>
    runCommand(process.execPath, ['--import', 'tsx', 'sandbox/client.ts', ...args], { ...env, ...extraEnv });

  beforeAll(async () => {
    env = await sandboxEnv();
    control = `http://127.0.0.1:${env.TENANT_PORT}/control`;
    sandbox = runCommand('npm', ['run', 'sandbox'], env);
    await sandbox.waitForOutput(/Headless Agent Auth Sandbox is ready/, 90_000);
  }, 120_000);

  afterAll(async () => {
    if (sandbox.groupAlive()) {
      sandbox.signalGroup('SIGKILL');
      await sandbox.exited;
    }
  });

  it('prints one banner with the backends, the Guardian page, the agent card and the command to try', () => {
    const out = sandbox.stdout();
    expect(out).toContain('local tenant');
    expect(out).toContain(`http://127.0.0.1:${env.TENANT_PORT}/guardian`);
    expect(out).toContain('mock-gemini');
    expect(out).toContain(`http://127.0.0.1:${env.HR_AGENT_PORT}/.well-known/agent-card.json`);
    expect(out).toContain(`npm run client -- "${QUESTION}"`);
    expect(out.match(/is ready/g)).toHaveLength(1);
  });

  it('starts every service with two malloc arenas unless the environment names its own', () => {
    const services = sandboxServices(sandbox);
    expect(services).toHaveLength(5);
    const expected = `MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX ?? '2'}`;
    for (const { pid } of services) expect(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')).toContain(expected);
  });

  it('answers the sample question after the employee approves, and exits 0', async () => {
    const run = runCommand('npm', ['run', 'client', '--', QUESTION], env);
    const request = await pending('auth0|jdoe');
    await run.waitForOutput(/AUTH_REQUIRED/);
    await decide(request.id, 'approve');
    const { code } = await run.exited;
    expect(run.stdout()).toMatch(/WORKING[\s\S]*AUTH_REQUIRED[\s\S]*COMPLETED/);
    expect(run.stdout()).toMatch(/Yes, John Doe is an active employee/);
    expect(code).toBe(0);
  });

  it('exits 4 with the reason on stderr when the employee denies', async () => {
    const run = client([QUESTION]);
    await decide((await pending('auth0|jdoe')).id, 'deny');
    const { code } = await run.exited;
    expect(code).toBe(4);
    expect(run.stderr()).toMatch(/REJECTED.*denied/i);
  });

  it('exits 5 when the employee has no push enrolment', async () => {
    const run = client(['Is npark@staff0.com an active employee?']);
    const { code } = await run.exited;
    expect(code).toBe(5);
    expect(run.stderr()).toMatch(/FAILED/);
  });

  it('exits 3 and prints the question when input is needed and there is no terminal', async () => {
    const run = client(['Does my colleague still work at Staff0?']);
    const { code } = await run.exited;
    expect(code).toBe(3);
    expect(run.stderr()).toMatch(/work email or employee id/i);
  });

  it('prints machine-readable events with --json', async () => {
    const run = client(['--json', QUESTION]);
    await decide((await pending('auth0|jdoe')).id, 'approve');
    const { code } = await run.exited;
    expect(code).toBe(0);
    const lines = run
      .stdout()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { kind: string; state?: string; finalState?: string; answer?: string });
    expect(lines.filter((l) => l.kind === 'state').map((l) => l.state)).toContain('AUTH_REQUIRED');
    for (const line of lines.filter((l) => l.kind === 'state')) {
      expect(Object.keys(line).sort()).toEqual(expect.arrayContaining(['contextId', 'kind', 'state', 'taskId']));
      expect(Object.keys(line).every((key) => ['contextId', 'kind', 'message', 'state', 'taskId'].includes(key))).toBe(true);
    }
    expect(lines.at(-1)).toMatchObject({ kind: 'result', finalState: 'COMPLETED' });
    expect(lines.at(-1)?.answer).toMatch(/^Yes/);
  });

  it('on a terminal, keeps one live line while consent is pending: who approves, on which channel, the time left, ticking', async () => {
    const question = 'Is jsmith@staff0.com an active employee?';
    const run = runCommand('script', ['-qfec', `"${process.execPath}" --import tsx sandbox/client.ts "${question}"`, '/dev/null'], env, { stdin: true });
    const live = /\r\x1b\[2K {2}⏳ jsmith@staff0\.com must approve by Guardian push · (\d+:\d\d) left/;
    const timesLeft = () => [...run.stdout().matchAll(new RegExp(live.source, 'g'))].map((m) => m[1]);
    await run.waitForOutput(live);
    const request = await pending('auth0|jsmith');
    // The line is redrawn with the time still left: wait until it has ticked at least once.
    await waitUntil(async () => (new Set(timesLeft()).size > 1 ? true : undefined), 30_000);
    expect(timesLeft().every((t) => /^[0-4]:[0-5]\d$|^5:00$/.test(t!))).toBe(true);
    await decide(request.id, 'approve');
    const { code } = await run.exited;
    expect(code).toBe(0);
    const screen = run.stdout().replace(/\r\n/g, '\n');
    // Each state change is a line of its own, after the live line is erased.
    expect(screen).toMatch(/⏳ AUTH_REQUIRED {2}Waiting for jsmith@staff0\.com[^\n]*\n/);
    expect(screen).toMatch(/\r\x1b\[2K• WORKING\n/);
    expect(screen).toMatch(/✔ COMPLETED/);
    expect(screen).toContain('Yes, Jane Smith is an active employee');
  });

  it('prints plain lines only, no live line, carriage return or escape sequence, when stdout is not a terminal', async () => {
    const run = client(['Is akhan@staff0.com an active employee?']);
    const request = await pending('auth0|akhan');
    await run.waitForOutput(/AUTH_REQUIRED/);
    await decide(request.id, 'approve');
    const { code } = await run.exited;
    expect(code).toBe(0);
    expect(run.output()).not.toMatch(/[\r\x1b]/);
    expect(run.stdout()).not.toContain('must approve');
    expect(run.stdout()).toMatch(/^⏳ AUTH_REQUIRED {2}Waiting for akhan@staff0\.com to approve .* on their phone \(Guardian push notification\)\. The request expires at \S+\.$/m);
    expect(run.stdout()).toMatch(/^• WORKING$[\s\S]*^✔ COMPLETED/m);
  });

  it('cancels the pending task on Ctrl-C while waiting for approval, and exits 6', async () => {
    const run = client(['Is jsmith@staff0.com an active employee?']);
    await run.waitForOutput(/AUTH_REQUIRED/);
    run.signalGroup('SIGINT');
    const { code } = await run.exited;
    expect(code).toBe(6);
    expect(run.stderr()).toContain('Canceled the pending task.');
  });

  it('without a question, opens a prompt on a terminal and keeps the conversation going through INPUT_REQUIRED', async () => {
    // `script` gives the client a terminal, as a person at a shell has.
    const run = runCommand('script', ['-qfec', `"${process.execPath}" --import tsx sandbox/client.ts`, '/dev/null'], env, { stdin: true });
    await run.waitForOutput(/Ask a question/);
    run.child.stdin!.write('Does my colleague work at Staff0?\n');
    await run.waitForOutput(/INPUT_REQUIRED {2}Which employee do you mean/);
    run.child.stdin!.write('mgarcia@staff0.com\n'); // Maria's tenant policy approves after 1.5 s
    await run.waitForOutput(/Yes, Maria Garcia is an active employee/);
    run.child.stdin!.write('\n');
    const { code } = await run.exited;
    expect(code).toBe(0);
    expect(run.stdout().replace(/\r/g, '')).toMatch(/INPUT_REQUIRED[\s\S]*AUTH_REQUIRED[\s\S]*COMPLETED/);
    expect(run.stdout().match(/INPUT_REQUIRED/g)).toHaveLength(1);
  });

  it('exits 7 when the identity backend refuses the A2A Client', async () => {
    const run = client([QUESTION], { A2A_CLIENT_AUTH0_CLIENT_SECRET: 'not-the-secret' });
    const { code } = await run.exited;
    expect(code).toBe(7);
    expect(run.stderr()).toMatch(/invalid_client/);
  });

  it('exits 1 with a hint when no agent answers', async () => {
    const [unused] = await freePorts(1);
    const run = client([QUESTION], { HR_AGENT_PORT: String(unused) });
    const { code } = await run.exited;
    expect(code).toBe(1);
    expect(run.stderr()).toMatch(/Could not reach the HR Agent.*npm run sandbox/);
  });

  it('stops every process on Ctrl-C, leaving none behind', async () => {
    sandbox.signalGroup('SIGINT');
    const { code, signal } = await sandbox.exited;
    // npm re-raises the SIGINT it received once its script is done, as shells expect of Ctrl-C.
    expect(code === 0 || signal === 'SIGINT').toBe(true);
    expect(sandbox.stdout()).toContain('Stopping the sandbox (SIGINT)');
    // Bounded by the services' own close deadline (15 s), with room for a machine busy with other work.
    await waitUntil(async () => (sandbox.groupAlive() ? undefined : true), 60_000);
    for (const port of [env.HR_AGENT_PORT, env.HR_API_PORT, env.TENANT_PORT, env.MOCK_GEMINI_PORT, env.FLOW_CONSOLE_PORT]) {
      await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
    }
  });
});

describe("the banner's client command", PROCESS_TEST_TIMEOUT, () => {
  it('works exactly as printed when the sandbox serves an HTTPS tenant on other ports, and exits 0 after approval', async () => {
    const env = await sandboxEnv({ TENANT_HTTPS: 'true' });
    const sandbox = runCommand('npm', ['run', 'sandbox'], env);
    onTestFinished(async () => {
      if (!sandbox.groupAlive()) return;
      sandbox.signalGroup('SIGKILL');
      await sandbox.exited;
    });
    await sandbox.waitForOutput(/is ready/, 90_000);
    const printed = sandbox
      .stdout()
      .split('\n')
      .map((line) => line.trim())
      .find((line) => line.includes('npm run client -- '));
    expect(printed).toMatch(/npm run client -- "Does John Doe with email jdoe@staff0\.com work at Staff0\?"$/);

    // A new terminal: none of the sandbox's variables, and no CA trusted beyond the system's.
    const run = runCommand('sh', ['-c', printed!], { NODE_EXTRA_CA_CERTS: '' });
    const trusting = fetchTrusting(readFileSync(join(env.SANDBOX_STATE_DIR!, 'ca', 'ca.pem'), 'utf8'));
    const control = `https://localhost:${env.TENANT_PORT}/control`;
    const request = await waitUntil(async () => {
      const res = await trusting(`${control}/requests?user_id=${encodeURIComponent('auth0|jdoe')}&status=pending`);
      return ((await res.json()) as { requests: RequestView[] }).requests[0];
    }, 60_000);
    const approved = await trusting(`${control}/requests/${request.id}/approve`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(approved.status).toBe(200);
    const { code } = await run.exited;
    expect(run.output()).toMatch(/Yes, John Doe is an active employee/);
    expect(code).toBe(0);
  });
});

describe('npm run sandbox when a service dies', PROCESS_TEST_TIMEOUT, () => {
  it('says which one and stops the rest with a non-zero exit', async () => {
    const sandbox = runCommand('npm', ['run', 'sandbox'], await sandboxEnv());
    onTestFinished(() => sandbox.signalGroup('SIGKILL'));
    await sandbox.waitForOutput(/is ready/, 90_000);
    const hrApi = sandboxServices(sandbox).find(({ main }) => main.endsWith('/hr-api/main.js'));
    expect(hrApi).toBeDefined();
    process.kill(hrApi!.pid, 'SIGKILL');
    const { code } = await sandbox.exited;
    expect(code).not.toBe(0);
    expect(sandbox.stderr()).toMatch(/The Staff0 HR API stopped .*the sandbox stopped with it/);
    await waitUntil(async () => (sandbox.groupAlive() ? undefined : true), 60_000);
  });
});

describe('npm run sandbox refusing to start', PROCESS_TEST_TIMEOUT, () => {
  it('names the variable when a port is already in use, and exits non-zero', async () => {
    const env = await sandboxEnv();
    const blocker = createServer().listen(Number(env.HR_API_PORT), '127.0.0.1');
    await new Promise((r) => blocker.once('listening', r));
    try {
      const run = runCommand('npm', ['run', 'sandbox'], env);
      const { code } = await run.exited;
      expect(code).not.toBe(0);
      expect(run.stderr()).toContain(`Port ${env.HR_API_PORT} for the Staff0 HR API is already in use`);
      expect(run.stderr()).toContain('HR_API_PORT');
    } finally {
      blocker.close();
    }
  });

  it('lists every missing auth0 variable at once', async () => {
    const run = runCommand('npm', ['run', 'sandbox'], { ...(await sandboxEnv()), IDENTITY_BACKEND: 'auth0' });
    const { code } = await run.exited;
    expect(code).toBe(2);
    for (const name of ['HR_AUTH0_DOMAIN', 'A2A_CLIENT_AUTH0_CLIENT_ID', 'HR_AGENT_AUTH0_CLIENT_SECRET']) {
      expect(run.stderr()).toContain(`${name} is required`);
    }
  });

  it('refuses a malformed port', async () => {
    const run = runCommand('npm', ['run', 'sandbox'], { ...(await sandboxEnv()), TENANT_PORT: 'ten' });
    const { code } = await run.exited;
    expect(code).toBe(2);
    expect(run.stderr()).toContain('TENANT_PORT must be a port number');
  });
});
