// The Keptn family of real peers: NATS (Debian's nats-server) and Keptn 1.4.5's distributor sidecar (built from
// github.com/keptn/keptn/distributor by `test/env/peers/build.sh keptn`), plus a NATS client with which a test plays
// Keptn's control plane (shipyard-controller): publish `.triggered` events, wait for `.started` / `.finished`.
//
// What the distributor does (read from its source at the pinned commit, and measured):
// - NATS -> service: core-NATS QueueSubscribe on each PUBSUB_TOPIC; every message is re-encoded (only the Keptn
//   extensions shkeptncontext, triggeredid, gitcommitid, shkeptnspecversion survive; empty ones are sent as "") and
//   POSTed as a structured CloudEvent (content-type application/cloudevents+json) to
//   PUBSUB_RECIPIENT:PUBSUB_RECIPIENT_PORT/PUBSUB_RECIPIENT_PATH. One event at a time (a mutex): non-2xx answers are
//   retried 3 times (about 9 s in all, blocking every other event); a refused connection or a 5 s timeout drops the
//   event silently after one attempt. So the service must be listening before anything is published.
// - service -> NATS: POST http://localhost:API_PROXY_PORT/event with a structured CloudEvent JSON body; published
//   unchanged on subject = type. 200 (empty body) even if the event is invalid (missing id/source: logged, dropped);
//   500 for non-JSON, binary-mode or specversion-less bodies and bodies over 64 KiB.
// - API proxy on the same port: /resource-service/*, /controlPlane/*, /mongodb-datastore/* go to the FIXED in-cluster
//   addresses http://resource-service:8080, http://shipyard-controller:8080, http://mongodb-datastore:8080 (no env
//   var changes them while KEPTN_API_ENDPOINT is empty). Resolving those names here would ask the machine's DNS
//   server, which is off-limits, so the distributor runs in its own mount namespace (`unshare -m`, root only) with an
//   /etc/hosts that maps the three names to one loopback address: `resourceServiceUrl` (http://127.x.y.z:8080, see
//   resourceServiceLoopbackUrl()) or, without it, an address where nothing listens (proxy calls then answer 500).
// - GET /health on the API proxy port is the distributor's own (always 200); the service's /health is not proxied.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { access, constants, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connect, StringCodec, type NatsConnection, type Subscription } from 'nats';
import { buildPeers, freePort, spawnPeer, waitUntil, type PeerProcess } from './process.js';

const execFileAsync = promisify(execFile);

// ---------------------------------------------------------------------------------------------------------------
// NATS

export interface Nats {
  /** nats://127.0.0.1:<port> */
  url: string;
  /** http://127.0.0.1:<port> of the monitoring endpoint (/healthz, /subsz, /connz) */
  monitorUrl: string;
  stop(): Promise<void>;
  peer: PeerProcess;
}

const monitorUrls = new Map<string, string>();

async function natsServerBinary(): Promise<string> {
  if (process.env.NATS_SERVER) return process.env.NATS_SERVER;
  for (const candidate of ['/usr/sbin/nats-server', '/usr/bin/nats-server']) {
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // try the next one
    }
  }
  return 'nats-server'; // from PATH; spawnPeer reports a missing binary
}

async function twoFreePorts(): Promise<[number, number]> {
  const a = await freePort();
  for (;;) {
    const b = await freePort();
    if (b !== a) return [a, b];
  }
}

