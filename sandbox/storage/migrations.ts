import { Migrator, sql, type Kysely, type Migration } from 'kysely';
import { StorageError } from './errors.ts';

/**
 * The schema's versions, oldest first: a migration, once released, never
 * changes; a new version is a new entry. Applied at every start, each in its
 * own transaction, under Kysely's migration lock (an advisory lock on
 * PostgreSQL), so several processes on one database migrate it once.
 */

export const MIGRATION_TABLE = 'sandbox_migrations';
export const MIGRATION_LOCK_TABLE = 'sandbox_migrations_lock';

/**
 * The columns and indexes @a2a-js/sdk's own migrations give its stores (`a2a-db`), so its stores read and
 * write them unchanged, except that ids are `text` where the SDK has `varchar(36)`: a client may choose
 * its own, longer `contextId`, and saving its task must not fail for that.
 */
const a2aStores: Migration = {
  async up(db) {
    const key = (length: number) => sql.raw(`varchar(${length}) collate "C"`);
    const id = sql.raw('text collate "C"');
    await db.schema
      .createTable('tasks')
      .addColumn('tenant', key(255), (c) => c.notNull())
      .addColumn('owner', key(255), (c) => c.notNull())
      .addColumn('id', id, (c) => c.notNull())
      .addColumn('context_id', id, (c) => c.notNull())
      .addColumn('status_last_updated', 'bigint', (c) => c.notNull())
      .addColumn('status_state', key(255))
      .addColumn('status', 'text')
      .addColumn('artifacts', 'text')
      .addColumn('history', 'text')
      .addColumn('metadata', 'text')
      .addColumn('protocol_version', 'varchar(255)')
      .addPrimaryKeyConstraint('tasks_pkey', ['tenant', 'owner', 'id'])
      .execute();
    await db.schema.createIndex('tasks_scope_updated_idx').on('tasks').columns(['tenant', 'owner', 'status_last_updated', 'id']).execute();
    await db.schema
      .createIndex('tasks_scope_context_updated_idx')
      .on('tasks')
      .columns(['tenant', 'owner', 'context_id', 'status_last_updated', 'id'])
      .execute();
    await db.schema
      .createTable('push_notification_configs')
      .addColumn('tenant', key(255), (c) => c.notNull())
      .addColumn('owner', key(255), (c) => c.notNull())
      .addColumn('task_id', id, (c) => c.notNull())
      .addColumn('config_id', id, (c) => c.notNull())
      .addColumn('config_data', 'text')
      .addColumn('protocol_version', 'varchar(255)')
      .addPrimaryKeyConstraint('push_notification_configs_pkey', ['tenant', 'owner', 'task_id', 'config_id'])
      .execute();
  },
};

