import { describe, expect, it } from 'vitest';
import { ASK_FOR_EMPLOYEE, DECLINE, findIdentifier, isValidEmail, isValidEmployeeId, planReply } from '../planner.ts';
import { parseGenerateContentRequest } from '../request.ts';

const TOOLS = [
  {
    functionDeclarations: [{ name: 'get_employee_id_by_email' }, { name: 'is_active_employee' }, { name: 'request_user_input' }],
  },
];

type Turn = { role: 'user' | 'model'; parts: object[] };
const user = (text: string): Turn => ({ role: 'user', parts: [{ text }] });
const call = (name: string, args: object): Turn => ({ role: 'model', parts: [{ functionCall: { name, args } }] });
const result = (name: string, response: object): Turn => ({ role: 'user', parts: [{ functionResponse: { name, response } }] });
const plan = (contents: Turn[], extra: object = {}) => planReply(parseGenerateContentRequest({ contents, tools: TOOLS, ...extra }));

describe('findIdentifier', () => {
  it.each([
    ['Does jdoe@staff0.com work here?', 'jdoe@staff0.com'],
    ['email: JDoe@Staff0.COM.', 'jdoe@staff0.com'],
    ['<jane.smith+hr@mail.staff0.com>', 'jane.smith+hr@mail.staff0.com'],
    ['mailto:akhan@staff0.com', 'akhan@staff0.com'],
    ['first a@staff0.com then b@staff0.com', 'a@staff0.com'],
    ['"npark@staff0.com"?!', 'npark@staff0.com'],
  ])('finds the email in %j', (text, email) => {
    expect(findIdentifier(text)).toEqual({ kind: 'email', value: email });
  });

  it.each([
    ['Is auth0|jdoe active?', 'auth0|jdoe'],
    ['check google-oauth2|1234567890.', 'google-oauth2|1234567890'],
    ['employee E12345, please', 'E12345'],
  ])('finds the employee id in %j', (text, id) => {
    expect(findIdentifier(text)).toEqual({ kind: 'employeeId', value: id });
  });

  it('prefers an email over an id in the same message', () => {
    expect(findIdentifier('auth0|jdoe or jsmith@staff0.com')).toEqual({ kind: 'email', value: 'jsmith@staff0.com' });
  });

  it.each([
    'Does John work here?',
    'jdoe@staff0',
    '@staff0.com',
    'jdoe@',
    'j..doe@staff0.com',
    'jdoe@-staff0.com',
    'jdoe@staff0..com',
    `${'a'.repeat(65)}@staff0.com`,
    '|jdoe',
    'auth0|',
    'E',
    'e123',
    'E1234567890123',
  ])('finds nothing valid in %j', (text) => {
    expect(findIdentifier(text)).toBeUndefined();
  });

  it('scans hostile input without trouble', () => {
    expect(findIdentifier(`${'a'.repeat(500_000)}@${'b.'.repeat(100_000)}`)).toBeUndefined();
    expect(findIdentifier(`${'x '.repeat(200_000)}`)).toBeUndefined();
  });

  it('validates emails and ids for function arguments', () => {
    expect(isValidEmail('jdoe@staff0.com')).toBe(true);
    expect(isValidEmail('jdoe@staff0.com\n')).toBe(false);
    expect(isValidEmail(`${'a'.repeat(64)}@${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}.${'e'.repeat(10)}.com`)).toBe(false);
    expect(isValidEmployeeId('auth0|jdoe')).toBe(true);
    expect(isValidEmployeeId('auth0|jdoe; DROP TABLE')).toBe(false);
    expect(isValidEmployeeId('../auth0|jdoe')).toBe(false);
  });
});

