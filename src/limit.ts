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
