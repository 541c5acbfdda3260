import { describe, expect, it } from 'vitest';
import { BrowserUnavailableError, chooseChromium, type ChromiumProbes } from './browser.ts';

/** Which Chromium the browser tests get on a given machine (the probes stand in for the machine). */

function machine(state: { own: boolean; network: boolean; system?: string }): ChromiumProbes & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    playwrightChromium: async () => {
      calls.push('own?');
      return state.own;
    },
    downloadPlaywrightChromium: async () => {
      calls.push('download');
      if (state.network) state.own = true;
      return state.network;
    },
    systemChromium: () => {
      calls.push('system?');
      return state.system;
    },
  };
}

describe('choosing a Chromium for the browser tests', () => {
  it("uses Playwright's own when it is already downloaded, without downloading or looking further", async () => {
    const probes = machine({ own: true, network: true, system: '/usr/bin/chromium' });
    expect(await chooseChromium(probes, { download: true })).toEqual({ source: 'playwright', downloaded: false });
    expect(probes.calls).toEqual(['own?']);
  });

  it("downloads Playwright's own when it is missing and the network allows it", async () => {
    const probes = machine({ own: false, network: true, system: '/usr/bin/chromium' });
    expect(await chooseChromium(probes, { download: true })).toEqual({ source: 'playwright', downloaded: true });
    expect(probes.calls).toEqual(['own?', 'download', 'own?']);
  });

  it('falls back to the system Chromium when the download fails (offline)', async () => {
    const probes = machine({ own: false, network: false, system: '/usr/bin/chromium' });
    expect(await chooseChromium(probes, { download: true })).toEqual({ source: 'system', executablePath: '/usr/bin/chromium' });
    expect(probes.calls).toEqual(['own?', 'download', 'system?']);
  });

  it('falls back to the system Chromium when the download throws, or downloads something that does not start', async () => {
    const throwing = { ...machine({ own: false, network: false, system: '/usr/bin/chromium-browser' }), downloadPlaywrightChromium: () => Promise.reject(new Error('ENOSPC')) };
    expect(await chooseChromium(throwing, { download: true })).toEqual({ source: 'system', executablePath: '/usr/bin/chromium-browser' });
    const broken = { ...machine({ own: false, network: false, system: '/usr/bin/chromium' }), downloadPlaywrightChromium: async () => true };
    expect(await chooseChromium(broken, { download: true })).toEqual({ source: 'system', executablePath: '/usr/bin/chromium' });
  });

  it('does not download when told not to (each test file), and uses the system Chromium', async () => {
    const probes = machine({ own: false, network: true, system: '/usr/bin/chromium' });
    expect(await chooseChromium(probes, { download: false })).toEqual({ source: 'system', executablePath: '/usr/bin/chromium' });
    expect(probes.calls).not.toContain('download');
  });

  it('fails with the install message only when nothing works', async () => {
    const probes = machine({ own: false, network: false });
    const failure = chooseChromium(probes, { download: true, candidates: ['/usr/bin/chromium'] });
    await expect(failure).rejects.toBeInstanceOf(BrowserUnavailableError);
    await expect(failure).rejects.toThrow(/npx playwright install chromium.*apt-get install chromium.*\/usr\/bin\/chromium/);
    await expect(failure).rejects.toMatchObject({ code: 'browser_unavailable' });
  });
});
