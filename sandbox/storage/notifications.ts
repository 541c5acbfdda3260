import type pg from 'pg';
import { loadPg } from '../on-first-use.ts';

/**
 * LISTEN/NOTIFY for a database's users: any number of callbacks per channel
 * over one LISTEN each, on whatever carries the notifications (a dedicated
 * connection to a PostgreSQL server, or the PGlite thread).
 */

export interface Listener {
  /** Calls `onPayload` with every notification on `channel`; resolves once listening, to a function that stops. */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export interface NotificationTransport {
  listen(channel: string): Promise<void>;
  unlisten(channel: string): Promise<void>;
  close(): Promise<void>;
}

/** Channels are SQL identifiers; only plain ones, so they never need quoting. */
const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/;

export function assertChannel(channel: string): void {
  if (!CHANNEL.test(channel)) throw new TypeError(`a channel name is lower-case letters, digits and _ (got "${channel}")`);
}

/** `transport` is made on the first `listen`; it hands every notification to `deliver`. */
export function createListener(makeTransport: (deliver: (channel: string, payload: string) => void) => NotificationTransport): Listener {
  const callbacks = new Map<string, Set<(payload: string) => void>>();
  let transport: NotificationTransport | undefined;
  const deliver = (channel: string, payload: string) => {
    for (const callback of callbacks.get(channel) ?? []) callback(payload);
  };
  return {
    async listen(channel, onPayload) {
      assertChannel(channel);
      transport ??= makeTransport(deliver);
      let set = callbacks.get(channel);
      if (!set) {
        callbacks.set(channel, (set = new Set()));
        await transport.listen(channel);
      }
      set.add(onPayload);
      return async () => {
        const current = callbacks.get(channel);
        if (!current?.delete(onPayload) || current.size > 0) return;
        callbacks.delete(channel);
        await transport?.unlisten(channel);
      };
    },
    async close() {
      callbacks.clear();
      await transport?.close();
      transport = undefined;
    },
  };
}

/**
 * LISTEN needs a connection of its own, outside the pool. When the server drops it (a restart),
 * it reconnects and listens again; notifications sent meanwhile are lost, so a listener that must
 * see every change re-reads what it watches when `onReconnect` is called.
 */
export function postgresTransport(
  url: string,
  deliver: (channel: string, payload: string) => void,
  options: { reconnectDelayMs?: number; onReconnect?: () => void } = {},
): NotificationTransport {
  const channels = new Set<string>();
  let closed = false;
  let client: Promise<pg.Client> | undefined;

  const connect = async (): Promise<pg.Client> => {
    const made = new (await loadPg()).Client({ connectionString: url });
    made.on('notification', (message) => deliver(message.channel, message.payload ?? ''));
    const lost = () => {
      if (closed || client === undefined) return;
      client = undefined;
      setTimeout(() => {
        if (closed || client !== undefined) return;
        client = connect();
        client.then(
          () => options.onReconnect?.(),
          () => {},
        );
      }, options.reconnectDelayMs ?? 1000).unref();
    };
    made.on('error', lost);
    made.on('end', lost);
    return made.connect().then(async () => {
      for (const channel of channels) await made.query(`LISTEN ${channel}`);
      return made;
    });
  };

  const current = () => (client ??= connect());
  return {
    async listen(channel) {
      channels.add(channel);
      await (await current()).query(`LISTEN ${channel}`);
    },
    async unlisten(channel) {
      channels.delete(channel);
      await (await current()).query(`UNLISTEN ${channel}`);
    },
    async close() {
      closed = true;
      const open = client;
      client = undefined;
      await open?.then((c) => c.end(), () => {});
    },
  };
}
