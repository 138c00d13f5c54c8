// `npm run bench`: the service's speed and scale against the real peers of test/env (issue 11), each figure beside a
// baseline measured in the same run, because the machine is shared and noisy. Prints a table and writes
// docs/benchmarks.md. Sizes come from the environment so that a short run is possible:
//   BENCH_TOOLS=flux,argocd  BENCH_DEPLOYMENTS=50  BENCH_BASELINE_SAMPLES=3  BENCH_BURST=200  BENCH_OBJECTS=1000
//   BENCH_RATES=100,200,500  BENCH_RATE_SECONDS=10  BENCH_STEADY_SECONDS=60  BENCH_OUT=docs/benchmarks.md
//   BENCH_FLUX_WORKERS=4  BENCH_PROFILE_DIR=/tmp/prof (a CPU profile of the service)
//   BENCH_ONLY=ack (only the burst and the acknowledgement rounds: a quick look at one change, not a report)
//   BENCH_ONLY=burst (only the burst and its footprint, e.g. with BENCH_FLUX_WORKERS=50)
//   BENCH_ONLY=latency (only the sequential deployments and their baselines: detection latency and overhead)
// The npm script holds the shared e2e lock (flock /tmp/e2e.lock) so that no test runs beside it.
import { readFile, writeFile } from 'node:fs/promises';
import { cpus, totalmem, type } from 'node:os';
import { startEnvironment, startServiceProcess, type ServiceReplica } from '../test/env/environment.js';
import { table } from './stats.js';
import { memoryLimit, quantityBytes, type MemoryLimit } from '../test/env/memory-limit.js';
import { parse as parseYaml } from 'yaml';
import { SIZES, BEFORE, ONLY, OUT, PROFILE_DIR, SERVICE_MEMORY, rows, details } from './common.js';
import { observeEvents } from './observe.js';
import { sequential, transportFloor } from './latency.js';
import { burst } from './burst.js';
import { serviceAt, acknowledgement, apiServerLimit } from './ack.js';
import { recordCount, steadyState } from './steady.js';

/** Thrown to end a run that measured all it was asked to (BENCH_ONLY). */
class Finished extends Error {}

// ---------------------------------------------------------------------------------------------------------------

const started = new Date();
console.log(`bench: sizes ${JSON.stringify(SIZES)}`);
const env = await startEnvironment({
  flux: true,
  fluxWorkers: SIZES.fluxWorkers,
  argocd: SIZES.tools.includes('argocd'),
  service: false,
});
console.log(`bench: environment up, logs in ${env.logDir}`);
let replica: ServiceReplica | undefined;
let failure: unknown;
// A profiling run keeps its whole CPU profile in memory until exit, so it runs without the pod's limit.
const podMemory = PROFILE_DIR ? undefined : await chartMemoryLimit();
const events = observeEvents(env);
try {
  // The built service, as the image runs it (`npm run bench` builds it first).
  replica = await startServiceProcess(env, {
    replicaId: 'bench',
    built: true,
    // A profile is written when the process exits, so it must stop within the 5 s before test/env's SIGKILL.
    extraEnv: { ...(await imageEnv()), LOG_LEVEL: 'info', ...(PROFILE_DIR ? { DRAIN_TIMEOUT: '1s' } : {}) },
    ...(PROFILE_DIR ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] } : {}),
    ...(podMemory ? { memoryLimit: podMemory } : {}),
  });
  const floor = ONLY && ONLY !== 'latency' ? undefined : await transportFloor(env, replica, Math.max(20, SIZES.deployments));
  if (floor)
    for (const tool of SIZES.tools) {
      console.log(`bench: ${tool}: ${SIZES.deployments} deployments, then ${SIZES.baselineSamples} of each baseline`);
      await sequential(env, events, tool, floor);
    }
  if (ONLY === 'latency') throw new Finished();
  console.log(`bench: burst of ${SIZES.burst} with ${SIZES.objects} watched objects`);
  // A burst that cannot run is a missed target in the table; the rounds after it still run.
  await burst(env, events, replica).catch((err: unknown) =>
    rows.push({
      measure: `Burst: ${SIZES.burst} services of one repository`,
      value: `not measured: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`,
      baseline: '–',
      target: 'all within 3× one deployment, exactly once, nothing lost',
      met: false,
    }),
  );
  if (!ONLY) {
    console.log(`bench: steady state after the burst, 2 × ${SIZES.steadySeconds} s`);
    await steadyState(env, replica, `after the burst (${await recordCount(env)} deployment records kept)`);
  }
  if (ONLY !== 'burst') await acknowledgementRounds(replica);
  if (!ONLY) {
    console.log(`bench: steady state after the acknowledgement rounds, 2 × ${SIZES.steadySeconds} s`);
    await steadyState(env, replica, `after the acknowledgement rounds (${await recordCount(env)} deployment records kept)`);
  }
} catch (err: unknown) {
  if (!(err instanceof Finished)) {
    failure = err;
    console.error('bench failed:', err);
  }
} finally {
  events.close();
  await replica?.stop().catch(() => undefined);
  await env.stop();
  await podMemory?.remove();
}

