/**
 * Errors shaped as Google's APIs return them (google.rpc.Status in JSON):
 * `{ "error": { "code": 400, "message": "…", "status": "INVALID_ARGUMENT" } }`.
 * @google/genai turns any such non-2xx body into an `ApiError` with `.status`.
 */

export type GeminiStatus = 'INVALID_ARGUMENT' | 'UNAUTHENTICATED' | 'PERMISSION_DENIED' | 'NOT_FOUND' | 'INTERNAL';

const HTTP_STATUS: Record<GeminiStatus, number> = {
  INVALID_ARGUMENT: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  INTERNAL: 500,
};

export interface GeminiErrorBody {
  error: { code: number; message: string; status: GeminiStatus };
}

export class GeminiError extends Error {
  readonly httpStatus: number;
  constructor(
    readonly code: GeminiStatus,
    message: string,
  ) {
    super(message);
    this.name = 'GeminiError';
    this.httpStatus = HTTP_STATUS[code];
  }

  toJSON(): GeminiErrorBody {
    return { error: { code: this.httpStatus, message: this.message, status: this.code } };
  }
}

export const invalidArgument = (message: string) => new GeminiError('INVALID_ARGUMENT', message);
export const notFound = (message: string) => new GeminiError('NOT_FOUND', message);
