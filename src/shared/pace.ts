/**
 * Admission by the event loop's delay. Node serves an HTTP request only when the loop gets round to its socket, so
 * when the deployments already running keep the loop busy, every answer waits behind them (issue 22, item 1: at
 * 200 events/s `GET /health`, which does nothing, took seconds). New work waits here while the loop is late, and is
 * let in a few at a time while it keeps up: the answers to Keptn come first, and the deployments, recorded and
 * acknowledged already, start a moment later.
 *
 * The delay is measured as Node's own `monitorEventLoopDelay` does it, by how late a periodic timer fires.
 */
export interface PaceOptions {
  /** How often the loop's delay is sampled (ms). */
  intervalMs?: number;
  /** A loop this late (ms) lets no new work in. */
  lateMs?: number;
  /** How many waiting starts are let in per sample while the loop keeps up. */
  perSample?: number;
}

export class LoopPace {
  private readonly intervalMs: number;
  private readonly lateMs: number;
  private readonly perSample: number;
  private delayMs = 0;
  private readonly waiting: Array<() => void> = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(opts: PaceOptions = {}) {
    this.intervalMs = opts.intervalMs ?? 10;
    this.lateMs = opts.lateMs ?? 20;
    this.perSample = opts.perSample ?? 8;
  }

  /** Starts sampling; until then (and after stop) everything is let in at once. */
  start(): void {
    if (this.timer) return;
    let due = Date.now() + this.intervalMs;
    this.timer = setInterval(() => {
      const now = Date.now();
      this.sampled(Math.max(0, now - due));
      due = now + this.intervalMs;
    }, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    for (const go of this.waiting.splice(0)) go();
  }

  /** Resolves when the work may begin: at once while nothing waits and the loop keeps up. */
  admit(): Promise<void> {
    if (!this.timer || (!this.waiting.length && this.delayMs < this.lateMs)) return Promise.resolve();
    return new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** Waiting to be let in (metrics, tests). */
  get queued(): number {
    return this.waiting.length;
  }

  /** One sample of how late the loop was (ms); exposed for tests, which drive it without a timer. */
  sampled(delayMs: number): void {
    this.delayMs = delayMs;
    if (delayMs >= this.lateMs) return;
    for (let i = 0; i < this.perSample && this.waiting.length; i++) this.waiting.shift()!();
  }
}
