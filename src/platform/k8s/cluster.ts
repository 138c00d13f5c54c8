/**
 * Everything the service asks of the Kubernetes API, behind one small interface: shared watches per kind,
 * merge patches, and Secrets. Tests point it at the real local kube-apiserver.
 */
import { CoreV1Api, CustomObjectsApi, KubeConfig, KubernetesObjectApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { ServiceError } from '../../shared/errors.js';
import { isTransient } from '../../shared/failures.js';
import { pooledApiClient } from './pool.js';
import { NamespacedWatches } from './namespaced.js';
import { SharedWatch, type KubeObject, type ObjectWatch, type ResourceKind, type WatchOptions } from './watch.js';

export interface Cluster {
  watch<T extends KubeObject>(kind: ResourceKind): ObjectWatch<T>;
  mergePatch(ref: ObjectRef, patch: Record<string, unknown>): Promise<void>;
  secretData(namespace: string, name: string): Promise<Record<string, string>>;
  /** Reads one custom object from the API server itself, not from a watch's cache: for read-then-write. */
  readFresh<T extends KubeObject>(kind: ResourceKind, namespace: string, name: string): Promise<T>;
  /**
   * A JSON merge patch (`null` deletes a field) that applies only while the object is still at `resourceVersion`:
   * the API server rejects it with 409 when anyone wrote in between (STATE_CONFLICT, retryable: read again).
   */
  mergePatchAt(kind: ResourceKind, namespace: string, name: string, resourceVersion: string, patch: Record<string, unknown>): Promise<void>;
  /** A JSON merge patch of a custom object's status subresource (e.g. what `kubectl argo rollouts promote` writes). */
  mergePatchStatus(kind: ResourceKind, namespace: string, name: string, patch: Record<string, unknown>): Promise<void>;
  /**
   * Labels and annotations of one object (a Secret, a Flux or Argo CD object): where grants are read. A plain GET,
   * so RBAC that names single Secrets (`resourceNames`) suffices; the rest of the object is dropped.
   */
  objectMetadata(ref: ObjectRef): Promise<ObjectMetadata>;
  /** True once every watch started so far has listed at least once. */
  ready(): boolean;
  close(): void;
}

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
}

export interface ObjectMetadata {
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export class ClusterError extends ServiceError {}

export function loadKubeConfig(kubeconfigPath?: string): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfigPath) kc.loadFromFile(kubeconfigPath);
  else kc.loadFromDefault();
  return kc;
}

export class KubeCluster implements Cluster {
  private readonly watches = new Map<string, SharedWatch<KubeObject>>();
  private readonly objects: KubernetesObjectApi;
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;

  constructor(
    private readonly kc: KubeConfig,
    private readonly log: Logger,
    private readonly watchOptions: WatchOptions = {},
    /** Namespaced mode: watch only these namespaces (one list and watch each); default: the whole cluster. */
    private readonly namespaces: readonly string[] = [],
  ) {
    this.objects = pooledApiClient(kc, KubernetesObjectApi);
    this.core = pooledApiClient(kc, CoreV1Api);
    this.custom = pooledApiClient(kc, CustomObjectsApi);
  }

  watch<T extends KubeObject>(kind: ResourceKind): ObjectWatch<T> {
    if (this.namespaces.length === 0) return this.shared<T>(kind);
    const each = new Map(this.namespaces.map((ns) => [ns, this.shared<T>(kind, ns)]));
    return new NamespacedWatches(each, `${kind.plural}.${kind.group}`);
  }

  private shared<T extends KubeObject>(kind: ResourceKind, namespace?: string): SharedWatch<T> {
    const k = `${kind.group}/${kind.version}/${kind.plural}${namespace ? `@${namespace}` : ''}`;
    let w = this.watches.get(k);
    if (!w) {
      w = new SharedWatch<KubeObject>(this.kc, kind, this.log, this.watchOptions, namespace);
      this.watches.set(k, w);
      w.start();
    }
    return w as unknown as SharedWatch<T>;
  }

  async mergePatch(ref: ObjectRef, patch: Record<string, unknown>): Promise<void> {
    try {
      const { metadata, ...rest } = patch as { metadata?: Record<string, unknown> };
      await this.objects.patch(
        { apiVersion: ref.apiVersion, kind: ref.kind, ...rest, metadata: { ...metadata, name: ref.name, namespace: ref.namespace } },
        undefined,
        undefined,
        'keptn-gitops-service',
        undefined,
        PatchStrategy.MergePatch,
      );
    } catch (err: unknown) {
      throw apiError(err, `${ref.kind} ${ref.namespace}/${ref.name}`);
    }
  }

