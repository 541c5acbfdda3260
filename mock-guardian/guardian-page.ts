import { readFileSync } from 'node:fs';
import { type Request, type Response, Router } from 'express';

export interface GuardianPageOptions {
  /** Path prefix of the control API the page talks to, e.g. `/control`. */
  controlBasePath: string;
}

export class GuardianPageError extends Error {
  readonly code = 'invalid_guardian_page_options';
  constructor(message: string) {
    super(message);
    this.name = 'GuardianPageError';
  }
}

/**
 * Everything the page shows comes from outside (binding messages, names from a
 * tenant file), so the browser is told to run nothing but our own script file:
 * no inline script or style, no plugins, no <base> rewriting, no framing
 * (clickjacking an Approve button is the attack this page invites).
 */
export const GUARDIAN_PAGE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; " +
  "frame-ancestors 'none'; form-action 'none'";

const ASSETS = {
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/authorization-details.js': { file: 'authorization-details.js', type: 'text/javascript; charset=utf-8' },
  '/page-kit.js': { file: 'page-kit.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
  '/favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' },
} as const;

const CONTROL_BASE_PATH = /^\/[A-Za-z0-9._~\/-]*$/;

/**
 * The Guardian approval page, mounted by the tenant at `/guardian`: the
 * employee's phone. `GET /` serves the page, which picks the user from
 * `?user_id=` (read in the browser only, never reflected by the server) and
 * talks same-origin to the control API at `controlBasePath`.
 */
export function createGuardianPage(options: GuardianPageOptions): Router {
  const assetDir = new URL('./guardian-page/', import.meta.url);
  return browserPages({
    controlBasePath: options.controlBasePath,
    pages: { '/': readFileSync(new URL('index.html', assetDir), 'utf8') },
    assets: new Map(
      Object.entries(ASSETS).map(([path, { file, type }]) => [path, { type, body: readFileSync(new URL(file, assetDir)) }]),
    ),
  });
}

export interface BrowserAsset {
  type: string;
  body: Buffer;
}

/**
 * The router of the tenant's browser pages (the Guardian page, the mailbox):
 * HTML templates with their mount path and the control API's path filled in,
 * escaped, static assets, and nothing else, all under the pages' security
 * headers; other methods get 405, other paths 404.
 */
export function browserPages(options: {
  controlBasePath: string;
  pages: Readonly<Record<string, string>>;
  assets: ReadonlyMap<string, BrowserAsset>;
}): Router {
  const controlBasePath = options.controlBasePath.replace(/\/+$/, '');
  if (!CONTROL_BASE_PATH.test(controlBasePath)) {
    throw new GuardianPageError(
      `controlBasePath must be an absolute path such as /control (got ${JSON.stringify(options.controlBasePath)})`,
    );
  }
  const router = Router();
  for (const [path, template] of Object.entries(options.pages)) {
    router.get(path, (req: Request, res: Response) => {
      // The mount path comes from the tenant's code, but it is still escaped:
      // nothing reaches this HTML unescaped.
      const html = template
        .replaceAll('%PAGE_BASE%', escapeAttribute(req.baseUrl))
        .replaceAll('%CONTROL_BASE%', escapeAttribute(controlBasePath));
      setSecurityHeaders(res);
      res.type('text/html; charset=utf-8').send(html);
    });
  }
  for (const [path, asset] of options.assets) {
    router.get(path, (_req: Request, res: Response) => {
      setSecurityHeaders(res);
      res.type(asset.type).send(asset.body);
    });
  }
  router.all([...Object.keys(options.pages), ...options.assets.keys()], (_req: Request, res: Response) => {
    setSecurityHeaders(res);
    res.set('Allow', 'GET, HEAD').status(405).type('text/plain; charset=utf-8').send('Method not allowed\n');
  });
  router.use((_req: Request, res: Response) => {
    setSecurityHeaders(res);
    res.status(404).type('text/plain; charset=utf-8').send('Not found\n');
  });
  return router;
}

/** The headers of every page the tenant serves to a browser (the Guardian page, the mailbox). */
export function setSecurityHeaders(res: Response): void {
  res.set({
    'Content-Security-Policy': GUARDIAN_PAGE_CSP,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Resource-Policy': 'same-origin',
    // Pending requests change by the second; a cached page would show stale consent.
    'Cache-Control': 'no-store',
  });
}

export function escapeAttribute(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