const agentState: Migration = {
  async up(db) {
    await db.schema
      .createTable('consents')
      .addColumn('auth_req_id', 'text', (c) => c.primaryKey())
      .addColumn('task_id', 'text', (c) => c.notNull())
      .addColumn('context_id', 'text', (c) => c.notNull())
      .addColumn('owner', 'text', (c) => c.notNull())
      .addColumn('employee_id', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
      .addColumn('delivery_mode', 'text', (c) => c.notNull().check(sql`delivery_mode in ('poll', 'ping')`))
      .addColumn('client_notification_token_digest', 'text')
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('lease_owner', 'text')
      .addColumn('lease_expires_at', 'timestamptz')
      .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
      .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
      .execute();
    await db.schema.createIndex('consents_task_idx').on('consents').column('task_id').execute();
    await db.schema.createIndex('consents_status_lease_idx').on('consents').columns(['status', 'lease_expires_at']).execute();
    await db.schema
      .createTable('conversations')
      .addColumn('owner', 'text', (c) => c.notNull())
      .addColumn('context_id', 'text', (c) => c.notNull())
      .addColumn('contents', 'jsonb', (c) => c.notNull())
      .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
      .addPrimaryKeyConstraint('conversations_pkey', ['owner', 'context_id'])
      .execute();
  },
};

const tenantState: Migration = {
  async up(db) {
    await db.schema
      .createTable('oidc_models')
      .addColumn('model', 'text', (c) => c.notNull())
      .addColumn('id', 'text', (c) => c.notNull())
      .addColumn('payload', 'jsonb', (c) => c.notNull())
      .addColumn('grant_id', 'text')
      .addColumn('user_code', 'text')
      .addColumn('uid', 'text')
      .addColumn('expires_at', 'timestamptz')
      .addColumn('consumed_at', 'timestamptz')
      .addPrimaryKeyConstraint('oidc_models_pkey', ['model', 'id'])
      .execute();
    await db.schema.createIndex('oidc_models_grant_idx').on('oidc_models').column('grant_id').execute();
    await db.schema.createIndex('oidc_models_uid_idx').on('oidc_models').columns(['model', 'uid']).execute();
    await db.schema.createIndex('oidc_models_user_code_idx').on('oidc_models').columns(['model', 'user_code']).execute();
    await db.schema.createIndex('oidc_models_expires_idx').on('oidc_models').column('expires_at').execute();
    await db.schema
      .createTable('guardian_requests')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('seq', 'bigint', (c) => c.notNull().generatedAlwaysAsIdentity())
      .addColumn('auth_req_id', 'text', (c) => c.notNull().unique())
      .addColumn('user_id', 'text', (c) => c.notNull())
      .addColumn('client_id', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('view', 'jsonb', (c) => c.notNull())
      .addColumn('notification_token', 'text')
      .addColumn('policy', 'jsonb')
      .addColumn('expires_at_ms', 'bigint', (c) => c.notNull())
      .addColumn('last_poll_ms', 'bigint')
      .addColumn('poll_interval', 'integer', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('guardian_requests_user_status_idx').on('guardian_requests').columns(['user_id', 'status']).execute();
  },
};

/**
 * What the HR Agent needs to finish a task after a restart or on another process: the planner's state at
 * the pending function call and the consent's details (consents), and a lease on every task it is working
 * on, so that a task whose process died is noticed (agent_runs).
 */
const agentResume: Migration = {
  async up(db) {
    await db.schema
      .alterTable('consents')
      .addColumn('binding_message', 'text')
      .addColumn('employee_label', 'text')
      .addColumn('poll_interval_seconds', 'integer')
      .addColumn('resume_state', 'jsonb')
      .execute();
    await db.schema
      .createTable('agent_runs')
      .addColumn('owner', 'text', (c) => c.notNull())
      .addColumn('task_id', 'text', (c) => c.notNull())
      .addColumn('context_id', 'text', (c) => c.notNull())
      .addColumn('lease_owner', 'text')
      .addColumn('lease_expires_at', 'timestamptz')
      .addColumn('started_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
      .addPrimaryKeyConstraint('agent_runs_pkey', ['owner', 'task_id'])
      .execute();
    await db.schema.createIndex('agent_runs_lease_idx').on('agent_runs').column('lease_expires_at').execute();
  },
};

/** Every schema version this code knows, in order; the last is the version it runs on. */
export const MIGRATIONS: Readonly<Record<string, Migration>> = {
  '0001_a2a_task_and_push_stores': a2aStores,
  '0002_agent_consents_and_conversations': agentState,
  '0003_tenant_oidc_models_and_guardian_requests': tenantState,
  '0004_agent_resume_state_and_runs': agentResume,
};

export const LATEST_SCHEMA_VERSION = Object.keys(MIGRATIONS).at(-1)!;

function migratorFor(db: Kysely<unknown>, migrations: Readonly<Record<string, Migration>>): Migrator {
  return new Migrator({
    db,
    provider: { getMigrations: async () => ({ ...migrations }) },
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: MIGRATION_LOCK_TABLE,
  });
}

/** Versions recorded in the database, oldest first; empty for a new database. */
export async function appliedSchemaVersions(db: Kysely<unknown>): Promise<string[]> {
  const { rows } = await sql<{ exists: boolean }>`select to_regclass(${MIGRATION_TABLE}) is not null as exists`.execute(db);
  if (!rows[0]?.exists) return [];
  const applied = await sql<{ name: string }>`select name from ${sql.table(MIGRATION_TABLE)} order by timestamp, name`.execute(db);
  return applied.rows.map((row) => row.name);
}

/**
 * Brings the database to `to` (default: the latest version) and resolves to
 * the version it is at. Refuses a database that a newer sandbox has migrated
 * further than this code knows, before changing anything.
 */
export async function migrate(
  db: Kysely<unknown>,
  options: { to?: string; migrations?: Readonly<Record<string, Migration>> } = {},
): Promise<string> {
  const migrations = options.migrations ?? MIGRATIONS;
  const known = Object.keys(migrations);
  const target = options.to ?? known.at(-1);
  if (target === undefined || !known.includes(target)) throw new Error(`unknown schema version "${String(target)}"`);
  const unknown = (await appliedSchemaVersions(db)).filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    throw new StorageError(
      'schema_too_new',
      `The database is at schema version ${unknown.at(-1)}, newer than this sandbox knows (latest: ${known.at(-1)}). ` +
        'Update the sandbox, or give it another database (DATABASE_URL) or state folder (SANDBOX_STATE_DIR).',
    );
  }
  const { error, results } = await migratorFor(db, migrations).migrateTo(target);
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    throw new StorageError(
      'migration_failed',
      `Could not migrate the database${failed ? ` to schema version ${failed}` : ''}: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  return target;
}
