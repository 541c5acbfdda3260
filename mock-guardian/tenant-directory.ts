import {
  normalizeBaseUrl,
  renderTemplate,
  type TenantApi,
  type TenantApplication,
  type TenantFile,
  type TenantSettings,
  type TenantUser,
  type TenantVariables,
} from './tenant-file.ts';

/**
 * The tenant file with its issuer filled in, indexed for lookups. Variables
 * other than the issuer (the HR Agent's URL) can change while the tenant runs,
 * so templates that use them are rendered when they are needed.
 */

export interface TenantDirectory {
  readonly name: string;
  readonly issuer: string;
  readonly settings: TenantSettings;
  readonly apis: readonly TenantApi[];
  readonly applications: readonly TenantApplication[];
  readonly users: readonly TenantUser[];
  findApi(identifier: string): TenantApi | undefined;
  findApplication(clientId: string): TenantApplication | undefined;
  findUser(userId: string): TenantUser | undefined;
  findUsersByEmail(email: string): TenantUser[];
  /** Scopes the application may get for an API by client credentials; undefined when it has no client grant. */
  clientGrantScopes(clientId: string, audience: string): string[] | undefined;
  /** True when the application may name this API as `audience` in a CIBA request. */
  cibaAudienceAllowed(clientId: string, audience: string): boolean;
  /** The CIBA §10.2 ping endpoint with today's variables; undefined for poll applications. */
  notificationEndpoint(clientId: string): string | undefined;
}

export function createTenantDirectory(
  file: TenantFile,
  issuer: string,
  variables: () => TenantVariables,
): TenantDirectory {
  const vars = (): TenantVariables => {
    const current = variables();
    return {
      ...current,
      ISSUER: issuer,
      ...(current.HR_AGENT_URL === undefined ? {} : { HR_AGENT_URL: normalizeBaseUrl(current.HR_AGENT_URL) }),
    };
  };
  const withIssuer = (template: string) => renderTemplate(template, { ISSUER: issuer, HR_AGENT_URL: '{{HR_AGENT_URL}}' });

  const apis: TenantApi[] = file.apis.map((api) => ({ ...api, identifier: withIssuer(api.identifier) }));
  const applications: TenantApplication[] = file.applications.map((app) => ({
    ...app,
    client_grants: app.client_grants.map((g) => ({ audience: withIssuer(g.audience), scope: [...g.scope] })),
    ...(app.ciba ? { ciba: { ...app.ciba, audiences: app.ciba.audiences.map(withIssuer) } } : {}),
  }));
  const apiById = new Map(apis.map((a) => [a.identifier, a]));
  const appById = new Map(applications.map((a) => [a.client_id, a]));
  const userById = new Map(file.users.map((u) => [u.user_id, u]));

  return {
    name: file.name,
    issuer,
    settings: file.settings,
    apis,
    applications,
    users: file.users,
    findApi: (identifier) => apiById.get(identifier),
    findApplication: (clientId) => appById.get(clientId),
    findUser: (userId) => userById.get(userId),
    findUsersByEmail: (email) => file.users.filter((u) => u.email.toLowerCase() === email.toLowerCase()),
    clientGrantScopes(clientId, audience) {
      return appById.get(clientId)?.client_grants.find((g) => g.audience === audience)?.scope;
    },
    cibaAudienceAllowed(clientId, audience) {
      return appById.get(clientId)?.ciba?.audiences.includes(audience) ?? false;
    },
    notificationEndpoint(clientId) {
      const template = appById.get(clientId)?.ciba?.client_notification_endpoint;
      return template === undefined ? undefined : renderTemplate(template, vars());
    },
  };
}
