import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { webcrypto } from 'node:crypto';

/**
 * A locally generated certificate authority, so the local tenant can serve
 * HTTPS like a real Auth0 domain. Node is told to trust it with
 * `NODE_EXTRA_CA_CERTS=<stateDir>/ca/ca.pem`; nothing else changes.
 */

export interface LocalTls {
  /** PEM path to hand to NODE_EXTRA_CA_CERTS. */
  caCertPath: string;
  /** Server certificate (PEM), valid for localhost and 127.0.0.1, signed by the CA. */
  cert: string;
  key: string;
}

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

x509.cryptoProvider.set(webcrypto as Crypto);

async function pkcs8Pem(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

async function importKey(pem: string): Promise<CryptoKey> {
  const der = x509.PemConverter.decodeFirst(pem);
  return webcrypto.subtle.importKey('pkcs8', der, ALG, true, ['sign']);
}

function serial(): string {
  return Buffer.from(webcrypto.getRandomValues(new Uint8Array(12))).toString('hex').replace(/^[89a-f]/, '1');
}

/** Where the CA certificate of a state folder is (or will be). */
export function localCaCertPath(stateDir: string): string {
  return join(stateDir, 'ca', 'ca.pem');
}

/** The CA is made once per state folder; the server certificate is reissued when missing or near expiry. */
export async function ensureLocalTls(stateDir: string, hostnames: string[] = ['localhost', '127.0.0.1']): Promise<LocalTls> {
  const dir = join(stateDir, 'ca');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const caCertPath = localCaCertPath(stateDir);
  const caKeyPath = join(dir, 'ca-key.pem');
  const certPath = join(dir, 'server.pem');
  const keyPath = join(dir, 'server-key.pem');

  let caCert: x509.X509Certificate;
  let caKey: CryptoKey;
  if (existsSync(caCertPath) && existsSync(caKeyPath)) {
    caCert = new x509.X509Certificate(readFileSync(caCertPath, 'utf8'));
    caKey = await importKey(readFileSync(caKeyPath, 'utf8'));
  } else {
    const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
    caCert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name: 'CN=Headless Agent Auth Sandbox local CA',
      notBefore: new Date(Date.now() - DAY),
      notAfter: new Date(Date.now() + 3650 * DAY),
      keys,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    caKey = keys.privateKey;
    writeFileSync(caKeyPath, await pkcs8Pem(caKey), { mode: 0o600 });
    writeFileSync(caCertPath, caCert.toString('pem'));
  }

  const wanted = [...hostnames].sort().join(',');
  if (existsSync(certPath) && existsSync(keyPath)) {
    const current = new x509.X509Certificate(readFileSync(certPath, 'utf8'));
    const names = current.getExtension(x509.SubjectAlternativeNameExtension)?.names.items.map((n) => n.value).sort().join(',');
    if (names === wanted && current.notAfter.getTime() > Date.now() + 7 * DAY && current.issuer === caCert.subject) {
      return { caCertPath, cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8') };
    }
  }
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: 'CN=localhost',
    issuer: caCert.subject,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 365 * DAY),
    signingKey: caKey,
    publicKey: keys.publicKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(
        hostnames.map((value) => ({ type: /^[\d.]+$|:/.test(value) ? ('ip' as const) : ('dns' as const), value })),
      ),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  const certPem = cert.toString('pem');
  const keyPem = await pkcs8Pem(keys.privateKey);
  writeFileSync(certPath, certPem);
  writeFileSync(keyPath, keyPem, { mode: 0o600 });
  return { caCertPath, cert: certPem, key: keyPem };
}
