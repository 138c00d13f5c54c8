// A small in-process stand-in for the parts of the Kubernetes API the state modules use (ConfigMaps and Leases, per
// namespace; `keptn` unless a test names another), over real HTTP, so that ConfigMapStore and LeaseRegistry are tested through @kubernetes/client-node
// as they run. It keeps the API server's rules that matter to them: resourceVersion compare-and-swap on replace
// (409), 409 on creating what exists, 404 on what does not, a delete's resourceVersion precondition (409), label
// selectors on list, and an update that changes nothing keeps its resourceVersion (k8s.io/apiserver
// storage/etcd3/store.go, GuaranteedUpdate).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

interface StoredObject {
  metadata: { name: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string>; [k: string]: unknown };
  [k: string]: unknown;
}

export interface ApiRequest {
  method: string;
  path: string;
  body?: StoredObject;
}

const ROUTE = /^\/(?:api\/v1|apis\/coordination\.k8s\.io\/v1)\/namespaces\/([^/]+)\/(configmaps|leases)(?:\/([^/?]+))?$/;

export class FakeApiServer {
  readonly requests: ApiRequest[] = [];
  /** The query of every list, in order. */
  readonly lists: string[] = [];
  private readonly objects = new Map<string, StoredObject>();
  private revision = 100;
  private failures: number[] = [];
  private listFailures: number[] = [];
  private server!: Server;
  url = '';

  static async start(): Promise<FakeApiServer> {
    const api = new FakeApiServer();
    api.server = createServer((req, res) => void api.handle(req, res));
    await new Promise<void>((resolve) => api.server.listen(0, '127.0.0.1', resolve));
    api.url = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
    return api;
  }

  /** A KubeConfig for this server, as a service would load one. */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'fake', token: 'not-a-secret' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'fake' }],
      currentContext: 'fake',
    });
    return kc;
  }

  /** The next requests answer these statuses, one each, before anything is done (0: that request is served). */
  failNext(...statuses: number[]): void {
    this.failures.push(...statuses);
  }

  /** The next list requests (a GET of a collection) answer these statuses; other requests pass. */
  failNextList(...statuses: number[]): void {
    this.listFailures.push(...statuses);
  }

  get(kind: 'configmaps' | 'leases', name: string, namespace = 'keptn'): StoredObject | undefined {
    return this.objects.get(`${kind}/${namespace}/${name}`);
  }

  /** The names of the objects of a kind in a namespace. */
  names(kind: 'configmaps' | 'leases', namespace: string): string[] {
    return [...this.objects.keys()].filter((k) => k.startsWith(`${kind}/${namespace}/`)).map((k) => k.split('/')[2]!);
  }

  /** Puts an object as another writer would, with a new resourceVersion (in its namespace, or `keptn`). */
  put(kind: 'configmaps' | 'leases', object: StoredObject): StoredObject {
    const namespace = object.metadata.namespace ?? 'keptn';
    const stored = { ...object, metadata: { ...object.metadata, namespace, resourceVersion: String(++this.revision) } };
    this.objects.set(`${kind}/${namespace}/${object.metadata.name}`, stored);
    return stored;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    let text = '';
    for await (const chunk of req) text += String(chunk);
    const body = text ? (JSON.parse(text) as StoredObject) : undefined;
    this.requests.push({ method: req.method ?? '', path: url.pathname, ...(body ? { body } : {}) });
    const send = (status: number, payload: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(payload));
    };
    const failure = this.failures.shift();
    if (failure !== undefined && failure !== 0) return send(failure, status(failure, 'injected failure'));
    const match = ROUTE.exec(url.pathname);
    if (!match) return send(404, status(404, `no route ${url.pathname}`));
    const [, namespace, kind, name] = match as unknown as [string, string, 'configmaps' | 'leases', string | undefined];
    const listFailure = req.method === 'GET' && !name ? this.listFailures.shift() : undefined;
    if (listFailure !== undefined) return send(listFailure, status(listFailure, 'injected failure'));
    const key = (n: string) => `${kind}/${namespace}/${n}`;
    switch (`${req.method} ${name ? 'one' : 'all'}`) {
      case 'POST all': {
        if (this.objects.has(key(body!.metadata.name))) return send(409, status(409, 'AlreadyExists'));
        return send(201, this.put(kind, { ...body!, metadata: { ...body!.metadata, namespace } }));
      }
      case 'PUT one': {
        const current = this.objects.get(key(name!));
        if (!current) return send(404, status(404, 'NotFound'));
        if (body!.metadata.resourceVersion !== current.metadata.resourceVersion) return send(409, status(409, 'Conflict'));
        if (JSON.stringify(body) === JSON.stringify(current)) return send(200, current);
        return send(200, this.put(kind, { ...body!, metadata: { ...body!.metadata, namespace } }));
      }
      case 'GET one': {
        const current = this.objects.get(key(name!));
        return current ? send(200, current) : send(404, status(404, 'NotFound'));
      }
      case 'DELETE one': {
        const current = this.objects.get(key(name!));
        if (!current) return send(404, status(404, 'NotFound'));
        // DeleteOptions.preconditions: the API server deletes only the version the caller saw.
        const wanted = (body as { preconditions?: { resourceVersion?: string } } | undefined)?.preconditions?.resourceVersion;
        if (wanted !== undefined && wanted !== current.metadata.resourceVersion) return send(409, status(409, 'Conflict'));
        this.objects.delete(key(name!));
        return send(200, status(200, 'Success'));
      }
      case 'GET all': {
        const terms = (url.searchParams.get('labelSelector') ?? '').split(',').filter(Boolean);
        const selector = Object.fromEntries(terms.filter((t) => !t.includes('!=')).map((kv) => kv.split('=') as [string, string]));
        const excluded = terms.filter((t) => t.includes('!=')).map((kv) => kv.split('!=') as [string, string]);
        const items = [...this.objects.entries()]
          .filter(
            ([k, o]) =>
              k.startsWith(`${kind}/${namespace}/`) &&
              Object.entries(selector).every(([l, v]) => o.metadata.labels?.[l] === v) &&
              excluded.every(([l, v]) => o.metadata.labels?.[l] !== v),
          )
          .map(([, o]) => o);
        // Pages as the API server cuts them (`limit`, and an opaque `continue` token for the rest).
        this.lists.push(url.searchParams.toString());
        const from = Number(url.searchParams.get('continue') ?? 0);
        const limit = Number(url.searchParams.get('limit') ?? 0) || items.length;
        const page = items.slice(from, from + limit);
        const rest = from + limit < items.length ? String(from + limit) : undefined;
        return send(200, {
          kind: kind === 'configmaps' ? 'ConfigMapList' : 'LeaseList',
          apiVersion: 'v1',
          metadata: { resourceVersion: String(this.revision), ...(rest ? { continue: rest } : {}) },
          items: page,
        });
      }
      default:
        return send(405, status(405, 'MethodNotAllowed'));
    }
  }
}

function status(code: number, reason: string) {
  return { kind: 'Status', apiVersion: 'v1', status: code < 400 ? 'Success' : 'Failure', code, reason, message: reason };
}
