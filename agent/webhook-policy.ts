import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';

/**
 * Where the agent may POST push notifications (A2A §9, "Push Notifications"):
 * a caller names the URL, so without a policy the agent is a request
 * forwarder into its own network (cloud metadata, the tenant's control API,
 * the HR API). The same check runs when a config is stored and again at each
 * delivery, on the addresses the name resolves to then, and the delivery
 * connects to exactly those addresses, so a name cannot be rebound in between.
 */

/** Stable names of the rules, shown to the caller in the A2A error and in logs. */
export type WebhookRule =
  | 'invalid_url'
  | 'scheme'
  | 'unspecified_address'
  | 'link_local_address'
  | 'loopback_address'
  | 'private_address'
  | 'reserved_address'
  | 'own_service'
  | 'unresolvable';

const RULE_DESCRIPTIONS: Record<WebhookRule, string> = {
  invalid_url: 'the URL is not an absolute URL',
  scheme: 'only http and https URLs are allowed',
  unspecified_address: 'the unspecified address (0.0.0.0, ::) is never a webhook',
  link_local_address: 'link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10) are never a webhook',
  loopback_address: 'loopback addresses are not allowed (PUSH_WEBHOOK_ALLOW_LOOPBACK)',
  private_address: 'private network addresses are not allowed (PUSH_WEBHOOK_ALLOW_PRIVATE)',
  reserved_address: 'multicast and reserved addresses are never a webhook',
  own_service: "the sandbox's own services (identity backend, HR API, mock-gemini, this agent) are never a webhook",
  unresolvable: 'the host name does not resolve',
};

