import { describe, expect, it } from 'vitest';
import { catalogue } from './catalogue.ts';
import { consentsAsked, createPacer } from './pacing.ts';

function fakeClock() {
  let now = 1_000_000;
  const slept: number[] = [];
  return {
    slept,
    clock: {
      now: () => now,
      sleep: async (ms: number) => {
        slept.push(ms);
        now += ms;
      },
    },
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describe('pacing against Auth0', () => {
  it('knows whom each scenario asks for consent', () => {
    const asked = Object.fromEntries(catalogue.map((s) => [s.name, consentsAsked(s)]));
    expect(asked['active employee approves']).toEqual(['john']);
    expect(asked['two employees approved in reverse order']).toEqual(['john', 'jane']);
    expect(asked['unknown email']).toEqual([]);
    expect(asked['employee without push enrolment']).toEqual([]);
    expect(asked["one employee's consent never reads another"]).toEqual(['john']);
    expect(asked['no token']).toEqual([]);
  });

  it('lets five requests for one person through in a minute and makes the sixth wait for the window', async () => {
    const { clock, slept, advance } = fakeClock();
    const pacer = createPacer(5, clock);
    const waits: number[] = [];
    for (let i = 0; i < 5; i += 1) {
      await pacer.before(['john'], (s) => waits.push(s));
      advance(1_000);
    }
    expect(slept).toEqual([]);
    await pacer.before(['john'], (s) => waits.push(s));
    expect(slept).toEqual([55_000]);
    expect(waits).toEqual([55]);
    await pacer.before(['jane']);
    expect(slept).toHaveLength(1);
  });

  it('paces nothing when the backend sets no limit', async () => {
    const { clock, slept } = fakeClock();
    const pacer = createPacer(0, clock);
    for (let i = 0; i < 20; i += 1) await pacer.before(['john']);
    expect(slept).toEqual([]);
  });
});
