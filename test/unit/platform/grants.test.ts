import { describe, expect, it } from '@jest/globals';
import { deploy, repositoryOf, rollback, type DeploymentDeps } from '../../../src/tasks/deployment.js';
import type { GitWorkspace } from '../../../src/platform/git/workspace.js';
import type { ObjectRef } from '../../../src/platform/k8s/cluster.js';
import type { DeploymentTriggeredData, TriggeredEvent } from '../../../src/keptn/events.js';
import type { GitOpsSettings } from '../../../src/platform/settings/schema.js';
import {
  GIT_HOSTS_ANNOTATION,
  GIT_REPOSITORIES_ANNOTATION,
  gitEndpoint,
  hostEntryAdmits,
  listOf,
  missingGrantMessage,
  PROJECTS_ANNOTATION,
  secretGrant,
  targetGrant,
  type GrantDecision,
  type GrantSubject,
} from '../../../src/platform/grants.js';
import { silentLog, targetReading, triggeredCloudEvent } from '../helpers.js';

const secret = (annotations?: Record<string, string>): GrantSubject => ({
  kind: 'Secret',
  namespace: 'keptn',
  name: 'team-a-git',
  metadata: annotations ? { annotations } : {},
});
const granted = (projects: string, hosts: string) => secret({ [PROJECTS_ANNOTATION]: projects, [GIT_HOSTS_ANNOTATION]: hosts });

describe('gitEndpoint: the host and port git will reach', () => {
  it.each([
    ['https://git.example.com/team/fleet.git', { host: 'git.example.com', port: 443 }],
    ['https://Git.Example.COM:8443/fleet.git', { host: 'git.example.com', port: 8443 }],
    ['http://127.0.0.1:34567/fleet.git', { host: '127.0.0.1', port: 34567 }],
    ['http://git.example.com/fleet.git', { host: 'git.example.com', port: 80 }],
    ['https://git.example.com', { host: 'git.example.com', port: 443 }],
    ['ssh://git@git.example.com/team/fleet.git', { host: 'git.example.com', port: 22 }],
    ['ssh://git@git.example.com:2222/team/fleet.git', { host: 'git.example.com', port: 2222 }],
    ['ssh://[::1]:2222/fleet.git', { host: '[::1]', port: 2222 }],
    ['git@github.com:team/fleet.git', { host: 'github.com', port: 22 }],
    // scp-like syntax has no port: "2222/fleet.git" is the path.
    ['git@github.com:2222/fleet.git', { host: 'github.com', port: 22 }],
  ])('%s → %j', (url, endpoint) => expect(gitEndpoint(url)).toEqual(endpoint));

  // Each of these is read one way by the WHATWG URL parser and another by curl or ssh, or cannot be read at all.
  it.each([
    ['a backslash before @ (URL: granted host; curl: the other one)', 'https://granted.example\\@other.example/fleet.git', /backslash/],
    ['user information on https', 'https://granted.example@other.example/fleet.git', /user information/],
    ['a query before the path', 'https://granted.example?@other.example/fleet.git', /query or fragment/],
    ['a fragment before the path', 'https://granted.example#@other.example/fleet.git', /query or fragment/],
    ['percent-encoding in the host', 'https://granted%2eexample/fleet.git', /percent/],
    ['a non-ASCII host', 'https://gränted.example/fleet.git', /non-ASCII/],
    ['white space', 'https://granted.example /fleet.git', /white space/],
    ['two colons', 'https://granted.example:443:80/fleet.git', /not a plain host/],
    ['an empty host', 'https:///fleet.git', /not a plain host/],
    ['a port out of range', 'https://granted.example:70000/fleet.git', /invalid port/],
    ['a file URL', 'file:///srv/git/fleet.git', /scheme file/],
    ['ext transport', 'ext::sh -c touch', /white space|not an https/],
    ['a local path', '/srv/git/fleet.git', /not an https/],
    ['scp-like with two @', 'git@granted.example@other:fleet.git', /not a plain host/],
    ['an ssh user that ssh would read as an option', 'ssh://-oProxyCommand@granted.example/fleet.git', /user information/],
    ['an scp-like user that ssh would read as an option', '-oProxyCommand@granted.example:fleet.git', /not an https/],
  ])('refuses %s', (_name, url, problem) => {
    const e = gitEndpoint(url);
    expect(e).toHaveProperty('problem');
    expect((e as { problem: string }).problem).toMatch(problem);
  });
});

