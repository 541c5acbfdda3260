import type { GenerateContentParameters, GenerateContentResponse, Part } from '@google/genai';
import { describe, expect, it } from 'vitest';
import { createCallPolicy } from '../call-policy.ts';
import { createPlanner, type PlanCheckpoint } from '../planner.ts';
import type { ToolResult } from '../tools.ts';

function modelSays(...parts: Part[]): GenerateContentResponse {
  return { candidates: [{ content: { role: 'model', parts } }] } as GenerateContentResponse;
}

const signal = new AbortController().signal;

describe('planner checkpoints', () => {
  it('goes on from the checkpoint of a pending call, as if it had never stopped, after a JSON round trip', async () => {
    const seen: GenerateContentParameters[] = [];
    const replies = [
      modelSays(
        { functionCall: { id: 'a', name: 'is_active_employee', args: { employee_id: 'auth0|jdoe' } } },
        { functionCall: { id: 'b', name: 'get_employee_id_by_email', args: { email: 'x@staff0.com' } } },
      ),
      modelSays({ text: 'Yes, John Doe is an active employee of Staff0.' }),
    ];
    const generateContent = async (params: GenerateContentParameters) => {
      seen.push(structuredClone({ ...params, config: undefined }));
      return replies.shift()!;
    };
    const policy = createCallPolicy();
    const first = createPlanner({ generateContent, model: 'gemini-test', policy });
    let checkpoint: PlanCheckpoint | undefined;
    const stopped = new Error('the process stopped while the consent was pending');
    await expect(
      first.run({
        history: [],
        userText: 'Is jdoe active?',
        signal,
        onCall: (at) => (checkpoint = at),
        tools: {
          run: async () => {
            throw stopped;
          },
        },
      }),
    ).rejects.toBe(stopped);
    expect(checkpoint?.callIndex).toBe(0);

    const stored = JSON.parse(JSON.stringify(checkpoint)) as PlanCheckpoint;
    const later = createPlanner({ generateContent, model: 'gemini-test', policy });
    const ran: string[] = [];
    const verdict: ToolResult = { kind: 'response', response: { employee_id: 'auth0|jdoe', name: 'John Doe', active: true } };
    const result = await later.resume({
      checkpoint: stored,
      result: verdict,
      signal,
      tools: {
        run: async (call) => {
          ran.push(call.name ?? '');
          return { kind: 'response', response: { error: 'not_found' } };
        },
      },
    });
    expect(result).toMatchObject({ kind: 'answer', text: 'Yes, John Doe is an active employee of Staff0.' });
    // The call after the pending one still ran, and the model got both answers in order.
    expect(ran).toEqual(['get_employee_id_by_email']);
    const answered = seen[1]?.contents as { role: string; parts: Part[] }[];
    expect(answered.at(-1)?.parts.map((p) => p.functionResponse?.id)).toEqual(['a', 'b']);
    expect(answered.at(-1)?.parts[0]?.functionResponse?.response).toEqual(verdict.response);
    await policy.close();
  });
});
