/**
 * The per-service GitOps settings: where the image goes in Git, which tool applies it, what to report.
 * Read from Keptn's resource-service (service, then stage, then project level) or a local directory.
 * The schema is published as docs/gitops-config.schema.json; a wrong file is reported field by field.
 */
import { Ajv, type ErrorObject } from 'ajv';
import { ServiceError } from '../../shared/errors.js';
import { DURATION_PATTERN, parseDuration } from '../../shared/duration.js';

export const TARGET_KINDS = ['Kustomization', 'HelmRelease', 'Application'] as const;
export type TargetKind = (typeof TARGET_KINDS)[number];

export interface ImageWriteSetting {
  /** Path of the file inside the repository. */
  file: string;
  /** Key of `configurationChange.values` that holds the image reference; default `image`. */
  value?: string;
  kustomizeImage?: string;
  yamlPath?: string;
  part?: 'ref' | 'name' | 'tag' | 'digest';
  document?: number;
  imagePolicy?: string;
}

export interface GitOpsSettings {
  git: {
    url: string;
    branch: string;
    /** A Kubernetes Secret (e.g. made by `keptn create secret`) holding `username`+`password`, or `identity`(+`known_hosts`). */
    secretRef?: { name: string; namespace?: string };
    author?: { name: string; email: string };
    /**
     * SSH only, and only for a Secret without `known_hosts`: trust the first host key seen and check later
     * connections against it. Off by default; without it such a Secret is refused.
     */
    insecureAcceptNewHostKey?: boolean;
  };
  images: ImageWriteSetting[];
  target: { kind: TargetKind; name: string; namespace: string };
  /** How long to wait for the tool, e.g. `10m`, `90s`, `1h`. */
  timeout?: string;
  report?: { deploymentNames?: string[]; deploymentURIsLocal?: string[]; deploymentURIsPublic?: string[] };
  /** How Argo CD states that do not end on their own are judged; only for target.kind Application. */
  argocd?: ArgoCDSettings;
  /** The progressive workload of the service, and the Keptn deployment strategies that deploy through it. */
  progressive?: ProgressiveSettings;
  /**
   * What to do when our commit fails to deploy: `report` the failure (default), or `revert` our commit in Git, wait for
   * the tool to apply the revert, and report the failure with both commits (issue 10, item 6).
   */
  onFailure?: 'report' | 'revert';
  /**
   * Changes made in Git (README, docs/adr/0016-observation-authority.md): present, the project lets `target` start
   * its sequences when that object deploys a revision nobody asked Keptn for. Only the object named in `target` of
   * these settings may, and only when it is linked to this project, stage and service by its annotations.
   */
  observe?: ObserveSettings;
}

export interface ObserveSettings {
  /** The shipyard sequence of the stage to start; `delivery` when absent. */
  sequence?: string;
}

/** Keptn's strategies that never go through a progressive workload: they deploy and release as written. */
export const DIRECT_STRATEGIES = ['direct', 'user_managed'] as const;
export const DEFAULT_PROGRESSIVE_STRATEGIES = ['blue_green_service'] as const;

/** Exactly one of `rollout` and `canary`. */
export interface ProgressiveSettings {
  /**
   * The Argo Rollouts Rollout our image goes into (applied by the target from the files in `images`): a deployment
   * leaves the new version paused as preview or canary, `release` promotes it, `rollback` aborts it.
   */
  rollout?: { name: string; namespace: string };
  /**
   * The Flagger Canary whose target Deployment our image goes into: a deployment leaves the new version analysed and
   * waiting at Flagger's confirm-promotion gate, `release` opens that gate, `rollback` opens the rollback gate. The
   * Canary's webhooks point at the service (docs: README, "Progressive delivery").
   */
  canary?: { name: string; namespace: string };
  /** The `deploymentstrategy` names (shipyard task properties) that deploy through it; default [blue_green_service]. */
  strategies?: string[];
}

export const SUSPENDED_VERDICTS = ['fail', 'pass', 'wait'] as const;

