import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

/**
 * Every service answers only to its own host names. A DNS-rebinding page
 * (its name re-pointed at 127.0.0.1 after load) reaches a local port with its
 * own name in `Host`; refusing that name before any handler runs keeps such a
 * page from reading the control API or its event stream (RFC 9110 §7.2 says a
 * server must not serve a request whose authority it does not own; §15.5.20
 * gives 421 for it).
 */

export interface HostAllowlistOptions {
  /** Names from `SANDBOX_ALLOWED_HOSTS`: `name` (any port) or `name:port`, lower case. */
  names?: readonly string[];
  /** URLs whose host:port the service answers to (its public URL, its issuer), read at each request. */
  urls?: () => readonly (string | undefined)[];
}

/** Names that only this machine can put in a Host header; allowed on the port the request arrived on. */
const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]']);

export class MisdirectedRequestError extends Error {
  readonly code = 'misdirected_request';
  readonly status = 421;
  constructor() {
    super('This service does not answer to that host name; if it is yours, add it to SANDBOX_ALLOWED_HOSTS');
    this.name = 'MisdirectedRequestError';
  }
}

interface Authority {
  hostname: string;
  port: number;
}

function authorityOf(value: string, defaultPort: number): Authority | undefined {
  if (value === '' || /[\s/?#@\\]/.test(value)) return undefined;
  const url = URL.parse(`http://${value}`);
  if (!url) return undefined;
  return { hostname: url.hostname.replace(/\.$/, ''), port: url.port === '' ? defaultPort : Number(url.port) };
}

function urlAuthority(value: string): Authority | undefined {
  const url = URL.parse(value);
  if (!url) return undefined;
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
  return { hostname: url.hostname.replace(/\.$/, ''), port };
}

/** Whether `host` (a Host header) names this service, for a request that arrived on `localPort`. */
export function isAllowedHost(host: string | undefined, localPort: number | undefined, tls: boolean, options: HostAllowlistOptions): boolean {
  if (host === undefined) return false;
  const asked = authorityOf(host.toLowerCase(), tls ? 443 : 80);
  if (!asked) return false;
  if (LOOPBACK_NAMES.has(asked.hostname) && asked.port === localPort) return true;
  for (const url of options.urls?.() ?? []) {
    const own = url === undefined ? undefined : urlAuthority(url.toLowerCase());
    if (own && own.hostname === asked.hostname && own.port === asked.port) return true;
  }
  for (const name of options.names ?? []) {
    const hasPort = /:\d+$/.test(name) && !/^\[[^\]]*\]$/.test(name);
    const allowed = authorityOf(name, asked.port);
    if (allowed && allowed.hostname === asked.hostname && (!hasPort || allowed.port === asked.port)) return true;
  }
  return false;
}

/** Express middleware answering 421 with a JSON error for any other Host; mount it first. */
export function hostAllowlist(options: HostAllowlistOptions): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const socket = (req as IncomingMessage).socket as Partial<TLSSocket>;
    if (isAllowedHost(req.headers.host, req.socket.localPort, socket.encrypted === true, options)) return next();
    const error = new MisdirectedRequestError();
    res.status(error.status).set('Cache-Control', 'no-store').json({ error: error.code, error_description: error.message });
  };
}
