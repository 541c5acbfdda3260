import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand, sandboxEnv, type RunningCommand } from './processes.ts';

/** `npm run sandbox` beyond loopback: never silent, never without the banner's secret. */


describe('npm run sandbox on a non-loopback address', () => {
  it('refuses to start without SANDBOX_EXPOSE=true, naming the variable, and exits 2', async () => {
    const run = runCommand('npm', ['run', 'sandbox'], await sandboxEnv({ SANDBOX_HOST: '0.0.0.0' }));
    const { code } = await run.exited;
    expect(code).toBe(2);
    expect(run.stderr()).toContain('SANDBOX_EXPOSE=true');
    expect(run.output()).not.toContain('is ready');
  });

  describe('with SANDBOX_EXPOSE=true', () => {
    let env: Record<string, string>;
    let sandbox: RunningCommand;
    let control: string;
    let secret: string;

    beforeAll(async () => {
      env = await sandboxEnv({ SANDBOX_HOST: '0.0.0.0', SANDBOX_EXPOSE: 'true' });
      control = `http://127.0.0.1:${env.TENANT_PORT}/control`;
      sandbox = runCommand('npm', ['run', 'sandbox'], env);
      await sandbox.waitForOutput(/Headless Agent Auth Sandbox is ready/, 90_000);
      secret = /guardian\?user_id=auth0%7Cjdoe#secret=([A-Za-z0-9_-]{43})/.exec(sandbox.stdout())?.[1] ?? '';
    }, 120_000);

    afterAll(async () => {
      if (sandbox?.groupAlive()) {
        sandbox.signalGroup('SIGKILL');
        await sandbox.exited;
      }
    });

    it('warns, naming what is reachable from the network', () => {
      const warning = sandbox.stderr();
      expect(warning).toContain('WARNING: SANDBOX_EXPOSE=true and SANDBOX_HOST=0.0.0.0');
      for (const part of ['control API and Guardian page', 'mock-gemini', 'the HR API', 'the HR Agent', 'the flow console', env.TENANT_PORT as string]) {
        expect(warning).toContain(part);
      }
    });

    it('shows a fresh secret in the Guardian page link of the banner, and nowhere in the services’ own lines', () => {
      expect(secret).toHaveLength(43);
      // The Guardian, mailbox and flow console links, and the control API line.
      expect(sandbox.output().split(secret).length - 1).toBe(4);
      expect(sandbox.stdout()).toContain(`:${env.FLOW_CONSOLE_PORT}/#secret=${secret}`);
    });

    it('refuses the control API without the secret, and answers with it', async () => {
      const refused = await fetch(`${control}/users`);
      expect(refused.status).toBe(403);
      expect(await refused.json()).toMatchObject({ error: 'control_secret_required' });
      const decided = await fetch(`${control}/requests/anything/approve`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      expect(decided.status).toBe(403);
      const answered = await fetch(`${control}/users`, { headers: { 'x-control-secret': secret } });
      expect(answered.status).toBe(200);
    });

    it('refuses the flow console’s API without the secret, and answers with it', async () => {
      const consoleApi = `http://127.0.0.1:${env.FLOW_CONSOLE_PORT}/api/tasks`;
      expect((await fetch(consoleApi)).status).toBe(403);
      expect((await fetch(consoleApi, { headers: { 'x-control-secret': secret } })).status).toBe(200);
    });
  });
});
