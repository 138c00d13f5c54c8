import { describe, expect, it } from '@jest/globals';
import { loadConfig } from '../../../src/config.js';
import { isDuration, parseDuration } from '../../../src/shared/duration.js';
import { checkSettings } from '../../../src/platform/settings/schema.js';

describe('durations', () => {
  it.each([
    ['10m', 600_000],
    ['1h30m', 5_400_000],
    ['90s', 90_000],
    ['250ms', 250],
    ['1m500ms', 60_500],
  ])('%s is %d ms', (text, ms) => {
    expect(isDuration(text)).toBe(true);
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '10', 'm', '10 m', '-5s', '1.5h', '10min', '5s ', '1d'])('%j is not a duration', (text) => {
    expect(isDuration(text)).toBe(false);
    expect(() => parseDuration(text)).toThrow(RangeError);
  });

  // The same grammar in both places: a timeout valid in the settings is valid in the environment, and back.
  it.each(['90s', '1h30m', '10min', '1d'])('%s: the environment and the settings agree', (text) => {
    const inEnv = (() => {
      try {
        return loadConfig({ DEFAULT_TIMEOUT: text }).defaultTimeoutMs;
      } catch {
        return 'invalid';
      }
    })();
    const settings = {
      git: { url: 'https://git.example.com/team/fleet.git', branch: 'main' },
      images: [{ file: 'apps/podtato/kustomization.yaml', kustomizeImage: 'ghcr.io/podtato/head' }],
      target: { kind: 'Kustomization', name: 'podtato', namespace: 'flux-system' },
      timeout: text,
    };
    const inSettings = (() => {
      try {
        checkSettings(settings, 'test');
        return parseDuration(text);
      } catch {
        return 'invalid';
      }
    })();
    expect(inEnv).toBe(inSettings);
  });
});
