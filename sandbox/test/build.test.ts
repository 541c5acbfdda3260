import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildSandbox, builtEntry, repoRoot, SANDBOX_ENTRIES } from '../build.mjs';
import { loadConfig } from '../config.ts';
import { servicesFor } from '../services.ts';

describe('the build `npm run sandbox` runs', () => {
  it('holds every service the sandbox starts, in either backend and either model', () => {
    const local = servicesFor(loadConfig({ IDENTITY_BACKEND: 'local' }));
    const real = servicesFor(
      loadConfig({
        IDENTITY_BACKEND: 'auth0',
        HR_AUTH0_DOMAIN: 'staff0.example.auth0.com',
        HR_AGENT_AUTH0_CLIENT_ID: 'agent-client',
        HR_AGENT_AUTH0_CLIENT_SECRET: 'agent-secret',
        A2A_CLIENT_AUTH0_CLIENT_ID: 'caller-client',
        A2A_CLIENT_AUTH0_CLIENT_SECRET: 'caller-secret',
        GOOGLE_API_KEY: 'key',
      }),
    );
    expect(real.map((s) => s.name)).not.toContain('tenant');
    for (const service of [...local, ...real]) expect(SANDBOX_ENTRIES).toContain(service.entry);
    expect(SANDBOX_ENTRIES).toContain('sandbox/main.ts');
  });

  it('is one folder per version of the sources, shared by starts that build at the same time', async () => {
    const [first, second] = await Promise.all([buildSandbox(), buildSandbox()]);
    expect(second).toBe(first);
    expect(first).toContain('node_modules/.cache/');
    for (const entry of SANDBOX_ENTRIES) expect(existsSync(builtEntry(first!, entry))).toBe(true);
    // Assets are read beside the sources: `import.meta.url` is the source file's URL, not the bundle's.
    const built = readdirSync(first!, { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.js'))
      .map((file) => readFileSync(join(first!, file), 'utf8'))
      .join('\n');
    expect(built).not.toContain('import.meta.url');
    expect(built).toContain(JSON.stringify(pathToFileURL(join(repoRoot, 'mock-guardian', 'guardian-page.ts')).href));
    // The source maps (for NODE_OPTIONS=--enable-source-maps) name the sources where they are.
    const mapFile = `${builtEntry(first!, 'hr-api/main.ts')}.map`;
    const sources = (JSON.parse(readFileSync(mapFile, 'utf8')) as { sources: string[] }).sources;
    expect(sources.map((source) => resolve(dirname(mapFile), source))).toContain(join(repoRoot, 'hr-api', 'server.ts'));
  });
});
