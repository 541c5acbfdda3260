import type { Content } from '@google/genai';
import type { Kysely } from 'kysely';
import type { DatabaseSchema } from '../sandbox/storage/schema.ts';

/**
 * Earlier turns per A2A context, so that a reply to INPUT_REQUIRED (same
 * `contextId`) is planned with the question that prompted it. Scoped by the
 * authenticated caller: one client can never continue another's context.
 * Bounded in contexts, in turns per context and in age: a context untouched
 * for `maxAgeMs` is forgotten, as finished tasks are (agent/task-store.ts).
 */

export interface Conversations {
  get(owner: string, contextId: string): Promise<Content[]>;
  set(owner: string, contextId: string, contents: Content[]): Promise<void>;
}

export interface ConversationLimits {
  maxContexts?: number;
  maxTurns?: number;
  maxAgeMs?: number;
  now?: () => number;
}

export function createConversations(options: ConversationLimits = {}): Conversations {
  const maxContexts = options.maxContexts ?? 1000;
  const maxTurns = options.maxTurns ?? 24;
  const maxAgeMs = options.maxAgeMs ?? 60 * 60 * 1000;
  const now = options.now ?? Date.now;
  const contexts = new Map<string, { contents: Content[]; at: number }>();
  const key = (owner: string, contextId: string) => JSON.stringify([owner, contextId]);
  // Least recently used first: the oldest are at the front.
  const forgetOld = () => {
    for (const [k, { at }] of contexts) {
      if (contexts.size <= maxContexts && at > now() - maxAgeMs) break;
      contexts.delete(k);
    }
  };

  return {
    async get(owner, contextId) {
      forgetOld();
      return [...(contexts.get(key(owner, contextId))?.contents ?? [])];
    },
    async set(owner, contextId, contents) {
      const k = key(owner, contextId);
      // Re-inserting keeps the Map in least-recently-used order.
      contexts.delete(k);
      contexts.set(k, { contents: trim(contents, maxTurns), at: now() });
      forgetOld();
    },
  };
}

/** A conversation's key: the caller who owns it and its A2A context. */
export interface ConversationKey {
  owner: string;
  contextId: string;
}

export interface DatabaseConversations extends Conversations {
  /** Deletes the conversations idle past `maxAgeMs` (called on the agent's retention timer); resolves to their keys. */
  sweep(): Promise<ConversationKey[]>;
  /** The keys of every conversation kept. */
  keys(): Promise<ConversationKey[]>;
}

/**
 * The same, kept in the database's `conversations` table, so a reply to
 * INPUT_REQUIRED is understood after a restart or by another agent process.
 */
export function createDatabaseConversations(
  db: Kysely<DatabaseSchema>,
  options: Pick<ConversationLimits, 'maxTurns' | 'maxAgeMs'> = {},
): DatabaseConversations {
  const maxTurns = options.maxTurns ?? 24;
  const maxAgeMs = options.maxAgeMs ?? 60 * 60 * 1000;
  return {
    async get(owner, contextId) {
      const row = await db
        .selectFrom('conversations')
        .select(['contents', 'updated_at'])
        .where('owner', '=', owner)
        .where('context_id', '=', contextId)
        .executeTakeFirst();
      if (!row || row.updated_at.getTime() < Date.now() - maxAgeMs || !Array.isArray(row.contents)) return [];
      return row.contents as Content[];
    },
    async set(owner, contextId, contents) {
      const json = JSON.stringify(trim(contents, maxTurns));
      await db
        .insertInto('conversations')
        .values({ owner, context_id: contextId, contents: json, updated_at: new Date() })
        .onConflict((c) => c.columns(['owner', 'context_id']).doUpdateSet({ contents: json, updated_at: new Date() }))
        .execute();
    },
    async sweep() {
      const gone = await db
        .deleteFrom('conversations')
        .where('updated_at', '<', new Date(Date.now() - maxAgeMs))
        .returning(['owner', 'context_id'])
        .execute();
      return gone.map((row) => ({ owner: row.owner, contextId: row.context_id }));
    },
    async keys() {
      const rows = await db.selectFrom('conversations').select(['owner', 'context_id']).execute();
      return rows.map((row) => ({ owner: row.owner, contextId: row.context_id }));
    },
  };
}

/**
 * The conversations of a database only this process writes (its own PGlite folder): the keys of the rows
 * are kept in memory (read once, then kept up to date by `set` and `sweep`), so asking for a conversation
 * that was never written, as every new task does, costs no query. The rows themselves are still read.
 * `set` resolves once its write is asked for: this database runs writes in the order they are asked for,
 * so the conversation is written by the time the task's next state (asked for after it, and awaited) is.
 */
export async function soleOwnerConversations(inner: DatabaseConversations): Promise<DatabaseConversations> {
  const keyOf = ({ owner, contextId }: ConversationKey) => JSON.stringify([owner, contextId]);
  const stored = new Set((await inner.keys()).map(keyOf));
  return {
    get: async (owner, contextId) => (stored.has(keyOf({ owner, contextId })) ? inner.get(owner, contextId) : []),
    async set(owner, contextId, contents) {
      // Known before the write: a read meanwhile goes to the database, which runs it after the write.
      stored.add(keyOf({ owner, contextId }));
      // Not awaited (above). A failed write leaves the conversation as it was; the task's next write, on the
      // same database, fails too, and says so.
      inner.set(owner, contextId, contents).catch(() => undefined);
    },
    async sweep() {
      const gone = await inner.sweep();
      for (const key of gone) stored.delete(keyOf(key));
      return gone;
    },
    keys: async () => [...stored].map((key) => {
      const [owner, contextId] = JSON.parse(key) as [string, string];
      return { owner, contextId };
    }),
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
