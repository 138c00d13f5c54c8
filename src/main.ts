/**
 * The process: configuration → dependencies → app → listen; SIGTERM/SIGINT → stop taking events and close.
 * Deployments still running are recorded in Kubernetes: the next process, or another replica, finishes them.
 */
import { pino, type DestinationStream } from 'pino';
import { buildApp, buildProbeApp } from './app.js';
import { ArgoCDTool } from './tools/argocd/driver.js';
import { loadConfig, REDACT_PATHS, type ServiceConfig } from './config.js';
import { deploy, repositoryOf, rollback, type DeploymentDeps } from './tasks/deployment.js';
import { messageOf } from './shared/errors.js';
import { FluxTool } from './tools/flux/driver.js';
import { GitWorkspace, safeUrl } from './platform/git/workspace.js';
import { KubeCluster, loadKubeConfig } from './platform/k8s/cluster.js';
import { HttpEventSink } from './keptn/sender.js';
import { PrometheusMetrics } from './platform/metrics.js';
import { release } from './tasks/release.js';
import { RolloutsDriver } from './tools/rollouts/driver.js';
import { FlaggerDriver } from './tools/flagger/driver.js';
import { DEPLOYMENT_TRAILER } from './platform/git/workspace.js';
import { KubeObserverLease } from './observe/lease.js';
import { Observer } from './observe/observer.js';
import { observationGrant, observedSettings } from './observe/link.js';
import { ConfigMapObservationStore } from './observe/records.js';
import { RecordRetention } from './observe/retention.js';
import { buildNotifyApp } from './observe/notify-app.js';
import { notifySenderFrom, NotifyKeyCache } from './observe/notify-keys.js';
import { parseDuration } from './shared/duration.js';
import { DeploymentRunner } from './tasks/runner.js';
import { ConfigMapStore } from './platform/state/configmaps.js';
import { ConfigMapIntake } from './platform/state/intake.js';
import { LeaseRegistry } from './platform/state/replicas.js';
import { StateMove } from './platform/state/move.js';
import { DirectorySettings, ResourceServiceSettings } from './platform/settings/source.js';
import type { DeploymentTriggeredData, TriggeredEvent } from './keptn/events.js';
import { SOURCE_KINDS } from './tasks/target-source.js';
import { LoopPace } from './shared/pace.js';

/**
 * Log lines go to stdout in the background, as pino's default (sonic-boom, asynchronous), but with a bound: when the
 * reader of the pipe (the container runtime) falls behind, the lines wait in memory, and under a burst of thousands of
 * deployments nothing else limited how much (issue 22, item 3). Past 16 MiB waiting, lines are dropped rather than the
 * process growing toward its memory limit; what waits is written when the process exits (pino flushes on exit).
 */
function standardOutput(): DestinationStream {
  return pino.destination({ dest: 1, sync: false, maxLength: 16 * 2 ** 20 });
}

