import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';

/**
 * The client notification endpoint of CIBA ping mode (CIBA §10.2): the
 * identity backend POSTs `{ "auth_req_id": … }` with
 * `Authorization: Bearer <client_notification_token>` once the employee has
 * answered. Each pending request has its own random token; the route answers
 * 204 for a known token and 401 for anything else, so it never reveals which
 * requests exist.
 */

export interface PingWaiter {
  /** The `client_notification_token` to send with the backchannel request (CIBA §7.1). */
  readonly token: string;
  /** Resolves on the next notification for this request; rejects when `signal` aborts. */
  next(signal: AbortSignal): Promise<void>;
  /** Binds the waiter to the `auth_req_id` the backend issued (CIBA §7.3). */
  bind(authReqId: string): void;
  release(): void;
}

export interface PingNotifications {
  register(): PingWaiter;
  handle(req: Request, res: Response): void;
  /** Rejects every waiter; used when the agent shuts down. */
  close(): void;
}

interface Entry {
  tokenDigest: Buffer;
  authReqId: string | undefined;
  /** A notification that arrived before anyone waited for it. */
  signalled: boolean;
  wake: (() => void) | undefined;
  fail: ((error: Error) => void) | undefined;
}

const BEARER = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/;

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

export function createPingNotifications(): PingNotifications {
  // Keyed by the token's digest: looking up a digest reveals nothing about the token itself.
  const entries = new Map<string, Entry>();

  return {
    register() {
      const token = randomBytes(32).toString('base64url');
      const tokenDigest = digest(token);
      const key = tokenDigest.toString('hex');
      const entry: Entry = { tokenDigest, authReqId: undefined, signalled: false, wake: undefined, fail: undefined };
      entries.set(key, entry);
      return {
        token,
        bind(authReqId) {
          entry.authReqId = authReqId;
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
          entries.delete(key);
        },
      };
    },

    handle(req, res) {
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
      for (const entry of entries.values()) entry.fail?.(new Error('The agent is shutting down'));
      entries.clear();
    },
  };
}

function sameString(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}
