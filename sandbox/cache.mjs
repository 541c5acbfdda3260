import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';

// Plain JavaScript: used by `npm run sandbox` before any TypeScript is loaded, and by the PGlite thread.

export const repoRoot = fileURLToPath(new URL('..', import.meta.url));

/** What the sandbox keeps between runs that is not state: its builds and PGlite's template (git-ignored with node_modules). */
export function cacheDir(root = repoRoot) {
  return join(root, 'node_modules', '.cache', 'headless-agent-auth-sandbox');
}

/** Whether the process `pid` is still running (one owned by another user counts as running). */
export function isRunning(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error?.code === 'EPERM';
  }
}

/**
 * Deletes what a writer of `path` left when it was killed half-way: `<path>.partial-<pid>-<thread>` files or
 * folders (a template folder is about 40 MB) whose process is gone. A running writer's partial is left alone.
 */
function removeStalePartials(path) {
  removeStalePartialsIn(dirname(path), (target) => target === basename(path));
}

/**
 * The same in `folder` for every target whose name passes `isTarget`: a build killed half-way leaves a partial
 * named after its hash, which no later build of other sources would ever write again.
 */
export function removeStalePartialsIn(folder, isTarget) {
  let names;
  try {
    names = readdirSync(folder);
  } catch {
    return;
  }
  for (const name of names) {
    const partial = /^(.+)\.partial-(\d+)-\d+$/.exec(name);
    if (!partial || !isTarget(partial[1])) continue;
    const pid = Number(partial[2]);
    if (Number.isSafeInteger(pid) && pid > 0 && !isRunning(pid)) rmSync(join(folder, name), { recursive: true, force: true });
  }
}

/** Writes `path` whole or not at all: a reader never sees a file cut short, and writers racing leave one of theirs. */
export function writeFileAtomically(path, data) {
  mkdirSync(dirname(path), { recursive: true });
  removeStalePartials(path);
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
    removeStalePartials(dir);
    fill(partial);
    renameSync(partial, dir);
  } catch (error) {
    if (!existsSync(dir)) throw error;
  } finally {
    rmSync(partial, { recursive: true, force: true });
  }
}
