import express, { type ErrorRequestHandler, type Express, type Request, type Response } from 'express';
import type { JWTVerifyGetKey } from 'jose';
import { BearerError, type BearerPolicy, type Principal, requireBearer, sendBearerError } from '../sandbox/bearer.ts';
import { detailsCover } from './authorization-details.ts';
import { createEmployeeDirectory, type Employee, loadEmployees } from './employees.ts';
import { appListener } from '../sandbox/http-listener.ts';
import { hostAllowlist } from '../sandbox/host-allowlist.ts';
import { HOP } from '../sandbox/telemetry/hops.ts';
import { servedSpan, traceRequests } from '../sandbox/telemetry/served-requests.ts';
import { noTelemetry, type Telemetry } from '../sandbox/telemetry/setup.ts';

export const HR_API_SCOPE = 'read:employee';
export const HR_API_REALM = 'Staff0 HR API';

export interface HrApiOptions {
  /** The identity backend's issuer, with Auth0's trailing slash. */
  issuer: string;
  /** The HR API's audience, `https://staff0/api`. */
  audience: string;
  /** Seed file replacing `hr-api/employees.json`. */
  employeesFile?: string;
  /** Records given directly (scenario and benchmark tenants); wins over `employeesFile`. */
  employees?: readonly Employee[];
  /** Key source; defaults to the issuer's `/.well-known/jwks.json`. */
  jwks?: JWTVerifyGetKey;
  /** The URL callers use (`HR_API_URL`); its host is answered besides loopback's on the bound port. */
  publicUrl?: string;
  /** Further host names answered (`SANDBOX_ALLOWED_HOSTS`). */
  allowedHosts?: readonly string[];
  /** Seconds a token's iat/nbf may be ahead of our clock (`TOKEN_CLOCK_TOLERANCE_SECONDS`). */
  clockToleranceSeconds?: number;
  /** A span (and a log line) for each record read (sandbox/telemetry/setup.ts); none by default. */
  telemetry?: Telemetry;
}

export interface HrApi {
  app: Express;
  /** Starts listening; resolves to the base URL, e.g. `http://127.0.0.1:10051`. */
  listen(port: number, host: string): Promise<string>;
  close(): Promise<void>;
}

/** What a reader with the employee's consent learns: nothing beyond employment status. */
export interface EmployeeStatusRecord {
  id: string;
  name: string;
  employment_status: Employee['employment_status'];
}

/** Longer than any identity backend's user id; such ids are answered without a lookup. */
const MAX_ID_LENGTH = 256;

export function createHrApi(options: HrApiOptions): HrApi {
  const employees = options.employees ? createEmployeeDirectory(options.employees) : loadEmployees(options.employeesFile);
  const policy: BearerPolicy = {
    issuer: options.issuer,
    audience: options.audience,
    scopes: [HR_API_SCOPE],
    realm: HR_API_REALM,
    ...(options.jwks ? { jwks: options.jwks } : {}),
    ...(options.clockToleranceSeconds === undefined ? {} : { clockToleranceSeconds: options.clockToleranceSeconds }),
  };

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(hostAllowlist({ names: options.allowedHosts ?? [], urls: () => [options.publicUrl] }));
  app.use(
    traceRequests(options.telemetry ?? noTelemetry(), {
      participant: 'hr-api',
      route: (req) => (req.url?.startsWith('/employees/') ? `${req.method} /employees/:id` : undefined),
    }),
  );

  app.get('/health', (_req, res) => {
    res.json({ ok: true });
  });

  // The guard runs before routing to a record, so a caller without a valid
  // token learns nothing about which ids exist (RFC 6750 §3).
  app.use('/employees', requireBearer(policy), (_req, res, next) => {
    // Employment records are personal data: no shared or browser caches.
    res.set('Cache-Control', 'no-store');
    next();
  });

  app.get('/employees/:id', (req: Request<{ id: string }>, res: Response) => {
    const principal = res.locals.principal as Principal;
    const id = req.params.id;
    servedSpan(req)?.setAttribute(HOP.employee, principal.sub);
    // Consent is per employee: the CIBA token's subject approved reading their
    // own record only, so any other id is outside the token's grant (RFC 6750 §3.1).
    if (principal.sub !== id) {
      sendBearerError(res, new BearerError(403, 'insufficient_scope', 'The token does not grant access to this employee'), policy);
      return;
    }
    // RFC 9396 §9.1: details the employee approved narrow the token to the verification they name.
    const verdict = detailsCover(principal.claims, id);
    if (!verdict.ok) {
      sendBearerError(res, new BearerError(403, 'insufficient_scope', verdict.reason), policy);
      return;
    }
    const employee = id.length <= MAX_ID_LENGTH ? employees.get(id) : undefined;
    if (employee === undefined) {
      res.status(404).json({ error: 'not_found', error_description: 'No employee with this id' });
      return;
    }
    const record: EmployeeStatusRecord = {
      id: employee.id,
      name: employee.name,
      employment_status: employee.employment_status,
    };
    res.json(record);
  });

  app.all('/employees/:id', (_req, res) => {
    res.status(405).set('Allow', 'GET, HEAD').json({ error: 'method_not_allowed', error_description: 'Only GET is supported' });
  });

  app.use((_req, res) => {
    res.status(404).json({ error: 'not_found', error_description: 'No such resource' });
  });

  const onError: ErrorRequestHandler = (error: unknown, _req, res, _next) => {
    if (res.headersSent) return;
    const status = typeof error === 'object' && error !== null && 'status' in error ? Number(error.status) : 500;
    // Router errors (e.g. an id with a broken percent-encoding) carry a 4xx status.
    if (status >= 400 && status < 500) {
      res.status(400).json({ error: 'invalid_request', error_description: 'The request could not be understood' });
      return;
    }
    res.status(500).json({ error: 'server_error', error_description: 'Unexpected error' });
  };
  app.use(onError);

  return { app, ...appListener(app, 'The HR API') };
}
