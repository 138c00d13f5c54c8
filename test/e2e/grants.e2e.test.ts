// Grants end to end (docs/security.md): one Keptn, many teams. A project's settings may name only Secrets granted to
// that project, whose credentials go only to the Git hosts the Secret names, and only Flux or Argo CD objects granted
// to the project. Every refusal is an errored `.finished` that names the missing grant, decided before anything is
// fetched, pushed or patched: a Git "server" that records every request proves nothing reached it. Last, the chart's
// Secret RBAC against the real kube-apiserver, with the very Role/RoleBinding Keptn's secret-service makes.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import { AuthorizationV1Api, type KubernetesObject } from '@kubernetes/client-node';
import { pino } from 'pino';
import { KubeCluster } from '../../src/platform/k8s/cluster.js';
import { chartSecretRbac, serviceAccountKubeConfig } from '../env/chart-rbac.js';
import { startEnvironment, type Environment } from '../env/environment.js';
import { keptnCreateSecret } from '../env/keptn-secrets.js';
import { answerTo, keptnEvent, type EventStream, type KeptnCloudEvent } from '../env/keptn.js';
import { waitUntil } from '../env/process.js';
import { appFiles, gitHostOf, grantAnnotations, IMAGE, imageInCluster, toolObjects, type TestApp, type Tool } from '../env/sample-app.js';

const TEAM_A = 'team-a';
const TEAM_B = 'team-b';

let env: Environment;
let events: EventStream;
let recorder: Recorder;
let counter = 0;

/** An HTTP server on its own port that answers 401 to everything and records every request: the attacker's host. */
interface Recorder {
  url: string;
  requests: Array<{ method: string; url: string; authorization: boolean }>;
  close(): Promise<void>;
}

async function startRecorder(): Promise<Recorder> {
  const requests: Recorder['requests'] = [];
  const server: Server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization !== undefined });
    res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"' }).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}`, requests, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

beforeAll(async () => {
  env = await startEnvironment({ flux: true, argocd: true });
  events = env.controlPlane.subscribe('sh.keptn.event.>');
  recorder = await startRecorder();
  // Two teams' Git credentials, made the Keptn way and granted with `kubectl annotate` by a platform engineer.
  const gitData = { username: env.git.username, password: env.git.password };
  for (const [name, project] of [
    ['team-a-git', TEAM_A],
    ['team-b-git', TEAM_B],
  ] as const) {
    await keptnCreateSecret(env.cluster.kc, { namespace: 'keptn', name, scope: 'keptn-default', data: gitData });
    await annotate('v1', 'Secret', 'keptn', name, grantAnnotations([project], [gitHostOf(env.git.url)]));
  }
  // Made by `keptn create secret` and never granted.
  await keptnCreateSecret(env.cluster.kc, { namespace: 'keptn', name: 'ungranted-git', scope: 'keptn-default', data: gitData });
}, 300_000);

afterAll(async () => {
  events?.close();
  await recorder?.close();
  await env?.stop();
}, 60_000);

async function annotate(
  apiVersion: string,
  kind: string,
  namespace: string,
  name: string,
  annotations: Record<string, string>,
): Promise<void> {
  await env.cluster.mergePatch({ apiVersion, kind, metadata: { namespace, name, annotations } });
}

/**
 * A team's app: a repository, a namespace, and the Flux or Argo CD objects, with the target granted to `projects`
 * (none: no grant annotation at all). With `deployed`, resolves once the tool applied the first commit.
 */
async function newApp(tool: Tool, projects: string[] | undefined, deployed = false): Promise<TestApp> {
  const name = `grants-${tool}-${++counter}`;
  const { url, commit } = await env.git.createRepo(name, appFiles(name));
  const app: TestApp = { name, namespace: name, repo: name, repoUrl: url, initialCommit: commit, service: `svc-${name}` };
  const objects = toolObjects(tool, app, env).map((o) =>
    o.kind === 'Kustomization' || o.kind === 'Application'
      ? { ...o, metadata: { ...o.metadata, annotations: projects ? grantAnnotations(projects) : {} } }
      : o,
  );
  await env.cluster.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name } } as KubernetesObject, ...objects]);
  if (deployed)
    await waitUntil(`${name} initially deployed`, async () => (await imageInCluster(env.cluster, app)) === `${IMAGE}:0.1.0`, {
      timeoutMs: 120_000,
    });
  return app;
}

