import { readFileSync } from 'node:fs';
import { type Request, type Response, Router } from 'express';
import { escapeAttribute, GuardianPageError, setSecurityHeaders } from './guardian-page.ts';

/**
 * The local stand-in for Auth0's CIBA email channel ("Email notifications with
 * CIBA"), mounted by the tenant at `/mailbox`: `GET /` is a user's inbox, one
 * message per email-channel request; its link opens `GET /consent?request=<id>`,
 * where the user first confirms who they are (a local sign-in as the request's
 * user, standing in for Auth0's login) and then sees the consent prompt, with
 * the request's authorization_details, and approves or denies. Both pages talk
 * same-origin to the control API and render everything as text, under the
 * Guardian page's Content-Security-Policy.
 */

export interface MailboxPageOptions {
  /** Path prefix of the control API the pages talk to, e.g. `/control`. */
  controlBasePath: string;
}

const CONTROL_BASE_PATH = /^\/[A-Za-z0-9._~\/-]*$/;

export function createMailboxPage(options: MailboxPageOptions): Router {
  const controlBasePath = options.controlBasePath.replace(/\/+$/, '');
  if (!CONTROL_BASE_PATH.test(controlBasePath)) {
    throw new GuardianPageError(`controlBasePath must be an absolute path such as /control (got ${JSON.stringify(options.controlBasePath)})`);
  }
  const own = new URL('./mailbox-page/', import.meta.url);
  const guardian = new URL('./guardian-page/', import.meta.url);
  const pages = {
    '/': readFileSync(new URL('index.html', own), 'utf8'),
    '/consent': readFileSync(new URL('consent.html', own), 'utf8'),
  };
  const assets = new Map<string, { type: string; body: Buffer }>([
    ['/app.js', { type: 'text/javascript; charset=utf-8', body: readFileSync(new URL('app.js', own)) }],
    ['/style.css', { type: 'text/css; charset=utf-8', body: readFileSync(new URL('style.css', own)) }],
    // One renderer for authorization_details, on the phone and in the browser.
    ['/authorization-details.js', { type: 'text/javascript; charset=utf-8', body: readFileSync(new URL('authorization-details.js', guardian)) }],
    ['/page-kit.js', { type: 'text/javascript; charset=utf-8', body: readFileSync(new URL('page-kit.js', guardian)) }],
    ['/favicon.svg', { type: 'image/svg+xml', body: readFileSync(new URL('favicon.svg', guardian)) }],
  ]);

  const router = Router();
  for (const [path, template] of Object.entries(pages)) {
    router.get(path, (req: Request, res: Response) => {
      const html = template
        .replaceAll('%PAGE_BASE%', escapeAttribute(req.baseUrl))
        .replaceAll('%CONTROL_BASE%', escapeAttribute(controlBasePath));
      setSecurityHeaders(res);
      res.type('text/html; charset=utf-8').send(html);
    });
  }
  for (const [path, asset] of assets) {
    router.get(path, (_req: Request, res: Response) => {
      setSecurityHeaders(res);
      res.type(asset.type).send(asset.body);
    });
  }
  router.all([...Object.keys(pages), ...assets.keys()], (_req: Request, res: Response) => {
    setSecurityHeaders(res);
    res.set('Allow', 'GET, HEAD').status(405).type('text/plain; charset=utf-8').send('Method not allowed\n');
  });
  router.use((_req: Request, res: Response) => {
    setSecurityHeaders(res);
    res.status(404).type('text/plain; charset=utf-8').send('Not found\n');
  });
  return router;
}
