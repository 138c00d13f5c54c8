import { describe, expect, it } from '@jest/globals';
import type { OutgoingEvent, TriggeredEvent } from '../../../src/keptn/events.js';
import type { EventSink } from '../../../src/keptn/sender.js';
import { PrometheusMetrics, resultLabel, toolOf } from '../../../src/platform/metrics.js';
import { DeploymentRunner } from '../../../src/tasks/runner.js';
import type { Handler } from '../../../src/tasks/handler.js';
import { MemoryStore } from '../../../src/platform/state/record.js';
import { SoloRegistry } from '../../../src/platform/state/replicas.js';
import { passedOutcome, silentLog } from '../helpers.js';

/** The value of one series in the text exposition (what Prometheus scrapes), or undefined when it is absent. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    if (line.slice(0, at) === series) return Number(line.slice(at + 1));
  }
  return undefined;
}

describe('toolOf', () => {
  it.each([
    ['Kustomization', 'flux'],
    ['HelmRelease', 'flux'],
    ['Application', 'argocd'],
    ['', 'none'],
    ['toString', 'none'],
    ['ConfigMap', 'none'],
  ])('%s → %s', (kind, tool) => expect(toolOf(kind)).toBe(tool));
});

describe('resultLabel', () => {
  it.each([
    [{ status: 'succeeded', result: 'pass' }, 'pass'],
    [{ status: 'succeeded', result: 'fail' }, 'fail'],
    [{ status: 'errored', result: 'fail' }, 'errored'],
  ] as const)('%j → %s', (outcome, label) => expect(resultLabel(outcome)).toBe(label));
});

describe('PrometheusMetrics', () => {
  it('exposes every series in the text format, in base units, from a registry of its own', async () => {
    const m = new PrometheusMetrics();
    m.deploymentBegan();
    m.deploymentBegan();
    m.deploymentEnded();
    m.deploymentFinished({ task: 'deployment', tool: 'flux', result: 'pass' }, 42);
    m.deploymentFinished({ task: 'rollback', tool: 'argocd', result: 'errored' }, 3);
    m.toolWaited('flux', 30);
    m.pushRetried();
    m.pushRetried();
    m.watchRestarted('kustomizations.kustomize.toolkit.fluxcd.io', 'expired');
    m.eventUndelivered('sh.keptn.event.deployment.finished');
    m.resumed();
    m.adopted();
    m.outageWaiting('git', 1);
    m.outageWaiting('git', 1);
    m.outageWaiting('git', -1);
    const text = await m.render();

    expect(m.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(sample(text, 'keptn_gitops_deployments_in_flight')).toBe(1);
    expect(sample(text, 'keptn_gitops_deployments_total{task="deployment",tool="flux",result="pass"}')).toBe(1);
    expect(sample(text, 'keptn_gitops_deployments_total{task="rollback",tool="argocd",result="errored"}')).toBe(1);
    expect(sample(text, 'keptn_gitops_deployment_duration_seconds_sum{task="deployment",tool="flux",result="pass"}')).toBe(42);
    expect(sample(text, 'keptn_gitops_deployment_duration_seconds_bucket{le="30",task="deployment",tool="flux",result="pass"}')).toBe(0);
    expect(sample(text, 'keptn_gitops_deployment_duration_seconds_bucket{le="60",task="deployment",tool="flux",result="pass"}')).toBe(1);
    expect(sample(text, 'keptn_gitops_tool_wait_duration_seconds_count{tool="flux"}')).toBe(1);
    expect(sample(text, 'keptn_gitops_git_push_retries_total')).toBe(2);
    expect(sample(text, 'keptn_gitops_watch_restarts_total{resource="kustomizations.kustomize.toolkit.fluxcd.io",reason="expired"}')).toBe(
      1,
    );
    expect(sample(text, 'keptn_gitops_event_delivery_failures_total{type="sh.keptn.event.deployment.finished"}')).toBe(1);
    expect(sample(text, 'keptn_gitops_resumes_total')).toBe(1);
    expect(sample(text, 'keptn_gitops_adoptions_total')).toBe(1);
    expect(sample(text, 'keptn_gitops_outage_waiting_deployments{party="git"}')).toBe(1);
    // Every series says what it is.
    for (const name of text.match(/^# TYPE (\S+)/gm) ?? []) expect(text).toContain(name.replace('# TYPE', '# HELP'));

    // A second instance starts from zero: nothing is shared through prom-client's global registry.
    const fresh = await new PrometheusMetrics().render();
    expect(sample(fresh, 'keptn_gitops_git_push_retries_total')).toBe(0);
    expect(sample(fresh, 'keptn_gitops_deployments_in_flight')).toBe(0);
  });

  it('adds the process metrics only when asked', async () => {
    expect(await new PrometheusMetrics().render()).not.toContain('process_cpu_seconds_total');
    expect(await new PrometheusMetrics({ processMetrics: true }).render()).toContain('process_cpu_seconds_total');
  });
});

const event: TriggeredEvent = {
  id: 'trig-1',
  type: 'sh.keptn.event.rollback.triggered',
  source: 'shipyard-controller',
  task: 'rollback',
  shkeptncontext: 'ctx',
  data: { project: 'p', stage: 's', service: 'svc' },
};

const outcome = passedOutcome;

class Sink implements EventSink {
  failing = new Set<string>();
  async send(e: OutgoingEvent): Promise<void> {
    if (this.failing.has(e.type)) throw new Error('endpoint down');
  }
}

function runnerWith(handle: Handler, sink = new Sink(), store = new MemoryStore(), identity = 'replica-a') {
  const metrics = new PrometheusMetrics();
  const runner = new DeploymentRunner({
    sink,
    handle,
    log: silentLog,
    source: 'gitops-service',
    store,
    replicas: new SoloRegistry(identity),
    sleep: async () => {},
    metrics,
  });
  return { runner, metrics, store };
}

describe('the runner counts', () => {
  it.each<[string, Handler, string]>([
    [
      'a pass, with the tool the settings named',
      async (_e, _l, ctx) => {
        ctx.onTarget?.('Application');
        return outcome({});
      },
      'task="rollback",tool="argocd",result="pass"',
    ],
    [
      'a fail',
      async (_e, _l, ctx) => {
        ctx.onTarget?.('Kustomization');
        return outcome({ result: 'fail' });
      },
      'task="rollback",tool="flux",result="fail"',
    ],
    [
      'an error before the settings named a target',
      async () => {
        throw new Error('settings unreadable');
      },
      'task="rollback",tool="none",result="errored"',
    ],
  ])('%s, its duration, and in-flight back at 0', async (_what, handle, labels) => {
    let during: number | undefined;
    const { runner, metrics } = runnerWith(async (...args) => {
      during = sample(await metrics.render(), 'keptn_gitops_deployments_in_flight');
      return handle(...args);
    });
    await runner.accept(event);
    await runner.drain();
    const text = await metrics.render();
    expect(during).toBe(1);
    expect(sample(text, `keptn_gitops_deployments_total{${labels}}`)).toBe(1);
    expect(sample(text, `keptn_gitops_deployment_duration_seconds_count{${labels}}`)).toBe(1);
    expect(sample(text, 'keptn_gitops_deployments_in_flight')).toBe(0);
    expect(text).not.toMatch(/^keptn_gitops_event_delivery_failures_total/m);
  });

  it('an undelivered .started as errored, and the failed delivery by event type', async () => {
    const sink = new Sink();
    sink.failing.add('sh.keptn.event.rollback.started');
    let ran = false;
    const { runner, metrics } = runnerWith(async () => {
      ran = true;
      return outcome({});
    }, sink);
    await runner.accept(event);
    await runner.drain();
    const text = await metrics.render();
    expect(ran).toBe(false);
    expect(sample(text, 'keptn_gitops_event_delivery_failures_total{type="sh.keptn.event.rollback.started"}')).toBe(1);
    expect(sample(text, 'keptn_gitops_deployments_total{task="rollback",tool="none",result="errored"}')).toBe(1);
  });

  it('resumes of its own records and adoptions from a stopped replica', async () => {
    const store = new MemoryStore();
    const now = Date.now();
    await store.create({ event, phase: 'started', owner: 'replica-a', acceptedAt: now });
    await store.create({ event: { ...event, id: 'trig-2' }, phase: 'started', owner: 'gone-replica', acceptedAt: now });
    const { runner, metrics } = runnerWith(async () => outcome({}), new Sink(), store);
    await runner.resume();
    await runner.drain();
    const text = await metrics.render();
    expect(sample(text, 'keptn_gitops_resumes_total')).toBe(1);
    expect(sample(text, 'keptn_gitops_adoptions_total')).toBe(1);
    expect(sample(text, 'keptn_gitops_deployments_total{task="rollback",tool="none",result="pass"}')).toBe(2);
  });
});
