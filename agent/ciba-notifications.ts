import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';

/**
 * The client notification endpoint of CIBA ping mode (CIBA §10.2): the
 * identity backend POSTs `{ "auth_req_id": … }` with
 * `Authorization: Bearer <client_notification_token>` once the employee has
 * answered. Each pending request has its own random token; the route answers
 * 204 for a known token and 401 for anything else, so it never reveals which
 * requests exist.
 *
 * While requests wait for their pings, this module also paces the checks
 * that the backend still knows them (CIBA §10: a ping-mode client may still
 * ask the token endpoint). Checking every request at every interval would
 * cost the backend one token request per request per interval; instead one
 * waiting request, taken in turn, is checked each interval, and when a check
 * finds a request the backend forgot (it restarted), every waiting request is
 * checked at once. Each request also checks on its own at a slower cadence
 * (see `agent/ciba.ts`), which covers a backend that forgets single requests.
 */

export interface PingWaiter {
  /** The `client_notification_token` to send with the backchannel request (CIBA §7.1); empty for a restored waiter. */
  readonly token: string;
  /** SHA-256 of the token, hex: what is stored, so a restarted agent still recognises the backend's ping. */
  readonly tokenDigest: string;
  /** Resolves on the next notification for this request; rejects when `signal` aborts. */
  next(signal: AbortSignal): Promise<void>;
  /**
   * Binds the waiter to the `auth_req_id` the backend issued (CIBA §7.3) and its polling
   * `interval`: from then on it takes its turn in the shared checks (`next` also resolves for a check).
   */
  bind(authReqId: string, intervalMs: number): void;
  /** The backend no longer knows this waiter's request: check every other waiting request now. */
  reportLost(): void;
  release(): void;
}

export interface PingNotifications {
  register(): PingWaiter;
  /** A waiter for a request made before a restart (or by another agent process), from its stored token digest. */
  restore(tokenDigest: string, authReqId: string, intervalMs: number): PingWaiter;
  /** Wakes the waiter of `authReqId`, for a ping another agent process received; false if none waits here. */
  wake(authReqId: string): boolean;
  handle(req: Request, res: Response): void | Promise<void>;
  /** Rejects every waiter; used when the agent shuts down. */
  close(): void;
}

interface Entry {
  tokenDigest: Buffer;
  authReqId: string | undefined;
  /** The request's polling interval, once bound: the shared checks run at the shortest one. */
  intervalMs: number | undefined;
  /** A notification that arrived before anyone waited for it. */
  signalled: boolean;
  wake: (() => void) | undefined;
  fail: ((error: Error) => void) | undefined;
}

const BEARER = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/;

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

export interface PingNotificationOptions {
  /**
   * Asked about a ping whose token no waiter here knows: true if another agent process waits for it
   * (and has been told), so the backend gets 204 rather than 401.
   */
  relay?: (tokenDigest: string, authReqId: string) => Promise<boolean>;
  /** In [0, 1): spreads the shared checks so that agents started together do not check in step. */
  random?: () => number;
}

/** The shared checks run up to this share of an interval later than the interval. */
const CHECK_JITTER = 0.2;

