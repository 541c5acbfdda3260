import { randomUUID } from 'node:crypto';
import type { GuardianPolicy } from './tenant-file.ts';

/**
 * Every CIBA request the tenant accepted, as the employee's phone sees it:
 * who asks, for what, and what became of it. The Guardian page, the control
 * API and the user's automatic policy decide through here; the tenant turns
 * a decision into the oidc-provider result (`settle`).
 */

export type ConsentStatus = 'pending' | 'approved' | 'denied' | 'expired';
export const CONSENT_STATUSES: readonly ConsentStatus[] = ['pending', 'approved', 'denied', 'expired'];

/** The public shape of a request (control API, SSE, Guardian page). Never carries the auth_req_id. */
export interface ConsentRequestView {
  id: string;
  user_id: string;
  user_name: string;
  user_email: string;
  client_id: string;
  client_name: string;
  binding_message: string;
  scopes: string[];
  audience: string | null;
  api_name: string | null;
  status: ConsentStatus;
  created_at: string;
  expires_at: string;
  decided_at: string | null;
  polls: number;
  last_polled_at: string | null;
}

export type Decision = 'approve' | 'deny' | 'expire';
/** What the tenant must make true at the token endpoint; `expired-by-time` needs nothing but a ping. */
export type Outcome = 'approved' | 'denied' | 'expired' | 'expired-by-time';

export interface ConsentRecord {
  readonly id: string;
  readonly authReqId: string;
  readonly userId: string;
  readonly clientId: string;
  /** CIBA §7.1 client_notification_token for ping delivery; never shown. */
  readonly notificationToken: string | undefined;
  readonly view: ConsentRequestView;
}

export interface NewConsentRequest {
  authReqId: string;
  user: { user_id: string; name: string; email: string };
  client: { client_id: string; name: string };
  bindingMessage: string;
  scopes: string[];
  audience: string | null;
  apiName: string | null;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms; the request's `exp`. */
  expiresAt: number;
  notificationToken?: string;
  policy?: GuardianPolicy;
}

export type ConsentErrorCode = 'not_found' | 'already_decided' | 'expired';

export class ConsentError extends Error {
  constructor(
    readonly code: ConsentErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ConsentError';
  }
}

export interface PollVerdict {
  /** True when this poll came sooner than the request's interval allows (CIBA §7.3 / RFC 8628 §3.5). */
  slowDown: boolean;
  /** Seconds the client must now wait between polls. */
  interval: number;
}

export interface ConsentRegistryOptions {
  /** Seconds between polls announced to clients. */
  interval: number;
  settle: (record: ConsentRecord, outcome: Outcome) => Promise<void>;
  onError?: (message: string, error: unknown) => void;
  now?: () => number;
  /** Oldest finished requests are forgotten beyond this many. */
  maxRecords?: number;
}

export interface ConsentRegistry {
  create(input: NewConsentRequest): ConsentRequestView;
  get(id: string): ConsentRequestView | undefined;
  list(filter?: { userId?: string; status?: ConsentStatus }): ConsentRequestView[];
  decide(id: string, decision: Decision): Promise<ConsentRequestView>;
  /** Counts a token-endpoint poll by the request's own client; undefined when the request is not its. */
  recordPoll(authReqId: string, clientId: string, pending: boolean): PollVerdict | undefined;
  findByAuthReqId(authReqId: string): ConsentRecord | undefined;
  subscribe(listener: (view: ConsentRequestView) => void): () => void;
  close(): void;
}

/** Polls closer than the interval by less than this still count as on time (timer jitter). */
const POLL_GRACE_MS = 50;
/** RFC 8628 §3.5: after slow_down the client adds 5 seconds to its interval. */
const SLOW_DOWN_STEP = 5;

interface MutableRecord {
  id: string;
  authReqId: string;
  seq: number;
  userId: string;
  clientId: string;
  notificationToken: string | undefined;
  view: ConsentRequestView;
  expiresAtMs: number;
  lastPollMs: number | undefined;
  interval: number;
  timers: NodeJS.Timeout[];
}