function settings(tool: Tool, app: TestApp, git: { url: string; secret: string }): string {
  const target = tool === 'flux' ? { kind: 'Kustomization', namespace: 'flux-system' } : { kind: 'Application', namespace: 'argocd' };
  return `git:
  url: '${git.url}'
  branch: main
  secretRef: { name: ${git.secret} }
images:
  - file: apps/${app.name}/kustomization.yaml
    kustomizeImage: ${IMAGE}
target: { kind: ${target.kind}, name: ${app.name}, namespace: ${target.namespace} }
timeout: 90s
`;
}

async function deliver(project: string, service: string): Promise<{ triggered: KeptnCloudEvent; finished: KeptnCloudEvent }> {
  const triggered = keptnEvent('sh.keptn.event.deployment.triggered', {
    project,
    stage: 'dev',
    service,
    configurationChange: { values: { image: `${IMAGE}:0.2.0` } },
  });
  await env.controlPlane.publish(triggered);
  await events.waitFor(answerTo(triggered.id, 'started', 'deployment'), { timeoutMs: 10_000, what: '.started' });
  const finished = await events.waitFor(answerTo(triggered.id, 'finished', 'deployment'), { timeoutMs: 180_000, what: '.finished' });
  expect(
    events.received
      .filter((e) => e.triggeredid === triggered.id)
      .map((e) => e.type)
      .sort(),
  ).toEqual(['sh.keptn.event.deployment.finished', 'sh.keptn.event.deployment.started']);
  return { triggered, finished };
}

describe('a project uses only Secrets granted to it, and their credentials go only to the hosts they name', () => {
  const recorderHost = () => gitHostOf(recorder.url);
  it.each<[string, () => { url: string; secret: string }, () => RegExp]>([
    [
      "another team's Secret, sent to the attacker's host",
      () => ({ url: `${recorder.url}/team-b/fleet.git`, secret: 'team-b-git' }),
      () =>
        /^project team-a has no grant for Secret keptn\/team-b-git: .*Its annotation gitops\.keptn\.sh\/projects must list team-a; a platform engineer grants it with: kubectl annotate --overwrite secret -n keptn team-b-git gitops\.keptn\.sh\/projects=<its current list>,team-a\. Nothing was sent to Git\.$/,
    ],
    [
      'a Secret from keptn create secret that nobody granted',
      () => ({ url: `${recorder.url}/fleet.git`, secret: 'ungranted-git' }),
      () =>
        /no grant for Secret keptn\/ungranted-git: .*kubectl annotate secret -n keptn ungranted-git gitops\.keptn\.sh\/projects=team-a\b/,
    ],
    [
      "the team's own Secret, sent to a host the Secret does not name",
      () => ({ url: `${recorder.url}/fleet.git`, secret: 'team-a-git' }),
      () =>
        new RegExp(
          `no grant for Secret keptn/team-a-git: its credentials go only to the Git hosts it lists, and git.url is on ${recorderHost()}\\. Its annotation gitops\\.keptn\\.sh/git-hosts must list ${recorderHost()}`,
        ),
    ],
    [
      "the team's own Secret, through a URL that names the granted host to a URL parser and the recorder to git",
      () => ({ url: `${env.git.url}\\@${recorderHost()}/fleet.git`, secret: 'team-a-git' }),
      // Refused by the settings check already, before any grant is read (src/platform/settings/schema.ts gitUrlProblem).
      () => /git\.url: must not contain a backslash/,
    ],
  ])(
    'refuses %s: errored, saying why, nothing sent',
    async (_name, git, message) => {
      const app = await newApp('flux', [TEAM_A]);
      env.resources.put({ project: TEAM_A, stage: 'dev', service: app.service }, 'gitops/config.yaml', settings('flux', app, git()));
      const { finished } = await deliver(TEAM_A, app.service);
      expect(finished.data).toMatchObject({ status: 'errored', result: 'fail' });
      expect(finished.data.message).toMatch(message());
      expect(recorder.requests).toEqual([]);
      expect(await env.git.log(app.repo)).toHaveLength(1);
    },
    240_000,
  );

  it('deploys with a Secret granted to the project and to the Git host, through a target granted to the project', async () => {
    const app = await newApp('flux', [TEAM_A], true);
    env.resources.put(
      { project: TEAM_A, stage: 'dev', service: app.service },
      'gitops/config.yaml',
      settings('flux', app, { url: app.repoUrl, secret: 'team-a-git' }),
    );
    const { finished } = await deliver(TEAM_A, app.service);
    const log = await env.git.log(app.repo);
    expect(finished.data).toMatchObject({ status: 'succeeded', result: 'pass', deployment: { gitCommit: log[0]!.sha } });
    expect(log).toHaveLength(2);
    expect(await imageInCluster(env.cluster, app)).toBe(`${IMAGE}:0.2.0`);
    expect(recorder.requests).toEqual([]);
  }, 240_000);
});

