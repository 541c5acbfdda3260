import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { buildSandbox, builtEntry, repoRoot, SANDBOX_ENTRIES, UNBUNDLED_PACKAGES } from '../build.mjs';
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
    // The packages are in the bundles: what the built modules still import from outside is Node's own or a
    // package named to stay out, so Node's loader does not resolve the installed packages' files one by one.
    const specifiers = [
      // esbuild writes a module's static imports as statements of their own, at the start of a line.
      ...built.matchAll(/^import\s*(?:[^"';]*?\sfrom\s*)?["']([^"']+)["'];?$/gm),
      ...built.matchAll(/\b(?:import|__require)\(\s*["']([^"'./][^"']*)["']\s*\)/g),
    ].map((m) => m[1]!);
    const imported = new Set(specifiers.filter((specifier) => !specifier.startsWith('.')));
    const outside = [...imported].filter((specifier) => !specifier.startsWith('node:') && !builtinModules.includes(specifier));
    expect(outside.length).toBeGreaterThan(0);
    // A package that is not installed is an optional one its user tries in a `try` (ws's bufferutil).
    const installed = (name: string) => existsSync(join(repoRoot, 'node_modules', name, 'package.json'));
    for (const specifier of outside) {
      const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!;
      if (installed(name)) expect(UNBUNDLED_PACKAGES).toContain(name);
    }
    expect(imported).not.toContain('express');
    expect(imported).not.toContain('oidc-provider');
    // ES modules, which Node knows without reading each one to guess.
    expect(JSON.parse(readFileSync(join(first!, 'package.json'), 'utf8'))).toEqual({ type: 'module' });
    expect(built).toContain(JSON.stringify(pathToFileURL(join(repoRoot, 'mock-guardian', 'guardian-page.ts')).href));
    // The source maps (for NODE_OPTIONS=--enable-source-maps) name the sources where they are.
    const mapFile = `${builtEntry(first!, 'hr-api/main.ts')}.map`;
    const sources = (JSON.parse(readFileSync(mapFile, 'utf8')) as { sources: string[] }).sources;
    expect(sources.map((source) => resolve(dirname(mapFile), source))).toContain(join(repoRoot, 'hr-api', 'server.ts'));
  });
});

describe('what the build holds', () => {
  // What waits for a first use (pg, undici, the model's client) is checked on the running services (service-main.test.ts).
  it('leaves out what no service runs: the body decoder\'s encoding tables, unused telemetry code', async () => {
    const dir = (await buildSandbox())!;
    const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.js'));
    const text = files.map((file) => readFileSync(join(dir, file), 'utf8'));
    // esbuild heads each bundled package file with a comment naming it.
    const held = (path: string) => text.some((one) => one.includes(`// node_modules/${path}`));
    expect(held('express/')).toBe(true);
    expect(held('iconv-lite/')).toBe(false);
    // OpenTelemetry's ES module builds, of which only what is imported is kept, rather than its CommonJS ones.
    expect(held('@opentelemetry/core/build/esm/')).toBe(true);
    expect(held('@opentelemetry/core/build/src/')).toBe(false);
    expect(held('@opentelemetry/semantic-conventions/dist/index.cjs')).toBe(false);
  });
});

describe('building again', () => {
  it('uses the last build while no source changed, builds anew after an edit, and keeps only a few builds', async () => {
    const root = mkdtempSync(join(tmpdir(), 'sandbox-build-'));
    onTestFinished(() => rmSync(root, { recursive: true, force: true }));
    const cache = join(root, 'node_modules', '.cache', 'headless-agent-auth-sandbox');
    mkdirSync(cache, { recursive: true });
    writeFileSync(join(cache, 'pglite-0.0.0-initdb.tar'), 'template');
    writeFileSync(join(root, 'main.ts'), "import { word } from './word.ts';\nconsole.log(word);\n");
    const edit = (word: string) => writeFileSync(join(root, 'word.ts'), `export const word: string = '${word}';\n`);
    const output = (dir: string) => readFileSync(builtEntry(dir, 'main.ts'), 'utf8');

    // A build killed half-way, of sources never built again, and one still being written by a running process.
    const gone = spawnSync(process.execPath, ['-e', '0']);
    expect(gone.status).toBe(0);
    const killed = join(cache, `0123456789abcdef.partial-${gone.pid}-0`);
    const writing = join(cache, `fedcba9876543210.partial-${process.pid}-7`);
    for (const partial of [killed, writing]) {
      mkdirSync(join(partial, 'agent'), { recursive: true });
      writeFileSync(join(partial, 'agent', 'main.js'), '// half-written\n');
    }

    edit('first');
    const first = await buildSandbox(['main.ts'], root);
    expect(existsSync(killed)).toBe(false);
    expect(existsSync(writing)).toBe(true);
    rmSync(writing, { recursive: true });
    expect(output(first)).toContain('"first"');
    // Unchanged: the same folder, even when its files no longer match (nothing was built).
    writeFileSync(builtEntry(first, 'main.ts'), 'console.log("kept");\n');
    expect(await buildSandbox(['main.ts'], root)).toBe(first);
    expect(output(first)).toContain('"kept"');

    const dirs = [first];
    for (const word of ['second', 'third', 'fourth', 'fifth', 'sixth']) {
      edit(word);
      const dir = await buildSandbox(['main.ts'], root);
      expect(dirs).not.toContain(dir);
      expect(output(dir)).toContain(`"${word}"`);
      dirs.push(dir);
    }
    const left = readdirSync(cache).filter((name) => /^[0-9a-f]{16}$/.test(name));
    expect(left).toHaveLength(4);
    expect(readdirSync(cache).filter((name) => name.includes('.partial-'))).toEqual([]);
    expect(left.map((name) => join(cache, name))).toContain(dirs.at(-1));
    expect(readFileSync(join(cache, 'pglite-0.0.0-initdb.tar'), 'utf8')).toBe('template');
  });
});
