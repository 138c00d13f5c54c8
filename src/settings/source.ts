/**
 * Where the per-service settings come from. The Keptn way is the resource-service (through the distributor's API
 * proxy), looked up at service, then stage, then project level, the first found winning, as job-executor-service
 * does; a local directory with the same layout serves for running without Keptn.
 */
import axios, { type AxiosInstance } from 'axios';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseYamlData } from '../yaml.js';
import { checkSettings, SettingsError, type GitOpsSettings } from './schema.js';
import { ServiceError, type ServiceErrorOptions } from '../errors.js';

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
  load(scope: Scope): Promise<LoadedSettings>;
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

function notFound(scope: Scope, resourceUri: string): SettingsError {
  return new SettingsError(`settings for ${scope.project}/${scope.stage}/${scope.service}`, [
    `no ${resourceUri} at service, stage or project level; add one, e.g. keptn add-resource --project=${scope.project} --stage=${scope.stage} --service=${scope.service} --resource=config.yaml --resourceUri=${resourceUri}`,
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

export class ResourceServiceSettings implements SettingsSource {
  private readonly http: AxiosInstance;

  constructor(baseUrl: string, private readonly resourceUri = DEFAULT_RESOURCE_URI, timeoutMs = 5_000) {
    this.http = axios.create({ baseURL: baseUrl.replace(/\/+$/, ''), timeout: timeoutMs, validateStatus: () => true });
  }

  async load(scope: Scope): Promise<LoadedSettings> {
    for (const { level, segments } of levels(scope)) {
      const path = `/v1/${segments.map(encodeURIComponent).join('/')}/resource/${encodeURIComponent(this.resourceUri)}`;
      const res = await this.get(path);
      if (res.status === 404) continue;
      if (res.status !== 200) throw new SettingsUnavailableError(`resource-service answered HTTP ${res.status} for ${this.resourceUri} of ${level}`);
      const where = `resource ${this.resourceUri} of ${level}`;
      const content = res.data?.resourceContent;
      if (typeof content !== 'string') throw new SettingsError(where, ['the resource-service returned no resourceContent']);
      return { settings: parseSettingsText(Buffer.from(content, 'base64').toString('utf8'), where), where };
    }
    throw notFound(scope, this.resourceUri);
  }

  /** A few tries: the distributor's proxy may be restarting beside us. */
  private async get(path: string) {
    let last = '';
    for (let attempt = 1; attempt <= 4; attempt++) {
      try {
        const res = await this.http.get<{ resourceContent?: string }>(path);
        if (res.status < 500) return res;
        last = `HTTP ${res.status}`;
      } catch (err: unknown) {
        last = axios.isAxiosError(err) ? (err.code ?? err.message) : String(err);
      }
      if (attempt < 4) await new Promise((r) => setTimeout(r, 500 * 2 ** (attempt - 1)));
    }
    throw new SettingsUnavailableError(`cannot reach the resource-service to read ${this.resourceUri}: ${last}`);
  }
}

/** `<dir>/<project>/<stage>/<service>/<uri>`, then `<dir>/<project>/<stage>/<uri>`, then `<dir>/<project>/<uri>`. */
export class DirectorySettings implements SettingsSource {
  constructor(private readonly dir: string, private readonly resourceUri = DEFAULT_RESOURCE_URI) {}

  async load(scope: Scope): Promise<LoadedSettings> {
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
