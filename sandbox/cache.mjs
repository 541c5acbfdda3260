import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';

// Plain JavaScript: used by `npm run sandbox` before any TypeScript is loaded, and by the PGlite thread.

export const repoRoot = fileURLToPath(new URL('..', import.meta.url));

/** What the sandbox keeps between runs that is not state: its builds and PGlite's template (git-ignored with node_modules). */
export function cacheDir(root = repoRoot) {
  return join(root, 'node_modules', '.cache', 'headless-agent-auth-sandbox');
}

/** Writes `path` whole or not at all: a reader never sees a file cut short, and writers racing leave one of theirs. */
export function writeFileAtomically(path, data) {
  mkdirSync(dirname(path), { recursive: true });
  const partial = `${path}.partial-${process.pid}-${threadId}`;
  try {
    writeFileSync(partial, data);
    renameSync(partial, path);
  } finally {
    rmSync(partial, { force: true });
  }
}

/**
 * Makes the folder `dir` whole or not at all: `fill` writes its contents into a partial folder beside it, which
 * is then renamed into place. If another writer placed `dir` first, theirs is kept (it holds the same files).
 */
export function makeFolderAtomically(dir, fill) {
  const partial = `${dir}.partial-${process.pid}-${threadId}`;
  try {
    mkdirSync(dirname(dir), { recursive: true });
    fill(partial);
    renameSync(partial, dir);
  } catch (error) {
    if (!existsSync(dir)) throw error;
  } finally {
    rmSync(partial, { recursive: true, force: true });
  }
}
