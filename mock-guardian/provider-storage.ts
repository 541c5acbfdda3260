import type { Adapter, AdapterFactory, AdapterPayload } from 'oidc-provider';

/**
 * In-memory storage for oidc-provider, one per tenant. Unlike the built-in
 * memory adapter it keeps an artifact for a while after it expires: the CIBA
 * grant must answer `expired_token` (CIBA §11) for an expired `auth_req_id`,
 * which needs the request to still be found, not `invalid_grant` for an
 * unknown one. Expiry itself is decided by the model's `exp`, not here.
 */

export interface ProviderStorage {
  adapter: AdapterFactory;
  clear(): void;
}

interface Entry {
  payload: AdapterPayload;
  /** Epoch ms after which the entry may be dropped. */
  dropAt: number;
}

export function createProviderStorage(options: { retainExpiredMs?: number; now?: () => number } = {}): ProviderStorage {
  const retainExpiredMs = options.retainExpiredMs ?? 15 * 60_000;
  const now = options.now ?? Date.now;
  const models = new Map<string, Map<string, Entry>>();
  const modelStore = (name: string) => {
    let store = models.get(name);
    if (!store) models.set(name, (store = new Map()));
    return store;
  };

  const sweep = () => {
    const t = now();
    for (const store of models.values()) {
      for (const [id, entry] of store) if (entry.dropAt <= t) store.delete(id);
    }
  };
  const live = (store: Map<string, Entry>, id: string): Entry | undefined => {
    const entry = store.get(id);
    if (entry && entry.dropAt <= now()) {
      store.delete(id);
      return undefined;
    }
    return entry;
  };

  const adapter: AdapterFactory = (name: string): Adapter => {
    const store = modelStore(name);
    return {
      async upsert(id, payload, expiresIn) {
        sweep();
        const lifetimeMs = typeof expiresIn === 'number' ? Math.max(expiresIn, 0) * 1000 : Number.POSITIVE_INFINITY;
        store.set(id, { payload: structuredClone(payload), dropAt: now() + lifetimeMs + retainExpiredMs });
      },
      async find(id) {
        const entry = live(store, id);
        return entry ? structuredClone(entry.payload) : undefined;
      },
      async findByUid(uid) {
        for (const [id, entry] of store) if (entry.payload.uid === uid) return live(store, id)?.payload;
        return undefined;
      },
      async findByUserCode(userCode) {
        for (const [id, entry] of store) if (entry.payload.userCode === userCode) return live(store, id)?.payload;
        return undefined;
      },
      async consume(id) {
        const entry = live(store, id);
        if (entry) entry.payload.consumed = Math.floor(now() / 1000);
      },
      async destroy(id) {
        store.delete(id);
      },
      async revokeByGrantId(grantId) {
        for (const other of models.values()) {
          for (const [id, entry] of other) if (entry.payload.grantId === grantId) other.delete(id);
        }
      },
    };
  };

  return { adapter, clear: () => models.clear() };
}
