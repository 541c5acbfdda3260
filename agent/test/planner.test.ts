import type { GenerateContentParameters, GenerateContentResponse, Part } from '@google/genai';
import { describe, expect, it, vi } from 'vitest';
import { createCallPolicy } from '../call-policy.ts';
import { createPlanner, SYSTEM_INSTRUCTION } from '../planner.ts';
import type { ToolSession } from '../tools.ts';

function modelSays(...parts: Part[]): GenerateContentResponse {
  return { candidates: [{ content: { role: 'model', parts } }] } as GenerateContentResponse;
}

const signal = new AbortController().signal;
/** Fast limits, so the retry tests take milliseconds. */
const policy = createCallPolicy({ model: { attemptTimeoutMs: 200, retries: 2, backoffMs: 5, maxBackoffMs: 20 } });

describe('planner', () => {
  it('sends the system instruction and the three functions, runs calls and returns the final text', async () => {
    const calls: GenerateContentParameters[] = [];
    const replies = [
      modelSays({ functionCall: { id: 'c1', name: 'get_employee_id_by_email', args: { email: 'jdoe@staff0.com' } } }),
      modelSays({ text: 'Yes, John Doe is an active employee of Staff0.' }),
    ];
    const planner = createPlanner({
      model: 'gemini-test',
      policy,
      generateContent: async (params) => {
        calls.push(structuredClone({ ...params, config: { ...params.config, abortSignal: undefined } }));
        return replies.shift()!;
      },
    });
    const tools: ToolSession = { run: vi.fn(async () => ({ kind: 'response' as const, response: { employee_id: 'auth0|jdoe' } })) };
    const result = await planner.run({ history: [], userText: 'Does jdoe@staff0.com work here?', tools, signal });
    expect(result).toMatchObject({ kind: 'answer', text: 'Yes, John Doe is an active employee of Staff0.' });
    expect(calls[0]?.config?.systemInstruction).toBe(SYSTEM_INSTRUCTION);
    expect(calls[0]?.config?.tools).toEqual([
      {
        functionDeclarations: [
          expect.objectContaining({ name: 'get_employee_id_by_email' }),
          expect.objectContaining({ name: 'is_active_employee' }),
          expect.objectContaining({ name: 'request_user_input' }),
        ],
      },
    ]);
    expect(calls[1]?.contents).toEqual([
      { role: 'user', parts: [{ text: 'Does jdoe@staff0.com work here?' }] },
      { role: 'model', parts: [{ functionCall: { id: 'c1', name: 'get_employee_id_by_email', args: { email: 'jdoe@staff0.com' } } }] },
      { role: 'user', parts: [{ functionResponse: { id: 'c1', name: 'get_employee_id_by_email', response: { employee_id: 'auth0|jdoe' } } }] },
    ]);
  });

  it('stops with input_required when the model asks the caller a question', async () => {
    const planner = createPlanner({
      model: 'm',
      policy,
      generateContent: async () => modelSays({ functionCall: { name: 'request_user_input', args: { question: 'Which employee?' } } }),
    });
    const tools: ToolSession = { run: async () => ({ kind: 'input_required', question: 'Which employee?' }) };
    expect(await planner.run({ history: [], userText: 'Does John work here?', tools, signal })).toEqual({
      kind: 'input_required',
      question: 'Which employee?',
      transcript: [
        { role: 'user', parts: [{ text: 'Does John work here?' }] },
        { role: 'model', parts: [{ functionCall: { name: 'request_user_input', args: { question: 'Which employee?' } } }] },
      ],
    });
  });

  it("answers the model's request_user_input call with the caller's next words", async () => {
    const seen: GenerateContentParameters[] = [];
    const planner = createPlanner({
      model: 'm',
      policy,
      generateContent: async (params) => {
        seen.push(params);
        return modelSays({ text: 'Yes, John Doe is an active employee of Staff0.' });
      },
    });
    const history = [
      { role: 'user', parts: [{ text: 'Does John work here?' }] },
      { role: 'model', parts: [{ functionCall: { id: 'q1', name: 'request_user_input', args: { question: 'Which employee?' } } }] },
    ];
    await planner.run({ history, userText: 'jdoe@staff0.com', tools: { run: vi.fn() }, signal });
    expect(seen[0]?.contents).toEqual([
      ...history,
      { role: 'user', parts: [{ functionResponse: { id: 'q1', name: 'request_user_input', response: { answer: 'jdoe@staff0.com' } } }] },
    ]);
  });

  it('gives up after the round limit instead of looping forever', async () => {
    const generateContent = vi.fn(async () => modelSays({ functionCall: { name: 'get_employee_id_by_email', args: { email: 'x@y.z' } } }));
    const planner = createPlanner({ model: 'm',
      policy, generateContent, maxRounds: 3 });
    const tools: ToolSession = { run: async () => ({ kind: 'response', response: { error: 'not_found' } }) };
    await expect(planner.run({ history: [], userText: 'loop', tools, signal })).rejects.toMatchObject({ code: 'backend_error' });
    expect(generateContent).toHaveBeenCalledTimes(3);
  });

  it('reports a refusing model as a backend error naming the model, without its details', async () => {
    const generateContent = vi.fn(async () => {
      throw Object.assign(new Error('401 API key AIza-secret invalid'), { status: 401 });
    });
    const planner = createPlanner({ model: 'm', policy, generateContent });
    const tools: ToolSession = { run: vi.fn() };
    await expect(planner.run({ history: [], userText: 'hi', tools, signal })).rejects.toMatchObject({
      code: 'backend_error',
      message: 'The language model (m) could not be used',
    });
    expect(generateContent).toHaveBeenCalledTimes(1);
  });

  it('retries a model that answers 429, then answers', async () => {
    let calls = 0;
    const planner = createPlanner({
      model: 'm',
      policy,
      generateContent: async () => {
        calls += 1;
        if (calls === 1) throw Object.assign(new Error('Resource exhausted'), { status: 429 });
        return modelSays({ text: 'No, that person is not an active employee of Staff0.' });
      },
    });
    const result = await planner.run({ history: [], userText: 'q', tools: { run: vi.fn() }, signal });
    expect(result).toMatchObject({ kind: 'answer', text: 'No, that person is not an active employee of Staff0.' });
    expect(calls).toBe(2);
  });

  it('gives up on a model that never answers once its attempts time out, naming the model', async () => {
    const seen: AbortSignal[] = [];
    const planner = createPlanner({
      model: 'gemini-test',
      policy,
      generateContent: (params) => {
        seen.push(params.config!.abortSignal!);
        return new Promise(() => undefined);
      },
    });
    await expect(planner.run({ history: [], userText: 'q', tools: { run: vi.fn() }, signal })).rejects.toMatchObject({
      code: 'unavailable',
      message: 'The language model (gemini-test) did not answer within 0.2 s, after 3 attempts',
    });
    // Each abandoned attempt's request was told to stop.
    expect(seen).toHaveLength(3);
    expect(seen.every((s) => s.aborted)).toBe(true);
  });

  it('gives up after its retries on a model that keeps answering 503', async () => {
    const generateContent = vi.fn(async () => {
      throw Object.assign(new Error('The model is overloaded'), { status: 503 });
    });
    const planner = createPlanner({ model: 'm', policy, generateContent });
    await expect(planner.run({ history: [], userText: 'q', tools: { run: vi.fn() }, signal })).rejects.toMatchObject({
      code: 'unavailable',
      message: 'The language model (m) answered HTTP 503, after 3 attempts',
    });
    expect(generateContent).toHaveBeenCalledTimes(3);
  });

  it('ignores thought parts in the final answer', async () => {
    const planner = createPlanner({
      model: 'm',
      policy,
      generateContent: async () => modelSays({ text: 'internal reasoning', thought: true }, { text: 'No, that person is not an active employee.' }),
    });
    const result = await planner.run({ history: [], userText: 'q', tools: { run: vi.fn() }, signal });
    expect(result).toMatchObject({ kind: 'answer', text: 'No, that person is not an active employee.' });
  });
});