describe('annotation lists', () => {
  it.each([
    [undefined, []],
    ['', []],
    ['team-a', ['team-a']],
    [' team-a , team-b,,', ['team-a', 'team-b']],
  ])('%j → %j', (value, list) => expect(listOf(value)).toEqual(list));

  it.each([
    ['git.example.com', { host: 'git.example.com', port: 443 }, true],
    ['git.example.com', { host: 'git.example.com', port: 8443 }, true],
    ['GIT.example.com', { host: 'git.example.com', port: 443 }, true],
    ['git.example.com:8443', { host: 'git.example.com', port: 8443 }, true],
    ['git.example.com:8443', { host: 'git.example.com', port: 443 }, false],
    ['example.com', { host: 'git.example.com', port: 443 }, false],
    ['git.example.com', { host: 'git.example.com.evil.test', port: 443 }, false],
    ['*.example.com', { host: 'git.example.com', port: 443 }, false],
    ['https://git.example.com', { host: 'git.example.com', port: 443 }, false],
    ['[::1]:2222', { host: '[::1]', port: 2222 }, true],
  ])('host entry %s admits %j: %s', (entry, endpoint, admits) => expect(hostEntryAdmits(entry, endpoint)).toBe(admits));
});

describe('secretGrant: a project uses only Secrets granted to it, and only towards the hosts they name', () => {
  const url = 'https://git.example.com/team-a/fleet.git';
  it.each<[string, GrantSubject, string, string, Partial<GrantDecision> & { annotation?: string; expected?: string }]>([
    ['granted project and host', granted('team-a', 'git.example.com'), 'team-a', url, { granted: true }],
    ['one of several projects and hosts', granted('team-b, team-a', 'other.example,git.example.com:443'), 'team-a', url, { granted: true }],
    [
      'a Secret without annotations (plain keptn create secret)',
      secret(),
      'team-a',
      url,
      { granted: false, annotation: PROJECTS_ANNOTATION, expected: 'team-a' },
    ],
    [
      "another team's Secret",
      granted('team-b', 'git.example.com'),
      'team-a',
      url,
      { granted: false, annotation: PROJECTS_ANNOTATION, expected: 'team-a' },
    ],
    [
      'a project name that is only a prefix',
      granted('team-ab', 'git.example.com'),
      'team-a',
      url,
      { granted: false, annotation: PROJECTS_ANNOTATION },
    ],
    [
      'granted project, no hosts',
      secret({ [PROJECTS_ANNOTATION]: 'team-a' }),
      'team-a',
      url,
      { granted: false, annotation: GIT_HOSTS_ANNOTATION, expected: 'git.example.com:443' },
    ],
    [
      'granted project, another host',
      granted('team-a', 'git.example.com'),
      'team-a',
      'http://attacker.example:8080/x.git',
      { granted: false, annotation: GIT_HOSTS_ANNOTATION, expected: 'attacker.example:8080' },
    ],
    [
      'granted host on another port',
      granted('team-a', '127.0.0.1:3000'),
      'team-a',
      'http://127.0.0.1:4000/x.git',
      { granted: false, annotation: GIT_HOSTS_ANNOTATION, expected: '127.0.0.1:4000' },
    ],
    [
      'granted host, ambiguous URL',
      granted('team-a', 'granted.example'),
      'team-a',
      'https://granted.example\\@other.example/x.git',
      { granted: false, annotation: GIT_HOSTS_ANNOTATION, expected: 'the host of git.url' },
    ],
    [
      'host granted, project checked first',
      granted('team-b', 'git.example.com'),
      'team-a',
      'http://attacker.example/x.git',
      { granted: false, annotation: PROJECTS_ANNOTATION },
    ],
    ['an SSH URL to a granted host', granted('team-a', 'github.com'), 'team-a', 'git@github.com:team-a/fleet.git', { granted: true }],
    // ADR 13: the optional repositories annotation, an outer fence for a token many projects share.
    [
      'a listed repository, spelled another way',
      secret({
        ...granted('team-a,team-b', 'git.example.com').metadata.annotations,
        [GIT_REPOSITORIES_ANNOTATION]: 'https://git.example.com/team-b/fleet, https://git.example.com/team-a/fleet',
      }),
      'team-a',
      'https://git.example.com/team-a/fleet.git',
      { granted: true },
    ],
    [
      'a repository the Secret does not list',
      secret({
        ...granted('team-a,team-b', 'git.example.com').metadata.annotations,
        [GIT_REPOSITORIES_ANNOTATION]: 'https://git.example.com/team-b/fleet',
      }),
      'team-a',
      url,
      { granted: false, annotation: GIT_REPOSITORIES_ANNOTATION, expected: url },
    ],
    [
      'a listed repository on a host the Secret does not grant',
      secret({
        ...granted('team-a', 'git.example.com').metadata.annotations,
        [GIT_REPOSITORIES_ANNOTATION]: 'https://other.example/team-a/fleet',
      }),
      'team-a',
      'https://other.example/team-a/fleet',
      { granted: false, annotation: GIT_HOSTS_ANNOTATION },
    ],
  ])('%s', (_name, subject, project, gitUrl, want) => {
    const decision = secretGrant(subject, project, gitUrl);
    expect(decision.granted).toBe(want.granted);
    if (!decision.granted) {
      expect(decision.missing.object).toBe('Secret keptn/team-a-git');
      if (want.annotation) expect(decision.missing.annotation).toBe(want.annotation);
      if (want.expected) expect(decision.missing.expected).toBe(want.expected);
    }
  });

  it('says how to add the grant without revealing whom else the Secret is granted to', () => {
    const decision = secretGrant(granted('team-b,team-secret-project', 'git.example.com'), 'team-a', 'https://git.example.com/x.git');
    if (decision.granted) throw new Error('expected a refusal');
    const message = missingGrantMessage('team-a', decision.missing);
    expect(message).toBe(
      'project team-a has no grant for Secret keptn/team-a-git: git.secretRef names it, and only the projects it lists may use its credentials. ' +
        `Its annotation ${PROJECTS_ANNOTATION} must list team-a; a platform engineer grants it with: ` +
        `kubectl annotate --overwrite secret -n keptn team-a-git ${PROJECTS_ANNOTATION}=<its current list>,team-a. Nothing was sent to Git.`,
    );
    expect(message).not.toContain('team-secret-project');
  });

  it('names a missing repository without showing which repositories the Secret lists', () => {
    const decision = secretGrant(
      secret({
        ...granted('team-a,team-b', 'git.example.com').metadata.annotations,
        [GIT_REPOSITORIES_ANNOTATION]: 'https://git.example.com/team-b/secret-plans',
      }),
      'team-a',
      url,
    );
    if (decision.granted) throw new Error('expected a refusal');
    const message = missingGrantMessage('team-a', decision.missing);
    expect(message).toContain(
      `kubectl annotate --overwrite secret -n keptn team-a-git ${GIT_REPOSITORIES_ANNOTATION}=<its current list>,${url}`,
    );
    expect(message).not.toContain('secret-plans');
  });

  it('gives a ready command when the annotation is absent', () => {
    const decision = secretGrant(secret({ [PROJECTS_ANNOTATION]: 'team-a' }), 'team-a', 'http://127.0.0.1:4000/x.git');
    if (decision.granted) throw new Error('expected a refusal');
    expect(decision.missing.fix).toBe(`kubectl annotate secret -n keptn team-a-git ${GIT_HOSTS_ANNOTATION}=127.0.0.1:4000`);
  });
});

