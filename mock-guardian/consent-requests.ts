import { randomUUID } from 'node:crypto';
import type { AuthorizationDetail } from './authorization-details.ts';
import type { GuardianPolicy, NotificationChannel } from './tenant-file.ts';
import type { TraceCarrier } from '../sandbox/telemetry/trace-context.ts';

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
  /** How the request reached the user; absent in records kept before channels existed (Guardian push). */
  channel?: NotificationChannel;
  /** RFC 9396 details the client sent, shown to the user as text; absent when none were sent. */
  authorization_details?: readonly AuthorizationDetail[];
  /** Expired before its time through the control API ("expire now"), a local test aid Auth0 does not have. */
  expired_early?: boolean;
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
  /**
   * The trace of the request that asked (W3C `traceparent`, `baggage`), so the employee's answer,
   * minutes later, continues it; in memory only (a restarted tenant's answers start traces of their own).
   */
  readonly traceCarrier: TraceCarrier | undefined;
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
  traceCarrier?: TraceCarrier;
  policy?: GuardianPolicy;
  channel?: NotificationChannel;
  authorizationDetails?: readonly AuthorizationDetail[];
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

/** A request as the ledger keeps it: everything needed to carry on after a restart. */
export interface StoredConsent {
  id: string;
  authReqId: string;
  userId: string;
  clientId: string;
  notificationToken: string | undefined;
  view: ConsentRequestView;
  /** Epoch ms. */
  expiresAtMs: number;
  lastPollMs: number | undefined;
  /** Seconds between polls, grown by every slow_down. */
  interval: number;
  policy: GuardianPolicy | undefined;
}

/** Where the registry writes every change through to, so a restarted tenant carries on (tenant-state.ts). */
export interface ConsentLedger {
  save(consent: StoredConsent): Promise<void>;
  forget(id: string): Promise<void>;
  /**
   * Runs `work` so that every write it makes, the ledger's and oidc-provider's alike, is committed
   * as one unit: a decision is never stored without the result it gives the application (write-queue.ts).
   */
  together<T>(work: () => Promise<T>): Promise<T>;
}

export interface ConsentRegistryOptions {
  /** Seconds between polls announced to clients. */
  interval: number;
  /** Gives oidc-provider the request's result; its writes share one commit with the decision's. */
  settle: (record: ConsentRecord, outcome: Outcome) => Promise<void>;
  /** Once the result is stored: tells the application (a CIBA ping). Never throws. */
  announce?: (record: ConsentRecord, outcome: Outcome) => void;
  onError?: (message: string, error: unknown) => void;
  now?: () => number;
  /** Oldest finished requests are forgotten beyond this many. */
  maxRecords?: number;
  /** Keep every change here too; omitted: the requests live in memory only. */
  ledger?: ConsentLedger;
}

export interface ConsentRegistry {
  /** Resolves once the request is recorded (in the ledger, when there is one). */
  create(input: NewConsentRequest): Promise<ConsentRequestView>;
  /** Takes back requests a previous run recorded: pending ones expire and auto-answer on time as if it never stopped. */
  restore(consents: readonly StoredConsent[]): void;
  get(id: string): ConsentRequestView | undefined;
  list(filter?: { userId?: string; status?: ConsentStatus }): ConsentRequestView[];
  decide(id: string, decision: Decision): Promise<ConsentRequestView>;
  /** Counts a token-endpoint poll by the request's own client; undefined when the request is not its. */
  recordPoll(authReqId: string, clientId: string, pending: boolean): Promise<PollVerdict | undefined>;
  findByAuthReqId(authReqId: string): ConsentRecord | undefined;
  subscribe(listener: (view: ConsentRequestView) => void): () => void;
  /** Stops the timers and resolves once every change is in the ledger. */
  close(): Promise<void>;
}

/** Polls closer than the interval by less than this still count as on time (timer jitter). */
const POLL_GRACE_MS = 50;
/** Poll counts and times reach the ledger at most this often per request (a grown interval at once). */
const POLL_WRITE_EVERY_MS = 10_000;
/** RFC 8628 §3.5: after slow_down the client adds 5 seconds to its interval. */
const SLOW_DOWN_STEP = 5;