export class WebhookRefusedError extends Error {
  readonly code = 'webhook_refused';
  constructor(readonly rule: WebhookRule) {
    super(`Push notification URL refused (${rule}): ${RULE_DESCRIPTIONS[rule]}`);
    this.name = 'WebhookRefusedError';
  }
}

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Every address a host name resolves to (the one place DNS is asked, injectable for tests). */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemResolver: Resolver = async (hostname) => {
  const answers = await dnsLookup(hostname, { all: true, verbatim: true });
  return answers.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

export interface WebhookPolicyOptions {
  /** Loopback receivers (127.0.0.0/8, ::1), e.g. a test's webhook on 127.0.0.1. Default false. */
  allowLoopback?: boolean;
  /** RFC 1918, RFC 6598 and RFC 4193 ranges. Default false. */
  allowPrivate?: boolean;
  /** Base URLs of the sandbox's own services, read at each check (the agent's own is known after listen). */
  ownServices: () => readonly string[];
  resolve?: Resolver;
}

export interface CheckedWebhook {
  url: URL;
  port: number;
  /** The addresses checked; a delivery connects to these and no others. */
  addresses: ResolvedAddress[];
}

export interface WebhookPolicy {
  /** Resolves the URL's host and checks every address; throws WebhookRefusedError. */
  check(url: string): Promise<CheckedWebhook>;
}

export type AddressClass = 'public' | 'unspecified' | 'link_local' | 'loopback' | 'private' | 'reserved';

export function createWebhookPolicy(options: WebhookPolicyOptions): WebhookPolicy {
  const resolve = options.resolve ?? systemResolver;

  const addressesOf = async (host: string): Promise<ResolvedAddress[]> => {
    const literal = host.replace(/^\[|\]$/g, '');
    const family = isIP(literal);
    if (family !== 0) return [{ address: literal, family: family === 6 ? 6 : 4 }];
    try {
      const answers = await resolve(literal);
      if (answers.length === 0) throw new WebhookRefusedError('unresolvable');
      return answers;
    } catch (error) {
      if (error instanceof WebhookRefusedError) throw error;
      throw new WebhookRefusedError('unresolvable');
    }
  };

  /** Addresses and ports the sandbox's own services answer on. */
  const ownEndpoints = async (): Promise<{ port: number; addresses: Set<string> }[]> => {
    const endpoints: { port: number; addresses: Set<string> }[] = [];
    for (const base of options.ownServices()) {
      const url = URL.parse(base);
      if (!url) continue;
      let addresses: ResolvedAddress[] = [];
      try {
        addresses = await addressesOf(url.hostname);
      } catch {
        // A service whose name does not resolve cannot be reached by a webhook either.
      }
      endpoints.push({ port: portOf(url), addresses: new Set(addresses.map((a) => canonicalAddress(a.address))) });
    }
    return endpoints;
  };

  return {
    async check(raw) {
      const url = URL.parse(raw);
      if (!url) throw new WebhookRefusedError('invalid_url');
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new WebhookRefusedError('scheme');
      // The WHATWG parser has already turned 2852039166, 0xA9FEA9FE and 0251.0376.0251.0376 into 169.254.169.254.
      const addresses = await addressesOf(url.hostname);
      const port = portOf(url);
      const kinds = addresses.map(({ address }) => classifyAddress(address));
      if (kinds.includes('unspecified')) throw new WebhookRefusedError('unspecified_address');
      if (kinds.includes('link_local')) throw new WebhookRefusedError('link_local_address');
      if (kinds.includes('reserved')) throw new WebhookRefusedError('reserved_address');
      // A service bound to 0.0.0.0 answers on every local address, so any of them on its port is the service.
      const local = localAddresses();
      for (const own of await ownEndpoints()) {
        if (own.port !== port) continue;
        for (const { address } of addresses) {
          const canonical = canonicalAddress(address);
          if (own.addresses.has(canonical) || local.has(canonical) || classifyAddress(canonical) === 'loopback') {
            throw new WebhookRefusedError('own_service');
          }
        }
      }
      if (kinds.includes('loopback') && !options.allowLoopback) throw new WebhookRefusedError('loopback_address');
      if (kinds.includes('private') && !options.allowPrivate) throw new WebhookRefusedError('private_address');
      return { url, port, addresses };
    },
  };
}

function portOf(url: URL): number {
  if (url.port !== '') return Number(url.port);
  return url.protocol === 'https:' ? 443 : 80;
}

function localAddresses(): Set<string> {
  const addresses = new Set<string>();
  for (const list of Object.values(networkInterfaces())) {
    for (const entry of list ?? []) addresses.add(canonicalAddress(entry.address.replace(/%.*$/, '')));
  }
  return addresses;
}

/** IPv4 as written; an IPv6 address that carries an IPv4 one (mapped, compatible, NAT64, 6to4) as that IPv4. */
export function canonicalAddress(address: string): string {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  if (isIP(bare) !== 6) return bare.toLowerCase();
  const groups = ipv6Groups(bare);
  if (!groups) return bare.toLowerCase();
  const embedded = embeddedIpv4(groups);
  if (embedded !== undefined) return embedded;
  return groups.map((g) => g.toString(16)).join(':');
}

export function classifyAddress(address: string): AddressClass {
  const canonical = canonicalAddress(address);
  if (isIP(canonical) === 4) return classifyIpv4(canonical);
  const groups = ipv6Groups(canonical);
  if (!groups) return 'reserved';
  const [g0 = 0] = groups;
  if (groups.every((g) => g === 0)) return 'unspecified';
  if (groups.slice(0, 7).every((g) => g === 0) && groups[7] === 1) return 'loopback';
  // AWS's IPv6 instance metadata address sits inside fc00::/7.
  if (canonical === 'fd00:ec2:0:0:0:0:0:254') return 'link_local';
  if ((g0 & 0xffc0) === 0xfe80) return 'link_local';
  if ((g0 & 0xfe00) === 0xfc00) return 'private';
  if ((g0 & 0xff00) === 0xff00) return 'reserved';
  // 100::/64 is the discard prefix (RFC 6666).
  if (g0 === 0x100 && groups.slice(1, 4).every((g) => g === 0)) return 'reserved';
  return 'public';
}

function classifyIpv4(address: string): AddressClass {
  const [a = 0, b = 0] = address.split('.').map(Number);
  if (a === 0) return 'unspecified'; // 0.0.0.0/8: "this network"; Linux connects 0.0.0.0 to loopback.
  if (a === 127) return 'loopback';
  if (a === 169 && b === 254) return 'link_local';
  if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)) return 'private';
  if (a === 100 && b >= 64 && b <= 127) return 'private'; // RFC 6598 shared address space (Alibaba's metadata lives here)
  if (a === 192 && b === 0 && address.split('.')[2] === '0') return 'reserved'; // 192.0.0.0/24 (RFC 6890), incl. 192.0.0.192
  if (a === 198 && (b === 18 || b === 19)) return 'reserved';
  if (a >= 224) return 'reserved'; // multicast, 240.0.0.0/4 and broadcast
  return 'public';
}

function ipv6Groups(address: string): number[] | undefined {
  let text = address.toLowerCase();
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (tail?.[1]) {
    const parts = tail[1].split('.').map(Number);
    const hex = [((parts[0] ?? 0) << 8) | (parts[1] ?? 0), ((parts[2] ?? 0) << 8) | (parts[3] ?? 0)];
    text = `${text.slice(0, -tail[1].length)}${hex.map((h) => h.toString(16)).join(':')}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(':') : [];
  const rest = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 0) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...rest].map((g) => parseInt(g, 16));
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}

function embeddedIpv4(groups: number[]): string | undefined {
  const toIpv4 = (hi: number, lo: number) => [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff].join('.');
  const [g0, g1, g2, g3, g4, g5, g6 = 0, g7 = 0] = groups;
  const zeroHead = g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0;
  if (zeroHead && g5 === 0xffff) return toIpv4(g6, g7); // ::ffff:0:0/96, IPv4-mapped (RFC 4291 §2.5.5.2)
  if (zeroHead && g5 === 0 && (g6 !== 0 || g7 > 1)) return toIpv4(g6, g7); // ::a.b.c.d, IPv4-compatible (deprecated)
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) return toIpv4(g6, g7); // NAT64 (RFC 6052)
  if (g0 === 0x2002) return toIpv4(g1 ?? 0, g2 ?? 0); // 6to4 (RFC 3056)
  return undefined;
}
