// Prometheus metrics end to end (issue 9): one real deployment through the real distributor, Git server and Flux,
// then `/metrics` scraped on the service's health port as Prometheus would, and its series read from the text.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startEnvironment, type Environment } from '../env/environment.js';
import { answerTo, keptnEvent, type EventStream } from '../env/keptn.js';
import { waitUntil } from '../env/process.js';
import { deployedApp, directDeployment } from '../env/sample-app.js';

let env: Environment;
let events: EventStream;

beforeAll(async () => {
  env = await startEnvironment({ flux: true });
  events = env.controlPlane.subscribe('sh.keptn.event.>');
}, 300_000);

afterAll(async () => {
  events?.close();
  await env?.stop();
}, 60_000);

interface Scrape {
  status: number;
  contentType: string | null;
  text: string;
}

async function scrape(host = '127.0.0.1', port = env.service!.healthPort, path = '/metrics'): Promise<Scrape> {
  const res = await fetch(`http://${host}:${port}${path}`);
  return { status: res.status, contentType: res.headers.get('content-type'), text: await res.text() };
}

/** The value of one series (name and labels exactly as exposed); 0 when the series has not been created yet. */
function value(text: string, series: string): number {
  for (const line of text.split('\n')) {
    const at = line.lastIndexOf(' ');
    if (!line.startsWith('#') && line.slice(0, at) === series) return Number(line.slice(at + 1));
  }
  return 0;
}

const FLUX_PASS = 'task="deployment",tool="flux",result="pass"';

describe('GET /metrics', () => {
  it('counts a real deployment through Flux: outcome by task, tool and result, its duration, the tool wait, in-flight back at 0', async () => {
    const app = await deployedApp(env, 'flux', 'metrics-app');

    const before = await scrape();
    expect(before.status).toBe(200);
    expect(before.contentType).toMatch(/^text\/plain; version=0\.0\.4/);

    const triggered = keptnEvent('sh.keptn.event.deployment.triggered', directDeployment(app.service), {
      gitcommitid: env.resources.version()!,
    });
    await env.controlPlane.publish(triggered);
    const finished = await events.waitFor(answerTo(triggered.id, 'finished', 'deployment'), { timeoutMs: 180_000, what: '.finished' });
    expect(finished.data).toMatchObject({ status: 'succeeded', result: 'pass' });
    // `.finished` is out before the deployment leaves the runner (its record is marked done after): wait for that.
    await waitUntil(
      'the deployment to leave the runner',
      async () => value((await scrape()).text, 'keptn_gitops_deployments_in_flight') === 0,
      {
        timeoutMs: 10_000,
      },
    );

    const after = (await scrape()).text;
    const delta = (series: string) => value(after, series) - value(before.text, series);
    expect(delta(`keptn_gitops_deployments_total{${FLUX_PASS}}`)).toBe(1);
    expect(delta(`keptn_gitops_deployment_duration_seconds_count{${FLUX_PASS}}`)).toBe(1);
    expect(delta(`keptn_gitops_deployment_duration_seconds_sum{${FLUX_PASS}}`)).toBeGreaterThan(0);
    expect(delta('keptn_gitops_tool_wait_duration_seconds_count{tool="flux"}')).toBe(1);
    // The wait is part of the deployment, never longer than it.
    expect(delta('keptn_gitops_tool_wait_duration_seconds_sum{tool="flux"}')).toBeLessThanOrEqual(
      delta(`keptn_gitops_deployment_duration_seconds_sum{${FLUX_PASS}}`),
    );
    expect(value(after, 'keptn_gitops_deployments_in_flight')).toBe(0);
    expect(after).not.toMatch(/^keptn_gitops_event_delivery_failures_total\{/m);
    expect(value(after, 'keptn_gitops_git_push_retries_total')).toBe(0);
    // Every series of the issue is exposed, with its help text, even before it first counts.
    for (const name of [
      'keptn_gitops_deployments_total',
      'keptn_gitops_deployment_duration_seconds',
      'keptn_gitops_tool_wait_duration_seconds',
      'keptn_gitops_git_push_retries_total',
      'keptn_gitops_deployments_in_flight',
      'keptn_gitops_watch_restarts_total',
      'keptn_gitops_event_delivery_failures_total',
      'keptn_gitops_resumes_total',
      'keptn_gitops_adoptions_total',
    ])
      expect(after).toMatch(new RegExp(`^# HELP ${name} \\S`, 'm'));
    expect(after).toMatch(/^process_cpu_seconds_total /m);
  }, 300_000);

  it('is served on the health port only, never on the loopback event port', async () => {
    expect((await scrape('127.0.0.1', env.service!.port)).status).toBe(404);
  });
});
