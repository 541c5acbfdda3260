import type { Content } from '@google/genai';

/**
 * Earlier turns per A2A context, so that a reply to INPUT_REQUIRED (same
 * `contextId`) is planned with the question that prompted it. Scoped by the
 * authenticated caller: one client can never continue another's context.
 * Bounded in contexts and in turns per context.
 */

export interface Conversations {
  get(owner: string, contextId: string): Content[];
  set(owner: string, contextId: string, contents: Content[]): void;
}

export function createConversations(options: { maxContexts?: number; maxTurns?: number } = {}): Conversations {
  const maxContexts = options.maxContexts ?? 1000;
  const maxTurns = options.maxTurns ?? 24;
  const contexts = new Map<string, Content[]>();
  const key = (owner: string, contextId: string) => JSON.stringify([owner, contextId]);

  return {
    get(owner, contextId) {
      return [...(contexts.get(key(owner, contextId)) ?? [])];
    },
    set(owner, contextId, contents) {
      const k = key(owner, contextId);
      // Re-inserting keeps the Map in least-recently-used order.
      contexts.delete(k);
      contexts.set(k, trim(contents, maxTurns));
      while (contexts.size > maxContexts) {
        const oldest = contexts.keys().next().value;
        if (oldest === undefined) break;
        contexts.delete(oldest);
      }
    },
  };
}

/** Keeps the newest turns, starting at a user's text turn so no function call loses its response. */
function trim(contents: Content[], maxTurns: number): Content[] {
  let start = Math.max(0, contents.length - maxTurns);
  while (start < contents.length && !isUserText(contents[start])) start += 1;
  return contents.slice(start);
}

function isUserText(turn: Content | undefined): boolean {
  return turn?.role === 'user' && (turn.parts ?? []).some((part) => typeof part.text === 'string');
}

/**
 * The conversation after a failed exchange: the earlier turns (without a
 * model call left unanswered) plus the caller's words and the outcome text.
 */
export function closedExchange(history: Content[], userText: string, outcome: string): Content[] {
  const last = history.at(-1);
  const dangling = last?.role === 'model' && (last.parts ?? []).some((part) => part.functionCall);
  return [
    ...(dangling ? history.slice(0, -1) : history),
    { role: 'user', parts: [{ text: userText }] },
    { role: 'model', parts: [{ text: outcome }] },
  ];
}
