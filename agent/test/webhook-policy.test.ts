import { describe, expect, it } from 'vitest';
import { canonicalAddress, classifyAddress, createWebhookPolicy, WebhookRefusedError, type Resolver, type WebhookRule } from '../webhook-policy.ts';

const OWN = ['http://127.0.0.1:10052/', 'http://127.0.0.1:10051', 'http://localhost:10053', 'http://127.0.0.1:10050'];

/** Names resolve only through this table, as a hostile DNS server would answer. */
const dns: Record<string, string[]> = {
  'hooks.example.test': ['93.184.216.34'],
  'metadata.example.test': ['169.254.169.254'],
  'intranet.example.test': ['10.1.2.3'],
  'split.example.test': ['93.184.216.34', '127.0.0.1'],
  'mapped.example.test': ['::ffff:a9fe:a9fe'],
  localhost: ['127.0.0.1', '::1'],
};
const resolve: Resolver = async (name) => {
  const answers = dns[name];
  if (!answers) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
  return answers.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
};

const strict = createWebhookPolicy({ ownServices: () => OWN, resolve });
const loopbackAllowed = createWebhookPolicy({ ownServices: () => OWN, resolve, allowLoopback: true });

async function ruleOf(policy: typeof strict, url: string): Promise<WebhookRule | 'allowed'> {
  try {
    await policy.check(url);
    return 'allowed';
  } catch (error) {
    if (error instanceof WebhookRefusedError) return error.rule;
    throw error;
  }
}

describe('webhook URL policy', () => {
  it.each([
    ['file:///etc/passwd', 'scheme'],
    ['gopher://127.0.0.1:6379/_INFO', 'scheme'],
    ['ftp://hooks.example.test/', 'scheme'],
    ['data:text/plain,hi', 'scheme'],
    ['not a url', 'invalid_url'],
  ] as const)('refuses %s (%s)', async (url, rule) => {
    expect(await ruleOf(loopbackAllowed, url)).toBe(rule);
  });

  it.each([
    ['http://169.254.169.254/latest/meta-data/'],
    ['http://2852039166/'],
    ['http://0xA9FEA9FE/'],
    ['http://0251.0376.0251.0376/'],
    ['http://169.254.43518/'],
    ['http://[::ffff:169.254.169.254]/'],
    ['http://[::ffff:a9fe:a9fe]/'],
    ['http://[64:ff9b::169.254.169.254]/'],
    ['http://[fe80::1]/'],
    ['http://[fd00:ec2::254]/latest/meta-data/'],
    ['https://metadata.example.test/'],
    ['https://mapped.example.test/'],
  ])('refuses the link-local / metadata address %s, even with loopback and private allowed', async (url) => {
    const lenient = createWebhookPolicy({ ownServices: () => OWN, resolve, allowLoopback: true, allowPrivate: true });
    expect(await ruleOf(lenient, url)).toBe('link_local_address');
  });

  it.each([['http://0.0.0.0:8080/'], ['http://0/'], ['http://[::]/'], ['http://[::ffff:0.0.0.0]/']])(
    'refuses the unspecified address %s',
    async (url) => {
      expect(await ruleOf(loopbackAllowed, url)).toBe('unspecified_address');
    },
  );

  it.each([['http://224.0.0.1/'], ['http://255.255.255.255/'], ['http://[ff02::1]/']])('refuses the multicast or reserved address %s', async (url) => {
    expect(await ruleOf(loopbackAllowed, url)).toBe('reserved_address');
  });

  it('refuses loopback unless configured, in every spelling', async () => {
    for (const url of ['http://127.0.0.1:9999/', 'http://[::1]:22/', 'http://2130706433:9999/', 'http://localhost:9999/', 'http://split.example.test/']) {
      expect(await ruleOf(strict, url), url).toBe('loopback_address');
    }
    expect(await ruleOf(loopbackAllowed, 'http://127.0.0.1:9999/hook')).toBe('allowed');
  });

  it('refuses private ranges unless configured', async () => {
    expect(await ruleOf(loopbackAllowed, 'http://10.0.0.5/')).toBe('private_address');
    expect(await ruleOf(loopbackAllowed, 'http://192.168.1.20:8080/')).toBe('private_address');
    expect(await ruleOf(loopbackAllowed, 'http://[fd12:3456::1]/')).toBe('private_address');
    expect(await ruleOf(loopbackAllowed, 'https://intranet.example.test/hook')).toBe('private_address');
    const privateAllowed = createWebhookPolicy({ ownServices: () => OWN, resolve, allowPrivate: true });
    expect(await ruleOf(privateAllowed, 'https://intranet.example.test/hook')).toBe('allowed');
  });

  it("refuses the sandbox's own services by address and port, even with loopback allowed", async () => {
    for (const url of [
      'http://127.0.0.1:10052/control/requests/abc/approve',
      'http://localhost:10051/employees/auth0%7Cjdoe',
      'http://[::1]:10053/v1beta/models',
      'http://2130706433:10050/a2a/jsonrpc',
      'http://[::ffff:127.0.0.1]:10050/',
      'http://127.0.0.2:10052/',
    ]) {
      expect(await ruleOf(loopbackAllowed, url), url).toBe('own_service');
    }
  });

  it('refuses a name that resolves to an address it refuses, and one that does not resolve', async () => {
    expect(await ruleOf(loopbackAllowed, 'http://metadata.example.test/')).toBe('link_local_address');
    expect(await ruleOf(loopbackAllowed, 'http://unknown.example.test/')).toBe('unresolvable');
  });

  it('allows a public https receiver', async () => {
    const checked = await strict.check('https://hooks.example.test/a2a?x=1');
    expect(checked.port).toBe(443);
    expect(checked.addresses).toEqual([{ address: '93.184.216.34', family: 4 }]);
  });

  it('reads IPv6 forms that carry an IPv4 address as that address', () => {
    expect(canonicalAddress('::ffff:a9fe:a9fe')).toBe('169.254.169.254');
    expect(canonicalAddress('[::ffff:127.0.0.1]')).toBe('127.0.0.1');
    expect(canonicalAddress('2002:a9fe:a9fe::1')).toBe('169.254.169.254');
    expect(classifyAddress('2001:4860:4860::8888')).toBe('public');
    expect(classifyAddress('::1')).toBe('loopback');
  });
});

describe('webhook URL policy without loopback', () => {
  it("names the sandbox's own service rather than loopback when both apply", async () => {
    expect(await ruleOf(strict, 'http://127.0.0.1:10052/control/requests/x/approve')).toBe('own_service');
    expect(await ruleOf(strict, 'http://127.0.0.1:10099/')).toBe('loopback_address');
  });
});
