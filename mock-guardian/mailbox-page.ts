import { readFileSync } from 'node:fs';
import type { Router } from 'express';
import { browserPages } from './guardian-page.ts';

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

export function createMailboxPage(options: MailboxPageOptions): Router {
  const own = new URL('./mailbox-page/', import.meta.url);
  const guardian = new URL('./guardian-page/', import.meta.url);
  const script = (file: string, dir: URL) => ({ type: 'text/javascript; charset=utf-8', body: readFileSync(new URL(file, dir)) });
  return browserPages({
    controlBasePath: options.controlBasePath,
    pages: {
      '/': readFileSync(new URL('index.html', own), 'utf8'),
      '/consent': readFileSync(new URL('consent.html', own), 'utf8'),
    },
    assets: new Map([
      ['/app.js', script('app.js', own)],
      ['/style.css', { type: 'text/css; charset=utf-8', body: readFileSync(new URL('style.css', own)) }],
      // One renderer for authorization_details and one page kit, on the phone and in the browser.
      ['/authorization-details.js', script('authorization-details.js', guardian)],
      ['/page-kit.js', script('page-kit.js', guardian)],
      ['/favicon.svg', { type: 'image/svg+xml', body: readFileSync(new URL('favicon.svg', guardian)) }],
    ]),
  });
}
