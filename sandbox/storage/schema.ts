import type { ColumnType, Generated } from 'kysely';

/**
 * Row types of every table the migrations create, as Kysely sees them.
 * One schema for both stores (PGlite and PostgreSQL) and every service:
 * each service only touches its own tables.
 */

/** `jsonb`: written as a JSON string (node-postgres would turn a JS array into a Postgres array), read back parsed. */
export type Json<T = unknown> = ColumnType<T, string, string>;
export type NullableJson<T = unknown> = ColumnType<T | null, string | null, string | null>;
/** `bigint`: node-postgres reads it back as a string, PGlite as a number; `Number()` it. */
export type BigIntColumn = ColumnType<number | string, number, number>;
/** `timestamptz` with a default of `now()`. */
export type CreatedAt = ColumnType<Date, Date | undefined, Date>;

/** @a2a-js/sdk `DatabaseTaskStore` (its `TaskRow`; the same columns and types its own migration creates). */
export interface TaskTable {
  tenant: string;
  owner: string;
  id: string;
  context_id: string;
  status_last_updated: BigIntColumn;
  status_state: string | null;
  status: string | null;
  artifacts: string | null;
  history: string | null;
  metadata: string | null;
  protocol_version: string | null;
}

/** @a2a-js/sdk `DatabasePushNotificationStore` (its `PushNotificationConfigRow`). */
export interface PushNotificationConfigTable {
  tenant: string;
  owner: string;
  task_id: string;
  config_id: string;
  config_data: string | null;
  protocol_version: string | null;
}

/** The HR Agent: one row per CIBA request it started, so a restart (or another agent process) can resume it. */
export interface ConsentTable {
  /** CIBA §7.3 `auth_req_id`; the primary key. */
  auth_req_id: string;
  task_id: string;
  context_id: string;
  /** The A2A caller the task belongs to (the task store's `owner`). */
  owner: string;
  employee_id: string;
  expires_at: Date;
  delivery_mode: 'poll' | 'ping';
  /** SHA-256 of the CIBA §7.1 `client_notification_token` (ping only), never the token itself. */
  client_notification_token_digest: string | null;
  status: string;
  /** Which process polls this consent now (CIBA §7.3), until `lease_expires_at`. */
  lease_owner: string | null;
  lease_expires_at: Date | null;
  created_at: CreatedAt;
  updated_at: CreatedAt;
  /** From 0004: what the status message names, and the CIBA §7.3 `interval` to keep polling at. */
  binding_message: string | null;
  employee_label: string | null;
  poll_interval_seconds: number | null;
  /** From 0004: the planner's state at the pending function call (agent/planner.ts `PlanCheckpoint`). */
  resume_state: NullableJson;
}

/** The HR Agent (from 0004): a lease on every task an agent process is working on, so a task whose process died is noticed. */
export interface AgentRunTable {
  owner: string;
  task_id: string;
  context_id: string;
  lease_owner: string | null;
  lease_expires_at: Date | null;
  started_at: CreatedAt;
}

/** The HR Agent: the planner's multi-turn history of one A2A context. */
export interface ConversationTable {
  owner: string;
  context_id: string;
  contents: Json;
  updated_at: CreatedAt;
}

/** The local tenant: oidc-provider's models (CIBA requests, grants, …), one row per model instance. */
export interface OidcModelTable {
  model: string;
  id: string;
  payload: Json<Record<string, unknown>>;
  grant_id: string | null;
  user_code: string | null;
  uid: string | null;
  /** When the row may be dropped; null: never. */
  expires_at: Date | null;
  consumed_at: Date | null;
}

/** The local tenant: the Guardian consent registry (requests as the employee's phone sees them). */
export interface GuardianRequestTable {
  id: string;
  /** Creation order, for "newest first". */
  seq: Generated<BigIntColumn>;
  auth_req_id: string;
  user_id: string;
  client_id: string;
  status: string;
  /** The public view (control API, Guardian page). */
  view: Json<Record<string, unknown>>;
  /** Kept to send the CIBA §10.2 ping after a restart. */
  notification_token: string | null;
  /** The user's automatic answer, re-armed after a restart. */
  policy: NullableJson<Record<string, unknown>>;
  expires_at_ms: BigIntColumn;
  last_poll_ms: ColumnType<number | string | null, number | null, number | null>;
  poll_interval: number;
}

export interface DatabaseSchema {
  tasks: TaskTable;
  push_notification_configs: PushNotificationConfigTable;
  consents: ConsentTable;
  conversations: ConversationTable;
  agent_runs: AgentRunTable;
  oidc_models: OidcModelTable;
  guardian_requests: GuardianRequestTable;
}
