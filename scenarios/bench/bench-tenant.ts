import type { Employee } from '../../hr-api/employees.ts';
import { loadTenantFile, type TenantFile, type TenantSettings } from '../../mock-guardian/tenant-file.ts';

/**
 * The benchmarks' own tenant: the default tenant's APIs and applications
 * (so the documented client ids and secrets work) with as many push-enrolled
 * employees as a load needs, and their matching HR records.
 */

export interface BenchPerson {
  userId: string;
  email: string;
  name: string;
}

/** `count` people; fixed-width numbers keep every name from containing another. */
export function benchPeople(count: number, group = 'bench'): BenchPerson[] {
  const width = Math.max(4, String(count).length);
  return Array.from({ length: count }, (_, i) => {
    const n = String(i + 1).padStart(width, '0');
    return { userId: `auth0|${group}${n}`, email: `${group}${n}@staff0.com`, name: `${capitalize(group)} Employee ${n}` };
  });
}

export function benchTenant(people: readonly BenchPerson[], settings: Partial<TenantSettings> = {}): TenantFile {
  const base = loadTenantFile();
  return {
    ...base,
    name: 'Staff0 (benchmark tenant)',
    // One machine plays every caller, so Auth0's per-IP limit on /bc-authorize would measure itself.
    settings: { ...base.settings, cibaRateLimitPerIpPerMinute: 0, ...settings },
    users: people.map((p) => ({
      user_id: p.userId,
      email: p.email,
      email_verified: true,
      name: p.name,
      created_at: '2024-01-15T09:00:00.000Z',
      guardian: { push: true },
    })),
  };
}

export function benchEmployees(people: readonly BenchPerson[]): Employee[] {
  return people.map((p) => ({
    id: p.userId,
    name: p.name,
    email: p.email,
    department: 'Engineering',
    title: 'Engineer',
    start_date: '2024-01-15',
    employment_status: 'active',
  }));
}

export function questionAbout(person: BenchPerson): string {
  return `Is ${person.email} an active employee of Staff0?`;
}

/** A yes that names this person: with unique names, proof the answer is this employee's own. */
export function answersFor(person: BenchPerson, answer: string): boolean {
  return /^Yes\b/.test(answer) && answer.includes(person.name);
}

function capitalize(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}
