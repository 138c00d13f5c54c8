// The Git host away, briefly or for good, and a Git host that says no (issue 23): the cases of the fault suite
// (test/e2e/faults.e2e.test.ts) that are about the Git host, registered into its environment so that they cost no
// environment of their own.
import { expect, it } from '@jest/globals';
import type { Environment, ServiceReplica } from '../../env/environment.js';
import { answerTo, type EventStream, type KeptnCloudEvent } from '../../env/keptn.js';
import { waitUntil } from '../../env/process.js';
import { deployedApp, IMAGE, imageInCluster, type TestApp } from '../../env/sample-app.js';
import { appInPlace, commits, metricOf, trigger } from './faults.js';

export interface FaultSuite {
  env(): Environment;
  events(): EventStream;
  replica(id: string, extra?: Record<string, string>): Promise<ServiceReplica>;
  report: Array<{ fault: string; outcome: string }>;
  /** A fresh number for names. */
  next(): number;
}

/** How long the Git host is away in the cases that ride it out. */
const OUTAGE_MS = 30_000;

const WAITING = 'keptn_gitops_outage_waiting_deployments';

export function gitOutages(suite: FaultSuite): void {
  const answers = (t: KeptnCloudEvent) =>
    suite
      .events()
      .received.filter((e) => e.triggeredid === t.id)
      .map((e) => e.type.replace('sh.keptn.event.deployment.', ''));
  const waitingFor = (r: ServiceReplica) =>
    waitUntil(`${r.replicaId} says it waits for the Git host`, async () => (await metricOf(r.healthPort, WAITING, 'party="git"')) === 1, {
      timeoutMs: 20_000,
    });

  let app: TestApp | undefined;
  const faults: Array<[string, (on: boolean) => Promise<void>]> = [
    ['answers 503', async (on) => suite.env().git.failWith(on ? 503 : undefined)],
    ['refuses connections', (on) => suite.env().git.refuseConnections(on)],
  ];
  it.each(faults)(
    'the Git server %s for 30 s after the trigger: the deployment waits it out and passes with one commit',
    async (what, fault) => {
      const env = suite.env();
      const events = suite.events();
      const restart = what === 'answers 503';
      const r = await suite.replica(`r-git-${suite.next()}`);
      // One app for both outages: Flux's first deployment of it is paid once.
      app ??= await deployedApp(env, 'flux', `fault-git-${suite.next()}`, { timeout: '180s' });
      const before = (await commits(env, app)).length;
      let t!: KeptnCloudEvent;
      const image = `${IMAGE}:0.2.${suite.next()}`;
      const t0 = Date.now();
      await fault(true);
      try {
        t = trigger(app, image);
        await env.controlPlane.publish(t);
        await events.waitFor(answerTo(t.id, 'started'), { timeoutMs: 15_000 });
        await waitingFor(r);
        if (restart) {
          // A replica restarted during the outage resumes the deployment and keeps waiting within its deadline.
          await r.restart();
          await waitingFor(r);
        }
        // The outage lasts its 30 s; no verdict comes before the Git host is back.
        await waitUntil('the outage has lasted 30 s', async () => Date.now() - t0 >= OUTAGE_MS, { timeoutMs: OUTAGE_MS + 5_000 });
        expect(answers(t)).toEqual(['started']);
      } finally {
        await fault(false);
      }
      const back = Date.now();
      const finished = await events.waitFor(answerTo(t.id, 'finished'), { timeoutMs: 120_000 });
      const verdictAfter = Date.now() - back;
      // One commit more, the newest, is what passed.
      expect(await commits(env, app)).toHaveLength(before + 1);
      expect(finished.data).toMatchObject({ result: 'pass', deployment: { gitCommit: (await commits(env, app))[0]?.sha } });
      expect(answers(t).sort()).toEqual(['finished', 'started']);
      expect(await imageInCluster(env.cluster, app)).toBe(image);
      suite.report.push({
        fault: `Git server ${what} for 30 s after the trigger${restart ? ', the replica restarted (SIGKILL) during it' : ''}`,
        outcome: `waited it out${restart ? ' (resumed after the restart)' : ''}; one .finished (pass) ${(verdictAfter / 1000).toFixed(1)} s after the server was back, ${((Date.now() - t0) / 1000).toFixed(1)} s after the trigger; one commit`,
      });
    },
    300_000,
  );

  it('wrong Git password: errored within a second, saying so, nothing written', async () => {
    const env = suite.env();
    const events = suite.events();
    await suite.replica(`r-git-${suite.next()}`);
    const app = await appInPlace(env, `fault-auth-${suite.next()}`, { password: 'not-the-password' });
    const t = trigger(app);
    await env.controlPlane.publish(t);
    await events.waitFor(answerTo(t.id, 'started'), { timeoutMs: 15_000 });
    const started = Date.now();
    const finished = await events.waitFor(answerTo(t.id, 'finished'), { timeoutMs: 15_000 });
    const took = Date.now() - started;
    expect(finished.data).toMatchObject({ status: 'errored', result: 'fail' });
    expect(finished.data.message).toMatch(
      // Basic auth refused: git would ask for other credentials, which it may not (GIT_TERMINAL_PROMPT=0).
      /cannot fetch branch main of http:\/\/127\.0\.0\.1:\d+\/fault-auth-\d+\.git: .*(Authentication failed|could not read Username)/,
    );
    expect(finished.data.message).not.toContain('not-the-password');
    expect(took).toBeLessThan(1_000);
    expect(answers(t).sort()).toEqual(['finished', 'started']);
    expect(await commits(env, app)).toHaveLength(0);
    suite.report.push({
      fault: 'wrong Git password (HTTP 401)',
      outcome: `errored ${took} ms after .started, not retried: "${String(finished.data.message).slice(0, 90)}…"`,
    });
  }, 60_000);

  it('the Git server refuses pushes (503) past a short deadline: errored naming the outage and its length, nothing written', async () => {
    const env = suite.env();
    const events = suite.events();
    await suite.replica(`r-git-${suite.next()}`);
    const app = await appInPlace(env, `fault-push-${suite.next()}`, { timeout: '10s' });
    env.git.failPushesWith(503);
    try {
      const t = trigger(app);
      const t0 = Date.now();
      await env.controlPlane.publish(t);
      const finished = await events.waitFor(answerTo(t.id, 'finished'), { timeoutMs: 60_000 });
      const took = Date.now() - t0;
      expect(finished.data).toMatchObject({ status: 'errored', result: 'fail' });
      expect(finished.data.message).toMatch(
        /^Git host 127\.0\.0\.1:\d+ was unavailable for \d+ s, until the deployment's deadline: cannot push to main of http:\/\/127\.0\.0\.1:\d+\/fault-push-\d+\.git: .*503/,
      );
      expect(took).toBeGreaterThanOrEqual(9_000);
      expect(answers(t).sort()).toEqual(['finished', 'started']);
      suite.report.push({
        fault: 'Git server refusing pushes (503) while fetches work, past a 10 s deadline',
        outcome: `errored at the deadline, ${(took / 1000).toFixed(1)} s after the trigger: "${String(finished.data.message).slice(0, 110)}…"`,
      });
    } finally {
      env.git.failPushesWith(undefined);
    }
    expect(await commits(env, app)).toHaveLength(0);
  }, 120_000);
}
