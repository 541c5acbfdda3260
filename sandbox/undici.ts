import type undici from 'undici';

/**
 * undici, loaded the first time a service calls out through it (the agent's calls, the tenant's pings): it is
 * about a quarter of what the agent loads, and need not hold up a service's start. Its `default`: in the build, a
 * bundled CommonJS package's chunk exports only its `module.exports` (Node gives that as `default` too).
 */
let loading: Promise<typeof undici> | undefined;

export function loadUndici(): Promise<typeof undici> {
  return (loading ??= import('undici').then((module) => module.default));
}
