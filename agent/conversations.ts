import type { Content } from '@google/genai';

/**
 * Earlier turns per A2A context, so that a reply to INPUT_REQUIRED (same
 * `contextId`) is planned with the question that prompted it. Scoped by the
 * authenticated caller: one client can never continue another's context.
 * Only user and model text is kept, and only so much of it.
 */

export interface Conversations {
  get(owner: string, contextId: string): Content[];
  append(owner: string, contextId: string, turns: Content[]): void;
}

export function createConversations(options: { maxContexts?: number; maxTurns?: number } = {}): Conversations {
  const maxContexts = options.maxContexts ?? 1000;
  const maxTurns = options.maxTurns ?? 20;
  const contexts = new Map<string, Content[]>();
  const key = (owner: string, contextId: string) => JSON.stringify([owner, contextId]);

  return {
    get(owner, contextId) {
      return [...(contexts.get(key(owner, contextId)) ?? [])];
    },
    append(owner, contextId, turns) {
      const k = key(owner, contextId);
      const kept = [...(contexts.get(k) ?? []), ...turns].slice(-maxTurns);
      // Re-inserting keeps the Map in least-recently-used order.
      contexts.delete(k);
      contexts.set(k, kept);
      while (contexts.size > maxContexts) {
        const oldest = contexts.keys().next().value;
        if (oldest === undefined) break;
        contexts.delete(oldest);
      }
    },
  };
}
