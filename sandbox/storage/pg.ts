import type pg from 'pg';

/**
 * The PostgreSQL client, loaded the first time a service opens a PostgreSQL server: a service on its
 * embedded database never needs it, and loading it cost each service's start about 0.1 s of CPU.
 */
let loading: Promise<typeof pg> | undefined;

export function loadPg(): Promise<typeof pg> {
  return (loading ??= import('pg').then((module) => module.default));
}
