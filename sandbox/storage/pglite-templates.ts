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

/** The template folder beside the tar (see pglite-thread-worker.mjs), from which new databases on disk are copied. */
function templateFolder(template: string): string {
  return template.replace(/\.tar$/, '');
}

/** True when a new database on disk would be made in full: the templates are not there yet. */
export function templatesMissing(template: string | undefined = templatePath()): boolean {
  return template !== undefined && !(existsSync(template) && existsSync(join(templateFolder(template), 'PG_VERSION')));
}