/** Starts Debian's nats-server (core NATS, no JetStream) on 127.0.0.1 with monitoring enabled. */
export async function startNats(opts: { workDir: string; logDir: string }): Promise<Nats> {
  await mkdir(opts.workDir, { recursive: true });
  const [port, monitorPort] = await twoFreePorts();
  const url = `nats://127.0.0.1:${port}`;
  const monitorUrl = `http://127.0.0.1:${monitorPort}`;
  const peer = await spawnPeer({
    name: 'nats-server',
    command: await natsServerBinary(),
    // -a also binds the monitoring port to 127.0.0.1.
    args: ['-a', '127.0.0.1', '-p', String(port), '-m', String(monitorPort), '-P', join(opts.workDir, 'nats-server.pid')],
    logDir: opts.logDir,
  });
  try {
    await waitUntil('nats-server /healthz', async () => (await fetch(`${monitorUrl}/healthz`)).ok, { timeoutMs: 15_000, peer });
  } catch (err) {
    await peer.stop();
    throw err;
  }
  monitorUrls.set(url, monitorUrl);
  return {
    url,
    monitorUrl,
    peer,
    async stop() {
      monitorUrls.delete(url);
      await peer.stop();
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Distributor

export interface Distributor {
  /** http://127.0.0.1:<apiProxyPort>/event: where the service POSTs its structured CloudEvents */
  eventUrl: string;
  /** http://127.0.0.1:<apiProxyPort>: the API proxy (/resource-service/..., /controlPlane/..., /health) */
  apiUrl: string;
  apiProxyPort: number;
  stop(): Promise<void>;
  peer: PeerProcess;
}

export interface DistributorOptions {
  natsUrl: string;
  /** the service's port on 127.0.0.1 (PUBSUB_RECIPIENT_PORT) */
  recipientPort: number;
  /** PUBSUB_TOPIC: NATS subjects, wildcards allowed, e.g. sh.keptn.event.deployment.triggered */
  topics: string[];
  logDir: string;
  /** directory holding the distributor binary; default: `build.sh keptn`'s cache dir + /bin */
  binDir?: string;
  /**
   * Where the API proxy's /resource-service/* goes. It must be http://127.x.y.z:8080 (the distributor always
   * dials port 8080 of the in-cluster name): get one from resourceServiceLoopbackUrl() and let the fake
   * resource-service listen there. /controlPlane/* and /mongodb-datastore/* go to the same address.
   */
  resourceServiceUrl?: string;
  /** PUBSUB_RECIPIENT_PATH (default: none, i.e. POST /) */
  recipientPath?: string;
  /** the NATS monitoring URL, to wait until the subscriptions exist; known already if NATS came from startNats */
  natsMonitorUrl?: string;
  /** log file name (default "distributor") */
  name?: string;
  /** the API proxy's port (where `/event` is); default: a free one. A restarted distributor can keep its port. */
  apiProxyPort?: number;
  /** extra environment (PUBSUB_GROUP, PROJECT_FILTER, ...); wins over the defaults set here */
  env?: Record<string, string>;
}

/** The names the distributor's API proxy dials, with port 8080, when KEPTN_API_ENDPOINT is empty. */
export const IN_CLUSTER_HOSTS = ['resource-service', 'shipyard-controller', 'mongodb-datastore'] as const;
/** A loopback address where nothing listens: in-cluster names point here unless a resourceServiceUrl is given. */
const NOWHERE = '127.255.255.254';

let mountNamespaceSupport: Promise<boolean> | undefined;

/** Whether `unshare -m` with a bind mount works here (needs root, util-linux and mount namespaces). */
export function canIsolateHosts(): Promise<boolean> {
  mountNamespaceSupport ??= (async () => {
    if (process.getuid?.() !== 0) return false;
    try {
      await execFileAsync('unshare', ['-m', 'sh', '-c', 'mount --bind /etc/hosts /etc/hosts'], { timeout: 10_000 });
      return true;
    } catch {
      return false;
    }
  })();
  return mountNamespaceSupport;
}

function isLoopbackIPv4(host: string): boolean {
  const parts = host.split('.');
  return parts.length === 4 && parts[0] === '127' && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
}

function inClusterAddress(resourceServiceUrl: string | undefined): string {
  if (resourceServiceUrl === undefined) return NOWHERE;
  const u = new URL(resourceServiceUrl);
  if (u.protocol !== 'http:' || u.port !== '8080' || !isLoopbackIPv4(u.hostname) || (u.pathname !== '/' && u.pathname !== '')) {
    throw new Error(
      `resourceServiceUrl must look like http://127.x.y.z:8080 (got ${resourceServiceUrl}): the distributor always ` +
        `dials http://resource-service:8080; we can only choose which loopback address that name resolves to`,
    );
  }
  return u.hostname;
}

/**
 * A URL http://127.1.x.y:8080 on which nothing listens yet: let a fake resource-service listen there and pass the
 * URL as startDistributor's resourceServiceUrl.
 */
export async function resourceServiceLoopbackUrl(): Promise<string> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const host = `127.1.${Math.floor(Math.random() * 256)}.${1 + Math.floor(Math.random() * 254)}`;
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(8080, host, () => server.close(() => resolve(true)));
    });
    if (free) return `http://${host}:8080`;
  }
  throw new Error('no loopback address with a free port 8080 found');
}