describe('planReply', () => {
  it('unwraps results the SDK wrapped as { output }', () => {
    expect(
      plan([user('is jdoe@staff0.com active'), call('get_employee_id_by_email', { email: 'jdoe@staff0.com' }), result('get_employee_id_by_email', { output: { employee_id: 'auth0|jdoe' } })]),
    ).toEqual({ kind: 'functionCall', name: 'is_active_employee', args: { employee_id: 'auth0|jdoe' } });
  });

  it('does not pass an invalid id from a lookup result into a call', () => {
    expect(
      plan([user('is jdoe@staff0.com active'), call('get_employee_id_by_email', { email: 'jdoe@staff0.com' }), result('get_employee_id_by_email', { employee_id: 'x y' })]),
    ).toEqual({ kind: 'text', text: 'Sorry, I could not look up jdoe@staff0.com right now.' });
  });

  it('reports a failed lookup that is not a not_found', () => {
    expect(
      plan([user('is jdoe@staff0.com active'), call('get_employee_id_by_email', { email: 'jdoe@staff0.com' }), result('get_employee_id_by_email', { error: 'unavailable' })]),
    ).toEqual({ kind: 'text', text: 'Sorry, I could not look up jdoe@staff0.com right now.' });
  });

  it('answers not_found for an id checked directly', () => {
    expect(plan([user('is E404 active'), call('is_active_employee', { employee_id: 'E404' }), result('is_active_employee', { outcome: 'not_found' })])).toEqual({
      kind: 'text',
      text: 'No, I could not find that employee at Staff0.',
    });
  });

  it('names the employee by id when there is neither a name nor an email', () => {
    expect(plan([user('is E7 active'), call('is_active_employee', { employee_id: 'E7' }), result('is_active_employee', { employee_id: 'E7', active: true })])).toEqual({
      kind: 'text',
      text: 'Yes, E7 is an active employee of Staff0.',
    });
  });

  it('strips control characters from a relayed name', () => {
    const reply = plan([user('is E7 active'), call('is_active_employee', { employee_id: 'E7' }), result('is_active_employee', { name: 'John\u0000\nDoe', active: true })]);
    expect(reply).toEqual({ kind: 'text', text: 'Yes, John Doe is an active employee of Staff0.' });
  });

  it('says it could not tell when the status result is malformed', () => {
    const reply = plan([user('is E7 active'), call('is_active_employee', { employee_id: 'E7' }), result('is_active_employee', { active: 'yes' })]);
    expect(reply).toEqual({ kind: 'text', text: 'Sorry, I could not determine whether E7 is an active employee of Staff0.' });
  });

  it('does not borrow the email of an earlier exchange for a later answer', () => {
    const reply = plan([
      user('is jdoe@staff0.com active'),
      call('get_employee_id_by_email', { email: 'jdoe@staff0.com' }),
      result('get_employee_id_by_email', { employee_id: 'auth0|jdoe' }),
      call('is_active_employee', { employee_id: 'auth0|jdoe' }),
      result('is_active_employee', { active: true }),
      user('and auth0|jsmith?'),
      call('is_active_employee', { employee_id: 'auth0|jsmith' }),
      result('is_active_employee', { employee_id: 'auth0|jsmith', active: false }),
    ]);
    expect(reply).toEqual({ kind: 'text', text: 'No, auth0|jsmith is not an active employee of Staff0.' });
  });

  it('starts a new exchange after a status result even without a final model text', () => {
    const reply = plan([
      user('is jdoe@staff0.com active'),
      call('get_employee_id_by_email', { email: 'jdoe@staff0.com' }),
      result('get_employee_id_by_email', { employee_id: 'auth0|jdoe' }),
      call('is_active_employee', { employee_id: 'auth0|jdoe' }),
      result('is_active_employee', { active: true }),
      user('thanks! what is 2 + 2?'),
    ]);
    expect(reply).toEqual({ kind: 'text', text: DECLINE });
  });

  it('takes the newest identifier when the user corrects themselves', () => {
    expect(plan([user('is jdoe@staff0.com active'), user('sorry, I meant auth0|jsmith')])).toEqual({
      kind: 'functionCall',
      name: 'is_active_employee',
      args: { employee_id: 'auth0|jsmith' },
    });
  });

  it('reads the answer to request_user_input as the user’s words', () => {
    expect(
      plan([user('does she work at Staff0?'), call('request_user_input', { question: ASK_FOR_EMPLOYEE }), result('request_user_input', { answer: 'jsmith@staff0.com' })]),
    ).toEqual({ kind: 'functionCall', name: 'get_employee_id_by_email', args: { email: 'jsmith@staff0.com' } });
  });

  it('honours allowedFunctionNames', () => {
    const reply = plan([user('is jdoe@staff0.com active')], {
      toolConfig: { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['request_user_input'] } },
    });
    expect(reply).toEqual({ kind: 'text', text: 'I cannot check employment status right now.' });
  });

  it('answers functionResponses of unknown functions from the user’s words', () => {
    expect(plan([user('is jdoe@staff0.com active'), call('other', {}), result('other', { x: 1 })])).toEqual({
      kind: 'functionCall',
      name: 'get_employee_id_by_email',
      args: { email: 'jdoe@staff0.com' },
    });
  });
});
