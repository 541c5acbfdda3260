import * as oidc from 'openid-client';
import type { CallPolicy } from './call-policy.ts';

/**
 * The agent's one connection to its identity backend: OpenID discovery for
 * the issuer, done on first use under the call policy and remembered (a
 * failed discovery is tried again on the next call rather than cached). Every
 * later request through the configuration has the policy's attempt deadline.
 */

export interface IdentityOptions {
  /** Issuer with Auth0's trailing slash, e.g. `https://staff0.us.auth0.com/`. */
  issuer: string;
  client: { clientId: string; clientSecret: string };
  /** Only for an `http://` issuer (the local tenant); TLS is required otherwise. */
  allowInsecureHttp?: boolean;
  policy: CallPolicy;
}

export interface IdentityClient {
  readonly issuer: string;
  configuration(): Promise<oidc.Configuration>;
  /**
   * The same configuration for CIBA token polls, whose requests are let run `LATE_ANSWER_FACTOR`
   * attempt deadlines: a poll past its deadline is waited for again, not repeated (see `agent/ciba.ts`).
   */
  pollConfiguration(): Promise<oidc.Configuration>;
}

/** A poll's request outlives its attempt deadline this many times over. */
export const LATE_ANSWER_FACTOR = 3;

export function createIdentityClient(options: IdentityOptions): IdentityClient {
  let pending: Promise<oidc.Configuration> | undefined;
  const timeout = Math.max(1, Math.ceil(options.policy.limits('identity').attemptTimeoutMs / 1000));
  const discover = () =>
    options.policy.call(
      'identity',
      () =>
        oidc.discovery(new URL(options.issuer), options.client.clientId, undefined, oidc.ClientSecretPost(options.client.clientSecret), {
          execute: options.allowInsecureHttp ? [oidc.allowInsecureRequests] : [],
          timeout,
          // Every request through this configuration uses the policy's connection pool.
          [oidc.customFetch]: (url, init) => options.policy.fetch(url, init as RequestInit),
        }),
      { signal: new AbortController().signal, hop: { label: 'GET /.well-known/openid-configuration', attributes: { 'http.request.method': 'GET' } } },
    );
  const client: IdentityClient = {
    issuer: options.issuer,
    configuration() {
      if (!pending) {
        pending = discover();
        pending.catch(() => {
          pending = undefined;
        });
      }
      return pending;
    },
    async pollConfiguration() {
      const config = await client.configuration();
      if (polls?.source === config) return polls.config;
      const poll = new oidc.Configuration(config.serverMetadata(), options.client.clientId, undefined, oidc.ClientSecretPost(options.client.clientSecret));
      poll.timeout = timeout * LATE_ANSWER_FACTOR;
      poll[oidc.customFetch] = (url, init) => options.policy.fetch(url, init as RequestInit);
      if (options.allowInsecureHttp) oidc.allowInsecureRequests(poll);
      polls = { source: config, config: poll };
      return poll;
    },
  };
  let polls: { source: oidc.Configuration; config: oidc.Configuration } | undefined;
  return client;
}