describe('a project drives only the Flux and Argo CD objects granted to it', () => {
  it.each<[Tool, string, string[] | undefined]>([
    ['flux', 'a Kustomization without a grant', undefined],
    ['flux', "another team's Kustomization", [TEAM_B]],
    ['argocd', 'an Application without a grant', undefined],
    ['argocd', "another team's Application", [TEAM_B]],
  ])(
    '%s: refuses %s before any commit or patch',
    async (tool, _name, projects) => {
      const app = await newApp(tool, projects);
      env.resources.put(
        { project: TEAM_A, stage: 'dev', service: app.service },
        'gitops/config.yaml',
        settings(tool, app, { url: app.repoUrl, secret: 'team-a-git' }),
      );
      const { finished } = await deliver(TEAM_A, app.service);
      const [kind, namespace, resource] =
        tool === 'flux'
          ? ['Kustomization', 'flux-system', 'kustomizations.kustomize.toolkit.fluxcd.io']
          : ['Application', 'argocd', 'applications.argoproj.io'];
      expect(finished.data).toMatchObject({ status: 'errored', result: 'fail' });
      expect(finished.data.message).toMatch(
        new RegExp(
          `^project team-a has no grant for ${kind} ${namespace}/${app.name}: .*Its annotation gitops\\.keptn\\.sh/projects must list team-a; a platform engineer grants it with: kubectl annotate (--overwrite )?${resource.replaceAll('.', '\\.')} -n ${namespace} ${app.name} gitops\\.keptn\\.sh/projects=`,
        ),
      );
      expect(await env.git.log(app.repo)).toHaveLength(1);
      if (tool === 'flux') {
        // kustomize- and source-controller keep the reconcile request annotation: it is there once anyone asked.
        for (const [apiVersion, k] of [
          ['kustomize.toolkit.fluxcd.io/v1', 'Kustomization'],
          ['source.toolkit.fluxcd.io/v1', 'GitRepository'],
        ] as const) {
          const obj = await env.cluster.read(apiVersion, k, 'flux-system', app.name);
          expect(obj.metadata?.annotations?.['reconcile.fluxcd.io/requestedAt']).toBeUndefined();
        }
      } else {
        // Argo CD keeps who started the last operation; a sync by the service would be recorded here.
        const obj = await env.cluster.read<KubernetesObject & { operation?: unknown; status?: { operationState?: unknown } }>(
          'argoproj.io/v1alpha1',
          'Application',
          'argocd',
          app.name,
        );
        expect(obj.operation).toBeUndefined();
        expect(obj.status?.operationState).toBeUndefined();
      }
    },
    240_000,
  );
});

