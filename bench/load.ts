// An open-loop HTTP load generator on node:http with keep-alive: requests leave on a fixed schedule whatever the
// answers do, so a slow server shows up as long answer times instead of a lower send rate (closed-loop generators
// hide exactly the queueing this measures).
import { Agent, request } from 'node:http';
import { Worker } from 'node:worker_threads';

export interface LoadResult {
  /** Answer times in ms, one per request that got an answer. */
  latencies: number[];
  statuses: Record<string, number>;
  errors: number;
  sent: number;
}

export interface LoadOptions {
  url: string;
  method: 'GET' | 'POST';
  ratePerSecond: number;
  seconds: number;
  /** The body of the i-th request (POST). */
  body?: (i: number) => { headers: Record<string, string>; text: string };
  /** Give up on an answer after this long (counted as an error). */
  timeoutMs?: number;
}

export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: 512 });
  const url = new URL(opts.url);
  const result: LoadResult = { latencies: [], statuses: {}, errors: 0, sent: 0 };
  const total = Math.round(opts.ratePerSecond * opts.seconds);
  const pending: Promise<void>[] = [];
  const start = performance.now();
  const one = (i: number) =>
    new Promise<void>((resolve) => {
      const payload = opts.body?.(i);
      const began = performance.now();
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: opts.method,
          agent,
          headers: { ...(payload?.headers ?? {}), ...(payload ? { 'content-length': Buffer.byteLength(payload.text) } : {}) },
          timeout: opts.timeoutMs ?? 30_000,
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            result.latencies.push(performance.now() - began);
            const code = String(res.statusCode ?? 0);
            result.statuses[code] = (result.statuses[code] ?? 0) + 1;
            resolve();
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => {
        result.errors++;
        resolve();
      });
      req.end(payload?.text);
    });
  // Every 10 ms, send what the schedule says is due by now.
  for (let i = 0; i < total;) {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * opts.ratePerSecond) + 1);
    for (; i < due; i++) {
      result.sent++;
      pending.push(one(i));
    }
    if (i < total) await new Promise((r) => setTimeout(r, 10));
  }
  await Promise.all(pending);
  agent.destroy();
  return result;
}

/** The options of a load that runs in its own thread: the bodies are made beforehand (a function cannot be sent). */
export type IsolatedLoadOptions = Omit<LoadOptions, 'body'> & { bodies?: Array<{ headers: Record<string, string>; text: string }> };

/**
 * runLoad in a worker thread with its own event loop. In the bench's own thread, its watchers and event observers
 * (thousands of objects and events while the accepted deployments run) delayed sends and answers, and the answer
 * times measured the bench as much as the service.
 */
export function runLoadInWorker(opts: IsolatedLoadOptions): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./load-worker.ts', import.meta.url), { workerData: opts, execArgv: ['--import', 'tsx'] });
    worker.once('message', (result: LoadResult) => {
      resolve(result);
      void worker.terminate();
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the load worker exited with code ${code} before it answered`)));
  });
}
