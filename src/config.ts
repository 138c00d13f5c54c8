/**
 * The service's own settings, from the environment, parsed once. Nothing else reads process.env.
 * Per-service GitOps settings are not here: they come from Keptn's resource-service (see settings/).
 */
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDuration, parseDuration } from './duration.js';
import { ServiceError, type ServiceErrorOptions } from './errors.js';

export interface ServiceConfig {
  host: string;
  port: number;
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
  /** Namespace of Secrets named without one (Keptn secrets live in `keptn`). */
  secretNamespace: string;
  kubeconfig?: string;
  defaultTimeoutMs: number;
  logLevel: string;
  author: { name: string; email: string };
  apiToken?: string;
  /** Namespace of the deployment records and replica Leases. */
  stateNamespace: string;
  /** This replica's name in Leases and records; stable across container restarts in one pod. */
  replicaId: string;
  /** A replica whose Lease is this old is taken for stopped; its deployments are adopted. */
  leaseSeconds: number;
  /** How often unfinished deployments are looked for (resume, adopt, re-send `.finished`). */
  resumeIntervalMs: number;
}

export class ConfigError extends ServiceError {
  constructor(message: string, options: ServiceErrorOptions = {}) {
    super('INVALID_CONFIG', message, options);
  }
}

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env): ServiceConfig {
  const problems: string[] = [];
  const port = Number(env['PORT'] ?? '8080');
  if (!Number.isInteger(port) || port < 1 || port > 65535) problems.push(`PORT must be a port number, got ${JSON.stringify(env['PORT'])}`);
  const timeout = env['DEFAULT_TIMEOUT'] ?? '10m';
  if (!isDuration(timeout)) problems.push(`DEFAULT_TIMEOUT must be a duration like 10m or 90s, got ${JSON.stringify(timeout)}`);
  const urls = {
    eventUrl: env['KEPTN_EVENT_URL'] ?? 'http://localhost:8081/event',
    resourceServiceUrl: env['KEPTN_RESOURCE_SERVICE_URL'] ?? 'http://localhost:8081/resource-service',
  };
  for (const [name, value] of Object.entries(urls)) {
    if (!URL.canParse(value) || !/^https?:$/.test(new URL(value).protocol)) problems.push(`${name} must be an http(s) URL, got ${JSON.stringify(value)}`);
  }
  const leaseSeconds = Number(env['LEASE_SECONDS'] ?? '20');
  if (!Number.isInteger(leaseSeconds) || leaseSeconds < 2) problems.push(`LEASE_SECONDS must be a whole number ≥ 2, got ${JSON.stringify(env['LEASE_SECONDS'])}`);
  const resumeInterval = env['RESUME_INTERVAL'] ?? '10s';
  if (!isDuration(resumeInterval)) problems.push(`RESUME_INTERVAL must be a duration like 10s, got ${JSON.stringify(resumeInterval)}`);
  if (problems.length) throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  return {
    host: env['HOST'] ?? '0.0.0.0',
    port,
    serviceName: env['SERVICE_NAME'] ?? 'gitops-service',
    ...urls,
    ...(env['GITOPS_CONFIG_DIR'] ? { configDir: env['GITOPS_CONFIG_DIR'] } : {}),
    configResource: env['GITOPS_CONFIG_RESOURCE'] ?? 'gitops/config.yaml',
    workDir: env['GITOPS_WORK_DIR'] ?? join(tmpdir(), 'keptn-gitops-service'),
    secretNamespace: env['SECRET_NAMESPACE'] ?? env['POD_NAMESPACE'] ?? 'keptn',
    ...(env['KUBECONFIG'] ? { kubeconfig: env['KUBECONFIG'] } : {}),
    defaultTimeoutMs: parseDuration(timeout),
    logLevel: env['LOG_LEVEL'] ?? 'info',
    author: { name: env['GIT_AUTHOR_NAME'] ?? 'Keptn GitOps Service', email: env['GIT_AUTHOR_EMAIL'] ?? 'keptn-gitops-service@keptn.local' },
    ...(env['KEPTN_API_TOKEN'] ? { apiToken: env['KEPTN_API_TOKEN'] } : {}),
    stateNamespace: env['STATE_NAMESPACE'] ?? env['POD_NAMESPACE'] ?? 'keptn',
    replicaId: env['REPLICA_ID'] ?? env['POD_NAME'] ?? hostname(),
    leaseSeconds,
    resumeIntervalMs: parseDuration(resumeInterval),
  };
}

/** Log fields that may carry secrets; pino replaces them. */
export const REDACT_PATHS = ['apiToken', 'config.apiToken', 'credentials', '*.credentials', 'password', '*.password', 'identity', '*.identity', 'req.headers.authorization', 'req.headers["x-token"]'];
