import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildSandbox, builtEntry } from '../build.mjs';
import { nodeArgs } from '../services.ts';
import { freePorts, repoRoot, runCommand } from './processes.ts';

/** Each service's own `main`, run as `npm run sandbox` runs it: from the build. */
let buildDir: string;
beforeAll(async () => {
  buildDir = await buildSandbox();
});
const built = (entry: string) => nodeArgs({ entry, nodeFlags: [] }, buildDir);

const MAINS = ['mock-guardian/main.ts', 'mock-gemini/main.ts', 'hr-api/main.ts', 'agent/main.ts', 'sandbox/flow-console/main.ts'];
const PORT_VARIABLE: Record<string, string> = {
  'mock-guardian/main.ts': 'TENANT_PORT',
  'mock-gemini/main.ts': 'MOCK_GEMINI_PORT',
  'hr-api/main.ts': 'HR_API_PORT',
  'agent/main.ts': 'HR_AGENT_PORT',
  'sandbox/flow-console/main.ts': 'FLOW_CONSOLE_PORT',
};

// Tests run concurrently here: each uses its own context's onTestFinished (the global one may attach to another test).
describe.concurrent('a service started on its own', () => {
  for (const main of MAINS) {
    it(`${main} says its port is taken and exits 1`, async () => {
      const [port] = await freePorts(1);
      const blocker = createServer().listen(port, '127.0.0.1');
      await new Promise((r) => blocker.once('listening', r));
      try {
        const run = runCommand(process.execPath, built(main), { [PORT_VARIABLE[main]!]: String(port) });
        const { code } = await run.exited;
        expect(code).toBe(1);
        expect(run.stderr()).toContain(`Cannot listen on 127.0.0.1:${port}: the port is already in use.`);
      } finally {
        blocker.close();
      }
    });

    it(`${main} names a malformed variable and exits 2`, async () => {
      const run = runCommand(process.execPath, built(main), { IDENTITY_BACKEND: 'okta' });
      const { code } = await run.exited;
      expect(code).toBe(2);
      expect(run.stderr()).toContain('IDENTITY_BACKEND must be one of local, auth0');
    });
  }

  // Ctrl-C reaches every process of the terminal's group, and `npm run sandbox`'s launcher passes it on again: a
  // service still closing (the tenant, its database) must not die of the second one.
  for (const main of MAINS) {
    it(`${main} stops with exit 0 when SIGINT comes twice`, async ({ onTestFinished }) => {
      const [port] = await freePorts(1);
      const stateDir = mkdtempSync(join(tmpdir(), 'service-main-'));
      onTestFinished(() => rmSync(stateDir, { recursive: true, force: true }));
      const run = runCommand(process.execPath, built(main), { [PORT_VARIABLE[main]!]: String(port), SANDBOX_STATE_DIR: stateDir });
      await run.waitForOutput(new RegExp(`127\\.0\\.0\\.1:${port}`));
      // Signals sent together may arrive as one: SIGINT again and again until the process is gone.
      const again = setInterval(() => run.child.exitCode === null && run.child.signalCode === null && run.child.kill('SIGINT'), 1);
      try {
        run.child.kill('SIGINT');
        expect(await run.exited).toEqual({ code: 0, signal: null });
      } finally {
        clearInterval(again);
      }
    });
  }

  // What only some runs use waits for its first use: pg (a PostgreSQL server), the model's client (a question),
  // undici (the agent's first call out, the tenant's first ping). Each service listens without them.
  let later: string[] | undefined;
  /** The built modules that hold undici and the model's client. */
  const loadedLater = () => {
    if (later) return later;
    const files = readdirSync(buildDir, { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.js'));
    const text = new Map(files.map((file) => [file, readFileSync(join(buildDir, file), 'utf8')]));
    // esbuild heads each bundled package file with a comment naming it.
    const holding = (path: string) => files.filter((file) => text.get(file)!.includes(`// node_modules/${path}`));
    return (later = [...holding('undici/index.js'), ...holding('@google/genai/')].map((file) => pathToFileURL(join(buildDir, file)).href));
  };
  it.for(MAINS)('%s serves before it loads pg, undici or the model client', async (main, { onTestFinished }) => {
    const waiting = loadedLater();
    expect(waiting).toHaveLength(2);
    const [port] = await freePorts(1);
    const stateDir = mkdtempSync(join(tmpdir(), 'service-main-'));
    onTestFinished(() => rmSync(stateDir, { recursive: true, force: true }));
    const loads = join(stateDir, 'loads.txt');
    const args = ['--import', new URL('record-loads.mjs', import.meta.url).href, ...built(main)];
    const run = runCommand(process.execPath, args, { [PORT_VARIABLE[main]!]: String(port), SANDBOX_STATE_DIR: stateDir, RECORD_LOADS: loads });
    onTestFinished(async () => {
      run.child.kill('SIGTERM');
      await run.exited;
    });
    await run.waitForOutput(new RegExp(`127\\.0\\.0\\.1:${port}`));
    const loaded = readFileSync(loads, 'utf8').split('\n');
    expect(loaded).toContain(pathToFileURL(builtEntry(buildDir, main)).href);
    for (const url of waiting) expect(loaded).not.toContain(url);
    // pg's client (the embedded database's thread uses only its value helpers, pg/lib/utils.js).
    expect(loaded).not.toContain(pathToFileURL(join(repoRoot, 'node_modules', 'pg', 'lib', 'index.js')).href);
  });

  it('stops on SIGTERM with exit 0', async () => {
    const [port] = await freePorts(1);
    const run = runCommand(process.execPath, built('hr-api/main.ts'), { HR_API_PORT: String(port) });
    await run.waitForOutput(/Staff0 HR API listening on http:\/\/127\.0\.0\.1:\d+/);
    run.child.kill('SIGTERM');
    expect((await run.exited).code).toBe(0);
  });
});
