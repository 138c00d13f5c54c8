// Small builders shared by the unit tests.
import { pino } from 'pino';

export const silentLog = pino({ level: 'silent' });

export function triggeredCloudEvent(overrides: Record<string, unknown> = {}, data: Record<string, unknown> = {}) {
  return {
    specversion: '1.0',
    id: 'c4f1b6b2-1111-4a5e-9c1b-000000000001',
    source: 'shipyard-controller',
    type: 'sh.keptn.event.deployment.triggered',
    datacontenttype: 'application/json',
    shkeptncontext: 'a1b2c3d4-0000-4000-8000-00000000c0de',
    shkeptnspecversion: '0.2.4',
    gitcommitid: 'f00dbabe',
    ...overrides,
    data: {
      project: 'podtato',
      stage: 'dev',
      service: 'helloservice',
      labels: { team: 'a' },
      configurationChange: { values: { image: 'ghcr.io/podtato/head:0.3.2' } },
      deployment: { deploymentstrategy: 'direct' },
      ...data,
    },
  };
}
