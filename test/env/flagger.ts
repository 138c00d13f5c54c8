// The Flagger controller (v1.44.0, `build.sh flagger`) as a local process against the test API server. Its CRDs
// (canaries, metrictemplates, alertproviders.flagger.app) come from the module (`artifacts/flagger/crd.yaml`, copied
// into `<cacheDir>/crds`); Flagger refuses to start without all three.
//
// Flags of cmd/flagger/main.go (v1.44.0), Go `flag` style (one dash): -kubeconfig, -kubeconfig-qps (100),
// -kubeconfig-burst (250), -master, -metrics-server (http://prometheus:9090), -control-loop-interval (10s),
// -log-level (debug), -port (8080), -slack-url/-token/-proxy-url/-user/-channel, -event-webhook, -msteams-url,
// -msteams-proxy-url, -include-label-prefix, -threadiness (2), -zap-replace-globals, -zap-encoding (json),
// -namespace (all), -mesh-provider (istio), -selector-labels (app,name,app.kubernetes.io/name),
// -ingress-annotations-prefix, -ingress-class, -enable-leader-election (false), -leader-election-namespace,
// -enable-config-tracking (true), -version, -kubeconfig-service-mesh, -cluster-name, -no-cross-namespace-refs; plus
// klog's flags.
//
// Used here: -kubeconfig; -mesh-provider=kubernetes (blue-green by Services only, no mesh); -port on a free port (it
// serves /healthz and /metrics on every interface); leader election off; json logs at info; -control-loop-interval=1s:
// how often Flagger picks up new or changed Canaries and (re)schedules their jobs. Each Canary's analysis then ticks at
// its own `analysis.interval`, which Flagger raises to at least 10 s (Canary.GetAnalysisInterval), so every phase
// step takes 10 s here whatever the test asks for.
//
// No Prometheus: at start Flagger queries -metrics-server once (5 s timeout), logs "Metrics server ... unreachable"
// as an error and carries on. Canaries without `analysis.metrics` never query it. The flag points at a loopback port
// nothing listens on, so the check fails at once instead of waiting on a DNS lookup of `prometheus`.
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { installCrds } from './crds.js';
import { buildPeers, freePort, spawnPeer, waitUntil, type PeerProcess } from './process.js';

export const FLAGGER_VERSION = 'v1.44.0';

export interface Flagger {
  stop(): Promise<void>;
  peer: PeerProcess;
  /** http://127.0.0.1:<port>: /healthz and /metrics (Prometheus metrics, e.g. flagger_canary_status). */
  url: string;
}

export interface StartFlaggerOptions {
  kubeconfigPath: string;
  workDir: string;
  logDir: string;
  timeoutMs?: number;
}

const CRDS = ['canaries.flagger.app', 'metrictemplates.flagger.app', 'alertproviders.flagger.app'];

/**
 * Flagger's crd.yaml continues some single-quoted descriptions on lines no deeper than their key, which Go's YAML
 * reader takes and js-yaml (and `yaml`) reject ("deficient indentation"). Indenting those continuation lines two
 * more spaces changes nothing: a quoted scalar folds the leading white space of its continuation lines away.
 */
export function indentQuotedContinuations(text: string): string {
  const out: string[] = [];
  let open = false;
  for (const line of text.split('\n')) {
    if (open) {
      out.push(`  ${line}`);
      open = !closesQuote(line, 0);
      continue;
    }
    out.push(line);
    const m = /^\s*(?:- )?[\w.-]+: '/.exec(line);
    if (m) open = !closesQuote(line, m[0].length);
  }
  return out.join('\n');
}

/** Whether a single-quoted scalar whose text starts at `from` ends on this line ('' is an escaped quote). */
function closesQuote(line: string, from: number): boolean {
  for (let i = from; i < line.length; i++) {
    if (line[i] !== "'") continue;
    if (line[i + 1] === "'") i++;
    else return true;
  }
  return false;
}

export async function startFlagger(opts: StartFlaggerOptions): Promise<Flagger> {
  const cacheDir = await buildPeers('flagger');
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(opts.kubeconfigPath);
  const crdFile = join(cacheDir, 'crds', 'crd.yaml');
  await installCrds(kc, k8s.loadAllYaml(indentQuotedContinuations(await readFile(crdFile, 'utf8'))), CRDS, crdFile);
  await mkdir(opts.workDir, { recursive: true });
  const port = await freePort();
  let noPrometheus = await freePort();
  while (noPrometheus === port) noPrometheus = await freePort();
  const peer = await spawnPeer({
    name: 'flagger',
    command: join(cacheDir, 'bin', 'flagger'),
    args: [
      `-kubeconfig=${opts.kubeconfigPath}`,
      '-mesh-provider=kubernetes',
      `-port=${port}`,
      `-metrics-server=http://127.0.0.1:${noPrometheus}`,
      '-enable-leader-election=false',
      '-zap-encoding=json',
      '-log-level=info',
      '-control-loop-interval=1s',
    ],
    env: { KUBECONFIG: opts.kubeconfigPath },
    cwd: opts.workDir,
    logDir: opts.logDir,
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    // The HTTP server starts after the CRD check, the informer sync and the metrics-server probe.
    await waitUntil('flagger /healthz', async () => (await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) })).ok, {
      timeoutMs: opts.timeoutMs ?? 60_000,
      peer,
    });
  } catch (err) {
    await peer.stop();
    throw err;
  }
  return { peer, url, stop: () => peer.stop() };
}