describe('one Secret granted to two teams: each writes only where its own granted target deploys from (issue 19)', () => {
  // An organisation's bot token, granted to both teams by a platform engineer: normal, and no longer a way across.
  beforeAll(async () => {
    await keptnCreateSecret(env.cluster.kc, {
      namespace: 'keptn',
      name: 'org-bot-git',
      scope: 'keptn-default',
      data: { username: env.git.username, password: env.git.password },
    });
    await annotate('v1', 'Secret', 'keptn', 'org-bot-git', grantAnnotations([TEAM_A, TEAM_B], [gitHostOf(env.git.url)]));
  });

  it.each<Tool>(['flux', 'argocd'])(
    "%s: team A's settings naming team B's repository and file end errored, and team B's repository receives no request at all",
    async (tool) => {
      const teamA = await newApp(tool, [TEAM_A]);
      // Team B's repository, with the file team A aims at; the Git server logs every request by repository.
      const teamB = `grants-team-b-${++counter}`;
      const { url: teamBUrl } = await env.git.createRepo(teamB, appFiles(teamB));
      env.resources.put(
        { project: TEAM_A, stage: 'dev', service: teamA.service },
        'gitops/config.yaml',
        settings(tool, { ...teamA, name: teamB }, { url: teamBUrl, secret: 'org-bot-git' }).replace(
          `name: ${teamB},`,
          `name: ${teamA.name},`,
        ),
      );
      const { finished } = await deliver(TEAM_A, teamA.service);
      const [kind, namespace] = tool === 'flux' ? ['Kustomization', 'flux-system'] : ['Application', 'argocd'];
      expect(finished.data).toMatchObject({ status: 'errored', result: 'fail' });
      expect(finished.data.message).toBe(
        `project team-a may not write there: git.url ${teamBUrl} is not a repository ${kind} ${namespace}/${teamA.name} deploys from (it reads ${teamA.repoUrl}); the service writes only to the repository of the project's target: set git.url to the URL the target reads, or target to the object that deploys ${teamBUrl}. Nothing was sent to Git.`,
      );
      expect(env.git.requestLog.filter((r) => r.repo === teamB)).toEqual([]);
      expect(await env.git.log(teamB)).toHaveLength(1);
    },
    240_000,
  );

  it("team A's settings naming its own repository but a file its Kustomization does not deploy end errored, nothing fetched", async () => {
    // Deployed first: Flux has fetched, and its hour-long interval keeps it away from Git during the test.
    const teamA = await newApp('flux', [TEAM_A], true);
    const fetchedBefore = env.git.requestsTo(teamA.repo);
    env.resources.put(
      { project: TEAM_A, stage: 'dev', service: teamA.service },
      'gitops/config.yaml',
      settings('flux', teamA, { url: teamA.repoUrl, secret: 'org-bot-git' }).replace(
        `file: apps/${teamA.name}/kustomization.yaml`,
        'file: apps/team-b/kustomization.yaml',
      ),
    );
    const { finished } = await deliver(TEAM_A, teamA.service);
    expect(finished.data).toMatchObject({ status: 'errored', result: 'fail' });
    expect(finished.data.message).toMatch(
      new RegExp(
        `^project team-a may not write there: images\\[\\]\\.file apps/team-b/kustomization\\.yaml is not in what Kustomization flux-system/${teamA.name} deploys from .*directory apps/${teamA.name}\\)`,
      ),
    );
    expect(env.git.requestsTo(teamA.repo)).toBe(fetchedBefore);
    expect(await env.git.log(teamA.repo)).toHaveLength(1);
  }, 240_000);

  it('the shared Secret deploys team A into its own repository, through its own target', async () => {
    const teamA = await newApp('flux', [TEAM_A], true);
    env.resources.put(
      { project: TEAM_A, stage: 'dev', service: teamA.service },
      'gitops/config.yaml',
      settings('flux', teamA, { url: teamA.repoUrl, secret: 'org-bot-git' }),
    );
    const { finished } = await deliver(TEAM_A, teamA.service);
    const log = await env.git.log(teamA.repo);
    expect(finished.data).toMatchObject({ status: 'succeeded', result: 'pass', deployment: { gitCommit: log[0]!.sha } });
    expect(env.git.requestLog.filter((r) => r.repo === teamA.repo && r.path.endsWith('git-receive-pack')).length).toBeGreaterThan(0);
    expect(await imageInCluster(env.cluster, teamA)).toBe(`${IMAGE}:0.2.0`);
  }, 240_000);
});