export interface ArgoCDSettings {
  /**
   * Health `Suspended` at our commit (a paused Rollout or Deployment, a suspended CronJob): `fail` at once (default),
   * `pass` (the team pauses on purpose, e.g. a canary step), or `wait` for it to resume until the timeout.
   */
  suspended?: (typeof SUSPENDED_VERDICTS)[number];
  /** How long `Degraded` may last before it fails when Argo CD does not show the workload running our image as Degraded; default 60s. */
  degradedGrace?: string;
}

const K8S_NAME = '^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$';
const OBJECT_REF = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'namespace'],
  properties: { name: { type: 'string', pattern: K8S_NAME }, namespace: { type: 'string', pattern: K8S_NAME } },
} as const;

export const settingsSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://keptn-gitops-service/gitops-config.schema.json',
  title: 'keptn-gitops-service settings (gitops/config.yaml)',
  type: 'object',
  additionalProperties: false,
  required: ['git', 'images', 'target'],
  properties: {
    git: {
      type: 'object',
      additionalProperties: false,
      required: ['url', 'branch'],
      properties: {
        url: {
          type: 'string',
          description: 'https://, http://, ssh:// or scp-like user@host:path URL of the GitOps repository, without credentials',
          maxLength: 2048,
        },
        branch: {
          type: 'string',
          pattern: '^(?!-)(?!.*\\.\\.)[A-Za-z0-9._/-]{1,200}$',
          description: 'branch that the GitOps tool follows',
        },
        secretRef: {
          type: 'object',
          additionalProperties: false,
          required: ['name'],
          properties: { name: { type: 'string', pattern: K8S_NAME }, namespace: { type: 'string', pattern: K8S_NAME } },
        },
        author: {
          type: 'object',
          additionalProperties: false,
          required: ['name', 'email'],
          properties: { name: { type: 'string', pattern: '^[^<>\\n]{1,100}$' }, email: { type: 'string', pattern: '^[^<>\\s]{1,200}$' } },
        },
        insecureAcceptNewHostKey: {
          type: 'boolean',
          description:
            'SSH without known_hosts in the Secret: trust the first host key seen (then pinned) instead of refusing. Not recommended: add known_hosts to the Secret instead',
        },
      },
    },
    images: {
      type: 'array',
      minItems: 1,
      maxItems: 50,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['file'],
        properties: {
          file: { type: 'string', minLength: 1, maxLength: 1024, description: 'path inside the repository' },
          value: { type: 'string', minLength: 1, description: 'key of configurationChange.values holding the image; default "image"' },
          kustomizeImage: { type: 'string', minLength: 1, description: 'name of the kustomize images: entry to set' },
          yamlPath: { type: 'string', minLength: 1, description: 'dot path of the value to set, e.g. spec.values.image.tag' },
          part: { enum: ['ref', 'name', 'tag', 'digest'], description: 'with yamlPath: which part of the image to write; default "ref"' },
          document: { type: 'integer', minimum: 0, description: 'with yamlPath: index of the YAML document in the file; default 0' },
          imagePolicy: {
            type: 'string',
            pattern: `^[a-z0-9-]+:[a-z0-9-.]+$`,
            description: 'namespace:name of the Flux ImagePolicy marker to update',
          },
        },
        oneOf: [{ required: ['kustomizeImage'] }, { required: ['yamlPath'] }, { required: ['imagePolicy'] }],
      },
    },
    target: {
      type: 'object',
      additionalProperties: false,
      required: ['kind', 'name', 'namespace'],
      properties: {
        kind: { enum: [...TARGET_KINDS], description: 'Flux Kustomization or HelmRelease, or Argo CD Application' },
        name: { type: 'string', pattern: K8S_NAME },
        namespace: { type: 'string', pattern: K8S_NAME },
      },
    },
    timeout: { type: 'string', pattern: DURATION_PATTERN, description: 'default 10m' },
    onFailure: {
      enum: ['report', 'revert'],
      description:
        'when our commit fails to deploy: report it (default), or revert it in Git, wait for the revert to be applied, and report both',
    },
    argocd: {
      type: 'object',
      additionalProperties: false,
      description: 'only for target.kind Application',
      properties: {
        suspended: {
          enum: [...SUSPENDED_VERDICTS],
          description:
            'health Suspended at our commit: fail at once (default), pass (paused on purpose), or wait for it to resume until the timeout',
        },
        degradedGrace: {
          type: 'string',
          pattern: DURATION_PATTERN,
          description:
            'how long Degraded may last (e.g. an autoscaler without metrics yet) when the workload running our image is not Degraded itself; default 60s',
        },
      },
    },
    progressive: {
      type: 'object',
      additionalProperties: false,
      description:
        'the progressive workload of the service (an Argo Rollouts Rollout or a Flagger Canary) and the Keptn deployment strategies that go through it',
      properties: {
        rollout: OBJECT_REF,
        canary: OBJECT_REF,
        strategies: {
          type: 'array',
          minItems: 1,
          maxItems: 20,
          items: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' },
          description: 'deploymentstrategy names that deploy progressively; default [blue_green_service]',
        },
      },
    },
    observe: {
      type: 'object',
      additionalProperties: false,
      description:
        "changes made in Git: let target start this service's sequences when it deploys a revision Keptn did not ask for (the object must also carry the gitops.keptn.sh/observe-* annotations naming this project, stage and service)",
      properties: {
        sequence: {
          type: 'string',
          // Keptn's names are DNS labels (keptn/keptn 1.4.5 api, ValidateKeptnEntityName); the sequence goes into an
          // event type, so no dots and no NATS wildcards.
          pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$',
          description: 'the sequence of the stage to start; default delivery',
        },
      },
    },
    report: {
      type: 'object',
      additionalProperties: false,
      properties: {
        deploymentNames: { type: 'array', items: { type: 'string' } },
        deploymentURIsLocal: { type: 'array', items: { type: 'string' } },
        deploymentURIsPublic: { type: 'array', items: { type: 'string' } },
      },
    },
  },
} as const;

