import { createHash, timingSafeEqual } from 'node:crypto';
import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { CONSENT_STATUSES, ConsentError, type ConsentRegistry, type ConsentStatus, type Decision } from './consent-requests.ts';
import { NOTIFICATION_CHANNELS, type TenantUser } from './tenant-file.ts';

/**
 * The control API: what the Guardian page does, for scripts and tests.
 * It changes consent outcomes, so state-changing calls are CSRF-proof:
 * POSTs need `Content-Type: application/json` (a cross-site form cannot send
 * it without a CORS preflight, which is never granted — no CORS headers are
 * sent) and a present `Origin` must be one of the tenant's own.
 */

export interface ControlApiOptions {
  registry: ConsentRegistry;
  users: readonly TenantUser[];
  /** Origins allowed to POST (the tenant's own); empty until the tenant listens. */
  ownOrigins: () => ReadonlySet<string>;
  /** Milliseconds between SSE keep-alive comments. */
  keepAliveMs?: number;
  /**
   * When set (the sandbox is exposed beyond loopback), every call must carry it in
   * `X-Control-Secret`; the event stream, which EventSource opens without headers, may use `?secret=`.
   */
  secret?: string;
}

export const CONTROL_SECRET_HEADER = 'X-Control-Secret';

export interface ControlUser {
  user_id: string;
  name: string;
  email: string;
  push_enrolled: boolean;
}

const REQUEST_ID = /^[A-Za-z0-9-]{1,64}$/;
const DECISIONS: Record<string, Decision> = { approve: 'approve', deny: 'deny', expire: 'expire' };

function fail(res: Response, status: number, error: string, description: string): void {
  res.status(status).json({ error, error_description: description });
}

function queryString(req: Request, name: string): string | undefined | null {
  const value = req.query[name];
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : null;
}

export function createControlApi(options: ControlApiOptions): Router {
  const { registry } = options;
  const keepAliveMs = options.keepAliveMs ?? 15_000;
  const router = Router();

  router.use((_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });
  if (options.secret !== undefined) router.use(secretGuard(options.secret));

  router.get('/users', (_req, res) => {
    const users: ControlUser[] = options.users.map((u) => ({
      user_id: u.user_id,
      name: u.name,
      email: u.email,
      push_enrolled: u.guardian.push,
    }));
    res.json({ users });
  });

  router.get('/requests', (req, res) => {
    const userId = queryString(req, 'user_id');
    const status = queryString(req, 'status');
    if (userId === null || (userId !== undefined && userId.length > 200)) {
      return fail(res, 400, 'invalid_request', 'user_id must be a single user id');
    }
    if (status === null || (status !== undefined && !CONSENT_STATUSES.includes(status as ConsentStatus))) {
      return fail(res, 400, 'invalid_request', `status must be one of ${CONSENT_STATUSES.join(', ')}`);
    }
    const channel = queryString(req, 'channel');
    if (channel === null || (channel !== undefined && !(NOTIFICATION_CHANNELS as readonly string[]).includes(channel))) {
      return fail(res, 400, 'invalid_request', `channel must be one of ${NOTIFICATION_CHANNELS.join(', ')}`);
    }
    const requests = registry
      .list({
        ...(userId === undefined || userId === '' ? {} : { userId }),
        ...(status === undefined ? {} : { status: status as ConsentStatus }),
      })
      // Records kept before channels existed were all Guardian push.
      .filter((view) => channel === undefined || (view.channel ?? 'guardian-push') === channel);
    res.json({ requests });
  });

  router.get('/requests/:id', (req, res) => {
    const id = req.params.id;
    const view = typeof id === 'string' && REQUEST_ID.test(id) ? registry.get(id) : undefined;
    if (!view) return fail(res, 404, 'not_found', 'No consent request has this id');
    res.json(view);
  });

  router.post(
    '/requests/:id/:decision',
    (req, res, next) => csrfGuard(req, res, next, options.ownOrigins()),
    express.json({ limit: '4kb', strict: false }),
    async (req, res) => {
      const decision = DECISIONS[req.params.decision ?? ''];
      if (decision === undefined) return fail(res, 404, 'not_found', 'Unknown action; use approve, deny or expire');
      const id = req.params.id;
      if (typeof id !== 'string' || !REQUEST_ID.test(id)) return fail(res, 404, 'not_found', 'No consent request has this id');
      try {
        res.json(await registry.decide(id, decision));
      } catch (error) {
        if (error instanceof ConsentError) {
          return fail(res, error.code === 'not_found' ? 404 : 409, error.code, error.message);
        }
        fail(res, 500, 'server_error', 'The decision could not be recorded');
      }
    },
  );

  router.get('/events', (req, res) => {
    const userId = queryString(req, 'user_id');
    if (userId === null) return fail(res, 400, 'invalid_request', 'user_id must be a single user id');
    res.status(200).set({
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.flushHeaders();
    res.write(': connected\n\n');
    const unsubscribe = registry.subscribe((view) => {
      if (userId !== undefined && userId !== '' && view.user_id !== userId) return;
      res.write(`event: request\ndata: ${JSON.stringify(view)}\n\n`);
    });
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), keepAliveMs);
    keepAlive.unref();
    const stop = () => {
      clearInterval(keepAlive);
      unsubscribe();
    };
    req.on('close', stop);
    res.on('error', stop);
  });

  router.use((_req, res) => fail(res, 404, 'not_found', 'Unknown control API route'));
  router.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(error);
    const status = (error as { status?: unknown }).status;
    if (status === 413) return fail(res, 413, 'invalid_request', 'The request body is too large');
    if (typeof status === 'number' && status >= 400 && status < 500) {
      return fail(res, 400, 'invalid_request', 'The request body is not valid JSON');
    }
    fail(res, 500, 'server_error', 'Unexpected error');
  });
  return router;
}

/** Anyone on the network can reach an exposed tenant (or flow console); only whoever saw the banner may use it. */
export function secretGuard(secret: string) {
  const digest = (value: string) => createHash('sha256').update(value).digest();
  const expected = digest(secret);
  return (req: Request, res: Response, next: NextFunction) => {
    const fromQuery = req.method === 'GET' && req.path === '/events' ? queryString(req, 'secret') : undefined;
    const given = req.get(CONTROL_SECRET_HEADER) ?? (typeof fromQuery === 'string' ? fromQuery : undefined);
    if (given !== undefined && timingSafeEqual(digest(given), expected)) return next();
    fail(res, 403, 'control_secret_required', `This tenant is exposed to the network: send the secret from the sandbox banner in ${CONTROL_SECRET_HEADER}`);
  };
}

function csrfGuard(req: Request, res: Response, next: NextFunction, ownOrigins: ReadonlySet<string>): void {
  const mediaType = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (mediaType !== 'application/json') {
    return fail(res, 415, 'unsupported_media_type', 'Decisions must be sent with Content-Type: application/json');
  }
  const origin = req.headers.origin;
  if (origin !== undefined && !ownOrigins.has(origin)) {
    return fail(res, 403, 'forbidden', 'Cross-origin decisions are not allowed');
  }
  next();
}