describe("least privilege: the chart's ServiceAccount reads the Secrets of its Keptn scopes and no other", () => {
  it("reads what keptn create secret makes in the bound scope, now and later, and nothing else in Keptn's namespace", async () => {
    const admin = env.cluster.kc;
    // Installed in a namespace of its own; the Secrets live in Keptn's.
    await env.cluster.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'gitops-system' } } as KubernetesObject]);
    await keptnCreateSecret(admin, {
      namespace: 'keptn',
      name: 'rbac-scope-git',
      scope: 'keptn-default',
      data: { username: 'u', password: 'p1' },
    });
    await keptnCreateSecret(admin, {
      namespace: 'keptn',
      name: 'rbac-webhook-token',
      scope: 'keptn-webhook-service',
      data: { token: 'w' },
    });
    await env.cluster.apply([
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'rbac-named-git', namespace: 'keptn' },
        stringData: { password: 'p2' },
      } as KubernetesObject,
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'keptn-api-token', namespace: 'keptn' },
        stringData: { 'keptn-api-token': 'k' },
      } as KubernetesObject,
      ...chartSecretRbac({
        release: 'gitops',
        releaseNamespace: 'gitops-system',
        secretNamespace: 'keptn',
        keptnScopeRoles: ['keptn-secrets-default-read'],
        names: ['rbac-named-git'],
      }),
    ]);
    const sa = await serviceAccountKubeConfig(admin, 'gitops-system', 'gitops');
    const cluster = new KubeCluster(sa, pino({ level: 'silent' }));
    try {
      // RBAC reaches the authorizer through its informers: wait for the grant to show, then check what is refused.
      const data = await waitUntil('the scope Secret readable as the ServiceAccount', () => cluster.secretData('keptn', 'rbac-scope-git'), {
        timeoutMs: 20_000,
      });
      expect(data).toEqual({ username: 'u', password: 'p1' });
      expect(
        (await cluster.objectMetadata({ apiVersion: 'v1', kind: 'Secret', namespace: 'keptn', name: 'rbac-scope-git' })).labels,
      ).toMatchObject({ 'app.kubernetes.io/scope': 'keptn-default' });
      expect(
        await waitUntil('the named Secret readable', () => cluster.secretData('keptn', 'rbac-named-git'), { timeoutMs: 20_000 }),
      ).toEqual({ password: 'p2' });
      for (const name of ['keptn-api-token', 'rbac-webhook-token']) {
        await expect(cluster.secretData('keptn', name)).rejects.toMatchObject({ code: 'FORBIDDEN' });
        await expect(cluster.objectMetadata({ apiVersion: 'v1', kind: 'Secret', namespace: 'keptn', name })).rejects.toMatchObject({
          code: 'FORBIDDEN',
        });
      }
      const reviews = sa.makeApiClient(AuthorizationV1Api);
      for (const verb of ['list', 'watch', 'create', 'update', 'patch', 'delete']) {
        const review = await reviews.createSelfSubjectAccessReview({
          body: { spec: { resourceAttributes: { namespace: 'keptn', verb, resource: 'secrets' } } },
        });
        expect({ verb, allowed: review.status?.allowed }).toEqual({ verb, allowed: false });
      }
      // A Secret made later in the same scope is readable at once: secret-service adds it to the Role the chart binds.
      await keptnCreateSecret(admin, { namespace: 'keptn', name: 'rbac-scope-later', scope: 'keptn-default', data: { password: 'p3' } });
      expect(
        await waitUntil('the later scope Secret readable', () => cluster.secretData('keptn', 'rbac-scope-later'), { timeoutMs: 20_000 }),
      ).toEqual({ password: 'p3' });
    } finally {
      cluster.close();
    }
  }, 120_000);
});
