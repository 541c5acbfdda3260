import { Router } from 'express';

export interface GuardianPageOptions {
  /** Path prefix of the control API the page talks to, e.g. `/control`. */
  controlBasePath: string;
}

/** The Guardian approval page, mounted by the tenant at `/guardian`. */
export function createGuardianPage(_options: GuardianPageOptions): Router {
  return Router();
}
