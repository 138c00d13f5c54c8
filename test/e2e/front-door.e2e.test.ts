// The front door of the real service process, as the chart runs it: events are taken only from the distributor in the
// same pod (loopback), and the probes answer on their own port on every interface. "Outside the pod" is played two
// ways, whichever this machine allows (at least one must): a client in another network namespace joined by a veth
// pair (as another pod on the node; needs root and `ip`), and this machine's own non-loopback address as source and
// destination.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api } from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import { networkInterfaces } from 'node:os';
import { promisify } from 'node:util';
import { recordName } from '../../src/platform/state/configmaps.js';
import { startEnvironment, startServiceProcess, stateNamespace, type Environment, type ServiceReplica } from '../env/environment.js';
import { answerTo, keptnEvent, type EventStream, type KeptnCloudEvent } from '../env/keptn.js';

const execFileAsync = promisify(execFile);

/** What an HTTP attempt came to: a status, or the error code of a connection that did not happen. */
type Answer = { status: number; body: string } | { error: string };

interface Attempt {
  host: string;
  port: number;
  method: 'GET' | 'POST';
  path: string;
  body?: string;
  /** Source address of the connection. */
  localAddress?: string;
}

// The same client code runs here and, as `node -e`, inside the other network namespace: so it takes its module from
// the process, not from an import.
const CLIENT = `(${String(attemptHere)})(JSON.parse(process.argv[1])).then((a) => process.stdout.write(JSON.stringify(a)))`;

