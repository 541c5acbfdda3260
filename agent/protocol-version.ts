import { A2A_VERSION_HEADER } from '@a2a-js/sdk';
import { VersionNotSupportedError } from '@a2a-js/sdk/errors';
import { JsonRpcTransportHandler, validateVersion, type A2ARequestHandler } from '@a2a-js/sdk/server';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';

/**
 * A2A §3.6: a JSON-RPC request without `A2A-Version: 1.0` is answered -32009
 * (VersionNotSupportedError). The SDK's jsonRpcHandler answers it correctly but
 * logs the error with its whole stack through console.error, once per request,
 * and takes no logger. This gate answers exactly what the SDK answers, in the
 * SDK's order (a foreign content type and broken JSON first), and logs one line.
 */

/** The SDK treats an absent header as 0.3 (its ABSENT_HEADER_VERSION). */
const ABSENT_HEADER_VERSION = '0.3';
const parseJson = express.json();

export interface VersionGateOptions {
  requestHandler: A2ARequestHandler;
  log?: (line: string) => void;
}

export function jsonRpcVersionGate(options: VersionGateOptions): RequestHandler {
  const log = options.log ?? ((line: string) => console.warn(line));
  return (req: Request, res: Response, next: NextFunction) => {
    if (req.method !== 'POST') return next();
    const requested = req.header(A2A_VERSION_HEADER) || ABSENT_HEADER_VERSION;
    options.requestHandler.getAgentCard().then(
      (card) => {
        try {
          validateVersion(requested, card, 'JSONRPC');
          return next();
        } catch (error) {
          if (!(error instanceof VersionNotSupportedError)) return next(error);
          const mediaType = req.header('content-type')?.split(';', 1)[0]?.trim().toLowerCase();
          // The SDK's content-type guard answers these before it looks at the version.
          if (mediaType !== undefined && mediaType !== 'application/json') return next();
          parseJson(req, res, (parseError?: unknown) => {
            if (parseError instanceof SyntaxError && 'body' in parseError) {
              res.status(200).json({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Invalid JSON payload.' } });
              return;
            }
            if (parseError) return next(parseError);
            const body = req.body as { id?: unknown; method?: unknown } | undefined;
            const method = typeof body?.method === 'string' ? body.method.slice(0, 64).replace(/[^\w.:/-]/g, '?') : '?';
            log(`JSON-RPC ${method} refused: A2A-Version ${JSON.stringify(requested.slice(0, 32))} is not supported (-32009)`);
            res.status(200).json({ jsonrpc: '2.0', id: body?.id || null, error: JsonRpcTransportHandler.mapToJSONRPCError(error) });
          });
        }
      },
      (error: unknown) => next(error),
    );
  };
}
