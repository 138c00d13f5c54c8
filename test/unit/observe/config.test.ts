// The settings of the observer and of the notification port (src/config.ts).
import { describe, expect, it } from '@jest/globals';
import { loadConfig } from '../../../src/config.js';

describe('OBSERVE and NOTIFY_* settings', () => {
  it('observe nothing and take no notifications by default', () => {
    const config = loadConfig({});
    expect(config.observe).toEqual([]);
    expect(config.notifyPort).toBeUndefined();
    // Observation records are kept a week by default (issue 19, item 7).
    expect(config.observationRetentionMs).toBe(168 * 3_600_000);
  });

  it.each<[Record<string, string>, Partial<ReturnType<typeof loadConfig>>]>([
    [{ OBSERVE: 'flux' }, { observe: ['flux'] }],
    [{ OBSERVE: ' flux , argocd,flux' }, { observe: ['flux', 'argocd'] }],
    [
      { NOTIFY_PORT: '8083', NOTIFY_SECRET: 'keys' },
      { notifyPort: 8083, notifyHost: '0.0.0.0', notifySecrets: ['keys'] },
    ],
    [{ OBSERVATION_RETENTION: '720h' }, { observationRetentionMs: 720 * 3_600_000 }],
    [{ OBSERVATION_RETENTION: '1h' }, { observationRetentionMs: 3_600_000 }],
    [{ NOTIFY_PORT: '8083', NOTIFY_SECRET: 'team-a-notify, team-b-notify' }, { notifySecrets: ['team-a-notify', 'team-b-notify'] }],
  ])('reads %j', (env, want) => {
    expect(loadConfig(env)).toMatchObject(want);
  });

  it.each<[Record<string, string>, RegExp]>([
    [{ OBSERVE: 'flux,jenkins' }, /OBSERVE must list flux and\/or argocd/],
    [{ NOTIFY_PORT: '8083' }, /NOTIFY_SECRET must name the Secret/],
    [{ NOTIFY_PORT: '8080', NOTIFY_SECRET: 'keys' }, /NOTIFY_PORT must differ/],
    [{ NOTIFY_PORT: 'x', NOTIFY_SECRET: 'keys' }, /NOTIFY_PORT must be a port number/],
    [{ NOTIFY_PORT: '8083', NOTIFY_SECRET: 'keys', NOTIFY_HOST: 'anywhere' }, /NOTIFY_HOST must be an IP address/],
    // Shorter would delete an announcement a Keptn outage left unsent before it is sent again.
    [{ OBSERVATION_RETENTION: '30m' }, /OBSERVATION_RETENTION must be a duration of at least 1h/],
    [{ OBSERVATION_RETENTION: '7d' }, /OBSERVATION_RETENTION must be a duration of at least 1h, like 168h, got "7d"/],
  ])('refuses %j', (env, problem) => {
    expect(() => loadConfig(env)).toThrow(problem);
  });
});