  async secretData(namespace: string, name: string): Promise<Record<string, string>> {
    try {
      const secret = await this.core.readNamespacedSecret({ namespace, name });
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(secret.data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
      for (const [k, v] of Object.entries(secret.stringData ?? {})) out[k] = v;
      return out;
    } catch (err: unknown) {
      throw apiError(err, `Secret ${namespace}/${name}`);
    }
  }

  async readFresh<T extends KubeObject>(kind: ResourceKind, namespace: string, name: string): Promise<T> {
    try {
      return (await this.custom.getNamespacedCustomObject({ ...kind, namespace, name })) as T;
    } catch (err: unknown) {
      throw writeError(err, `${kind.plural}.${kind.group} ${namespace}/${name}`);
    }
  }

  async mergePatchAt(
    kind: ResourceKind,
    namespace: string,
    name: string,
    resourceVersion: string,
    patch: Record<string, unknown>,
  ): Promise<void> {
    const metadata = { ...(patch['metadata'] as Record<string, unknown> | undefined), resourceVersion };
    try {
      await this.custom.patchNamespacedCustomObject(
        { ...kind, namespace, name, body: { ...patch, metadata }, fieldManager: 'keptn-gitops-service' },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    } catch (err: unknown) {
      throw writeError(err, `${kind.plural}.${kind.group} ${namespace}/${name}`);
    }
  }

  async mergePatchStatus(kind: ResourceKind, namespace: string, name: string, patch: Record<string, unknown>): Promise<void> {
    try {
      await this.custom.patchNamespacedCustomObjectStatus(
        { ...kind, namespace, name, body: patch, fieldManager: 'keptn-gitops-service' },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    } catch (err: unknown) {
      throw writeError(err, `${kind.plural}.${kind.group} ${namespace}/${name} status`);
    }
  }

  async objectMetadata(ref: ObjectRef): Promise<ObjectMetadata> {
    try {
      const obj = await this.objects.read({
        apiVersion: ref.apiVersion,
        kind: ref.kind,
        metadata: { name: ref.name, namespace: ref.namespace },
      });
      return { labels: { ...obj.metadata?.labels }, annotations: { ...obj.metadata?.annotations } };
    } catch (err: unknown) {
      throw apiError(err, `${ref.kind} ${ref.namespace}/${ref.name}`);
    }
  }

  ready(): boolean {
    return [...this.watches.values()].every((w) => w.state === 'synced' || w.state === 'degraded');
  }

  close(): void {
    for (const w of this.watches.values()) w.stop();
  }
}

function apiError(err: unknown, what: string): ClusterError {
  const code = (err as { code?: number } | undefined)?.code;
  if (code === 404) return new ClusterError('NOT_FOUND', `${what} not found`, { cause: err });
  if (code === 403) return new ClusterError('FORBIDDEN', `not allowed to access ${what}; check the service account's RBAC`, { cause: err });
  return new ClusterError(
    'API_ERROR',
    `Kubernetes API error on ${what}: ${code ? `HTTP ${code}` : err instanceof Error ? err.message : String(err)}`,
    // An API server that is away (refused, reset, 5xx, 429) is waited out by the task (issue 23, tasks/outage.ts).
    { cause: err, retryable: isTransientApiFailure(err) },
  );
}

/** The HTTP status of a client-node ApiException, or the system error code somewhere in a failed fetch's causes. */
function isTransientApiFailure(err: unknown): boolean {
  const status = (err as { code?: unknown } | undefined)?.code;
  if (typeof status === 'number') return isTransient({ status });
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && isTransient({ code })) return true;
  }
  return false;
}

/** For read-then-write: a conflict or a server or network failure is worth another read; 403/404 are not. */
function writeError(err: unknown, what: string): ClusterError {
  const code = (err as { code?: number } | undefined)?.code;
  if (code === 409) return new ClusterError('STATE_CONFLICT', `${what} changed while we wrote it`, { cause: err, retryable: true });
  if (code === 404 || code === 403) return apiError(err, what);
  const retryable = code === undefined || code === 429 || code >= 500;
  return new ClusterError(
    'API_ERROR',
    `Kubernetes API error on ${what}: ${code ? `HTTP ${code}` : err instanceof Error ? err.message : String(err)}`,
    { cause: err, retryable },
  );
}
