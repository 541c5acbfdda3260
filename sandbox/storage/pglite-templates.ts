import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir, repoRoot } from '../cache.mjs';

/**
 * Where a new embedded database's starting files are kept, and whether they are there yet. Kept apart from
 * pglite-thread.ts so that `npm run sandbox` can ask before the services start without loading the database's
 * modules.
 */

/**
 * Where a new database's starting files are kept: PGlite's `initdb` output, dumped by the first database
 * created with this PGlite version and loaded by every later one (creating takes 3–4 s of CPU, loading under 1 s).
 * Undefined when PGlite's version cannot be read: each new database is then created in full.
 */
export function templatePath(): string | undefined {
  try {
    const pglite = join(repoRoot, 'node_modules', '@electric-sql', 'pglite', 'package.json');
    const { version } = JSON.parse(readFileSync(pglite, 'utf8')) as { version: string };
    return join(cacheDir(), `pglite-${version}-initdb.tar`);
  } catch {
    return undefined;
  }
}

/**
 * The template as a folder beside the tar, for a new database on disk: copying the folder and opening the copy
 * took about 0.3 s here, against about 0.55 s for PGlite to unpack the tar into one. The tar stays for databases
 * in memory, which PGlite can only load from a tar. Undefined for a template that is no `.tar` path.
 */
export function templateFolder(template: string | undefined): string | undefined {
  return template?.endsWith('.tar') ? template.slice(0, -'.tar'.length) : undefined;
}

/** True when a new database on disk would be made in full: the templates are not there yet. */
export function templatesMissing(template: string | undefined = templatePath()): boolean {
  if (template === undefined) return false;
  const folder = templateFolder(template);
  return !(existsSync(template) && folder !== undefined && existsSync(join(folder, 'PG_VERSION')));
}

