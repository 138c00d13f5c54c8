import { describe, expect, it } from '@jest/globals';
import type { DeploymentOutcome, OutgoingEvent, TriggeredEvent } from '../../src/keptn/events.js';
import type { EventSink } from '../../src/keptn/sender.js';
import { DeploymentRunner, type Handler } from '../../src/runner.js';
import { silentLog } from './helpers.js';

const event: TriggeredEvent = {
  id: 'trig-1',
  type: 'sh.keptn.event.deployment.triggered',
  source: 'shipyard-controller',
  task: 'deployment',
  shkeptncontext: 'ctx',
  data: { project: 'p', stage: 's', service: 'svc', deployment: { deploymentstrategy: 'direct' } },
};

/** Records what was sent; resolves `done` after the first `.finished`. */
class RecordingSink implements EventSink {
  sent: OutgoingEvent[] = [];
  failTypes = new Set<string>();
  private resolveDone!: () => void;
  done = new Promise<void>((r) => (this.resolveDone = r));
  async send(e: OutgoingEvent): Promise<void> {
    if (this.failTypes.has(e.type)) throw new Error('endpoint down');
    this.sent.push(e);
    if (e.type.endsWith('.finished')) this.resolveDone();
  }
}

const pass: DeploymentOutcome = { status: 'succeeded', result: 'pass', message: 'ok', deploymentstrategy: 'direct', deploymentNames: ['svc'], deploymentURIsLocal: [], deploymentURIsPublic: [], gitCommit: 'c0ffee' };

function runnerWith(handle: Handler, sink = new RecordingSink()) {
  return { sink, runner: new DeploymentRunner({ sink, handle, log: silentLog, source: 'gitops-service' }) };
}

describe('DeploymentRunner', () => {
  it('sends .started, runs the deployment, then .finished with its outcome', async () => {
    const order: string[] = [];
    const sink = new RecordingSink();
    const { runner } = runnerWith(async () => {
      order.push(`handler after ${sink.sent.map((e) => e.type).join(',')}`);
      return pass;
    }, sink);
    expect(runner.accept(event)).toBe('accepted');
    await sink.done;
    expect(order).toEqual(['handler after sh.keptn.event.deployment.started']);
    expect(sink.sent.map((e) => e.type)).toEqual(['sh.keptn.event.deployment.started', 'sh.keptn.event.deployment.finished']);
    expect(sink.sent[1]?.data).toMatchObject({ status: 'succeeded', result: 'pass', deployment: { gitCommit: 'c0ffee' } });
  });

  it('turns a thrown error into exactly one errored .finished with its message', async () => {
    const { runner, sink } = runnerWith(async () => {
      throw new Error('Secret keptn/git not found');
    });
    runner.accept(event);
    await sink.done;
    await runner.drain();
    expect(sink.sent.map((e) => e.type)).toEqual(['sh.keptn.event.deployment.started', 'sh.keptn.event.deployment.finished']);
    expect(sink.sent[1]?.data).toMatchObject({ status: 'errored', result: 'fail', message: 'Secret keptn/git not found' });
  });

  it('runs a repeated event id once', async () => {
    let runs = 0;
    const { runner, sink } = runnerWith(async () => {
      runs++;
      return pass;
    });
    expect(runner.accept(event)).toBe('accepted');
    expect(runner.accept(event)).toBe('duplicate');
    await sink.done;
    await runner.drain();
    expect(runner.accept(event)).toBe('duplicate');
    expect(runs).toBe(1);
    expect(sink.sent).toHaveLength(2);
  });

  it('does not deploy when .started cannot be delivered, and still closes with .finished', async () => {
    let runs = 0;
    const sink = new RecordingSink();
    sink.failTypes.add('sh.keptn.event.deployment.started');
    const { runner } = runnerWith(async () => {
      runs++;
      return pass;
    }, sink);
    runner.accept(event);
    await sink.done;
    expect(runs).toBe(0);
    expect(sink.sent.map((e) => e.type)).toEqual(['sh.keptn.event.deployment.finished']);
    expect(sink.sent[0]?.data).toMatchObject({ status: 'errored', message: expect.stringContaining('could not deliver deployment.started') });
  });
});