export function createPingNotifications(options: PingNotificationOptions = {}): PingNotifications {
  const random = options.random ?? Math.random;
  // Keyed by the token's digest: looking up a digest reveals nothing about the token itself.
  // Insertion order is the order of the shared checks: a checked entry moves to the end.
  const entries = new Map<string, Entry>();
  let checkTimer: NodeJS.Timeout | undefined;
  let lastSweepAt = 0;

  /** The shared checks' cadence: the shortest polling interval of the bound requests (Infinity: none bound). */
  const shortestInterval = () => {
    let intervalMs = Infinity;
    for (const entry of entries.values()) if (entry.intervalMs !== undefined) intervalMs = Math.min(intervalMs, entry.intervalMs);
    return intervalMs;
  };

  const scheduleChecks = () => {
    if (checkTimer !== undefined) return;
    const intervalMs = shortestInterval();
    if (intervalMs === Infinity) return;
    checkTimer = setTimeout(checkNext, intervalMs * (1 + random() * CHECK_JITTER));
    checkTimer.unref();
  };

  /** Wakes the waiting entry checked longest ago, then moves it to the end of the turn. */
  function checkNext(): void {
    checkTimer = undefined;
    for (const [key, entry] of entries) {
      if (entry.intervalMs === undefined || entry.wake === undefined) continue;
      entries.delete(key);
      entries.set(key, entry);
      entry.wake();
      break;
    }
    scheduleChecks();
  }

  const waiterFor = (token: string, tokenDigest: Buffer, authReqId: string | undefined, intervalMs: number | undefined): PingWaiter => {
    const key = tokenDigest.toString('hex');
    const entry: Entry = { tokenDigest, authReqId, intervalMs, signalled: false, wake: undefined, fail: undefined };
    entries.set(key, entry);
    if (intervalMs !== undefined) scheduleChecks();
    return {
        token,
        tokenDigest: key,
        bind(authReqId, intervalMs) {
          entry.authReqId = authReqId;
          entry.intervalMs = intervalMs;
          scheduleChecks();
        },
        reportLost() {
          // One sweep per shortest interval at most: a thousand lost requests report a thousand times.
          const now = Date.now();
          if (now - lastSweepAt < Math.min(shortestInterval(), 60_000)) return;
          lastSweepAt = now;
          for (const other of entries.values()) if (other !== entry && other.intervalMs !== undefined) other.wake?.();
        },
        next(signal) {
          return new Promise<void>((resolve, reject) => {
            if (signal.aborted) return reject(signal.reason as Error);
            if (entry.signalled) {
              entry.signalled = false;
              return resolve();
            }
            const onAbort = () => {
              entry.wake = entry.fail = undefined;
              reject(signal.reason as Error);
            };
            signal.addEventListener('abort', onAbort, { once: true });
            entry.wake = () => {
              signal.removeEventListener('abort', onAbort);
              entry.wake = entry.fail = undefined;
              resolve();
            };
            entry.fail = (error) => {
              signal.removeEventListener('abort', onAbort);
              entry.wake = entry.fail = undefined;
              reject(error);
            };
          });
        },
        release() {
          if (entries.get(key) === entry) entries.delete(key);
          if (entries.size === 0 && checkTimer !== undefined) {
            clearTimeout(checkTimer);
            checkTimer = undefined;
          }
        },
      };
  };

  return {
    register() {
      const token = randomBytes(32).toString('base64url');
      return waiterFor(token, digest(token), undefined, undefined);
    },

    restore(tokenDigest, authReqId, intervalMs) {
      return waiterFor('', Buffer.from(tokenDigest, 'hex'), authReqId, intervalMs);
    },

    wake(authReqId) {
      for (const entry of entries.values()) {
        if (entry.authReqId !== authReqId) continue;
        if (entry.wake) entry.wake();
        else entry.signalled = true;
        return true;
      }
      return false;
    },

    async handle(req, res) {
      const match = BEARER.exec(req.headers.authorization ?? '');
      const presented = match?.[1] ? digest(match[1]) : undefined;
      const entry = presented ? entries.get(presented.toString('hex')) : undefined;
      const body: unknown = req.body;
      const authReqId =
        typeof body === 'object' && body !== null && typeof (body as Record<string, unknown>).auth_req_id === 'string'
          ? ((body as Record<string, unknown>).auth_req_id as string)
          : undefined;
      const known =
        entry !== undefined &&
        presented !== undefined &&
        timingSafeEqual(entry.tokenDigest, presented) &&
        authReqId !== undefined &&
        (entry.authReqId === undefined || sameString(entry.authReqId, authReqId));
      if (!entry && presented !== undefined && authReqId !== undefined && options.relay) {
        const relayed = await options.relay(presented.toString('hex'), authReqId).catch(() => false);
        if (relayed) {
          res.status(204).end();
          return;
        }
      }
      if (!known || !entry) {
        // RFC 6750 §3: one answer for a missing, unknown or mismatched token.
        res.status(401).set('WWW-Authenticate', 'Bearer realm="ciba-notify"').json({ error: 'invalid_token' });
        return;
      }
      if (entry.wake) entry.wake();
      else entry.signalled = true;
      res.status(204).end();
    },

    close() {
      if (checkTimer !== undefined) clearTimeout(checkTimer);
      checkTimer = undefined;
      for (const entry of entries.values()) entry.fail?.(new Error('The agent is shutting down'));
      entries.clear();
    },
  };
}

function sameString(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}
