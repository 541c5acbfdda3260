import type pg from 'pg';
import type undici from 'undici';

/**
 * Packages only some runs use, loaded the first time one is asked for and kept, so that they do not hold up a
 * service's start. Each is its module's `default`: in the build, a bundled CommonJS package's chunk exports only
 * its `module.exports` (Node gives that as `default` too).
 */
function onFirstUse<T>(load: () => Promise<{ default: T }>): () => Promise<T> {
  let loading: Promise<T> | undefined;
  return () => (loading ??= load().then((module) => module.default));
}

/** The PostgreSQL client, for a PostgreSQL server only: loading it cost each service's start about 0.1 s of CPU. */
export const loadPg = onFirstUse<typeof pg>(() => import('pg'));

/** undici, for the agent's calls out and the tenant's pings: about a quarter of what the agent loads. */
export const loadUndici = onFirstUse<typeof undici>(() => import('undici'));
