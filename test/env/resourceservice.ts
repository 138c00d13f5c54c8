// A stand-in for Keptn's resource-service, reached through the real distributor's API proxy. It serves files put
// into it with the real service's URL layout and answer shape; Keptn's own resource-service needs a Git upstream
// and a cluster of its own, which the tests do not need to prove anything about this service.
import { createServer, type Server } from 'node:http';

export interface ResourceService {
  url: string;
  /** Stores a resource at project, stage or service level (omit stage/service for the higher levels). */
  put(scope: { project: string; stage?: string; service?: string }, uri: string, content: string): void;
  requests: string[];
  close(): Promise<void>;
}

export async function startResourceService(listenUrl: string): Promise<ResourceService> {
  const { hostname, port } = new URL(listenUrl);
  const files = new Map<string, string>();
  const requests: string[] = [];
  const keyOf = (scope: { project: string; stage?: string; service?: string }, uri: string) =>
    ['project', scope.project, ...(scope.stage ? ['stage', scope.stage] : []), ...(scope.service ? ['service', scope.service] : []), 'resource', uri].join('/');

  const server: Server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    // /v1/project/p[/stage/s[/service/svc]]/resource/<uri, URL-encoded as one segment>
    const m = /^\/v1\/(project\/[^/]+(?:\/stage\/[^/]+)?(?:\/service\/[^/]+)?)\/resource\/([^/?]+)/.exec(req.url ?? '');
    if (req.method !== 'GET' || !m) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"not found"}');
    const path = m[1]!.split('/').map(decodeURIComponent).join('/');
    const uri = decodeURIComponent(m[2]!);
    const content = files.get(`${path}/resource/${uri}`);
    if (content === undefined) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"code":404,"message":"Could not find resource"}');
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ resourceURI: uri, resourceContent: Buffer.from(content).toString('base64'), metadata: { version: 'test' } }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(port), hostname, resolve);
  });
  return {
    url: listenUrl,
    put: (scope, uri, content) => void files.set(keyOf(scope, uri), content),
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