interface MutableRecord {
  id: string;
  authReqId: string;
  seq: number;
  userId: string;
  clientId: string;
  notificationToken: string | undefined;
  traceCarrier?: TraceCarrier | undefined;
  view: ConsentRequestView;
  expiresAtMs: number;
  lastPollMs: number | undefined;
  interval: number;
  policy: GuardianPolicy | undefined;
  timers: NodeJS.Timeout[];
  /** The ledger's writes for this record, in order. */
  written: Promise<void>;
  /** Settles once the decision and its result are committed (or failed to be): a poll's answer waits for it. */
  stored?: Promise<void>;
  /** When a poll was last written to the ledger (epoch ms; 0: never). */
  pollWrittenAt: number;
}

export function createConsentRegistry(options: ConsentRegistryOptions): ConsentRegistry {
  const now = options.now ?? Date.now;
  const maxRecords = options.maxRecords ?? 1000;
  const onError = options.onError ?? (() => {});
  const records = new Map<string, MutableRecord>();
  const byAuthReqId = new Map<string, MutableRecord>();
  const listeners = new Set<(view: ConsentRequestView) => void>();
  const ledger = options.ledger;
  const together = <T>(work: () => Promise<T>): Promise<T> => (ledger ? ledger.together(work) : work());
  const writes = new Set<Promise<void>>();
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
    traceCarrier: record.traceCarrier,
  });

  const stored = (record: MutableRecord): StoredConsent => ({
    id: record.id,
    authReqId: record.authReqId,
    userId: record.userId,
    clientId: record.clientId,
    notificationToken: record.notificationToken,
    view: snapshot(record),
    expiresAtMs: record.expiresAtMs,
    lastPollMs: record.lastPollMs,
    interval: record.interval,
    policy: record.policy,
  });

  /** Writes the record's current state after its earlier writes; resolves when it is in the ledger. */
  const persist = (record: MutableRecord, write: (l: ConsentLedger) => Promise<void> = (l) => l.save(stored(record))): Promise<void> => {
    if (!ledger) return Promise.resolve();
    const next = record.written.then(() => write(ledger));
    const settled = next.catch(() => {});
    record.written = settled;
    writes.add(settled);
    void settled.finally(() => writes.delete(settled));
    return next;
  };
  const persistLater = (record: MutableRecord, write?: (l: ConsentLedger) => Promise<void>) => {
    persist(record, write).catch((error: unknown) => onError(`could not record request ${record.id}`, error));
  };

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
      persistLater(record);
      emit(record);
      const answer = publicRecord(record);
      options.settle(answer, 'expired-by-time').then(
        () => options.announce?.(answer, 'expired-by-time'),
        (error: unknown) => onError(`could not finish expired request ${record.id}`, error),
      );
    }
  };

  const forgetOldest = () => {
    if (records.size <= maxRecords) return;
    for (const record of records.values()) {
      if (records.size <= maxRecords) break;
      if (record.view.status === 'pending') continue;
      records.delete(record.id);
      byAuthReqId.delete(record.authReqId);
      persistLater(record, (l) => l.forget(record.id));
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
      if (record.expiresAtMs > now()) record.view.expired_early = true;
      record.expiresAtMs = Math.min(record.expiresAtMs, now());
      record.view.expires_at = new Date(record.expiresAtMs).toISOString();
    }
    clearTimers(record);
    const answer = publicRecord(record);
    try {
      // The decision and the result it gives, in one commit before the application is told: a restart
      // never forgets a decision it acted on, nor keeps one without its result.
      const stored = together(async () => {
        await persist(record);
        await options.settle(answer, outcome);
      });
      record.stored = stored.catch(() => {});
      await stored;
      options.announce?.(answer, outcome);
    } catch (error) {
      onError(`could not record the ${outcome} result of request ${record.id}`, error);
      throw error;
    } finally {
      emit(record);
    }
    return snapshot(record);
  };

  /** Adds a record and arms its timers: expiry, and the user's automatic answer `policyDelayMs` from now. */
  const track = (record: MutableRecord, policyDelayMs: number) => {
    records.set(record.id, record);
    byAuthReqId.set(record.authReqId, record);
    forgetOldest();
    if (record.view.status !== 'pending') return;
    // Timers may fire a millisecond early; re-arm until the expiry has really passed.
    const watchExpiry = () => {
      refresh(record);
      if (record.view.status === 'pending') schedule(record, record.expiresAtMs - now() + 1, watchExpiry);
    };
    schedule(record, record.expiresAtMs - now(), watchExpiry);
    const policy = record.policy;
    if (policy && policy.action !== 'ignore') {
      schedule(record, policyDelayMs, () => {
        decide(record.id, policy.action === 'approve' ? 'approve' : 'deny').catch((error: unknown) => {
          if (!(error instanceof ConsentError)) onError(`the automatic ${policy.action} of request ${record.id} failed`, error);
        });
      });
    }
  };

  return {
    async create(input) {
      if (closed) throw new Error('the consent registry is closed');
      const record: MutableRecord = {
        id: randomUUID(),
        authReqId: input.authReqId,
        seq: seq++,
        userId: input.user.user_id,
        clientId: input.client.client_id,
        notificationToken: input.notificationToken,
        traceCarrier: input.traceCarrier,
        expiresAtMs: input.expiresAt,
        lastPollMs: undefined,
        interval: options.interval,
        policy: input.policy,
        timers: [],
        written: Promise.resolve(),
        pollWrittenAt: 0,
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
          channel: input.channel ?? 'guardian-push',
          ...(input.authorizationDetails === undefined ? {} : { authorization_details: input.authorizationDetails }),
        },
      };
      record.view.id = record.id;
      track(record, input.policy?.afterMs ?? 0);
      emit(record);
      await persist(record);
      return snapshot(record);
    },

    restore(consents) {
      // Stopped while the stored requests were still loading: nothing to carry on.
      if (closed) return;
      for (const consent of consents) {
        if (records.has(consent.id)) continue;
        const record: MutableRecord = {
          id: consent.id,
          authReqId: consent.authReqId,
          seq: seq++,
          userId: consent.userId,
          clientId: consent.clientId,
          notificationToken: consent.notificationToken,
          expiresAtMs: consent.expiresAtMs,
          lastPollMs: consent.lastPollMs,
          interval: consent.interval,
          policy: consent.policy,
          timers: [],
          written: Promise.resolve(),
          pollWrittenAt: 0,
          view: { ...consent.view, scopes: [...consent.view.scopes] },
        };
        // The automatic answer falls when it would have without the restart.
        track(record, (consent.policy?.afterMs ?? 0) - (now() - Date.parse(consent.view.created_at)));
        refresh(record);
      }
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

    async recordPoll(authReqId, clientId, pending) {
      const record = byAuthReqId.get(authReqId);
      if (!record || record.clientId !== clientId) return undefined;
      // oidc-provider answers from memory, where a decision's result is a moment before its commit: the answer
      // (tokens, or access_denied) goes out only once the decision it reflects is stored.
      await record.stored;
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
      // Recorded before the answer, so the interval it enforces holds across a restart; a failed write does not fail
      // the poll. Only a grown interval, or a pending request's first poll in POLL_WRITE_EVERY_MS, is written: a
      // thousand requests polled every second would otherwise be a thousand writes a second. A restart forgets at
      // most the polls counted since the last write, and the poll that took the answer (the request is settled).
      if (slowDown || (pending && t - record.pollWrittenAt >= POLL_WRITE_EVERY_MS)) {
        record.pollWrittenAt = t;
        await persist(record).catch((error: unknown) => onError(`could not record a poll of request ${record.id}`, error));
      }
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

    async close() {
      closed = true;
      for (const record of records.values()) clearTimers(record);
      listeners.clear();
      await Promise.all([...writes]);
    },
  };
}
