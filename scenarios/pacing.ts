import { personasIn, type PersonaKey } from './personas.ts';
import type { Scenario } from './scenario.ts';

/**
 * Auth0 refuses more than 5 CIBA requests per user per minute. Run one after
 * another, the catalogue asks John for consent more often than that, so
 * against a real tenant the suite waits for the window instead of failing.
 */

/** The people a scenario will send a push request to. */
export function consentsAsked(scenario: Scenario): PersonaKey[] {
  switch (scenario.kind) {
    case 'conversation':
      return scenario.conversations
        .filter((c) => c.states.includes('AUTH_REQUIRED'))
        .flatMap((c) => c.turns.flatMap((t) => personasIn(t)));
    case 'cross-employee-read':
      return [scenario.employee.user];
    case 'refused-call':
    case 'refused-consent':
      return [];
  }
}

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const realClock: Clock = { now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) };

export function createPacer(limitPerMinute = 5, clock: Clock = realClock) {
  const sent = new Map<PersonaKey, number[]>();
  return {
    /** Waits until every persona can be asked once more inside the limit, then counts the requests. */
    async before(personas: PersonaKey[], announce: (seconds: number) => void = () => undefined): Promise<void> {
      if (limitPerMinute === 0) return;
      const wanted = new Map<PersonaKey, number>();
      for (const p of personas) wanted.set(p, (wanted.get(p) ?? 0) + 1);
      let waitMs = 0;
      for (const [persona, count] of wanted) {
        const recent = (sent.get(persona) ?? []).filter((t) => t > clock.now() - 60_000);
        sent.set(persona, recent);
        const over = recent.length + count - limitPerMinute;
        // The oldest request that must leave the window decides the wait.
        if (over > 0) waitMs = Math.max(waitMs, recent[over - 1]! + 60_000 - clock.now());
      }
      if (waitMs > 0) {
        announce(Math.ceil(waitMs / 1000));
        await clock.sleep(waitMs);
      }
      for (const [persona, count] of wanted) {
        sent.get(persona)!.push(...Array.from({ length: count }, () => clock.now()));
      }
    },
  };
}