describe('targetGrant: a project drives only the Flux and Argo CD objects granted to it', () => {
  const target = (kind: string, annotations?: Record<string, string>): GrantSubject => ({
    kind,
    namespace: 'flux-system',
    name: 'podtato',
    metadata: annotations ? { annotations } : {},
  });
  it.each<[string, GrantSubject, string, boolean, string | undefined]>([
    ['a Kustomization granted to the project', target('Kustomization', { [PROJECTS_ANNOTATION]: 'team-a' }), 'team-a', true, undefined],
    [
      'a HelmRelease granted to several projects',
      target('HelmRelease', { [PROJECTS_ANNOTATION]: 'team-b,team-a' }),
      'team-a',
      true,
      undefined,
    ],
    [
      'an Application without the annotation',
      target('Application'),
      'team-a',
      false,
      'kubectl annotate applications.argoproj.io -n flux-system podtato gitops.keptn.sh/projects=team-a',
    ],
    [
      "another team's Kustomization",
      target('Kustomization', { [PROJECTS_ANNOTATION]: 'team-b' }),
      'team-a',
      false,
      'kubectl annotate --overwrite kustomizations.kustomize.toolkit.fluxcd.io -n flux-system podtato gitops.keptn.sh/projects=<its current list>,team-a',
    ],
    [
      'a HelmRelease with other annotations only',
      target('HelmRelease', { 'meta.helm.sh/release-name': 'team-a' }),
      'team-a',
      false,
      'kubectl annotate helmreleases.helm.toolkit.fluxcd.io -n flux-system podtato gitops.keptn.sh/projects=team-a',
    ],
    ['a grant in the wrong annotation', target('Kustomization', { [GIT_HOSTS_ANNOTATION]: 'team-a' }), 'team-a', false, undefined],
  ])('%s', (_name, subject, project, isGranted, fix) => {
    const decision = targetGrant(subject, project);
    expect(decision.granted).toBe(isGranted);
    if (!decision.granted) {
      expect(decision.missing).toMatchObject({
        object: `${subject.kind} flux-system/podtato`,
        annotation: PROJECTS_ANNOTATION,
        expected: project,
      });
      if (fix) expect(decision.missing.fix).toBe(fix);
    }
  });
});

