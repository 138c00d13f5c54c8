// A stand-in for Keptn's resource-service, reached through the real distributor's API proxy. It serves files put
// into it with the real service's URL layout and answer shape; Keptn's own resource-service needs a Git upstream
// and a cluster of its own, which the tests do not need to prove anything about this service.
//
// Like the real one it keeps versions: every put is a new commit of the configuration repository, and a GET with
// `?gitCommitID=<commit>` reads the file as it was at that commit (keptn/keptn 1.4.5 resource-service
// handler/resource_manager.go readResource → common/git.go GetFileRevision): 404 "Resource not found" when the file
// is not there at that commit, 500 "Internal server error" when the commit cannot be resolved (go-git
// ResolveRevision on an unknown hash); an empty value (or `""`) reads the latest. `metadata.version` is the commit.
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ResourceService {
  url: string;
  /**
   * Stores a resource at project, stage or service level (omit stage/service for the higher levels) as a new commit
   * of the configuration repository (read it with `version()`).
   */
  put(scope: { project: string; stage?: string; service?: string }, uri: string, content: string): void;
  /** The latest commit, as the shipyard-controller reads it for a new sequence's `gitcommitid`; undefined before any put. */
  version(): string | undefined;
  requests: string[];
  close(): Promise<void>;
}

interface Commit {
  id: string;
  files: ReadonlyMap<string, string>;
}

export async function startResourceService(listenUrl: string): Promise<ResourceService> {
  const { hostname, port } = new URL(listenUrl);
  const commits = new Map<string, Commit>();
  let head: Commit = { id: '', files: new Map() };
  const requests: string[] = [];
  const keyOf = (scope: { project: string; stage?: string; service?: string }, uri: string) => {
    const stage = scope.stage ? ['stage', scope.stage] : [];
    const service = scope.service ? ['service', scope.service] : [];
    return ['project', scope.project, ...stage, ...service, 'resource', uri].join('/');
  };
  const json = (res: import('node:http').ServerResponse, status: number, body: unknown) =>
    void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

  const server: Server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const url = new URL(req.url ?? '/', 'http://resource-service');
    // /v1/project/p[/stage/s[/service/svc]]/resource/<uri, URL-encoded as one segment>
    const m = /^\/v1\/(project\/[^/]+(?:\/stage\/[^/]+)?(?:\/service\/[^/]+)?)\/resource\/([^/]+)$/.exec(url.pathname);
    if (req.method !== 'GET' || !m) return json(res, 404, { code: 404, message: 'not found' });
    const asked = url.searchParams.get('gitCommitID') ?? '';
    const commit = asked === '' || asked === '""' ? head : commits.get(asked);
    if (!commit) return json(res, 500, { code: 500, message: 'Internal server error' });
    const path = m[1]!.split('/').map(decodeURIComponent).join('/');
    const uri = decodeURIComponent(m[2]!);
    const content = commit.files.get(`${path}/resource/${uri}`);
    if (content === undefined) return json(res, 404, { code: 404, message: 'Resource not found' });
    json(res, 200, { resourceURI: uri, resourceContent: Buffer.from(content).toString('base64'), metadata: { version: commit.id } });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(port), hostname, resolve);
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    url: port === '0' ? `http://${hostname}:${bound}` : listenUrl,
    put: (scope, uri, content) => {
      const key = keyOf(scope, uri);
      const files = new Map(head.files).set(key, content);
      const id = createHash('sha1').update(`${head.id}\0${key}\0${content}\0${commits.size}`).digest('hex');
      head = { id, files };
      commits.set(id, head);
    },
    version: () => head.id || undefined,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
