import { describe, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { parseDuration } from '../../../../src/shared/duration.js';
import { checkSettings, gitUrlProblem, repoPathProblem, settingsSchema, SettingsError } from '../../../../src/platform/settings/schema.js';
import { parseSettingsText } from '../../../../src/platform/settings/source.js';

const valid = {
  git: { url: 'https://git.example.com/team/fleet.git', branch: 'main', secretRef: { name: 'fleet-git' } },
  images: [{ file: 'apps/podtato/kustomization.yaml', kustomizeImage: 'ghcr.io/podtato/head' }],
  target: { kind: 'Kustomization', name: 'podtato', namespace: 'flux-system' },
  timeout: '5m',
};

function problems(value: unknown): string[] {
  try {
    checkSettings(value, 'test');
  } catch (err: unknown) {
    if (err instanceof SettingsError) return err.problems;
    throw err;
  }
  return [];
}

describe('settings validation', () => {
  it('accepts a complete file', () => expect(checkSettings(valid, 'test')).toEqual(valid));

  it('reports every wrong field at once, by path', () => {
    expect(
      problems({
        ...valid,
        git: { url: 'ext::sh -c touch% /tmp/pwned', branch: '--force' },
        target: { kind: 'Deployment', name: 'x', namespace: 'y' },
        extra: 1,
      }),
    ).toEqual(
      expect.arrayContaining([
        '(top level): unknown field "extra"',
        'git.branch: must match pattern "^(?!-)(?!.*\\.\\.)[A-Za-z0-9._/-]{1,200}$"',
        'target.kind: must be one of Kustomization, HelmRelease, Application',
      ]),
    );
  });

  it('names the tool kinds when the tool is unknown', () => {
    expect(problems({ ...valid, target: { ...valid.target, kind: 'Flagger' } })).toEqual([
      'target.kind: must be one of Kustomization, HelmRelease, Application',
    ]);
  });

  it('asks for exactly one way to write each image', () => {
    expect(problems({ ...valid, images: [{ file: 'a.yaml' }] })).toEqual([
      'images.0: give exactly one of kustomizeImage, yamlPath or imagePolicy',
    ]);
    expect(problems({ ...valid, images: [{ file: 'a.yaml', yamlPath: 'a', imagePolicy: 'ns:p' }] })).toEqual([
      'images.0: give exactly one of kustomizeImage, yamlPath or imagePolicy',
    ]);
  });

  it('rejects file paths that leave the repository', () => {
    expect(problems({ ...valid, images: [{ file: '../../etc/passwd', yamlPath: 'a' }] })).toEqual(['images.0.file: must not contain ".."']);
  });

  it('parses YAML text and bounds aliases', () => {
    const bomb = `a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n`;
    expect(() => parseSettingsText(bomb, 'bomb.yaml')).toThrow(/bomb.yaml is not valid: not valid YAML/);
  });

  it('names exactly one progressive workload: a Rollout or a Canary', () => {
    const ref = { name: 'web', namespace: 'app' };
    expect(problems({ ...valid, progressive: { canary: ref } })).toEqual([]);
    expect(problems({ ...valid, progressive: { rollout: ref } })).toEqual([]);
    const one = 'progressive: name exactly one workload, rollout (Argo Rollouts) or canary (Flagger)';
    expect(problems({ ...valid, progressive: { rollout: ref, canary: ref } })).toEqual([one]);
    expect(problems({ ...valid, progressive: { strategies: ['canary'] } })).toEqual([one]);
  });

  it('observe: asks for changes made in Git, with a sequence that is a Keptn name (it goes into an event type)', () => {
    expect(checkSettings({ ...valid, observe: {} }, 'test')).toMatchObject({ observe: {} });
    expect(checkSettings({ ...valid, observe: { sequence: 'gitops' } }, 'test')).toMatchObject({ observe: { sequence: 'gitops' } });
    expect(problems({ ...valid, observe: { sequence: 'a.>' } })).toEqual([expect.stringMatching(/^observe.sequence: must match pattern/)]);
    expect(problems({ ...valid, observe: { object: 'x' } })).toEqual(['observe: unknown field "object"']);
  });

  it('the published schema is the one the service enforces', async () => {
    const published = JSON.parse(await readFile(new URL('../../../../docs/gitops-config.schema.json', import.meta.url), 'utf8'));
    expect(published).toEqual(JSON.parse(JSON.stringify(settingsSchema)));
  });
});

describe('git URLs', () => {
  it.each([
    'https://git.example.com/a.git',
    'http://127.0.0.1:3000/a.git',
    'ssh://git@git.example.com/a.git',
    'git@github.com:team/fleet.git',
    'https://github.com/ghp-tools/gh_pages-site.git',
  ])('allows %s', (url) => expect(gitUrlProblem(url)).toBeUndefined());
  it.each([
    ['ext::sh -c id', 'white space'],
    ['ext::id', 'must be https://'],
    ['file:///srv/repo.git', 'scheme file:// is not allowed'],
    ['/srv/repo.git', 'must be https://'],
    ['--upload-pack=id', 'must not start with "-"'],
    ['https://git.example.com\\@attacker.example/fleet.git', 'must not contain a backslash'],
    ['https://user:token@git.example.com/a.git', 'must not carry credentials'],
    // Tokens in the path (issue 19, item 8): forge formats, user:token segments, long hex tokens.
    [`https://git.example.com/${'ghp_' + 'a1'.repeat(18)}/team/fleet.git`, 'must not carry a token'],
    [`https://gitlab.example.com/${'glpat-' + 'x'.repeat(20)}/fleet.git`, 'must not carry a token'],
    ['https://git.example.com/oauth2:secret/fleet.git', 'must not carry a token'],
    [`https://git.example.com/team/${'0f'.repeat(20)}.git`, 'must not carry a token'],
    [`git@github.com:${'ghs_' + 'B2'.repeat(18)}/fleet.git`, 'must not carry a token'],
  ])('rejects %s', (url, why) => expect(gitUrlProblem(url)).toContain(why));
});

describe('repository paths and durations', () => {
  it.each([
    ['/abs', 'relative'],
    ['a/../b', '".."'],
    ['.git/config', '.git'],
    ['a//b', 'empty'],
  ])('rejects %s', (p, why) => expect(repoPathProblem(p)).toContain(why));
  it.each([
    ['10m', 600_000],
    ['1h30m', 5_400_000],
    ['90s', 90_000],
    ['250ms', 250],
  ])('%s', (text, ms) => expect(parseDuration(text)).toBe(ms));
});

describe('credentials never in the URL (issue 8, item 8)', () => {
  it.each([
    ['https://git.example.com/a.git?private_token=glpat-123', 'query string'],
    ['https://git.example.com/a.git?access_token=ghp_123', 'query string'],
    ['https://git.example.com/a.git#token=1', 'fragment'],
    ['http://git.example.com/a.git?x=1', 'query string'],
    ['ssh://git:hunter2@git.example.com/a.git', 'must not carry credentials'],
    ['https://token@git.example.com/a.git', 'must not carry credentials'],
    ['git@git.example.com:team/fleet.git?token=1', 'query string'],
  ])('rejects %s', (url, why) => expect(gitUrlProblem(url)).toContain(why));
  it('still allows an SSH user name', () => expect(gitUrlProblem('ssh://git@git.example.com:2222/a.git')).toBeUndefined());
});

describe('the SSH host key opt-out (issue 8, item 5)', () => {
  it('is a boolean in git', () => {
    expect(checkSettings({ ...valid, git: { ...valid.git, insecureAcceptNewHostKey: true } }, 'test').git.insecureAcceptNewHostKey).toBe(
      true,
    );
    expect(problems({ ...valid, git: { ...valid.git, insecureAcceptNewHostKey: 'yes' } })).toEqual([
      'git.insecureAcceptNewHostKey: must be boolean',
    ]);
  });
});

// Issue 8, item 7. Measured: a 256 KB settings file of 26,000 keys blocked the event loop for 17 s in `yaml`'s
// pairwise duplicate-key check (0.6 s with the linear one), and one of 256 KB of wrong fields gave a 900 KB message.
describe('hostile settings files (issue 8, item 7)', () => {
  const base =
    'git: {url: "https://git.example.com/a.git", branch: main}\nimages: [{file: a.yaml, yamlPath: a}]\ntarget: {kind: Kustomization, name: a, namespace: b}\n';
  const fill = (line: (i: number) => string) => {
    let text = base;
    for (let i = 0; text.length < 250 * 1024; i++) text += line(i);
    return text;
  };
  const messageOf = (text: string) => {
    try {
      parseSettingsText(text, 'config.yaml');
    } catch (err: unknown) {
      expect(err).toBeInstanceOf(SettingsError);
      return (err as Error).message;
    }
    throw new Error('accepted');
  };

  it.each([
    ['thousands of unknown fields', fill((i) => `unknown${i}: ${'x'.repeat(20)}\n`)],
    ['one unknown field with a huge name', `${base}${'k'.repeat(250 * 1024)}: 1\n`],
    ['thousands of wrong report entries', `${base}report:\n  deploymentNames:\n${fill((i) => `    - ${i}\n`).slice(base.length)}`],
  ])('%s: the message stays short and names the first problems', (_name, text) => {
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(256 * 1024);
    const message = messageOf(text);
    expect(message.length).toBeLessThan(8_000);
    expect(message).toMatch(/^config.yaml is not valid: /);
  });

  it('a file of 26,000 keys is parsed (refused for its unknown fields, not hung on)', () => {
    expect(messageOf(fill((i) => `k${i}: v\n`))).toMatch(/unknown field "k0".*and \d+ more$/);
  });

  it('a duplicate key among them is named', () => {
    expect(messageOf(`${fill((i) => `k${i}: v\n`)}k5: again\n`)).toContain('map keys must be unique ("k5" appears twice)');
  });
});
