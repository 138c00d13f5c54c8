// The bench's sizes (from BENCH_* variables) and the report's rows, shared by every measure (see run.ts).
import { type Tool } from '../test/env/sample-app.js';
import { type Row } from './stats.js';

export const num = (name: string, fallback: number) => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
};
export const SIZES = {
  tools: (process.env['BENCH_TOOLS'] ?? 'flux,argocd').split(',').filter((t): t is Tool => t === 'flux' || t === 'argocd'),
  deployments: num('BENCH_DEPLOYMENTS', 50),
  baselineSamples: num('BENCH_BASELINE_SAMPLES', 3),
  burst: num('BENCH_BURST', 200),
  objects: num('BENCH_OBJECTS', 1000),
  rates: (process.env['BENCH_RATES'] ?? '100,200,500')
    .split(',')
    .map(Number)
    .filter((n) => n > 0),
  rateSeconds: num('BENCH_RATE_SECONDS', 10),
  steadySeconds: num('BENCH_STEADY_SECONDS', 60),
  /** kustomize-controller's workers (`--concurrent`); Flux's default is 4, too few for a burst of 200 Kustomizations. */
  fluxWorkers: num('BENCH_FLUX_WORKERS', 4),
};
/** `ack`: only the burst (which the acknowledgement rounds build on) and the acknowledgement rounds, for quick runs. */
export const ONLY = process.env['BENCH_ONLY'];
/** A commit whose service is measured beside this one in the acknowledgement round (before/after a change). */
export const BEFORE = process.env['BENCH_BEFORE'];
export const OUT = process.env['BENCH_OUT'] ?? 'docs/benchmarks.md';
/** Where the service writes a V8 CPU profile when it stops (open it in Chrome DevTools or speedscope); none if unset. */
export const PROFILE_DIR = process.env['BENCH_PROFILE_DIR'];
export const PROJECT = 'podtato';
/** How the measured service's memory is bounded: the chart's limit as a memory cgroup, or why it is not (run.ts). */
export const SERVICE_MEMORY = { described: 'no memory limit' };
export const rows: Row[] = [];
export const details: string[] = [];
export const now = () => Date.now();