describe('deploy and rollback decide both grants before Git or the tool is touched', () => {
  const settings: GitOpsSettings = {
    git: { url: 'https://git.example.com/podtato/fleet.git', branch: 'main', secretRef: { name: 'fleet-git' } },
    images: [{ file: 'apps/kustomization.yaml', kustomizeImage: 'ghcr.io/podtato/head' }],
    target: { kind: 'HelmRelease', name: 'web', namespace: 'podtato' },
  };
  const event = { ...triggeredCloudEvent(), task: 'deployment' } as unknown as TriggeredEvent<DeploymentTriggeredData>;
  const GRANTED = { [PROJECTS_ANNOTATION]: 'podtato', [GIT_HOSTS_ANNOTATION]: 'git.example.com' };

  function harness(annotations: { secret: Record<string, string>; target: Record<string, string>; repoUrl?: string }) {
    const touched: string[] = [];
    const read: Array<Partial<ObjectRef>> = [];
    const refuse = (what: string) => async () => {
      touched.push(what);
      throw new Error(`${what} must not be reached`);
    };
    const deps: DeploymentDeps = {
      settings: { load: async () => ({ settings, where: 'test settings' }) },
      git: {
        // An announcement to the group commit in memory, not a use of Git (platform/git/arrivals.ts).
        expectCommit: () => () => undefined,
        commitImage: refuse('git.commitImage'),
        revertDeployment: refuse('git.revertDeployment'),
        relation: refuse('git.relation'),
        onBranch: refuse('git.onBranch'),
      } as unknown as GitWorkspace,
      tools: [{ kinds: ['Kustomization', 'HelmRelease', 'Application'], deliver: refuse('tool.deliver') }],
      secretData: async () => {
        touched.push('secretData');
        return { username: 'u', password: 'p' };
      },
      objectMetadata: async (ref) => {
        read.push(ref);
        return { labels: {}, annotations: annotations.secret };
      },
      readObject: async (kind, namespace, name) => {
        read.push({ kind, namespace, name });
        const target = await targetReading(() => ({ url: annotations.repoUrl ?? settings.git.url, branch: 'main' }))(kind, namespace, name);
        return kind === 'GitRepository' ? target : { ...target, metadata: { ...target.metadata, annotations: annotations.target } };
      },
      secretNamespace: 'keptn',
      defaultTimeoutMs: 1_000,
      author: { name: 'Keptn', email: 'keptn@example.test' },
    };
    return { deps, touched, read };
  }

  it.each([
    ['the Secret', { secret: { [PROJECTS_ANNOTATION]: 'other' }, target: GRANTED }, /no grant for Secret keptn\/fleet-git/],
    [
      'the Git host',
      { secret: { ...GRANTED, [GIT_HOSTS_ANNOTATION]: 'git.other.example' }, target: GRANTED },
      /no grant for Secret keptn\/fleet-git: its credentials go only to the Git hosts it lists, and git.url is on git.example.com:443/,
    ],
    ['the target', { secret: GRANTED, target: {} }, /no grant for HelmRelease podtato\/web/],
  ])('refuses without the grant on %s, with GRANT_MISSING and nothing touched', async (_name, annotations, message) => {
    for (const run of [deploy, rollback]) {
      const h = harness(annotations);
      await expect(run(event, h.deps, silentLog)).rejects.toMatchObject({ code: 'GRANT_MISSING', message: expect.stringMatching(message) });
      expect(h.touched).toEqual([]);
    }
  });

  it('reads the grants from the Secret and the target as the drivers address them, then goes on to Git', async () => {
    const h = harness({ secret: GRANTED, target: GRANTED });
    await expect(deploy(event, h.deps, silentLog)).rejects.toThrow('git.commitImage must not be reached');
    expect(h.read).toEqual([
      { apiVersion: 'v1', kind: 'Secret', namespace: 'keptn', name: 'fleet-git' },
      { kind: 'HelmRelease', namespace: 'podtato', name: 'web' },
      { kind: 'GitRepository', namespace: 'podtato', name: 'web' },
    ]);
    expect(h.touched).toEqual(['secretData', 'git.commitImage']);
  });

  it('refuses, with TARGET_MISMATCH and nothing touched, settings naming a repository the granted target does not read (issue 19)', async () => {
    // One Secret granted to this project (and maybe others); the target is this project's, reading its own repository.
    const h = harness({ secret: GRANTED, target: GRANTED, repoUrl: 'https://git.example.com/podtato/own.git' });
    for (const run of [deploy, rollback]) {
      await expect(run(event, h.deps, silentLog)).rejects.toMatchObject({
        code: 'TARGET_MISMATCH',
        message: expect.stringMatching(
          /^project podtato may not write there: git.url https:\/\/git.example.com\/podtato\/fleet.git is not a repository HelmRelease podtato\/web deploys from \(it reads https:\/\/git.example.com\/podtato\/own.git\);.* Nothing was sent to Git\.$/,
        ),
      });
    }
    expect(h.touched).toEqual([]);
  });

  it('the observer reads commits only from the repository of the granted target', async () => {
    const h = harness({ secret: GRANTED, target: GRANTED, repoUrl: 'https://git.example.com/podtato/own.git' });
    await expect(repositoryOf({ project: 'podtato', stage: 'dev', service: 'web' }, h.deps, silentLog)).rejects.toMatchObject({
      code: 'TARGET_MISMATCH',
    });
    expect(h.touched).toEqual([]);
    const granted = harness({ secret: GRANTED, target: GRANTED });
    await expect(repositoryOf({ project: 'podtato', stage: 'dev', service: 'web' }, granted.deps, silentLog)).resolves.toMatchObject({
      url: settings.git.url,
    });
  });

  it('refuses a Secret and a target when there is no cluster to read their grants from', async () => {
    const h = harness({ secret: GRANTED, target: GRANTED });
    const { objectMetadata: _none, ...withoutCluster } = h.deps;
    await expect(deploy(event, withoutCluster, silentLog)).rejects.toMatchObject({ code: 'NO_CLUSTER' });
    expect(h.touched).toEqual([]);
  });
});