export async function startService(config: ServiceConfig, logDestination?: DestinationStream) {
  // ISO times and level names: what log stores and people read without a lookup table.
  const log = pino(
    {
      level: config.logLevel,
      redact: { paths: REDACT_PATHS, censor: '***' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    logDestination ?? standardOutput(),
  );
  // The one place that chooses the implementation; every room gets the `Metrics` interface (or none: a no-op).
  const metrics = new PrometheusMetrics({ processMetrics: true });
  const kc = loadKubeConfig(config.kubeconfig);
  const cluster = new KubeCluster(
    kc,
    log.child({ component: 'kube' }),
    { onRestart: (resource, reason) => metrics.watchRestarted(resource, reason) },
    config.watchNamespaces,
  );
  const flagger = new FlaggerDriver(cluster);
  const deps: DeploymentDeps = {
    settings: config.configDir
      ? new DirectorySettings(config.configDir, config.configResource)
      : new ResourceServiceSettings(config.resourceServiceUrl, config.configResource),
    git: new GitWorkspace({
      root: config.workDir,
      hosts: { allowed: config.allowedGitHosts },
      cacheLimitBytes: config.gitCacheLimitBytes,
      onDiscard: (url, problem) => log.warn({ repo: safeUrl(url), problem }, 'cached clone failed its checks; made anew'),
      onPushRetry: () => metrics.pushRetried(),
    }),
    tools: [new FluxTool(cluster), new ArgoCDTool(cluster)],
    progressive: { Rollout: new RolloutsDriver(cluster), Canary: flagger },
    secretData: (ns, name) => cluster.secretData(ns, name),
    objectMetadata: (ref) => cluster.objectMetadata(ref),
    readObject: (kind, namespace, name) => cluster.readFresh(SOURCE_KINDS[kind], namespace, name),
    secretNamespace: config.secretNamespace,
    defaultTimeoutMs: config.defaultTimeoutMs,
    author: config.author,
    metrics,
  };
  const sink = new HttpEventSink({ url: config.eventUrl, ...(config.apiToken ? { apiToken: config.apiToken } : {}) });
  const store = new ConfigMapStore(kc, config.stateNamespace);
  const runner = new DeploymentRunner({
    sink,
    handle: (event, eventLog, context) =>
      (event.task === 'rollback' ? rollback : event.task === 'release' ? release : deploy)(
        event as TriggeredEvent<DeploymentTriggeredData>,
        deps,
        eventLog,
        context,
      ),
    log,
    source: config.serviceName,
    store,
    intake: new ConfigMapIntake(kc, config.stateNamespace),
    replicas: new LeaseRegistry(kc, config.stateNamespace, config.replicaId, config.leaseSeconds),
    resumeIntervalMs: config.resumeIntervalMs,
    maxStarting: config.maxStarting,
    pace: new LoopPace(),
    heartbeatIntervalMs: Math.max(1_000, (config.leaseSeconds * 1000) / 4),
    metrics,
  });
  const observations = new ConfigMapObservationStore(kc, config.stateNamespace);
  const observer =
    config.observe.length || config.notifyPort !== undefined
      ? new Observer({
          cluster,
          tools: config.observe,
          store: observations,
          lease: new KubeObserverLease(kc, config.stateNamespace, config.replicaId, config.leaseSeconds),
          sink,
          source: config.serviceName,
          log: log.child({ component: 'observer' }),
          commit: async (link, revision) => {
            const repo = await repositoryOf(link, deps, log.child({ component: 'observer', ...link }));
            const facts = await deps.git.commitFacts(repo, revision);
            if (!facts) return undefined;
            const trailer = new RegExp(`^${DEPLOYMENT_TRAILER}: `, 'm');
            return { revision: facts.commit, author: facts.author, subject: facts.subject, ownDeployment: trailer.test(facts.body) };
          },
          authorize: async (object, hint) => observationGrant(object, hint, await observedSettings(deps.settings, hint)),
          service: async (link) => {
            const { settings } = await deps.settings.load(link, undefined);
            const grace = settings.argocd?.degradedGrace;
            return {
              repoUrl: settings.git.url,
              ...(grace ? { degradedGraceMs: parseDuration(grace) } : {}),
              ...(settings.argocd?.suspended ? { suspended: settings.argocd.suspended } : {}),
            };
          },
          deployedByUs: async (revision) =>
            (await store.list()).some((r) => r.progress?.ownCommit && r.progress.commit.startsWith(revision)),
          renewIntervalMs: Math.max(1_000, (config.leaseSeconds * 1000) / 4),
        })
      : undefined;
  const retention =
    observer &&
    new RecordRetention({
      store: observations,
      retentionMs: config.observationRetentionMs,
      active: () => observer.observing,
      log: log.child({ component: 'observer' }),
    });
  // The senders' keys are read in the background and cached: a request never reads the API before its signature holds.
  const notifyKeys =
    observer && config.notifyPort !== undefined && config.notifySecrets.length
      ? new NotifyKeyCache({
          secrets: config.notifySecrets,
          read: async (name) =>
            notifySenderFrom(
              name,
              await cluster.secretData(config.secretNamespace, name),
              (await cluster.objectMetadata({ apiVersion: 'v1', kind: 'Secret', namespace: config.secretNamespace, name })).annotations,
            ),
          refreshMs: 30_000,
          onError: (name, err) => log.warn({ err, secret: name }, 'notification keys not readable; the last ones read stay in use'),
        })
      : undefined;
  const notify =
    observer && notifyKeys
      ? buildNotifyApp(
          {
            senders: () => notifyKeys.current(),
            linkOf: (...args) => observer.linkOf(...args),
            wake: (...args) => observer.wake(...args),
          },
          { loggerInstance: log.child({ component: 'notifications' }) },
        )
      : undefined;
  // An upgrade that changed the state namespace: what the earlier release left there comes here once its replicas
  // stopped, and is adopted like the work of any stopped replica. The observer waits for it, so that one replica
  // observes at a time across the move (the earlier one holds the observer Lease there until it stops).
  let stopping = false;
  const moved = config.previousStateNamespace
    ? new StateMove(kc, config.previousStateNamespace, config.stateNamespace).untilDone(
        config.resumeIntervalMs,
        log.child({ component: 'state-move' }),
        () => stopping,
      )
    : Promise.resolve();
  const probes = buildProbeApp(
    { ready: () => cluster.ready(), metrics, gate: (...args) => flagger.gate(...args) },
    { loggerInstance: log },
  );
  const app = buildApp({ accept: (e) => runner.accept(e) }, { loggerInstance: log });
  try {
    await probes.listen({ host: config.healthHost, port: config.healthPort });
    await runner.start();
    void moved.then(() => {
      if (stopping) return;
      observer?.start();
      retention?.start();
    });
    await notifyKeys?.start();
    if (notify) await notify.listen({ host: config.notifyHost, port: config.notifyPort! });
    await app.listen({ host: config.host, port: config.port });
  } catch (err: unknown) {
    stopping = true;
    runner.stop();
    notifyKeys?.stop();
    await observer?.stop();
    await retention?.stop();
    await Promise.allSettled([app.close(), probes.close(), notify?.close()]);
    cluster.close();
    throw err;
  }
  log.info(
    {
      events: `${config.host}:${config.port}`,
      probes: `${config.healthHost}:${config.healthPort}`,
      eventUrl: config.eventUrl,
      settings: config.configDir ?? config.resourceServiceUrl,
      replica: config.replicaId,
      observe: config.observe,
    },
    'keptn-gitops-service listening',
  );

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      stopping = true;
      // No new events or announcements, then a bounded wait for the running deployments; what is left is recorded,
      // and resumed elsewhere.
      await observer?.stop();
      await retention?.stop();
      notifyKeys?.stop();
      await notify?.close();
      await app.close();
      await runner.shutdown(config.drainMs);
      await probes.close();
      cluster.close();
    })());
  return { app, probes, runner, observer, close, log };
}

const isMain = import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/src/main.ts');
if (isMain) {
  let config: ServiceConfig;
  try {
    config = loadConfig(process.env);
  } catch (err: unknown) {
    console.error(messageOf(err));
    process.exit(2);
  }
  const service = await startService(config).catch((err: unknown) => {
    console.error(`keptn-gitops-service could not start: ${messageOf(err)}`);
    console.error('It needs the Kubernetes API (in-cluster, or KUBECONFIG) for its deployment records and the GitOps tools.');
    process.exit(1);
  });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      service.log.info({ signal }, 'shutting down');
      void service.close().then(() => process.exit(0));
    });
  }
}