function attemptHere(a: Attempt): Promise<Answer> {
  const { request } = process.getBuiltinModule('node:http');
  return new Promise((resolve) => {
    const req = request(
      {
        host: a.host,
        port: a.port,
        method: a.method,
        path: a.path,
        timeout: 5_000,
        headers: { 'content-type': 'application/cloudevents+json' },
        ...(a.localAddress ? { localAddress: a.localAddress } : {}),
      },
      (res) => {
        let body = '';
        res.on('data', (c) => (body += String(c)));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    req.end(a.body);
  });
}

interface Outsider {
  name: string;
  /** The address of this machine that the outsider reaches it on. */
  address: string;
  attempt(a: Omit<Attempt, 'host'> & { host?: string }): Promise<Answer>;
  close(): Promise<void>;
}

/** This machine's first non-internal IPv4 address, used as destination and, towards 127.0.0.1, as source. */
function machineAddressOutsider(): Outsider | undefined {
  const address = Object.values(networkInterfaces())
    .flat()
    .find((i) => i && !i.internal && i.family === 'IPv4')?.address;
  if (!address) return undefined;
  return {
    name: `this machine's address ${address}`,
    address,
    attempt: (a) => attemptHere({ host: address, localAddress: address, ...a }),
    close: async () => {},
  };
}

/** A client in a network namespace of its own, joined to this one by a veth pair: another pod, as far as we can tell. */
async function namespaceOutsider(): Promise<Outsider | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const n = process.pid % 10_000;
  const ns = `kgs-fd-${process.pid}`;
  const [host, peer] = [`kgsfd${n}h`, `kgsfd${n}n`];
  const [hostIp, peerIp] = [`10.250.${n % 250}.1`, `10.250.${n % 250}.2`];
  const ip = (...args: string[]) => execFileAsync('ip', args, { timeout: 10_000 });
  try {
    await ip('netns', 'add', ns);
  } catch {
    return undefined; // no `ip` or no network namespaces here
  }
  const close = async () => {
    await ip('netns', 'del', ns).catch(() => undefined); // takes the veth pair with it
  };
  try {
    await ip('link', 'add', host, 'type', 'veth', 'peer', 'name', peer);
    await ip('link', 'set', peer, 'netns', ns);
    await ip('addr', 'add', `${hostIp}/30`, 'dev', host);
    await ip('link', 'set', host, 'up');
    await ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${peerIp}/30`, 'dev', peer);
    await ip('netns', 'exec', ns, 'ip', 'link', 'set', peer, 'up');
  } catch (err: unknown) {
    await close();
    throw err;
  }
  return {
    name: `a client in network namespace ${ns} (${peerIp})`,
    address: hostIp,
    async attempt(a) {
      const { stdout } = await execFileAsync(
        'ip',
        ['netns', 'exec', ns, process.execPath, '-e', CLIENT, JSON.stringify({ host: hostIp, ...a })],
        { timeout: 20_000 },
      );
      return JSON.parse(stdout) as Answer;
    },
    close,
  };
}

let env: Environment;
let replica: ServiceReplica;
let events: EventStream;
const outsiders: Outsider[] = [];

beforeAll(async () => {
  for (const o of [await namespaceOutsider(), machineAddressOutsider()]) if (o) outsiders.push(o);
  env = await startEnvironment({ service: false });
  events = env.controlPlane.subscribe('sh.keptn.event.deployment.>');
  replica = await startServiceProcess(env, { replicaId: 'front-door' });
}, 300_000);

afterAll(async () => {
  events?.close();
  await replica?.stop();
  await env?.stop();
  for (const o of outsiders) await o.close();
}, 60_000);

const triggered = (service: string): KeptnCloudEvent =>
  keptnEvent('sh.keptn.event.deployment.triggered', {
    project: 'podtato',
    stage: 'dev',
    service,
    configurationChange: { values: { image: 'ghcr.io/podtato/head:0.2.0' } },
  });

async function recorded(id: string): Promise<boolean> {
  try {
    await env.cluster.kc.makeApiClient(CoreV1Api).readNamespacedConfigMap({ namespace: stateNamespace(env), name: recordName(id) });
    return true;
  } catch (err: unknown) {
    if ((err as { code?: number }).code === 404) return false;
    throw err;
  }
}

describe('the front door', () => {
  it('can be tried from outside the pod on this machine', () => {
    // Without either outsider the tests below would prove nothing.
    expect(outsiders.map((o) => o.name)).not.toEqual([]);
  });

  it('refuses events from outside the pod, and answers the probes there', async () => {
    const refused: KeptnCloudEvent[] = [];
    for (const outsider of outsiders) {
      const event = triggered(`outside-${refused.length}`);
      refused.push(event);
      // The event port is bound to loopback: nothing listens on the address the outsider can reach.
      expect({
        who: outsider.name,
        answer: await outsider.attempt({ port: replica.port, method: 'POST', path: '/', body: JSON.stringify(event) }),
      }).toEqual({ who: outsider.name, answer: { error: 'ECONNREFUSED' } });
      const health = await outsider.attempt({ port: replica.healthPort, method: 'GET', path: '/health' });
      expect({ who: outsider.name, health }).toEqual({ who: outsider.name, health: { status: 200, body: '{"status":"ok"}' } });
      const ready = await outsider.attempt({ port: replica.healthPort, method: 'GET', path: '/ready' });
      expect({ who: outsider.name, ready: 'status' in ready ? ready.status : ready }).toEqual({ who: outsider.name, ready: 200 });
      // The probe port takes no events.
      const onProbePort = await outsider.attempt({ port: replica.healthPort, method: 'POST', path: '/', body: JSON.stringify(event) });
      expect({ who: outsider.name, status: 'status' in onProbePort ? onProbePort.status : onProbePort }).toEqual({
        who: outsider.name,
        status: 404,
      });
    }
    // A connection that does reach the loopback listener from a non-loopback source is refused by the service itself.
    const machine = outsiders.find((o) => !o.name.includes('namespace'));
    if (machine) {
      const event = triggered('outside-source');
      refused.push(event);
      const answer = await machine.attempt({
        host: '127.0.0.1',
        port: replica.port,
        method: 'POST',
        path: '/',
        body: JSON.stringify(event),
      });
      expect(answer).toMatchObject({ status: 403, body: expect.stringContaining('only from the distributor in the same pod') });
    }

    // Events from the distributor in the same pod still arrive: this one ends errored (no settings for it).
    const inside = triggered('front-door-inside');
    await env.controlPlane.publish(inside);
    const finished = await events.waitFor(answerTo(inside.id, 'finished'), {
      timeoutMs: 60_000,
      what: '.finished of the event from inside',
    });
    expect(finished.data).toMatchObject({ status: 'errored', result: 'fail' });
    expect(await recorded(inside.id)).toBe(true);

    for (const event of refused) {
      expect(events.received.filter((e) => e.triggeredid === event.id)).toEqual([]);
      expect(await recorded(event.id)).toBe(false);
    }
  }, 120_000);
});
