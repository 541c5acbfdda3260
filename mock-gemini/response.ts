import { randomBytes } from 'node:crypto';
import type { Plan } from './planner.ts';

/**
 * `GenerateContentResponse` exactly as the Gemini API sends it, so that
 * @google/genai's `response.functionCalls` and `response.text` read it.
 * Gemini finishes a function-call turn with `STOP` too.
 */

export type ResponsePart = { functionCall: { name: string; args: Record<string, string> } } | { text: string };

export interface GenerateContentResponseBody {
  candidates: Array<{
    content: { role: 'model'; parts: ResponsePart[] };
    finishReason: 'STOP';
    index: number;
  }>;
  usageMetadata: {
    promptTokenCount: number;
    candidatesTokenCount: number;
    totalTokenCount: number;
    promptTokensDetails: Array<{ modality: 'TEXT'; tokenCount: number }>;
  };
  modelVersion: string;
  responseId: string;
}

/** Roughly four characters per token, as Gemini's documentation estimates. */
function estimateTokens(value: unknown): number {
  return Math.max(1, Math.ceil(JSON.stringify(value ?? '').length / 4));
}

export function partsFor(plan: Plan): ResponsePart[] {
  return plan.kind === 'functionCall' ? [{ functionCall: { name: plan.name, args: plan.args } }] : [{ text: plan.text }];
}

export function generateContentResponse(plan: Plan, model: string, prompt: unknown): GenerateContentResponseBody {
  const parts = partsFor(plan);
  const promptTokenCount = estimateTokens(prompt);
  const candidatesTokenCount = estimateTokens(parts);
  return {
    candidates: [{ content: { role: 'model', parts }, finishReason: 'STOP', index: 0 }],
    usageMetadata: {
      promptTokenCount,
      candidatesTokenCount,
      totalTokenCount: promptTokenCount + candidatesTokenCount,
      promptTokensDetails: [{ modality: 'TEXT', tokenCount: promptTokenCount }],
    },
    modelVersion: model,
    responseId: randomBytes(16).toString('base64url'),
  };
}
