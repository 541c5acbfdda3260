import { createServer, type Server } from 'node:http';
import { listenLocal } from '../../sandbox/http-listener.ts';

/**
 * A Gemini `generateContent` endpoint whose answers the test scripts, so the
 * real @google/genai client runs against it.
 */
export interface GeminiRequestBody {
  contents?: { role?: string; parts?: Record<string, unknown>[] }[];
  systemInstruction?: unknown;
  tools?: unknown;
}

export interface ScriptedGemini {
  baseUrl: string;
  requests: GeminiRequestBody[];
  reply(answer: (body: GeminiRequestBody) => Record<string, unknown>[]): void;
  close(): Promise<void>;
}

export async function startScriptedGemini(): Promise<ScriptedGemini> {
  const requests: GeminiRequestBody[] = [];
  let answer: (body: GeminiRequestBody) => Record<string, unknown>[] = () => [{ text: 'I can only check employment.' }];
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    req.on('end', () => {
      const body = JSON.parse(raw) as GeminiRequestBody;
      requests.push(body);
      const parts = answer(body);
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ candidates: [{ content: { role: 'model', parts }, finishReason: 'STOP' }] }));
    });
  });
  const baseUrl = await listenLocal(server);
  return {
    baseUrl,
    requests,
    reply(next) {
      answer = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
