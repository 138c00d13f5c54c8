/**
 * Where the per-service settings come from. The Keptn way is the resource-service (through the distributor's API
 * proxy), looked up at service, then stage, then project level, the first found winning, as job-executor-service
 * does; a local directory with the same layout serves for running without Keptn.
 *
 * Keptn pins the configuration of a sequence: its events carry `gitcommitid`, the commit of the configuration
 * repository the sequence runs with. The settings are read at that version (the resource-service's `gitCommitID`
 * query parameter, keptn/keptn 1.4.5 resource-service/models/resource.go GetResourceQuery, read by
 * handler/resource_manager.go readResource: the file at that commit, 404 when it is not there, 500 when the commit
 * is unknown), so a settings change made while a sequence runs does not change what that sequence deploys.
 */
import axios, { type AxiosInstance } from 'axios';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseYamlData } from '../../shared/yaml.js';
import { checkSettings, SettingsError, type GitOpsSettings } from './schema.js';
import { ServiceError, type ServiceErrorOptions } from '../../shared/errors.js';
import { retry, type RetryPolicy, type Sleep } from '../../shared/retry.js';
import { isTransient, isTransientStatus } from '../../shared/failures.js';

export interface Scope {
  project: string;
  stage: string;
  service: string;
}

export interface LoadedSettings {
  settings: GitOpsSettings;
  /** Where they were found, for messages: e.g. `resource gitops/config.yaml of stage dev`. */
  where: string;
}

export interface SettingsSource {
  /** `version`: the configuration version to read (the event's `gitcommitid`); the latest when absent. */
  load(scope: Scope, version?: string): Promise<LoadedSettings>;
}

export const DEFAULT_RESOURCE_URI = 'gitops/config.yaml';
const MAX_BYTES = 256 * 1024;

export class SettingsUnavailableError extends ServiceError {
  constructor(message: string, options: ServiceErrorOptions = {}) {
    super('SETTINGS_UNAVAILABLE', message, { retryable: true, ...options });
  }
}

function levels(scope: Scope): Array<{ level: string; segments: string[] }> {
  return [
    { level: `service ${scope.service}`, segments: ['project', scope.project, 'stage', scope.stage, 'service', scope.service] },
    { level: `stage ${scope.stage}`, segments: ['project', scope.project, 'stage', scope.stage] },
    { level: `project ${scope.project}`, segments: ['project', scope.project] },
  ];
}

function notFound(scope: Scope, resourceUri: string, version?: string): SettingsError {
  const at = version ? ` at configuration version ${version}` : '';
  const add =
    `keptn add-resource --project=${scope.project} --stage=${scope.stage} --service=${scope.service} ` +
    `--resource=config.yaml --resourceUri=${resourceUri}`;
  return new SettingsError(`settings for ${scope.project}/${scope.stage}/${scope.service}${at}`, [
    `no ${resourceUri} at service, stage or project level; add one, e.g. ${add}`,
  ]);
}

export function parseSettingsText(text: string, where: string): GitOpsSettings {
  if (Buffer.byteLength(text) > MAX_BYTES) throw new SettingsError(where, [`larger than ${MAX_BYTES} bytes`]);
  let value: unknown;
  try {
    value = parseYamlData(text, 50);
  } catch (err: unknown) {
    throw new SettingsError(where, [`not valid YAML: ${(err as Error).message}`]);
  }
  return checkSettings(value, where);
}

/** A few tries: the distributor's proxy may be restarting beside us. */
export const RESOURCE_SERVICE_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 1_000, maxDelayMs: 4_000 };

export class ResourceServiceSettings implements SettingsSource {
  private readonly http: AxiosInstance;

  constructor(
    baseUrl: string,
    private readonly resourceUri = DEFAULT_RESOURCE_URI,
    timeoutMs = 5_000,
    private readonly retryPolicy: RetryPolicy = RESOURCE_SERVICE_RETRY,
    private readonly sleep?: Sleep,
  ) {
    this.http = axios.create({ baseURL: baseUrl.replace(/\/+$/, ''), timeout: timeoutMs, validateStatus: () => true });
  }

  async load(scope: Scope, version?: string): Promise<LoadedSettings> {
    const at = version ? ` at configuration version ${version}` : '';
    for (const { level, segments } of levels(scope)) {
      const path = `/v1/${segments.map(encodeURIComponent).join('/')}/resource/${encodeURIComponent(this.resourceUri)}`;
      const where = `resource ${this.resourceUri} of ${level}${at}`;
      const res = await this.get(path, version, where);
      if (res.status === 404) continue;
      if (res.status !== 200)
        throw new SettingsUnavailableError(`resource-service answered HTTP ${res.status} for ${where}`, {
          retryable: isTransientStatus(res.status),
        });
      const content = res.data?.resourceContent;
      if (typeof content !== 'string') throw new SettingsError(where, ['the resource-service returned no resourceContent']);
      return { settings: parseSettingsText(Buffer.from(content, 'base64').toString('utf8'), where), where };
    }
    throw notFound(scope, this.resourceUri, version);
  }

  private get(path: string, version: string | undefined, where: string) {
    // Every answer of an unavailable resource-service is tried again a few times here; only a transient one
    // (`retryable`) is then waited out until the deployment's deadline (tasks/outage.ts).
    const policy = { retryable: (err: unknown) => err instanceof SettingsUnavailableError, ...this.retryPolicy };
    return retry(
      policy,
      async () => {
        let res;
        try {
          res = await this.http.get<{ resourceContent?: string }>(path, version ? { params: { gitCommitID: version } } : {});
        } catch (err: unknown) {
          const reason = axios.isAxiosError(err) ? (err.code ?? err.message) : String(err);
          const code = axios.isAxiosError(err) ? err.code : undefined;
          throw new SettingsUnavailableError(`cannot reach the resource-service to read ${where}: ${reason}`, {
            cause: err,
            retryable: isTransient({ ...(code !== undefined ? { code } : {}), message: reason }),
          });
        }
        if (res.status < 500) return res;
        // The resource-service answers 500 for a commit it cannot resolve, as for its own failures: tried a few times
        // here, but not waited out until the deadline (issue 23) as a service that is away is.
        const unresolved = version !== undefined && res.status === 500;
        const hint = version ? '; the configuration version may not exist in the Keptn configuration repository' : '';
        throw new SettingsUnavailableError(`resource-service answered HTTP ${res.status} for ${where}${hint}`, {
          retryable: !unresolved && isTransientStatus(res.status),
        });
      },
      this.sleep,
    );
  }
}

/** `<dir>/<project>/<stage>/<service>/<uri>`, then `<dir>/<project>/<stage>/<uri>`, then `<dir>/<project>/<uri>`. */
export class DirectorySettings implements SettingsSource {
  constructor(
    private readonly dir: string,
    private readonly resourceUri = DEFAULT_RESOURCE_URI,
  ) {}

  /** A directory has no versions: `version` is ignored and the files as they are now are read. */
  async load(scope: Scope, _version?: string): Promise<LoadedSettings> {
    const candidates = [
      join(this.dir, scope.project, scope.stage, scope.service, this.resourceUri),
      join(this.dir, scope.project, scope.stage, this.resourceUri),
      join(this.dir, scope.project, this.resourceUri),
    ];
    for (const file of candidates) {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err: unknown) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw new SettingsUnavailableError(`cannot read ${file}: ${(err as Error).message}`);
      }
      return { settings: parseSettingsText(text, file), where: file };
    }
    throw notFound(scope, this.resourceUri);
  }
}
