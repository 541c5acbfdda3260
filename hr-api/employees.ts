import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Staff0's employee records, keyed by the identity backend's user id
 * (`auth0|jdoe`), so a CIBA token's `sub` names the record it may read.
 */

export type EmploymentStatus = 'active' | 'terminated';

export interface Employee {
  /** The identity backend's user id, e.g. `auth0|jdoe`. */
  id: string;
  name: string;
  email: string;
  department: string;
  title: string;
  /** ISO date, `YYYY-MM-DD`. */
  start_date: string;
  employment_status: EmploymentStatus;
  /** ISO date; present exactly when the employee is terminated. */
  end_date?: string;
}

export interface EmployeeDirectory {
  get(id: string): Employee | undefined;
  all(): readonly Employee[];
}

export class EmployeeRecordsError extends Error {
  readonly code = 'invalid_employee_records';
  constructor(readonly problems: string[]) {
    super(`Invalid employee records:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'EmployeeRecordsError';
  }
}

export const DEFAULT_EMPLOYEES_FILE = fileURLToPath(new URL('./employees.json', import.meta.url));

const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;
const STATUSES: readonly EmploymentStatus[] = ['active', 'terminated'];

function isIsoDate(value: unknown): value is string {
  if (typeof value !== 'string' || !ISO_DATE.test(value)) return false;
  const date = new Date(`${value}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().startsWith(value);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Validates the seed file's shape: `{ "employees": [Employee, …] }` with unique ids. */
export function parseEmployees(raw: unknown): Employee[] {
  if (!isObject(raw) || !Array.isArray(raw.employees)) {
    throw new EmployeeRecordsError(['the file must be an object with an "employees" array']);
  }
  const problems: string[] = [];
  const employees: Employee[] = [];
  const seen = new Set<string>();
  raw.employees.forEach((entry: unknown, index) => {
    const where = `employees[${index}]`;
    if (!isObject(entry)) {
      problems.push(`${where} must be an object`);
      return;
    }
    const text = (field: string): string | undefined => {
      const value = entry[field];
      if (typeof value === 'string' && value.trim() !== '') return value;
      problems.push(`${where}.${field} must be a non-empty string`);
      return undefined;
    };
    const id = text('id');
    const name = text('name');
    const email = text('email');
    const department = text('department');
    const title = text('title');
    const status = entry.employment_status;
    if (!STATUSES.includes(status as EmploymentStatus)) {
      problems.push(`${where}.employment_status must be one of ${STATUSES.join(', ')}`);
    }
    if (!isIsoDate(entry.start_date)) problems.push(`${where}.start_date must be a YYYY-MM-DD date`);
    if (status === 'terminated' && !isIsoDate(entry.end_date)) {
      problems.push(`${where}.end_date must be a YYYY-MM-DD date for a terminated employee`);
    }
    if (status === 'active' && entry.end_date !== undefined) {
      problems.push(`${where}.end_date must be absent for an active employee`);
    }
    if (email !== undefined && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) problems.push(`${where}.email is not an email address`);
    if (id !== undefined) {
      if (seen.has(id)) problems.push(`${where}.id "${id}" appears more than once`);
      seen.add(id);
    }
    if (
      id === undefined ||
      name === undefined ||
      email === undefined ||
      department === undefined ||
      title === undefined ||
      !STATUSES.includes(status as EmploymentStatus) ||
      !isIsoDate(entry.start_date)
    ) {
      return;
    }
    const employee: Employee = {
      id,
      name,
      email,
      department,
      title,
      start_date: entry.start_date,
      employment_status: status as EmploymentStatus,
    };
    if (status === 'terminated' && isIsoDate(entry.end_date)) employee.end_date = entry.end_date;
    employees.push(employee);
  });
  if (problems.length > 0) throw new EmployeeRecordsError(problems);
  return employees;
}

export function createEmployeeDirectory(employees: readonly Employee[]): EmployeeDirectory {
  const byId = new Map(employees.map((employee) => [employee.id, employee]));
  const frozen = Object.freeze([...employees]);
  return {
    get: (id) => byId.get(id),
    all: () => frozen,
  };
}

/** Reads and validates a seed file (default: `hr-api/employees.json`). */
export function loadEmployees(file: string = DEFAULT_EMPLOYEES_FILE): EmployeeDirectory {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new EmployeeRecordsError([`${file} could not be read as JSON: ${(error as Error).message}`]);
  }
  return createEmployeeDirectory(parseEmployees(raw));
}
