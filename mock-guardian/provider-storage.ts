import type { Adapter, AdapterFactory, AdapterPayload } from 'oidc-provider';

/**
 * In-memory storage for oidc-provider, one per tenant, optionally journaled to a database. Unlike the built-in
 * memory adapter it keeps an artifact for a while after it expires: the CIBA
 * grant must answer `expired_token` (CIBA §11) for an expired `auth_req_id`,
 * which needs the request to still be found, not `invalid_grant` for an
 * unknown one. Expiry itself is decided by the model's `exp`, not here.
 */

export interface ProviderStorage {
  adapter: AdapterFactory;
  /** Puts back an artifact read from the journal when the tenant starts. */
  restore(model: string, id: string, payload: AdapterPayload, dropAt: number): void;
  clear(): void;
}

/**
 * Where every change is also written, awaited, when the tenant keeps its state in a database
 * (mock-guardian/tenant-state.ts). Reads never go there: a thousand requests polled every second
 * are answered from memory, and the journal is read once, when the tenant starts.
 */
export interface ProviderJournal {
  /** `dropAt`: epoch ms after which the artifact may be deleted; undefined: never. */
  upsert(model: string, id: string, payload: AdapterPayload, dropAt: number | undefined): Promise<void>;
  consume(model: string, id: string, at: number): Promise<void>;
  destroy(model: string, id: string): Promise<void>;
  revokeByGrantId(grantId: string): Promise<void>;
}

const SWEEP_EVERY_MS = 1_000;

interface Entry {
  payload: AdapterPayload;
  /** Epoch ms after which the entry may be dropped. */
  dropAt: number;
}

export function createProviderStorage(
  options: { retainExpiredMs?: number; now?: () => number; journal?: ProviderJournal } = {},
): ProviderStorage {
  const { journal } = options;
  const retainExpiredMs = options.retainExpiredMs ?? 15 * 60_000;
  const now = options.now ?? Date.now;
  const models = new Map<string, Map<string, Entry>>();
  const modelStore = (name: string) => {
    let store = models.get(name);
    if (!store) models.set(name, (store = new Map()));
    return store;
  };

  let lastSweep = 0;
  // A sweep walks every entry: once a second at most, not on every write (a thousand pending requests make thousands).
  const sweep = () => {
    const t = now();
    if (t - lastSweep < SWEEP_EVERY_MS) return;
    lastSweep = t;
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
        const dropAt = now() + lifetimeMs + retainExpiredMs;
        store.set(id, { payload: structuredClone(payload), dropAt });
        await journal?.upsert(name, id, payload, Number.isFinite(dropAt) ? dropAt : undefined);
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
        const at = now();
        if (entry) entry.payload.consumed = Math.floor(at / 1000);
        await journal?.consume(name, id, at);
      },
      async destroy(id) {
        store.delete(id);
        await journal?.destroy(name, id);
      },
      async revokeByGrantId(grantId) {
        for (const other of models.values()) {
          for (const [id, entry] of other) if (entry.payload.grantId === grantId) other.delete(id);
        }
        await journal?.revokeByGrantId(grantId);
      },
    };
  };

  return {
    adapter,
    restore(model, id, payload, dropAt) {
      modelStore(model).set(id, { payload, dropAt });
    },
    clear: () => models.clear(),
  };
}
