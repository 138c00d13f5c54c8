// The default start turns (issue 22, item 2): a burst of one project as large as one commit holds starts together.
import { describe, expect, it } from '@jest/globals';
import type { DeploymentOutcome, TriggeredEvent } from '../../../src/keptn/events.js';
import { DeploymentRunner, MAX_STARTING } from '../../../src/tasks/runner.js';
import { MAX_GROUP } from '../../../src/platform/git/workspace.js';
import { MemoryStore } from '../../../src/platform/state/record.js';
import { SoloRegistry } from '../../../src/platform/state/replicas.js';
import { silentLog } from '../helpers.js';

const eventNo = (n: number, project = 'p'): TriggeredEvent => ({
  id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
  type: 'sh.keptn.event.deployment.triggered',
  source: 'shipyard-controller',
  task: 'deployment',
  shkeptncontext: 'ctx',
  data: { project, stage: 's', service: `svc-${n}` },
});

describe('start turns by default', () => {
  it('let one project start as many deployments as one commit holds, and keep a quarter for the others', async () => {
    expect(MAX_STARTING - Math.floor(MAX_STARTING / 4)).toBeGreaterThanOrEqual(MAX_GROUP);
    let inside = 0;
    let open!: () => void;
    const all = new Promise<void>((resolve) => (open = resolve));
    const runner = new DeploymentRunner({
      sink: { send: async () => {} },
      handle: async () => {
        if (++inside === MAX_GROUP) open();
        await all;
        return { status: 'succeeded', result: 'pass', message: 'ok' } as DeploymentOutcome;
      },
      log: silentLog,
      source: 'gitops-service',
      store: new MemoryStore(),
      replicas: new SoloRegistry('replica-a'),
      sleep: async () => {},
    });
    await Promise.all(Array.from({ length: MAX_GROUP }, (_, i) => runner.accept(eventNo(i))));
    await all;
    expect(inside).toBe(MAX_GROUP);
    await runner.drain();
  });
});