/** The API server's own limit, then POST / at each rate, for this service and the one at BENCH_BEFORE. */
async function acknowledgementRounds(replica: ServiceReplica): Promise<void> {
  console.log('bench: the API server alone, taking the writes of the acknowledgement');
  const limit = await apiServerLimit(env);
  console.log(`bench: acknowledgement at ${SIZES.rates.join(', ')} events/s`);
  const before = BEFORE ? await serviceAt(env, BEFORE) : undefined;
  try {
    await acknowledgement(
      env,
      events,
      [{ label: 'now', port: replica.port, stop: async () => undefined }, ...(before ? [before] : [])],
      limit,
    );
  } finally {
    await before?.stop();
  }
}

/** The environment the image sets (the Dockerfile's `ENV` lines), but its paths: the service runs as in the pod. */
async function imageEnv(): Promise<Record<string, string>> {
  const lines = (await readFile('Dockerfile', 'utf8')).split('\n').filter((l) => l.startsWith('ENV '));
  const pairs = lines.flatMap((l) => l.slice(4).trim().split(/\s+/)).map((p) => p.split('=', 2) as [string, string]);
  return Object.fromEntries(pairs.filter(([, v]) => v !== undefined && !v.startsWith('/')));
}

/**
 * The chart's memory limit (values.yaml `resources.limits.memory`) as a memory cgroup for the service: Node sizes V8's
 * heap from it as in the pod (test/env/memory-limit.ts), so the footprint is the pod's, not this machine's.
 */
async function chartMemoryLimit(): Promise<MemoryLimit | undefined> {
  const values = parseYaml(await readFile('chart/values.yaml', 'utf8')) as { resources?: { limits?: { memory?: string } } };
  const quantity = values.resources?.limits?.memory;
  if (!quantity) return undefined;
  const limit = await memoryLimit(`keptn-gitops-bench-${process.pid}`, quantityBytes(quantity));
  if ('unavailable' in limit) {
    SERVICE_MEMORY.described = `not inside the chart's ${quantity} limit: ${limit.unavailable}`;
    return undefined;
  }
  SERVICE_MEMORY.described = `inside the chart's memory limit, ${quantity}, as a memory cgroup`;
  return limit;
}

const cpuModel = cpus()[0]?.model ?? 'unknown';
const report = `# Benchmarks

Measured by \`npm run bench\` (bench/run.ts) against the real peers of test/env: kube-apiserver with kwok, Flux,
Argo CD, the Git server, NATS and the Keptn distributor, with the service as its own process. Every figure has a
baseline measured in the same run, because the machine is shared and noisy.

- Command: \`${[
  'BENCH_TOOLS',
  'BENCH_BEFORE',
  'BENCH_DEPLOYMENTS',
  'BENCH_BASELINE_SAMPLES',
  'BENCH_BURST',
  'BENCH_OBJECTS',
  'BENCH_RATES',
  'BENCH_RATE_SECONDS',
  'BENCH_STEADY_SECONDS',
  'BENCH_FLUX_WORKERS',
  'BENCH_ONLY',
]
  .filter((k) => process.env[k])
  .map((k) => `${k}=${process.env[k]}`)
  .concat('npm run bench')
  .join(' ')}\`
- Machine: ${cpus().length} cores (${cpuModel}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB memory, ${type()}, Node ${process.version}; shared with other work
- Date: ${started.toISOString()} (took ${((Date.now() - started.getTime()) / 60_000).toFixed(1)} min)
- Sizes: ${JSON.stringify(SIZES)}${BEFORE ? `; acknowledgement also measured for the service at ${BEFORE}` : ''}
${failure ? `- **The run failed before it ended**: ${failure instanceof Error ? failure.message.split('\n')[0] : String(failure)}\n` : ''}
${table(rows)}

${details.map((d) => `- ${d}`).join('\n')}
`;
console.log(`\n${table(rows)}\n`);
// The analysis below the marker is written by hand from a run's figures; a new run keeps it for the next edit.
const MARKER = '## Why targets are missed, and what would close them';
const previous = await readFile(OUT, 'utf8').catch(() => '');
const kept = previous.includes(MARKER) ? previous.slice(previous.indexOf(MARKER)) : `${MARKER}\n\n(not written yet)\n`;
await writeFile(OUT, `${report}\n${kept}`, 'utf8');
console.log(`bench: wrote ${OUT}`);
process.exit(failure ? 1 : 0);
