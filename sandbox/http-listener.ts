import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** How every service binds and stops its HTTP(S) server. */

/** Connections the kernel may queue before we accept them: a burst of 1000 callers is queued, not reset. */
const LISTEN_BACKLOG = 4096;
/**
 * An idle keep-alive connection is closed after this long. Clients close
 * theirs a little before the time the server announces; a short timeout
 * makes a request sent on a connection the server is closing at that very
 * moment (a reset, never retried for a POST) likely on a busy machine.
 */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;

/** Binds `server`, rejecting on errors such as EADDRINUSE; resolves to the bound port. */
export function listenOn(server: Server, port: number, host: string): Promise<number> {
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  // Node requires headersTimeout > keepAliveTimeout, or it may close a connection whose next request is arriving.
  server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** The base URL a client uses for a bound address (IPv6 in brackets, a wildcard as loopback). */
export function baseUrl(scheme: 'http' | 'https', host: string, port: number): string {
  const hostInUrl = host.includes(':') ? (host === '::' ? '[::1]' : `[${host}]`) : host === '0.0.0.0' ? '127.0.0.1' : host;
  return `${scheme}://${hostInUrl}:${port}`;
}

/** Stops accepting and ends open connections too: SSE streams and keep-alive sockets never end by themselves. */
export function closeServer(server: Server | undefined): Promise<void> {
  if (!server?.listening) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** Binds to 127.0.0.1 on a free port, as tests and in-process stacks do; resolves to the base URL. */
export async function listenLocal(server: Server): Promise<string> {
  return baseUrl('http', '127.0.0.1', await listenOn(server, 0, '127.0.0.1'));
}

/** One HTTP server for an app, started and stopped at most once at a time. */
export function appListener(app: RequestListener, name: string): { listen(port: number, host: string): Promise<string>; close(): Promise<void> } {
  let server: Server | undefined;
  return {
    async listen(port, host) {
      if (server) throw new Error(`${name} is already listening`);
      const created = createServer(app);
      server = created;
      return baseUrl('http', host, await listenOn(created, port, host));
    },
    close() {
      const running = server;
      server = undefined;
      return closeServer(running);
    },
  };
}
