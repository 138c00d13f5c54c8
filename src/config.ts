/**
 * The service's own settings, from the environment, parsed once. Besides this module only the Git workspace looks at
 * process.env, to pass git the few variables it needs to run (HOME, PATH and the like), never a setting.
 * Per-service GitOps settings are not here: they come from Keptn's resource-service (see settings/).
 */
import { isIP } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDuration, parseDuration } from './shared/duration.js';
import { ServiceError, type ServiceErrorOptions } from './shared/errors.js';
import { MIN_RETENTION_MS } from './observe/retention.js';
import { MAX_STARTING } from './tasks/runner.js';

export interface ServiceConfig {
  /**
   * Where CloudEvents arrive (`POST /`): a loopback address, so only the distributor in the same pod can deliver
   * them (the containers of a pod share one network namespace; nothing from outside the pod reaches its loopback).
   */
  host: string;
  port: number;
  /** Where the kubelet's probes (and later metrics) are answered: all interfaces, another port. */
  healthHost: string;
  healthPort: number;
  /** CloudEvent `source` of what we send. */
  serviceName: string;
  /** Where `.started`/`.finished` go: the distributor's `/event`. */
  eventUrl: string;
  /** The resource-service through the distributor's API proxy. */
  resourceServiceUrl: string;
  /** When set, settings are read from this directory instead of the resource-service. */
  configDir?: string;
  configResource: string;
  /** Cached clones of the GitOps repositories. */
  workDir: string;
  /** Past this many bytes of cached clones, the least recently used are removed (GIT_CACHE_LIMIT). */
  gitCacheLimitBytes: number;
  /**
   * Internal Git hosts (cluster Services, private and link-local addresses) the settings may name, as `host` or
   * `host:port`; `*` allows every host. Empty: only public hosts (ALLOWED_GIT_HOSTS).
   */
  allowedGitHosts: string[];
  /** Namespace of Secrets named without one (Keptn secrets live in `keptn`). */
  secretNamespace: string;
  kubeconfig?: string;
  defaultTimeoutMs: number;
  logLevel: string;
  author: { name: string; email: string };
  apiToken?: string;
  /** Namespace of the deployment records and replica Leases. */
  stateNamespace: string;
  /**
   * Where an earlier release kept them (PREVIOUS_STATE_NAMESPACE, set by the chart on the upgrade that moves the
   * state): what is left there is moved here once that release's replicas have stopped (ADR 17).
   */
  previousStateNamespace?: string;
  /** This replica's name in Leases and records; stable across container restarts in one pod. */
  replicaId: string;
  /** A replica whose Lease is this old is taken for stopped; its deployments are adopted. */
  leaseSeconds: number;
  /** How often unfinished deployments are looked for (resume, adopt, re-send `.finished`). */
  resumeIntervalMs: number;
  /** How many deployments may be starting at once (MAX_STARTING; a project holds at most three quarters). */
  maxStarting: number;
  /**
   * On SIGTERM, how long running deployments may go on finishing here before the process exits; what is still
   * running then is resumed by another replica once this one's Lease runs out.
   */
  drainMs: number;
  /**
   * Namespaced mode: the namespaces whose Flux and Argo CD objects and workloads the service watches (one list and
   * watch each, with RBAC in those namespaces only). Empty: the whole cluster.
   */
  watchNamespaces: string[];
  /**
   * The tools whose linked objects are observed for changes made in Git (src/observe/): `flux`, `argocd`. Empty (the
   * default): nothing is observed, so installing or upgrading the service never starts sequences on its own.
   */
  observe: Array<'flux' | 'argocd'>;
  /** Where Flux and Argo CD notifications are taken (src/observe/notify-app.ts); unset: not at all. */
  notifyPort?: number;
  notifyHost: string;
  /**
   * The Secrets (in `secretNamespace`) of the notification senders, one per sender: its keys and the projects and
   * objects it may speak for (observe/notify-keys.ts). `NOTIFY_SECRET`, a comma-separated list; one name as before.
   */
  notifySecrets: string[];
  /** How long an observation record is kept after its object was last found at its revision (src/observe/retention.ts). */
  observationRetentionMs: number;
}

export class ConfigError extends ServiceError {
  constructor(message: string, options: ServiceErrorOptions = {}) {
    super('INVALID_CONFIG', message, options);
  }
}

type Env = Record<string, string | undefined>;

/** The event port: the distributor's default PUBSUB_RECIPIENT_PORT. */
export const DEFAULT_PORT = 8080;
/** The probe port: next to the distributor's API proxy (8081). */
export const DEFAULT_HEALTH_PORT = 8082;

/** 127.0.0.0/8 or ::1: addresses only this network namespace (this pod) can reach. */
export function isLoopbackAddress(address: string): boolean {
  const plain = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (isIP(plain) === 4) return plain.startsWith('127.');
  return isIP(plain) === 6 && /^(0{0,4}:){7}0{0,3}1$|^::1$/.test(plain);
}

