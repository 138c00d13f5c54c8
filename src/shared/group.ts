/**
 * Group write: items that arrive while earlier writes are in flight are written together, in ONE write, when a
 * write turn frees up. A lone item is written at once; under load the number of writes per second stays near
 * `inFlight` per write's round trip, however many items arrive, and each item waits for at most the write ahead of it
 * and its own. The same idea as the group commit of Git changes (ADR 11), for the deployment records (ADR 18).
 */
export interface GroupWriterOptions<T, R> {
  /** Writes one group; every item of it gets the result (or the error). */
  write(items: T[]): Promise<R>;
  /** The size an item adds to a group (bytes of its serialised form, say). */
  sizeOf(item: T): number;
  /** What one write may hold, in `sizeOf` units: a group is cut before it would pass this. */
  maxSize: number;
  /** Writes in flight at once (default 2). */
  inFlight?: number;
}

interface Waiting<T, R> {
  item: T;
  size: number;
  resolve(result: R): void;
  reject(err: unknown): void;
}

export class GroupWriter<T, R> {
  private readonly waiting: Array<Waiting<T, R>> = [];
  private active = 0;
  private readonly inFlight: number;

  constructor(private readonly opts: GroupWriterOptions<T, R>) {
    this.inFlight = opts.inFlight ?? 2;
    if (!(this.inFlight >= 1)) throw new RangeError(`a group writer needs at least one write in flight, got ${this.inFlight}`);
  }

  /**
   * Resolves when the group holding `item` is written, with that write's result. Throws `tooLarge(size)` at once for
   * an item that could never fit in one write.
   */
  add(item: T, tooLarge: (size: number) => Error): Promise<R> {
    const size = this.opts.sizeOf(item);
    if (size > this.opts.maxSize) return Promise.reject(tooLarge(size));
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ item, size, resolve, reject });
      this.pump();
    });
  }

  /** Groups waiting and writes in flight (tests and metrics). */
  get load(): { active: number; waiting: number } {
    return { active: this.active, waiting: this.waiting.length };
  }

  private pump(): void {
    while (this.active < this.inFlight && this.waiting.length) {
      const group: Array<Waiting<T, R>> = [];
      let size = 0;
      while (this.waiting.length && size + this.waiting[0]!.size <= this.opts.maxSize) {
        const next = this.waiting.shift()!;
        size += next.size;
        group.push(next);
      }
      this.active++;
      void this.opts
        .write(group.map((w) => w.item))
        .then(
          (result) => group.forEach((w) => w.resolve(result)),
          (err: unknown) => group.forEach((w) => w.reject(err)),
        )
        .finally(() => {
          this.active--;
          this.pump();
        });
    }
  }
}
