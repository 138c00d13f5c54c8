/**
 * At most `size` pieces of work at once, the rest waiting in arrival order. The service uses it to keep its own
 * background requests from crowding the API server out of the requests a caller is waiting for (see ConfigMapStore).
 */
export class Limiter {
  private active = 0;
  private readonly queue: Array<() => void> = [];

  constructor(private readonly size: number) {
    if (!(size >= 1)) throw new RangeError(`a limiter needs room for at least one piece of work, got ${size}`);
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.active < this.size) this.active++;
    else await new Promise<void>((resolve) => this.queue.push(resolve));
    try {
      return await work();
    } finally {
      // The slot passes straight to the next in line, or is freed.
      const next = this.queue.shift();
      if (next) next();
      else this.active--;
    }
  }

  /** Work running now and waiting, for metrics and tests. */
  get load(): { active: number; waiting: number } {
    return { active: this.active, waiting: this.queue.length };
  }
}

/** A turn of FairSlots: ended once (later calls do nothing), or set aside for a wait and taken again after it. */
export interface Turn {
  end(): void;
  aside<T>(wait: () => Promise<T>): Promise<T>;
}

/** For work that holds no turn: ending does nothing and a wait is just the wait. */
export const NO_TURN: Turn = { end: () => undefined, aside: (wait) => wait() };

/**
 * At most `size` turns at once, shared between keys (the runner's Keptn projects) so that no key can keep the others
 * waiting (issue 19, item 4): one key holds at most `size - reserve` turns, leaving `reserve` for the others, and a
 * freed turn goes to the waiting key holding the fewest, first come first served among equals. A project whose Git
 * host never answers then fills its own share, not the whole service.
 */
export class FairSlots {
  private active = 0;
  private readonly held = new Map<string, number>();
  /** Waiters per key in arrival order; the map's order is the order the keys began waiting. */
  private readonly queues = new Map<string, Array<() => void>>();
  readonly perKey: number;

  constructor(
    private readonly size: number,
    reserve = Math.floor(size / 4),
  ) {
    if (!(size >= 1)) throw new RangeError(`slots need room for at least one turn, got ${size}`);
    this.perKey = Math.max(1, size - reserve);
  }

  /** Waits for a turn for `key`; the function it gives ends the turn (once). */
  async acquire(key: string): Promise<() => void> {
    if (this.active < this.size && (this.held.get(key) ?? 0) < this.perKey && !this.queues.has(key)) this.take(key);
    else {
      await new Promise<void>((resolve) => {
        const queue = this.queues.get(key) ?? [];
        queue.push(resolve);
        this.queues.set(key, queue);
      });
    }
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.active--;
      const left = (this.held.get(key) ?? 1) - 1;
      if (left) this.held.set(key, left);
      else this.held.delete(key);
      this.dispatch();
    };
  }

  /**
   * A turn for `key` that its holder can set aside while it waits for another party to come back (issue 23): the
   * turn is given up for the wait and taken again after it, so a deployment waiting out its Git host's outage keeps
   * no one else from starting.
   */
  async turn(key: string): Promise<Turn> {
    let release: (() => void) | undefined = await this.acquire(key);
    let ended = false;
    return {
      end: () => {
        ended = true;
        release?.();
        release = undefined;
      },
      aside: async <T>(wait: () => Promise<T>): Promise<T> => {
        const held = release;
        if (!held) return wait();
        release = undefined;
        held();
        try {
          return await wait();
        } finally {
          if (!ended) {
            const again = await this.acquire(key);
            // Ended while waiting for the turn again: nothing is left to do with it.
            if (ended) again();
            else release = again;
          }
        }
      },
    };
  }

  private take(key: string): void {
    this.active++;
    this.held.set(key, (this.held.get(key) ?? 0) + 1);
  }

  private dispatch(): void {
    while (this.active < this.size) {
      let next: string | undefined;
      for (const key of this.queues.keys()) {
        const held = this.held.get(key) ?? 0;
        if (held < this.perKey && (next === undefined || held < (this.held.get(next) ?? 0))) next = key;
      }
      if (next === undefined) return;
      const queue = this.queues.get(next)!;
      const resolve = queue.shift()!;
      // The key goes to the back of the line: the next freed turn looks at the others first.
      this.queues.delete(next);
      if (queue.length) this.queues.set(next, queue);
      this.take(next);
      resolve();
    }
  }

  /** Turns held and waiting, in all and for one key (metrics and tests). */
  load(key?: string): { active: number; waiting: number } {
    if (key !== undefined) return { active: this.held.get(key) ?? 0, waiting: this.queues.get(key)?.length ?? 0 };
    let waiting = 0;
    for (const q of this.queues.values()) waiting += q.length;
    return { active: this.active, waiting };
  }
}
