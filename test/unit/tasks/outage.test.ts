import { describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { ServiceError } from '../../../src/shared/errors.js';
import { gitHostName, rideOut, type Outage } from '../../../src/tasks/outage.js';

/** A logger whose lines the test reads, a clock that moves only when the backoff waits, and the hooks' calls. */
function harness() {
  const lines: Array<{ msg: string; party?: string }> = [];
  const log = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()) as { msg: string });
        done();
      },
    }),
  );
  let clock = 0;
  const gauge: number[] = [];
  const asides: number[] = [];
  return {
    lines,
    gauge,
    asides,
    now: () => clock,
    hooks: {
      log,
      now: () => clock,
      sleep: async (ms: number) => void (clock += ms),
      metrics: { outageWaiting: (_party: string, delta: 1 | -1) => void gauge.push(delta) },
      aside: async <T>(wait: () => Promise<T>) => {
        asides.push(clock);
        return wait();
      },
    },
  };
}

const outage: Outage = { party: 'git', name: 'Git host git.example.com', deadline: 60_000 };
const down = (message: string) => new ServiceError('GIT_FETCH_FAILED', message, { retryable: true });

describe('riding out an outage (issue 23)', () => {
  it('waits out a transient failure without the start turn, says so, and goes on once the party is back', async () => {
    const h = harness();
    let calls = 0;
    const value = await rideOut(
      outage,
      async () => {
        if (++calls < 4) throw down('cannot fetch branch main of https://git.example.com/r.git: The requested URL returned error: 503');
        return 'pushed';
      },
      h.hooks,
    );
    expect(value).toBe('pushed');
    expect(h.asides).toHaveLength(3);
    expect(h.gauge).toEqual([1, -1]);
    expect(h.lines.map((l) => l.msg)).toEqual(
      Array(3).fill(
        'waiting for Git host git.example.com: cannot fetch branch main of https://git.example.com/r.git: The requested URL returned error: 503',
      ),
    );
  });

  it('ends at once on a permanent failure, with its own message', async () => {
    const h = harness();
    const refused = new ServiceError(
      'GIT_FETCH_FAILED',
      "cannot fetch branch main of https://git.example.com/r.git: fatal: Authentication failed for 'https://git.example.com/r.git/'",
    );
    await expect(rideOut(outage, async () => Promise.reject(refused), h.hooks)).rejects.toBe(refused);
    expect(h.now()).toBe(0);
    expect(h.gauge).toEqual([]);
    expect(h.lines).toEqual([]);
  });

  it('a permanent failure after a transient one ends it too (a wrong password noticed once the host is back)', async () => {
    const h = harness();
    let calls = 0;
    const refused = new ServiceError('GIT_FETCH_FAILED', 'Authentication failed');
    await expect(rideOut(outage, async () => Promise.reject(++calls === 1 ? down('Connection refused') : refused), h.hooks)).rejects.toBe(
      refused,
    );
    expect(h.gauge).toEqual([1, -1]);
  });

  it('at the deadline, names the outage, how long it lasted and what the party last said', async () => {
    const h = harness();
    let calls = 0;
    const err = await rideOut(
      { ...outage, deadline: 45_000 },
      async () => {
        calls++;
        throw down(`cannot push to main of https://git.example.com/r.git: try ${calls}: Connection refused`);
      },
      h.hooks,
    ).catch((e: unknown) => e);
    expect(h.now()).toBe(45_000);
    expect(err).toMatchObject({ code: 'GIT_FETCH_FAILED', retryable: false });
    expect((err as Error).message).toBe(
      `Git host git.example.com was unavailable for 45 s, until the deployment's deadline: cannot push to main of https://git.example.com/r.git: try ${calls}: Connection refused`,
    );
    expect(h.gauge).toEqual([1, -1]);
  });

  it('a deployment resumed past its deadline tries once and says the party was away at the deadline', async () => {
    const h = harness();
    const err = await rideOut({ ...outage, deadline: -1 }, async () => Promise.reject(down('Connection refused')), h.hooks).catch(
      (e: unknown) => e,
    );
    expect((err as Error).message).toBe("Git host git.example.com was unavailable at the deployment's deadline: Connection refused");
  });

  it.each([
    ['https://git.example.com/team/r.git', 'Git host git.example.com'],
    ['https://user:secret@git.example.com:8443/r.git', 'Git host git.example.com:8443'],
    ['git@github.com:team/r.git', 'Git host github.com'],
    ['http://127.0.0.1:43035/fault-3.git', 'Git host 127.0.0.1:43035'],
  ])('names the Git host of %s without credentials', (url, name) => expect(gitHostName(url)).toBe(name));
});
