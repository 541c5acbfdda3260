import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import tenant from '../../mock-guardian/tenant.json' with { type: 'json' };
import { EmployeeRecordsError, loadEmployees, parseEmployees } from '../employees.ts';
import { createHrApi } from '../server.ts';

function writeSeed(content: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'hr-api-')), 'employees.json');
  writeFileSync(file, content);
  return file;
}

function problemsOf(raw: unknown): string[] {
  try {
    parseEmployees(raw);
  } catch (error) {
    if (error instanceof EmployeeRecordsError) return error.problems;
    throw error;
  }
  throw new Error('expected an EmployeeRecordsError');
}

const john = {
  id: 'auth0|jdoe',
  name: 'John Doe',
  email: 'jdoe@staff0.com',
  department: 'Engineering',
  title: 'Engineer',
  start_date: '2019-03-11',
  employment_status: 'active',
};

describe('the seed file', () => {
  it("holds a record for every one of the local tenant's users, by user_id, name and email", () => {
    const directory = loadEmployees();
    for (const user of tenant.users) {
      const employee = directory.get(user.user_id);
      expect(employee, user.user_id).toBeDefined();
      expect(employee?.name).toBe(user.name);
      expect(employee?.email).toBe(user.email);
    }
    expect(directory.all()).toHaveLength(tenant.users.length);
  });

  it('has Brenda Lee as the one former employee, with an end date', () => {
    const directory = loadEmployees();
    const former = directory.all().filter((e) => e.employment_status === 'terminated');
    expect(former.map((e) => e.id)).toEqual(['auth0|blee']);
    expect(former[0]?.end_date).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(directory.all().filter((e) => e.employment_status === 'active').map((e) => e.name).sort()).toEqual([
      'Ali Khan',
      'Jane Smith',
      'John Doe',
      'Maria Garcia',
      'Nina Park',
    ]);
  });

  it('finds nothing for ids that are not records, including inherited object keys', () => {
    const directory = loadEmployees();
    expect(directory.get('auth0|ghost')).toBeUndefined();
    expect(directory.get('__proto__')).toBeUndefined();
    expect(directory.get('constructor')).toBeUndefined();
  });
});

describe('parseEmployees', () => {
  it('accepts a valid record and keeps end_date only for terminated employees', () => {
    const [active, former] = parseEmployees({
      employees: [john, { ...john, id: 'auth0|x', employment_status: 'terminated', end_date: '2024-01-31' }],
    });
    expect(active).toEqual(john);
    expect(former?.end_date).toBe('2024-01-31');
  });

  it('rejects a file that is not an object with an employees array', () => {
    expect(problemsOf([john])).toEqual(['the file must be an object with an "employees" array']);
    expect(problemsOf(null)).toHaveLength(1);
  });

  it('names every problem', () => {
    const problems = problemsOf({
      employees: [
        { ...john, name: '' },
        { ...john, id: 'auth0|b', employment_status: 'retired' },
        { ...john, id: 'auth0|c', start_date: '2019-02-30' },
        { ...john, id: 'auth0|d', employment_status: 'terminated' },
        { ...john, id: 'auth0|e', end_date: '2024-01-01' },
        { ...john, id: 'auth0|f', email: 'not an email' },
        john,
        'nope',
      ],
    });
    expect(problems).toEqual([
      'employees[0].name must be a non-empty string',
      'employees[1].employment_status must be one of active, terminated',
      'employees[2].start_date must be a YYYY-MM-DD date',
      'employees[3].end_date must be a YYYY-MM-DD date for a terminated employee',
      'employees[4].end_date must be absent for an active employee',
      'employees[5].email is not an email address',
      'employees[6].id "auth0|jdoe" appears more than once',
      'employees[7] must be an object',
    ]);
  });
});

describe('a replacement seed file', () => {
  it('is used by the HR API factory when given', () => {
    const file = writeSeed(JSON.stringify({ employees: [{ ...john, id: 'auth0|only' }] }));
    expect(loadEmployees(file).all().map((e) => e.id)).toEqual(['auth0|only']);
    expect(() => createHrApi({ issuer: 'https://staff0.test/', audience: 'https://staff0/api', employeesFile: file })).not.toThrow();
  });

  it('fails the factory with a coded error when it is not JSON', () => {
    const file = writeSeed('{ not json');
    expect(() => createHrApi({ issuer: 'https://staff0.test/', audience: 'https://staff0/api', employeesFile: file })).toThrow(
      expect.objectContaining({ code: 'invalid_employee_records' }),
    );
  });

  it('fails with a coded error when the file is missing', () => {
    expect(() => loadEmployees('/nonexistent/employees.json')).toThrow(EmployeeRecordsError);
  });
});