export function createConsentRegistry(options: ConsentRegistryOptions): ConsentRegistry {
  const now = options.now ?? Date.now;
  const maxRecords = options.maxRecords ?? 1000;
  const onError = options.onError ?? (() => {});
  const records = new Map<string, MutableRecord>();
  const byAuthReqId = new Map<string, MutableRecord>();
  const listeners = new Set<(view: ConsentRequestView) => void>();
  let seq = 0;
  let closed = false;

  const snapshot = (record: MutableRecord): ConsentRequestView => ({ ...record.view, scopes: [...record.view.scopes] });
  const publicRecord = (record: MutableRecord): ConsentRecord => ({
    id: record.id,
    authReqId: record.authReqId,
    userId: record.userId,
    clientId: record.clientId,
    notificationToken: record.notificationToken,
    view: snapshot(record),
  });

  const emit = (record: MutableRecord) => {
    const view = snapshot(record);
    for (const listener of listeners) {
      try {
        listener(view);
      } catch (error) {
        onError('a consent listener failed', error);
      }
    }
  };

  const clearTimers = (record: MutableRecord) => {
    for (const timer of record.timers) clearTimeout(timer);
    record.timers = [];
  };

  /** Time-based expiry, applied lazily on every read as well as by timer. */
  const refresh = (record: MutableRecord): void => {
    if (record.view.status === 'pending' && now() >= record.expiresAtMs) {
      record.view.status = 'expired';
      clearTimers(record);
      emit(record);
      void options.settle(publicRecord(record), 'expired-by-time').catch((error: unknown) => {
        onError(`could not finish expired request ${record.id}`, error);
      });
    }
  };

  const forgetOldest = () => {
    if (records.size <= maxRecords) return;
    for (const record of records.values()) {
      if (records.size <= maxRecords) break;
      if (record.view.status === 'pending') continue;
      records.delete(record.id);
      byAuthReqId.delete(record.authReqId);
    }
  };

  const schedule = (record: MutableRecord, ms: number, fn: () => void) => {
    const timer = setTimeout(fn, Math.max(0, ms));
    timer.unref();
    record.timers.push(timer);
  };

  const decide = async (id: string, decision: Decision): Promise<ConsentRequestView> => {
    const record = records.get(id);
    if (!record) throw new ConsentError('not_found', 'No consent request has this id');
    refresh(record);
    if (record.view.status === 'expired') throw new ConsentError('expired', 'The request has expired and can no longer be decided');
    if (record.view.status !== 'pending') {
      throw new ConsentError('already_decided', `The request was already ${record.view.status}`);
    }
    const outcome: Outcome = decision === 'approve' ? 'approved' : decision === 'deny' ? 'denied' : 'expired';
    // The state changes before any await so a concurrent second decision sees it (409, not a double result).
    record.view.status = outcome;
    record.view.decided_at = decision === 'expire' ? null : new Date(now()).toISOString();
    if (decision === 'expire') {
      record.expiresAtMs = Math.min(record.expiresAtMs, now());
      record.view.expires_at = new Date(record.expiresAtMs).toISOString();
    }
    clearTimers(record);
    try {
      await options.settle(publicRecord(record), outcome);
    } catch (error) {
      onError(`could not record the ${outcome} result of request ${record.id}`, error);
      throw error;
    } finally {
      emit(record);
    }
    return snapshot(record);
  };

  return {
    create(input) {
      if (closed) throw new Error('the consent registry is closed');
      const record: MutableRecord = {
        id: randomUUID(),
        authReqId: input.authReqId,
        seq: seq++,
        userId: input.user.user_id,
        clientId: input.client.client_id,
        notificationToken: input.notificationToken,
        expiresAtMs: input.expiresAt,
        lastPollMs: undefined,
        interval: options.interval,
        timers: [],
        view: {
          id: '',
          user_id: input.user.user_id,
          user_name: input.user.name,
          user_email: input.user.email,
          client_id: input.client.client_id,
          client_name: input.client.name,
          binding_message: input.bindingMessage,
          scopes: [...input.scopes],
          audience: input.audience,
          api_name: input.apiName,
          status: 'pending',
          created_at: new Date(input.createdAt).toISOString(),
          expires_at: new Date(input.expiresAt).toISOString(),
          decided_at: null,
          polls: 0,
          last_polled_at: null,
        },
      };
      record.view.id = record.id;
      records.set(record.id, record);
      byAuthReqId.set(record.authReqId, record);
      forgetOldest();

      // Timers may fire a millisecond early; re-arm until the expiry has really passed.
      const watchExpiry = () => {
        refresh(record);
        if (record.view.status === 'pending') schedule(record, record.expiresAtMs - now() + 1, watchExpiry);
      };
      schedule(record, input.expiresAt - now(), watchExpiry);
      const policy = input.policy;
      if (policy && policy.action !== 'ignore') {
        schedule(record, policy.afterMs, () => {
          decide(record.id, policy.action === 'approve' ? 'approve' : 'deny').catch((error: unknown) => {
            if (!(error instanceof ConsentError)) onError(`the automatic ${policy.action} of request ${record.id} failed`, error);
          });
        });
      }
      emit(record);
      return snapshot(record);
    },

    get(id) {
      const record = records.get(id);
      if (!record) return undefined;
      refresh(record);
      return snapshot(record);
    },

    list(filter = {}) {
      const out: MutableRecord[] = [];
      for (const record of records.values()) {
        refresh(record);
        if (filter.userId !== undefined && record.userId !== filter.userId) continue;
        if (filter.status !== undefined && record.view.status !== filter.status) continue;
        out.push(record);
      }
      return out.sort((a, b) => b.seq - a.seq).map(snapshot);
    },

    decide,

    recordPoll(authReqId, clientId, pending) {
      const record = byAuthReqId.get(authReqId);
      if (!record || record.clientId !== clientId) return undefined;
      const t = now();
      let slowDown = false;
      if (pending && record.lastPollMs !== undefined && t - record.lastPollMs < record.interval * 1000 - POLL_GRACE_MS) {
        slowDown = true;
        record.interval += SLOW_DOWN_STEP;
      }
      record.lastPollMs = t;
      record.view.polls += 1;
      record.view.last_polled_at = new Date(t).toISOString();
      emit(record);
      return { slowDown, interval: record.interval };
    },

    findByAuthReqId(authReqId) {
      const record = byAuthReqId.get(authReqId);
      return record ? publicRecord(record) : undefined;
    },

    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    close() {
      closed = true;
      for (const record of records.values()) clearTimers(record);
      listeners.clear();
    },
  };
}