const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true });
const validate = ajv.compile<GitOpsSettings>(settingsSchema);

/** A hostile file can have thousands of wrong fields; the message names the first few, each cut short. */
const MAX_PROBLEMS = 20;
const MAX_PROBLEM_CHARS = 300;

function shorten(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

export class SettingsError extends ServiceError {
  readonly problems: string[];

  constructor(
    readonly where: string,
    problems: string[],
  ) {
    const shown = problems.slice(0, MAX_PROBLEMS).map((p) => shorten(p, MAX_PROBLEM_CHARS));
    if (problems.length > MAX_PROBLEMS) shown.push(`and ${problems.length - MAX_PROBLEMS} more`);
    super('INVALID_SETTINGS', `${shorten(where, MAX_PROBLEM_CHARS)} is not valid: ${shown.join('; ')}`);
    this.problems = shown;
  }
}

/** Validates parsed settings; throws a SettingsError that lists every wrong field. */
export function checkSettings(value: unknown, where: string): GitOpsSettings {
  if (validate(value)) {
    const problems = semanticProblems(value);
    if (problems.length) throw new SettingsError(where, problems);
    return value;
  }
  throw new SettingsError(where, describeErrors(validate.errors ?? []));
}

function describeErrors(errors: ErrorObject[]): string[] {
  // `oneOf` failures repeat every branch's complaint; say it once, plainly.
  const out = new Set<string>();
  for (const e of errors) {
    const at = e.instancePath ? e.instancePath.slice(1).replaceAll('/', '.') : '(top level)';
    if (e.keyword === 'oneOf') out.add(`${at}: give exactly one of kustomizeImage, yamlPath or imagePolicy`);
    else if (e.keyword === 'required' && e.schemaPath.includes('oneOf')) continue;
    else if (e.keyword === 'additionalProperties') out.add(`${at}: unknown field ${JSON.stringify(e.params['additionalProperty'])}`);
    else if (e.keyword === 'enum') out.add(`${at}: must be one of ${(e.params['allowedValues'] as string[]).join(', ')}`);
    else out.add(`${at}: ${e.message ?? e.keyword}`);
  }
  return [...out];
}

/** Rules JSON Schema cannot say well. */
function semanticProblems(s: GitOpsSettings): string[] {
  const problems: string[] = [];
  const url = gitUrlProblem(s.git.url);
  if (url) problems.push(`git.url: ${url}`);
  s.images.forEach((w, i) => {
    const file = repoPathProblem(w.file);
    if (file) problems.push(`images.${i}.file: ${file}`);
    if ((w.part !== undefined || w.document !== undefined) && w.yamlPath === undefined)
      problems.push(`images.${i}: part and document go with yamlPath`);
  });
  if (s.timeout !== undefined && parseDuration(s.timeout) > 24 * 3600_000) problems.push('timeout: at most 24h');
  if (s.argocd && s.target.kind !== 'Application') problems.push('argocd: only for target.kind Application');
  if (s.progressive && Boolean(s.progressive.rollout) === Boolean(s.progressive.canary))
    problems.push('progressive: name exactly one workload, rollout (Argo Rollouts) or canary (Flagger)');
  for (const strategy of s.progressive?.strategies ?? [])
    if ((DIRECT_STRATEGIES as readonly string[]).includes(strategy))
      problems.push(`progressive.strategies: ${strategy} deploys as written and cannot be progressive`);
  return problems;
}

/** Only remote transports; never `ext::`, `file://`, local paths or option-like strings that git would obey. */
export function gitUrlProblem(url: string): string | undefined {
  if (/[\s\x00-\x1f]/.test(url)) return 'must not contain white space or control characters';
  if (url.startsWith('-')) return 'must not start with "-"';
  // WHATWG URL parsers read `\` as `/` in http(s) URLs, git and curl do not: `https://a\@b/` is host a to one, b to the other.
  if (url.includes('\\')) return 'must not contain a backslash (URL parsers and git read it differently)';
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme) {
    if (!['https', 'http', 'ssh'].includes(scheme)) return `scheme ${scheme}:// is not allowed; use https://, http:// or ssh://`;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return 'is not a valid URL';
    }
    if (parsed.password || (scheme !== 'ssh' && parsed.username))
      return 'must not carry credentials; put them in the Secret named by git.secretRef';
    // Forges accept tokens as query parameters (?private_token=, ?access_token=); a Git remote needs none.
    if (parsed.search || parsed.hash || url.includes('?') || url.includes('#'))
      return 'must not carry a query string or fragment (tokens go in the Secret named by git.secretRef)';
    if (!parsed.hostname) return 'has no host';
    return tokenInPath(parsed.pathname);
  }
  if (/^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^:]/.test(url) && !url.includes('::')) {
    return url.includes('?') || url.includes('#')
      ? 'must not carry a query string or fragment'
      : tokenInPath(url.slice(url.indexOf(':') + 1));
  }
  return 'must be https://, http://, ssh:// or user@host:path';
}

