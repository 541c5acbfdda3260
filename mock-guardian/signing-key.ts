import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, type JWK } from 'jose';

/**
 * The tenant's RS256 signing key as a private JWK. Generated on first use;
 * kept in a git-ignored state folder when one is given so tokens stay valid
 * across restarts, otherwise only in memory.
 */

export const SIGNING_KEY_FILE = 'tenant-signing-key.json';

export interface PrivateRsaJwk extends JWK {
  kty: 'RSA';
  kid: string;
  alg: 'RS256';
  use: 'sig';
  n: string;
  e: string;
  d: string;
}

export async function loadOrCreateSigningKey(keysDir: string | undefined): Promise<PrivateRsaJwk> {
  const file = keysDir === undefined ? undefined : join(keysDir, SIGNING_KEY_FILE);
  if (file !== undefined && existsSync(file)) {
    const stored: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (isPrivateRsaJwk(stored)) return stored;
    throw new Error(`${file} does not hold an RS256 private JWK; delete it to generate a new key`);
  }
  const { privateKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: randomUUID(), alg: 'RS256', use: 'sig' };
  if (!isPrivateRsaJwk(jwk)) throw new Error('generated key is not an RSA private JWK');
  if (keysDir !== undefined && file !== undefined) {
    mkdirSync(keysDir, { recursive: true, mode: 0o700 });
    writeFileSync(file, `${JSON.stringify(jwk)}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
  }
  return jwk;
}

function isPrivateRsaJwk(value: unknown): value is PrivateRsaJwk {
  if (typeof value !== 'object' || value === null) return false;
  const jwk = value as Record<string, unknown>;
  return (
    jwk.kty === 'RSA' &&
    jwk.alg === 'RS256' &&
    jwk.use === 'sig' &&
    ['kid', 'n', 'e', 'd', 'p', 'q', 'dp', 'dq', 'qi'].every((k) => typeof jwk[k] === 'string')
  );
}