/** Starts the Keptn distributor in NATS mode with registration disabled, and waits until it has subscribed. */
export async function startDistributor(opts: DistributorOptions): Promise<Distributor> {
  const binDir = opts.binDir ?? join(await buildPeers('keptn'), 'bin');
  const binary = join(binDir, 'distributor');
  const address = inClusterAddress(opts.resourceServiceUrl);
  const apiProxyPort = opts.apiProxyPort ?? (await freePort());
  const env: Record<string, string> = {
    PUBSUB_URL: opts.natsUrl,
    PUBSUB_TOPIC: opts.topics.join(','),
    PUBSUB_RECIPIENT: 'http://127.0.0.1',
    PUBSUB_RECIPIENT_PORT: String(opts.recipientPort),
    PUBSUB_RECIPIENT_PATH: opts.recipientPath ?? '',
    API_PROXY_PORT: String(apiProxyPort),
    // Empty = in-cluster NATS mode (else it would poll a Keptn API over HTTP instead of subscribing to NATS).
    KEPTN_API_ENDPOINT: '',
    // Registration would POST to http://shipyard-controller:8080 and let control-plane subscriptions replace
    // PUBSUB_TOPIC; it only happens with K8S_NAMESPACE and K8S_DEPLOYMENT_NAME set, and never with this flag.
    DISABLE_REGISTRATION: 'true',
    ...opts.env,
  };

  const name = opts.name ?? 'distributor';
  let tmp: string | undefined;
  let command = binary;
  let args: string[] = [];
  if (await canIsolateHosts()) {
    tmp = await mkdtemp(join(tmpdir(), 'keptn-distributor-'));
    const hostsFile = join(tmp, 'hosts');
    const original = await readFile('/etc/hosts', 'utf8').catch(() => '127.0.0.1 localhost\n');
    await writeFile(hostsFile, `${original.trimEnd()}\n${address} ${IN_CLUSTER_HOSTS.join(' ')}\n`);
    // `unshare -m` makes a private mount namespace and execs: the peer's pid is the distributor's own.
    command = 'unshare';
    args = ['-m', 'sh', '-c', 'mount --bind "$1" /etc/hosts && exec "$2"', 'sh', hostsFile, binary];
  } else if (opts.resourceServiceUrl !== undefined) {
    throw new Error('resourceServiceUrl needs `unshare -m` (root) to map resource-service to a loopback address');
  }

  const peer = await spawnPeer({ name, command, args, env, logDir: opts.logDir });
  const apiUrl = `http://127.0.0.1:${apiProxyPort}`;
  const monitorUrl = opts.natsMonitorUrl ?? monitorUrls.get(opts.natsUrl);
  const stop = async () => {
    await peer.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  };
  try {
    await waitUntil('distributor /health', async () => (await fetch(`${apiUrl}/health`)).status === 200, {
      timeoutMs: 20_000,
      peer,
    });
    // /health answers before the NATS subscriptions exist: wait for them too.
    await waitUntil(
      `distributor subscriptions ${opts.topics.join(',')}`,
      async () => {
        const log = await readFile(peer.logFile, 'utf8');
        if (!opts.topics.every((t) => log.includes(`Subscribing to topic '${t}'`))) return false;
        if (!monitorUrl) return true;
        const subsz = (await (await fetch(`${monitorUrl}/subsz?subs=1&limit=100000`)).json()) as {
          subscriptions_list?: { subject: string }[];
        };
        const subjects = new Set((subsz.subscriptions_list ?? []).map((s) => s.subject));
        return opts.topics.every((t) => subjects.has(t));
      },
      { timeoutMs: 20_000, peer },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { eventUrl: `${apiUrl}/event`, apiUrl, apiProxyPort, peer, stop };
}

// ---------------------------------------------------------------------------------------------------------------
// The control plane's side of NATS

/** A CloudEvent in structured JSON form, with Keptn's extensions. */
export interface KeptnCloudEvent {
  specversion: string;
  id: string;
  source: string;
  type: string;
  time?: string;
  datacontenttype?: string;
  shkeptncontext?: string;
  triggeredid?: string;
  gitcommitid?: string;
  shkeptnspecversion?: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  data?: any;
  [extension: string]: unknown;
}

export type EventMatcher = (event: KeptnCloudEvent) => boolean;

/** Matches `sh.keptn.event.<task>.<kind>` events (any task if task is omitted) answering the given `.triggered` id. */
export function answerTo(triggeredId: string, kind: 'started' | 'status.changed' | 'finished', task?: string): EventMatcher {
  return (e) =>
    e.triggeredid === triggeredId &&
    (task ? e.type === `sh.keptn.event.${task}.${kind}` : e.type.startsWith('sh.keptn.event.') && e.type.endsWith(`.${kind}`));
}

/**
 * A new Keptn event as the control plane would send it: fresh id, time now, specversion 1.0, shkeptnspecversion
 * 0.2.4, a new shkeptncontext unless one is given.
 */
export function keptnEvent(
  type: string,
  data: Record<string, unknown>,
  extra: Partial<Omit<KeptnCloudEvent, 'type' | 'data'>> = {},
): KeptnCloudEvent {
  return {
    specversion: '1.0',
    id: randomUUID(),
    source: 'shipyard-controller',
    type,
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    shkeptncontext: randomUUID(),
    shkeptnspecversion: '0.2.4',
    ...extra,
    data,
  };
}

export interface EventStream extends AsyncIterable<KeptnCloudEvent> {
  readonly subject: string;
  /** Every event received on this subscription so far, in arrival order. */
  readonly received: readonly KeptnCloudEvent[];
  /** Payloads that were not JSON. */
  readonly invalid: readonly { subject: string; payload: string }[];
  /**
   * The first event received on this subscription (already, or later) that matches; rejects after timeoutMs
   * (default 60 s) with the list of what did arrive.
   */
  waitFor(match: EventMatcher, opts?: { timeoutMs?: number; what?: string }): Promise<KeptnCloudEvent>;
  /** Stops the subscription; pending waitFor calls reject, iterators end. */
  close(): void;
}

export interface ControlPlane {
  /** Publishes the event as structured CloudEvent JSON on subject = event.type, and flushes. */
  publish(event: object): Promise<void>;
  /**
   * Subscribes at once (events start buffering now; a later publish on this connection is ordered after the
   * subscription). Pattern as in NATS: `sh.keptn.event.deployment.*`, `sh.keptn.>`.
   */
  subscribe(subjectPattern: string): EventStream;
  close(): Promise<void>;
}

function summarize(events: readonly KeptnCloudEvent[]): string {
  if (events.length === 0) return 'nothing';
  return events
    .map((e) => `${e.type} id=${e.id} triggeredid=${e.triggeredid ?? ''} status=${e.data?.status ?? ''} result=${e.data?.result ?? ''}`)
    .join('\n  ');
}

function eventStream(nc: NatsConnection, subject: string): EventStream {
  const sc = StringCodec();
  const sub: Subscription = nc.subscribe(subject);
  const received: KeptnCloudEvent[] = [];
  const invalid: { subject: string; payload: string }[] = [];
  const waiters = new Set<{
    match: EventMatcher;
    resolve: (e: KeptnCloudEvent) => void;
    reject: (e: Error) => void;
    timer: NodeJS.Timeout;
  }>();
  const wakeups = new Set<() => void>();
  let closed = false;

  const finish = () => {
    closed = true;
    for (const w of waiters) {
      clearTimeout(w.timer);
      w.reject(new Error(`subscription ${subject} closed; received:\n  ${summarize(received)}`));
    }
    waiters.clear();
    for (const wake of wakeups) wake();
    wakeups.clear();
  };

  void (async () => {
    try {
      for await (const m of sub) {
        const payload = sc.decode(m.data);
        let event: KeptnCloudEvent;
        try {
          event = JSON.parse(payload) as KeptnCloudEvent;
        } catch {
          invalid.push({ subject: m.subject, payload });
          continue;
        }
        received.push(event);
        for (const w of [...waiters]) {
          if (w.match(event)) {
            waiters.delete(w);
            clearTimeout(w.timer);
            w.resolve(event);
          }
        }
        for (const wake of wakeups) wake();
        wakeups.clear();
      }
    } finally {
      finish();
    }
  })();

  return {
    subject,
    received,
    invalid,
    waitFor(match, opts = {}) {
      const found = received.find(match);
      if (found) return Promise.resolve(found);
      if (closed) return Promise.reject(new Error(`subscription ${subject} is closed`));
      const timeoutMs = opts.timeoutMs ?? 60_000;
      return new Promise<KeptnCloudEvent>((resolve, reject) => {
        const waiter = {
          match,
          resolve,
          reject,
          timer: setTimeout(() => {
            waiters.delete(waiter);
            reject(
              new Error(
                `timed out after ${timeoutMs} ms waiting for ${opts.what ?? 'a matching event'} on ${subject}; received:\n  ${summarize(received)}`,
              ),
            );
          }, timeoutMs),
        };
        waiters.add(waiter);
      });
    },
    close() {
      if (!closed) sub.unsubscribe();
      finish();
    },
    [Symbol.asyncIterator](): AsyncIterator<KeptnCloudEvent> {
      let i = 0;
      return {
        async next() {
          while (i >= received.length) {
            if (closed) return { done: true, value: undefined };
            await new Promise<void>((resolve) => wakeups.add(resolve));
          }
          return { done: false, value: received[i++]! };
        },
        async return() {
          return { done: true, value: undefined };
        },
      };
    },
  };
}

/** Connects to NATS as Keptn's control plane would be connected. */
export async function connectControlPlane(natsUrl: string): Promise<ControlPlane> {
  const nc = await connect({ servers: natsUrl, name: 'test-control-plane' });
  const sc = StringCodec();
  const streams = new Set<EventStream>();
  return {
    async publish(event: object) {
      const type = (event as { type?: unknown }).type;
      if (typeof type !== 'string' || type === '') throw new Error('publish: the event has no type');
      nc.publish(type, sc.encode(JSON.stringify(event)));
      await nc.flush();
    },
    subscribe(subjectPattern: string) {
      const stream = eventStream(nc, subjectPattern);
      streams.add(stream);
      return stream;
    },
    async close() {
      for (const s of streams) s.close();
      streams.clear();
      if (!nc.isClosed()) await nc.close();
    },
  };
}

export interface TaskRun {
  triggered: KeptnCloudEvent;
  started: KeptnCloudEvent;
  finished: KeptnCloudEvent;
}

/**
 * Plays shipyard-controller for one task of a sequence: publishes `<task>.triggered` (pinned to the configuration
 * version, as Keptn pins a sequence's) and waits for the service's `.started` and `.finished`.
 */
export async function runTask(
  keptn: { controlPlane: ControlPlane; events: EventStream; configVersion: string | undefined },
  task: string,
  data: Record<string, unknown>,
  opts: { shkeptncontext?: string; timeoutMs?: number } = {},
): Promise<TaskRun> {
  const triggered = keptnEvent(`sh.keptn.event.${task}.triggered`, data, {
    ...(keptn.configVersion ? { gitcommitid: keptn.configVersion } : {}),
    ...(opts.shkeptncontext ? { shkeptncontext: opts.shkeptncontext } : {}),
  });
  await keptn.controlPlane.publish(triggered);
  const started = await keptn.events.waitFor(answerTo(triggered.id, 'started', task), { timeoutMs: 10_000, what: `${task}.started` });
  const finished = await keptn.events.waitFor(answerTo(triggered.id, 'finished', task), {
    timeoutMs: opts.timeoutMs ?? 180_000,
    what: `${task}.finished`,
  });
  return { triggered, started, finished };
}

/**
 * shipyard-controller's merge of task data (keptn/keptn 1.4.5 shipyard-controller/internal/common/utils.go Merge):
 * maps merge key by key, a later scalar wins, a later list goes first.
 */
function merge(a: unknown, b: unknown): unknown {
  if (Array.isArray(a)) return Array.isArray(b) ? [...b, ...a] : (b ?? a);
  if (a && typeof a === 'object' && b && typeof b === 'object' && !Array.isArray(b)) {
    const out: Record<string, unknown> = { ...(a as Record<string, unknown>) };
    for (const [k, v] of Object.entries(b)) out[k] = out[k] === undefined || out[k] === null ? v : merge(out[k], v);
    return out;
  }
  return b ?? a;
}

/**
 * The next task's `.triggered` data as shipyard-controller builds it (models/sequence_execution.go
 * GetNextTriggeredEventData): the sequence's input, then every earlier task's `.finished` data, the last task's
 * result and status, the task's shipyard properties, and no message.
 */
export function nextTriggeredData(input: Record<string, unknown>, finished: KeptnCloudEvent[], task: string, properties = {}) {
  let data = merge({}, input) as Record<string, unknown>;
  for (const f of finished) data = merge(data, f.data) as Record<string, unknown>;
  const last = finished.at(-1)?.data as { result?: string; status?: string } | undefined;
  return { ...data, result: last?.result, status: last?.status, [task]: merge(data[task], properties), message: '' };
}

/** The data of a task that follows the deployment and a quality gate with `result` (nobody here answers evaluation). */
export function afterEvaluation(input: Record<string, unknown>, deployment: TaskRun, result: 'pass' | 'fail', task: string) {
  const evaluation = keptnEvent('sh.keptn.event.evaluation.finished', {
    ...input,
    status: 'succeeded',
    result,
    evaluation: { score: result === 'pass' ? 100 : 0, result },
  });
  return nextTriggeredData(input, [deployment.finished, evaluation], task);
}

/** The types of what the service sent in answer to one `.triggered`, sorted: the contract is one `.started`, one `.finished`. */
export function answersTo(events: EventStream, run: TaskRun): string[] {
  return events.received
    .filter((e) => e.triggeredid === run.triggered.id)
    .map((e) => e.type)
    .sort();
}