/**
 * Tokens some forges take in a URL's path (issue 19, item 8): `user:token` segments, and the forges' own token
 * formats (GitHub `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_`/`github_pat_`, GitLab `glpat-` and its other `gl*-` kinds, Hugging
 * Face `hf_`), or a long hex string such as Gitea's. A repository path needs none of them, and a token there ends up
 * in logs and events.
 */
const PATH_TOKEN =
  /^(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|gl[a-z]{2,6}-[A-Za-z0-9_-]{20,}|hf_[A-Za-z0-9]{20,}|[0-9a-f]{32,})$/;

function tokenInPath(path: string): string | undefined {
  const segments = path.split('/').map((s) => s.replace(/\.git$/, ''));
  if (segments.some((s) => s.includes(':') || PATH_TOKEN.test(s)))
    return 'must not carry a token or user:password in its path; put credentials in the Secret named by git.secretRef';
  return undefined;
}

/** A path inside the repository: relative, no `..`, no `.git`. */
export function repoPathProblem(path: string): string | undefined {
  if (path.startsWith('/')) return 'must be relative to the repository root';
  if (/[\x00-\x1f\\]/.test(path)) return 'must not contain control characters or backslashes';
  const parts = path.split('/');
  if (parts.some((p) => p === '..')) return 'must not contain ".."';
  if (parts.some((p) => p.toLowerCase() === '.git')) return 'must not point into .git';
  if (parts.some((p) => p === '')) return 'must not contain empty segments';
  return undefined;
}
