import * as oidc from 'openid-client';
import { AgentError } from './errors.ts';

/**
 * The agent's one connection to its identity backend: OpenID discovery for
 * the issuer, done on first use and remembered (a failed discovery is retried
 * on the next call rather than cached).
 */

export interface IdentityOptions {
  /** Issuer with Auth0's trailing slash, e.g. `https://staff0.us.auth0.com/`. */
  issuer: string;
  client: { clientId: string; clientSecret: string };
  /** Only for an `http://` issuer (the local tenant); TLS is required otherwise. */
  allowInsecureHttp?: boolean;
}

export interface IdentityClient {
  readonly issuer: string;
  configuration(): Promise<oidc.Configuration>;
}

export function createIdentityClient(options: IdentityOptions): IdentityClient {
  let pending: Promise<oidc.Configuration> | undefined;
  const discover = async () => {
    try {
      return await oidc.discovery(
        new URL(options.issuer),
        options.client.clientId,
        undefined,
        oidc.ClientSecretPost(options.client.clientSecret),
        { execute: options.allowInsecureHttp ? [oidc.allowInsecureRequests] : [], timeout: 10 },
      );
    } catch (error) {
      throw new AgentError('backend_error', 'The identity backend could not be reached', { cause: error });
    }
  };
  return {
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
  };
}
