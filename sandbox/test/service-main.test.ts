import { createServer } from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildSandbox } from '../build.mjs';
import { nodeArgs } from '../services.ts';
import { freePorts, runCommand } from './processes.ts';

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

  it('stops on SIGTERM with exit 0', async () => {
    const [port] = await freePorts(1);
    const run = runCommand(process.execPath, built('hr-api/main.ts'), { HR_API_PORT: String(port) });
    await run.waitForOutput(/Staff0 HR API listening on http:\/\/127\.0\.0\.1:\d+/);
    run.child.kill('SIGTERM');
    expect((await run.exited).code).toBe(0);
  });
});
