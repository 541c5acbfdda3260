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

  it('uses an installed system Chromium before downloading anything', async () => {
    const probes = machine({ own: false, network: true, system: '/usr/bin/chromium' });
    expect(await chooseChromium(probes, { download: true })).toEqual({ source: 'system', executablePath: '/usr/bin/chromium' });
    expect(probes.calls).toEqual(['own?', 'system?']);
  });

  it("downloads Playwright's own when there is no browser at all and the network allows it", async () => {
    const probes = machine({ own: false, network: true });
    expect(await chooseChromium(probes, { download: true })).toEqual({ source: 'playwright', downloaded: true });
    expect(probes.calls).toEqual(['own?', 'system?', 'download', 'own?']);
  });

  it('fails with the install message when the download fails, throws, or gives a browser that does not start', async () => {
    const offline = machine({ own: false, network: false });
    await expect(chooseChromium(offline, { download: true })).rejects.toBeInstanceOf(BrowserUnavailableError);
    const throwing = { ...machine({ own: false, network: false }), downloadPlaywrightChromium: () => Promise.reject(new Error('ENOSPC')) };
    await expect(chooseChromium(throwing, { download: true })).rejects.toMatchObject({ code: 'browser_unavailable' });
    const broken = { ...machine({ own: false, network: false }), downloadPlaywrightChromium: async () => true };
    await expect(chooseChromium(broken, { download: true })).rejects.toBeInstanceOf(BrowserUnavailableError);
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
