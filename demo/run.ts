// The service's main job, shown end to end on this machine: a real Kubernetes API server with kwok nodes, real Flux
// and Argo CD, a Git server, NATS and the Keptn distributor. For each tool it creates a sample GitOps repository and
// app, sends `sh.keptn.event.deployment.triggered` the way Keptn's control plane does (on NATS), and prints the
// `.started` and `.finished` that come back. Logs of every part stay under the printed directory.
import { startEnvironment } from '../test/env/environment.js';
import { answerTo, keptnEvent, type KeptnCloudEvent } from '../test/env/keptn.js';
import { deployedApp, IMAGE, settingsYaml, type Tool } from '../test/env/sample-app.js';

const image = process.argv[2] ?? `${IMAGE}:0.2.0`;
const t0 = Date.now();
console.log('Starting the local environment (kube-apiserver, kwok, Flux, Argo CD, Git server, NATS, distributor, service)...');
const env = await startEnvironment({ flux: true, argocd: true });
console.log(`Environment up in ${((Date.now() - t0) / 1000).toFixed(1)} s. Logs: ${env.logDir}\n`);
const events = env.controlPlane.subscribe('sh.keptn.event.deployment.>');

function show(e: KeptnCloudEvent): string {
  const { type, triggeredid, shkeptncontext, data } = e;
  return JSON.stringify({ type, triggeredid, shkeptncontext, data }, null, 2);
}

let failed = false;
try {
  for (const tool of ['flux', 'argocd'] as Tool[]) {
    const name = `podtato-${tool}`;
    console.log(`== ${tool === 'flux' ? 'Flux Kustomization' : 'Argo CD Application'} ${name}: first deployment of 0.1.0...`);
    const app = await deployedApp(env, tool, name, { automated: tool === 'argocd', service: `helloservice-${tool}` });
    console.log(`repository ${app.repoUrl}, settings:\n${settingsYaml(tool, app)}`);

    const triggered = keptnEvent('sh.keptn.event.deployment.triggered', {
      project: 'podtato',
      stage: 'dev',
      service: app.service,
      configurationChange: { values: { image } },
      deployment: { deploymentstrategy: 'direct' },
    });
    console.log(`-> publishing on NATS:\n${show(triggered)}`);
    const sent = Date.now();
    await env.controlPlane.publish(triggered);
    console.log(
      `<- ${((Date.now() - sent) / 1000).toFixed(1)} s:\n${show(await events.waitFor(answerTo(triggered.id, 'started'), { timeoutMs: 10_000 }))}`,
    );
    const finished = await events.waitFor(answerTo(triggered.id, 'finished'), { timeoutMs: 600_000 });
    console.log(`<- ${((Date.now() - sent) / 1000).toFixed(1)} s:\n${show(finished)}\n`);
    if (finished.data?.result !== 'pass') failed = true;
  }
} catch (err: unknown) {
  failed = true;
  console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}\nLogs: ${env.logDir}`);
} finally {
  await env.stop();
}
process.exit(failed ? 1 : 0);
