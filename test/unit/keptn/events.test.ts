import { describe, expect, it } from '@jest/globals';
import { finishedEvent, startedEvent, type TriggeredEvent } from '../../../src/keptn/events.js';

const triggered: TriggeredEvent = {
  id: 'trig-1',
  type: 'sh.keptn.event.deployment.triggered',
  source: 'shipyard-controller',
  task: 'deployment',
  shkeptncontext: 'ctx-1',
  gitcommitid: 'abc',
  data: { project: 'p', stage: 's', service: 'svc', labels: { a: 'b' } },
};
const opts = { source: 'gitops-service', now: new Date('2026-11-24T10:00:00Z'), id: 'out-1' };

describe('outgoing events', () => {
  it('.started carries the envelope Keptn correlates on', () => {
    expect(startedEvent(triggered, opts)).toEqual({
      specversion: '1.0',
      id: 'out-1',
      source: 'gitops-service',
      type: 'sh.keptn.event.deployment.started',
      time: '2026-11-24T10:00:00.000Z',
      datacontenttype: 'application/json',
      shkeptncontext: 'ctx-1',
      triggeredid: 'trig-1',
      shkeptnspecversion: '0.2.4',
      gitcommitid: 'abc',
      data: { project: 'p', stage: 's', service: 'svc', labels: { a: 'b' }, status: 'succeeded' },
    });
  });

  it('.finished reports result, message and the deployment block with the GitOps commit', () => {
    const ev = finishedEvent(
      triggered,
      {
        status: 'succeeded',
        result: 'pass',
        message: 'ok',
        deploymentstrategy: 'direct',
        deploymentNames: ['svc'],
        deploymentURIsLocal: ['http://svc.s:80'],
        deploymentURIsPublic: [],
        gitCommit: 'c0ffee',
      },
      opts,
    );
    expect(ev.type).toBe('sh.keptn.event.deployment.finished');
    expect(ev.triggeredid).toBe('trig-1');
    expect(ev.data).toEqual({
      project: 'p',
      stage: 's',
      service: 'svc',
      labels: { a: 'b' },
      status: 'succeeded',
      result: 'pass',
      message: 'ok',
      deployment: {
        deploymentstrategy: 'direct',
        deploymentNames: ['svc'],
        deploymentURIsLocal: ['http://svc.s:80'],
        deploymentURIsPublic: [],
        gitCommit: 'c0ffee',
      },
    });
  });

  it('leaves gitcommitid out when the trigger had none', () => {
    const { gitcommitid: _, ...noCommit } = triggered;
    expect(startedEvent(noCommit, opts)).not.toHaveProperty('gitcommitid');
  });
});
