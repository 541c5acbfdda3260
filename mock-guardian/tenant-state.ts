import type { AdapterPayload } from 'oidc-provider';
import type { ConsentLedger, ConsentRequestView, StoredConsent } from './consent-requests.ts';
import { createProviderStorage, type ProviderJournal, type ProviderStorage } from './provider-storage.ts';
import type { GuardianPolicy } from './tenant-file.ts';
import type { Database } from '../sandbox/storage/database.ts';

/**
 * What the tenant keeps in the database so that a restart loses nothing:
 * oidc-provider's models (CIBA requests, grants, …) in `oidc_models`, written
 * through from a working copy in memory that answers every read, and
 * the Guardian consent registry in `guardian_requests`. The database may
 * still be opening when the tenant starts; every call waits for it.
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

export function createTenantState(database: Promise<Database>, options: TenantStateOptions = {}): TenantState {
  const retainExpiredMs = options.retainExpiredMs ?? 15 * 60_000;
  const now = options.now ?? Date.now;
  // A database that fails to open is reported through the tenant's `ready`; every call here rejects with it.
  database.catch(() => {});
  const db = async () => (await database).db;
  let lastSweep = 0;

  const sweep = async () => {
    const t = now();
    if (t - lastSweep < SWEEP_EVERY_MS) return;
    lastSweep = t;
    await (await db()).deleteFrom('oidc_models').where('expires_at', '<=', new Date(t)).execute();
  };

  const journal: ProviderJournal = {
    async upsert(model, id, payload, dropAt) {
      await sweep();
      const row = {
        payload: JSON.stringify(payload),
        grant_id: payload.grantId ?? null,
        user_code: payload.userCode ?? null,
        uid: payload.uid ?? null,
        expires_at: dropAt === undefined ? null : new Date(dropAt),
      };
      await (await db())
        .insertInto('oidc_models')
        .values({ model, id, ...row })
        .onConflict((oc) => oc.columns(['model', 'id']).doUpdateSet(row))
        .execute();
    },
    async consume(model, id, at) {
      await (await db()).updateTable('oidc_models').set({ consumed_at: new Date(at) }).where('model', '=', model).where('id', '=', id).execute();
    },
    async destroy(model, id) {
      await (await db()).deleteFrom('oidc_models').where('model', '=', model).where('id', '=', id).execute();
    },
    async revokeByGrantId(grantId) {
      await (await db()).deleteFrom('oidc_models').where('grant_id', '=', grantId).execute();
    },
  };
  const providerStorage = createProviderStorage({ retainExpiredMs, now, journal });

  const ledger: ConsentLedger = {
    async save(consent) {
      const row = {
        status: consent.view.status,
        view: JSON.stringify(consent.view),
        expires_at_ms: consent.expiresAtMs,
        last_poll_ms: consent.lastPollMs ?? null,
        poll_interval: consent.interval,
      };
      await (await db())
        .insertInto('guardian_requests')
        .values({
          id: consent.id,
          auth_req_id: consent.authReqId,
          user_id: consent.userId,
          client_id: consent.clientId,
          notification_token: consent.notificationToken ?? null,
          policy: consent.policy === undefined ? null : JSON.stringify(consent.policy),
          ...row,
        })
        .onConflict((oc) => oc.column('id').doUpdateSet(row))
        .execute();
    },
    async forget(id) {
      await (await db()).deleteFrom('guardian_requests').where('id', '=', id).execute();
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
