import type { Employee } from '../hr-api/employees.ts';
import { loadEmployees } from '../hr-api/employees.ts';
import { loadTenantFile, type TenantFile } from '../mock-guardian/tenant-file.ts';

/**
 * The people scenarios talk about. Locally they are the tenant's users; against
 * Auth0 they are the test users named in the environment (see README).
 */

export type PersonaKey = 'john' | 'jane' | 'brenda' | 'nina' | 'mallory' | 'unknown';

export interface Persona {
  key: PersonaKey;
  email: string;
  /** The identity backend's user id, where the runner knows it (locally, always). */
  userId: string | undefined;
  name: string;
}

export type Personas = Partial<Record<PersonaKey, Persona>>;

/** A user whose tenant-sourced name holds markup, to prove the Guardian page shows it as text. */
export const MALLORY_NAME = '<img src=x onerror="window.__injected=1">Mallory';

const MALLORY = {
  user_id: 'auth0|mallory',
  email: 'mallory@staff0.com',
  email_verified: true,
  name: MALLORY_NAME,
  created_at: '2024-01-15T09:00:00.000Z',
  guardian: { push: true },
} as const;

/** An application allowed the agent's API with no scopes: its tokens must get 403 insufficient_scope. */
export const PARTNER_APP = { clientId: 'partner-app', clientSecret: 'partner-app-local-secret' } as const;

/** The default tenant plus Mallory and the Partner App. */
export function scenarioTenant(): TenantFile {
  const base = loadTenantFile();
  return {
    ...base,
    applications: [
      ...base.applications,
      {
        name: 'Partner App',
        client_id: PARTNER_APP.clientId,
        client_secret: PARTNER_APP.clientSecret,
        grant_types: ['client_credentials'],
        client_grants: [{ audience: 'https://staff0/agent', scope: [] }],
      },
    ],
    users: [...base.users, { ...MALLORY, guardian: { ...MALLORY.guardian } }],
  };
}

export function scenarioEmployees(): Employee[] {
  return [
    ...loadEmployees().all(),
    {
      id: MALLORY.user_id,
      name: MALLORY_NAME,
      email: MALLORY.email,
      department: 'Security',
      title: 'Red Team Lead',
      start_date: '2024-01-15',
      employment_status: 'active',
    },
  ];
}

export function localPersonas(): Personas {
  const persona = (key: PersonaKey, userId: string | undefined, email: string, name: string): Persona => ({ key, userId, email, name });
  return {
    john: persona('john', 'auth0|jdoe', 'jdoe@staff0.com', 'John Doe'),
    jane: persona('jane', 'auth0|jsmith', 'jsmith@staff0.com', 'Jane Smith'),
    brenda: persona('brenda', 'auth0|blee', 'blee@staff0.com', 'Brenda Lee'),
    nina: persona('nina', 'auth0|npark', 'npark@staff0.com', 'Nina Park'),
    mallory: persona('mallory', MALLORY.user_id, MALLORY.email, MALLORY_NAME),
    unknown: persona('unknown', undefined, 'nobody@staff0.com', 'nobody'),
  };
}

/** Against Auth0, only the personas whose emails were configured exist. */
export function auth0Personas(emails: Partial<Record<PersonaKey, string>>): Personas {
  const personas: Personas = {};
  for (const [key, email] of Object.entries(emails) as [PersonaKey, string | undefined][]) {
    if (email) personas[key] = { key, email, userId: undefined, name: email };
  }
  return personas;
}

/** `{john}` → John's email. Unknown placeholders are left for the caller to report. */
export function fillPersonas(text: string, personas: Personas): string {
  return text.replace(/\{(\w+)\}/g, (whole, key: string) => personas[key as PersonaKey]?.email ?? whole);
}

export function personasIn(text: string): PersonaKey[] {
  return [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as PersonaKey);
}