export function loadConfig(env: Env): ServiceConfig {
  const problems: string[] = [];
  const portSetting = (name: string, fallback: number): number => {
    const value = Number(env[name] ?? String(fallback));
    if (!Number.isInteger(value) || value < 1 || value > 65535)
      problems.push(`${name} must be a port number, got ${JSON.stringify(env[name])}`);
    return value;
  };
  const port = portSetting('PORT', DEFAULT_PORT);
  const healthPort = portSetting('HEALTH_PORT', DEFAULT_HEALTH_PORT);
  if (port === healthPort) {
    problems.push(`HEALTH_PORT must differ from PORT (both ${port}): events are taken only on loopback, probes on every interface`);
  }
  const host = env['HOST'] ?? '127.0.0.1';
  if (!isLoopbackAddress(host)) {
    problems.push(
      `HOST must be a loopback address such as 127.0.0.1 or ::1, got ${JSON.stringify(host)}: only the distributor in the same pod may deliver events`,
    );
  }
  const healthHost = env['HEALTH_HOST'] ?? '0.0.0.0';
  if (isIP(healthHost) === 0) problems.push(`HEALTH_HOST must be an IP address, got ${JSON.stringify(healthHost)}`);
  const timeout = env['DEFAULT_TIMEOUT'] ?? '10m';
  if (!isDuration(timeout)) problems.push(`DEFAULT_TIMEOUT must be a duration like 10m or 90s, got ${JSON.stringify(timeout)}`);
  const urls = {
    eventUrl: env['KEPTN_EVENT_URL'] ?? 'http://localhost:8081/event',
    resourceServiceUrl: env['KEPTN_RESOURCE_SERVICE_URL'] ?? 'http://localhost:8081/resource-service',
  };
  for (const [name, value] of Object.entries(urls)) {
    if (!URL.canParse(value) || !/^https?:$/.test(new URL(value).protocol))
      problems.push(`${name} must be an http(s) URL, got ${JSON.stringify(value)}`);
  }
  const leaseSeconds = Number(env['LEASE_SECONDS'] ?? '20');
  if (!Number.isInteger(leaseSeconds) || leaseSeconds < 2)
    problems.push(`LEASE_SECONDS must be a whole number ≥ 2, got ${JSON.stringify(env['LEASE_SECONDS'])}`);
  const maxStarting = Number(env['MAX_STARTING'] ?? String(MAX_STARTING));
  // At 4 a project holds 3 turns and one is kept for the others (limit.ts, FairSlots).
  if (!Number.isInteger(maxStarting) || maxStarting < 4 || maxStarting > 10_000)
    problems.push(`MAX_STARTING must be a whole number from 4 to 10000, got ${JSON.stringify(env['MAX_STARTING'])}`);
  const resumeInterval = env['RESUME_INTERVAL'] ?? '10s';
  if (!isDuration(resumeInterval)) problems.push(`RESUME_INTERVAL must be a duration like 10s, got ${JSON.stringify(resumeInterval)}`);
  const watchNamespaces = (env['WATCH_NAMESPACES'] ?? '')
    .split(',')
    .map((ns) => ns.trim())
    .filter(Boolean);
  const badNamespace = watchNamespaces.find((ns) => !NAMESPACE.test(ns));
  if (badNamespace !== undefined)
    problems.push(`WATCH_NAMESPACES must be a comma-separated list of namespace names, got ${JSON.stringify(badNamespace.slice(0, 80))}`);
  const drain = env['DRAIN_TIMEOUT'] ?? '8s';
  if (!isDuration(drain)) problems.push(`DRAIN_TIMEOUT must be a duration like 8s, got ${JSON.stringify(drain)}`);
  const observe = (env['OBSERVE'] ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  for (const tool of observe)
    if (tool !== 'flux' && tool !== 'argocd')
      problems.push(`OBSERVE must list flux and/or argocd (comma-separated), got ${JSON.stringify(tool)}`);
  const notifyPort = env['NOTIFY_PORT'] === undefined ? undefined : portSetting('NOTIFY_PORT', 0);
  if (notifyPort !== undefined && (notifyPort === port || notifyPort === healthPort))
    problems.push(`NOTIFY_PORT must differ from PORT and HEALTH_PORT, got ${notifyPort}`);
  if (notifyPort !== undefined && !(env['NOTIFY_SECRET'] ?? '').trim())
    problems.push(
      'NOTIFY_SECRET must name the Secret holding the notification keys when NOTIFY_PORT is set (one per sender, comma-separated)',
    );
  const notifySecrets = [
    ...new Set(
      (env['NOTIFY_SECRET'] ?? '')
        .split(',')
        .map((n) => n.trim())
        .filter(Boolean),
    ),
  ];
  for (const name of notifySecrets)
    if (!/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/.test(name))
      problems.push(`NOTIFY_SECRET must list Secret names separated by commas, got ${JSON.stringify(name.slice(0, 80))}`);
  const notifyHost = env['NOTIFY_HOST'] ?? '0.0.0.0';
  if (isIP(notifyHost) === 0) problems.push(`NOTIFY_HOST must be an IP address, got ${JSON.stringify(notifyHost)}`);
  const cacheLimit = parseQuantity(env['GIT_CACHE_LIMIT'] ?? DEFAULT_GIT_CACHE_LIMIT);
  if (cacheLimit === undefined || cacheLimit < 1024 * 1024)
    problems.push(`GIT_CACHE_LIMIT must be a size of at least 1Mi like 1536Mi or 2Gi, got ${JSON.stringify(env['GIT_CACHE_LIMIT'])}`);
  const allowedGitHosts = (env['ALLOWED_GIT_HOSTS'] ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean);
  const badHost = allowedGitHosts.find(
    (h) => h !== '*' && !/^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?|\[[0-9a-f:.]{2,45}\])(:[0-9]{1,5})?$/.test(h),
  );
  if (badHost !== undefined)
    problems.push(
      `ALLOWED_GIT_HOSTS must list host or host:port entries (or *), comma-separated, got ${JSON.stringify(badHost.slice(0, 80))}`,
    );
  const stateNamespace = env['STATE_NAMESPACE'] ?? env['POD_NAMESPACE'] ?? 'keptn';
  const previousStateNamespace = env['PREVIOUS_STATE_NAMESPACE']?.trim() || undefined;
  for (const [name, value] of [
    ['STATE_NAMESPACE', stateNamespace],
    ['PREVIOUS_STATE_NAMESPACE', previousStateNamespace],
  ] as const)
    if (value !== undefined && !NAMESPACE.test(value))
      problems.push(`${name} must be a namespace name, got ${JSON.stringify(value.slice(0, 80))}`);
  const retention = env['OBSERVATION_RETENTION'] ?? DEFAULT_OBSERVATION_RETENTION;
  if (!isDuration(retention) || parseDuration(retention) < MIN_RETENTION_MS)
    problems.push(`OBSERVATION_RETENTION must be a duration of at least 1h, like 168h, got ${JSON.stringify(retention)}`);
  if (problems.length) throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  return {
    host,
    port,
    healthHost,
    healthPort,
    serviceName: env['SERVICE_NAME'] ?? 'gitops-service',
    ...urls,
    ...(env['GITOPS_CONFIG_DIR'] ? { configDir: env['GITOPS_CONFIG_DIR'] } : {}),
    configResource: env['GITOPS_CONFIG_RESOURCE'] ?? 'gitops/config.yaml',
    workDir: env['GITOPS_WORK_DIR'] ?? join(tmpdir(), 'keptn-gitops-service'),
    gitCacheLimitBytes: cacheLimit!,
    allowedGitHosts: [...new Set(allowedGitHosts)],
    secretNamespace: env['SECRET_NAMESPACE'] ?? env['POD_NAMESPACE'] ?? 'keptn',
    ...(env['KUBECONFIG'] ? { kubeconfig: env['KUBECONFIG'] } : {}),
    defaultTimeoutMs: parseDuration(timeout),
    logLevel: env['LOG_LEVEL'] ?? 'info',
    author: {
      name: env['GIT_AUTHOR_NAME'] ?? 'Keptn GitOps Service',
      email: env['GIT_AUTHOR_EMAIL'] ?? 'keptn-gitops-service@keptn.local',
    },
    ...(env['KEPTN_API_TOKEN'] ? { apiToken: env['KEPTN_API_TOKEN'] } : {}),
    stateNamespace,
    ...(previousStateNamespace && previousStateNamespace !== stateNamespace ? { previousStateNamespace } : {}),
    replicaId: env['REPLICA_ID'] ?? env['POD_NAME'] ?? hostname(),
    leaseSeconds,
    resumeIntervalMs: parseDuration(resumeInterval),
    maxStarting,
    drainMs: parseDuration(drain),
    watchNamespaces: [...new Set(watchNamespaces)],
    observe: [...new Set(observe)] as Array<'flux' | 'argocd'>,
    ...(notifyPort !== undefined ? { notifyPort } : {}),
    notifyHost,
    notifySecrets,
    observationRetentionMs: parseDuration(retention),
  };
}

/** Below the chart's default volume limit (gitCacheSizeLimit: 2Gi), with room for a clone being made anew. */
export const DEFAULT_GIT_CACHE_LIMIT = '1536Mi';

const UNITS: Record<string, number> = { '': 1, k: 1e3, M: 1e6, G: 1e9, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 };

/** Bytes of a Kubernetes-style quantity (`1536Mi`, `2Gi`, `500M`, `1048576`), or undefined. */
export function parseQuantity(text: string): number | undefined {
  const m = /^([0-9]+(?:\.[0-9]+)?)(k|M|G|Ki|Mi|Gi)?$/.exec(text.trim());
  return m ? Math.floor(Number(m[1]) * UNITS[m[2] ?? '']!) : undefined;
}

/** A week: long enough to look back at what was announced, short enough to keep etcd small. */
export const DEFAULT_OBSERVATION_RETENTION = '168h';

/** A Kubernetes namespace name (an RFC 1123 label). */
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Log fields that may carry secrets; pino replaces them. */
export const REDACT_PATHS = [
  'apiToken',
  'config.apiToken',
  'credentials',
  '*.credentials',
  'password',
  '*.password',
  'identity',
  '*.identity',
  'req.headers.authorization',
  'req.headers["x-token"]',
];
