import { errors } from 'oidc-provider';
import type { NotificationChannel, TenantApplication, TenantUser } from './tenant-file.ts';

/**
 * How a CIBA request reaches the user, as Auth0 decides it: the application's
 * `async_approval_notification_channels` say which channels it may use, and
 * `requested_expiry` says which are eligible. Guardian push lives up to 300 s
 * ("Mobile push notifications with CIBA"); email from 301 s to 259200 s, 72 h
 * ("Email notifications with CIBA"). Nothing longer is accepted.
 */

export const CHANNEL_EXPIRY: Readonly<Record<NotificationChannel, { min: number; max: number }>> = {
  'guardian-push': { min: 1, max: 300 },
  email: { min: 301, max: 259_200 },
};
export const MAX_REQUESTED_EXPIRY = CHANNEL_EXPIRY.email.max;
/** Auth0's default for an application that names no channel: Guardian push, as before channels existed. */
export const DEFAULT_CHANNELS: readonly NotificationChannel[] = ['guardian-push'];

export function channelsOf(app: TenantApplication | undefined): readonly NotificationChannel[] {
  return app?.async_approval_notification_channels ?? DEFAULT_CHANNELS;
}

/** A whole number of seconds from 1 to 259200, or a CIBA §13 `invalid_request`. */
export function parseRequestedExpiry(raw: unknown): number | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || !/^\d{1,7}$/.test(raw) || Number(raw) < 1 || Number(raw) > MAX_REQUESTED_EXPIRY) {
    throw new errors.InvalidRequest(
      `requested_expiry must be a whole number of seconds from 1 to ${MAX_REQUESTED_EXPIRY} ` +
        `(up to ${CHANNEL_EXPIRY['guardian-push'].max} for Guardian push, ${CHANNEL_EXPIRY.email.min} to ${MAX_REQUESTED_EXPIRY} for email)`,
    );
  }
  return Number(raw);
}

/**
 * The channel for a request that will live `expiry` seconds: Guardian push up to 300 s, email above.
 * Throws `invalid_request` when the application has not enabled the eligible channel.
 */
export function selectChannel(app: TenantApplication | undefined, expiry: number): NotificationChannel {
  const enabled = channelsOf(app);
  const eligible = enabled.filter((c) => expiry >= CHANNEL_EXPIRY[c].min && expiry <= CHANNEL_EXPIRY[c].max);
  const channel = eligible[0];
  if (channel === undefined) {
    throw new errors.InvalidRequest(
      `requested_expiry ${expiry} fits none of the application's notification channels (${enabled.join(', ')}): ` +
        `Guardian push takes up to ${CHANNEL_EXPIRY['guardian-push'].max} s, email ${CHANNEL_EXPIRY.email.min} to ${MAX_REQUESTED_EXPIRY} s`,
    );
  }
  return channel;
}

/** Refuses a user the channel cannot reach, with the texts `@auth0/ai` and the agent recognise. */
export function checkReachable(user: TenantUser, channel: NotificationChannel): void {
  if (channel === 'guardian-push' && !user.guardian.push) {
    throw new errors.InvalidRequest('The user is not enrolled for push notifications (Guardian)');
  }
  // Auth0 sends the email to the user's verified address ("Email notifications with CIBA").
  if (channel === 'email' && !user.email_verified) {
    throw new errors.InvalidRequest('The user has no verified email address, so no email notification can be sent');
  }
}
