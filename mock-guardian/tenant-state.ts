import { CompiledQuery } from 'kysely';
import type { AdapterPayload } from 'oidc-provider';
import type { ConsentLedger, ConsentRequestView, StoredConsent } from './consent-requests.ts';
import { createProviderStorage, type ProviderJournal, type ProviderStorage } from './provider-storage.ts';
import type { GuardianPolicy } from './tenant-file.ts';
import type { Database } from '../sandbox/storage/database.ts';
import { createWriteQueue } from '../sandbox/storage/write-queue.ts';

/**
 * What the tenant keeps in the database so that a restart loses nothing:
 * oidc-provider's models (CIBA requests, grants, …) in `oidc_models`, written
 * through from a working copy in memory that answers every read, and
 * the Guardian consent registry in `guardian_requests`. The database may
 * still be opening when the tenant starts; every call waits for it.
 *
 * Writes are fixed statements (no query building on the hot path) through one
 * write queue: those of requests answered together share one commit, and each
 * caller still waits for its own write to be committed.
 */

export interface TenantState {
  /** oidc-provider's storage: a working copy in memory, journaled to `oidc_models`. */
  providerStorage: ProviderStorage;
  /** Reads `oidc_models` into the working copy; before the tenant answers anything that needs it. */
  loadModels(): Promise<void>;
  /** The consent registry's write-through on `guardian_requests`. */
  ledger: ConsentLedger;
  /** Every request recorded so far, oldest first, for `ConsentRegistry.restore`. */
  loadConsents(): Promise<StoredConsent[]>;
}

export interface TenantStateOptions {
  /**
   * How long an artifact stays findable after it expires: the CIBA grant must answer
   * `expired_token` (CIBA §11) for an expired `auth_req_id`, not `invalid_grant`.
   */
  retainExpiredMs?: number;
  now?: () => number;
}

const SWEEP_EVERY_MS = 60_000;

/** The journal's statements (schema: sandbox/storage/migrations.ts, `0003_…`). */
const SQL = {
  upsertModel:
    'insert into oidc_models (model, id, payload, grant_id, user_code, uid, expires_at) values ($1, $2, $3, $4, $5, $6, $7) ' +
    'on conflict (model, id) do update set payload = excluded.payload, grant_id = excluded.grant_id, ' +
    'user_code = excluded.user_code, uid = excluded.uid, expires_at = excluded.expires_at',
  consumeModel: 'update oidc_models set consumed_at = $1 where model = $2 and id = $3',
  destroyModel: 'delete from oidc_models where model = $1 and id = $2',
  revokeGrant: 'delete from oidc_models where grant_id = $1',
  sweepModels: 'delete from oidc_models where expires_at <= $1',
  // A request's identity (user, client, ping token, policy) is written once; its state on every save.
  saveConsent:
    'insert into guardian_requests (id, auth_req_id, user_id, client_id, notification_token, policy, status, view, ' +
    'expires_at_ms, last_poll_ms, poll_interval) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ' +
    'on conflict (id) do update set status = excluded.status, view = excluded.view, expires_at_ms = excluded.expires_at_ms, ' +
    'last_poll_ms = excluded.last_poll_ms, poll_interval = excluded.poll_interval',
  forgetConsent: 'delete from guardian_requests where id = $1',
} as const;

export function createTenantState(database: Promise<Database>, options: TenantStateOptions = {}): TenantState {
  const retainExpiredMs = options.retainExpiredMs ?? 15 * 60_000;
  const now = options.now ?? Date.now;
  // A database that fails to open is reported through the tenant's `ready`; every call here rejects with it.
  database.catch(() => {});
  const db = async () => (await database).db;
  const queue = database.then((opened) => createWriteQueue((queries) => opened.runTogether(queries)));
  queue.catch(() => {});
  const write = async (sqlText: string, parameters: unknown[]) => (await queue).write(CompiledQuery.raw(sqlText, parameters));
  let lastSweep = 0;

  const sweep = async () => {
    const t = now();
    if (t - lastSweep < SWEEP_EVERY_MS) return;
    lastSweep = t;
    await write(SQL.sweepModels, [new Date(t)]);
  };

  const journal: ProviderJournal = {
    async upsert(model, id, payload, dropAt) {
      await sweep();
      await write(SQL.upsertModel, [
        model,
        id,
        JSON.stringify(payload),
        payload.grantId ?? null,
        payload.userCode ?? null,
        payload.uid ?? null,
        dropAt === undefined ? null : new Date(dropAt),
      ]);
    },
    async consume(model, id, at) {
      await write(SQL.consumeModel, [new Date(at), model, id]);
    },
    async destroy(model, id) {
      await write(SQL.destroyModel, [model, id]);
    },
    async revokeByGrantId(grantId) {
      await write(SQL.revokeGrant, [grantId]);
    },
  };
  const providerStorage = createProviderStorage({ retainExpiredMs, now, journal });

  const ledger: ConsentLedger = {
    async save(consent) {
      await write(SQL.saveConsent, [
        consent.id,
        consent.authReqId,
        consent.userId,
        consent.clientId,
        consent.notificationToken ?? null,
        consent.policy === undefined ? null : JSON.stringify(consent.policy),
        consent.view.status,
        JSON.stringify(consent.view),
        consent.expiresAtMs,
        consent.lastPollMs ?? null,
        consent.interval,
      ]);
    },
    async forget(id) {
      await write(SQL.forgetConsent, [id]);
    },
    async together(work) {
      return (await queue).together(work);
    },
  };

  return {
    providerStorage,
    ledger,
    async loadModels() {
      const rows = await (await db())
        .selectFrom('oidc_models')
        .select(['model', 'id', 'payload', 'consumed_at', 'expires_at'])
        .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', new Date(now()))]))
        .execute();
      for (const row of rows) {
        const payload = row.payload as AdapterPayload;
        if (row.consumed_at !== null) payload.consumed = Math.floor(row.consumed_at.getTime() / 1000);
        providerStorage.restore(row.model, row.id, payload, row.expires_at === null ? Number.POSITIVE_INFINITY : row.expires_at.getTime());
      }
    },
    async loadConsents() {
      const rows = await (await db()).selectFrom('guardian_requests').selectAll().orderBy('seq').execute();
      return rows.map(
        (row): StoredConsent => ({
          id: row.id,
          authReqId: row.auth_req_id,
          userId: row.user_id,
          clientId: row.client_id,
          notificationToken: row.notification_token ?? undefined,
          view: row.view as unknown as ConsentRequestView,
          expiresAtMs: Number(row.expires_at_ms),
          lastPollMs: row.last_poll_ms === null ? undefined : Number(row.last_poll_ms),
          interval: row.poll_interval,
          policy: row.policy === null ? undefined : (row.policy as unknown as GuardianPolicy),
        }),
      );
    },
  };
}
