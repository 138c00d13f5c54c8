/**
 * What the service tells Prometheus, behind one small interface: the rooms that know something (runner, deployment,
 * Git, watch) call `Metrics`, and only main.ts chooses the implementation. The Prometheus one owns a registry of its
 * own, never prom-client's global one, so every test and every in-process service starts from zero (ADR 9).
 * Names follow https://prometheus.io/docs/practices/naming/: a `keptn_gitops_` prefix, base units (seconds),
 * `_total` on counters.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { KeptnResult, KeptnStatus } from '../keptn/events.js';
import type { TargetKind } from './settings/schema.js';

export type ToolName = 'flux' | 'argocd';
/** `none` when a deployment ended before its settings named a target (unreadable settings, no driver). */
export type ToolLabel = ToolName | 'none';
export type ResultLabel = KeptnResult | 'errored';
/** `expired`: the API server answered 410 Gone (the resourceVersion is too old); `error`: the list or watch failed. */
export type RestartReason = 'expired' | 'error';
/** Who a deployment waits for while it rides out an outage (tasks/outage.ts): its Git host, the resource-service, the Kubernetes API. */
export type OutageParty = 'git' | 'settings' | 'kube';

export interface DeploymentLabels {
  task: string;
  tool: ToolLabel;
  result: ResultLabel;
}

export interface Metrics {
  /** A deployment began running in this process (accepted, resumed or adopted). */
  deploymentBegan(): void;
  /** ... and stopped running here, however it ended. */
  deploymentEnded(): void;
  /** Its outcome was decided; `seconds` counts from acceptance, across restarts. */
  deploymentFinished(labels: DeploymentLabels, seconds: number): void;
  /** How long one deployment waited for the tool to apply its commit. */
  toolWaited(tool: ToolName, seconds: number): void;
  /** A push was rejected because the branch moved, and the commit protocol starts over. */
  pushRetried(): void;
  /** A watch relisted after a failure or a 410; `resource` as RBAC names it (`kustomizations.kustomize.toolkit.fluxcd.io`). */
  watchRestarted(resource: string, reason: RestartReason): void;
  /** An event could not be delivered to Keptn even after the sender's retries. */
  eventUndelivered(type: string): void;
  /** This replica resumed one of its own unfinished deployments. */
  resumed(): void;
  /** This replica adopted a deployment of a replica whose Lease ran out. */
  adopted(): void;
  /** A deployment began (+1) or stopped (-1) waiting for a party that is away (issue 23). */
  outageWaiting(party: OutageParty, delta: 1 | -1): void;
}

/** For tests and for rooms built without metrics. */
export const noMetrics: Metrics = {
  deploymentBegan: () => undefined,
  deploymentEnded: () => undefined,
  deploymentFinished: () => undefined,
  toolWaited: () => undefined,
  pushRetried: () => undefined,
  watchRestarted: () => undefined,
  eventUndelivered: () => undefined,
  resumed: () => undefined,
  adopted: () => undefined,
  outageWaiting: () => undefined,
};

const TOOL_OF: Record<TargetKind, ToolName> = { Kustomization: 'flux', HelmRelease: 'flux', Application: 'argocd' };

/** Which tool drives a target kind; `none` for a kind no driver takes. */
export function toolOf(kind: string): ToolLabel {
  return Object.hasOwn(TOOL_OF, kind) ? TOOL_OF[kind as TargetKind] : 'none';
}

export function resultLabel(outcome: { status: KeptnStatus; result: KeptnResult }): ResultLabel {
  return outcome.status === 'errored' ? 'errored' : outcome.result;
}

/**
 * From a second to an hour: a deployment takes as long as the tool (Flux's interval, Argo CD's sync and health), and
 * the default timeout (DEFAULT_TIMEOUT) is minutes.
 */
const DURATION_BUCKETS = [1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600];

export interface PrometheusMetricsOptions {
  /** Also the process's CPU, memory, event-loop lag and GC (prom-client's default metrics). */
  processMetrics?: boolean;
}

export class PrometheusMetrics implements Metrics {
  readonly registry = new Registry();
  private readonly deployments: Counter<'task' | 'tool' | 'result'>;
  private readonly durations: Histogram<'task' | 'tool' | 'result'>;
  private readonly toolWait: Histogram<'tool'>;
  private readonly pushRetries: Counter;
  private readonly inFlight: Gauge;
  private readonly watchRestarts: Counter<'resource' | 'reason'>;
  private readonly undelivered: Counter<'type'>;
  private readonly resumes: Counter;
  private readonly adoptions: Counter;
  private readonly outageWaits: Gauge<'party'>;

  constructor(opts: PrometheusMetricsOptions = {}) {
    const registers = [this.registry];
    this.deployments = new Counter({
      name: 'keptn_gitops_deployments_total',
      help: 'Deployments and roll-backs whose outcome was decided, by Keptn task, GitOps tool and result.',
      labelNames: ['task', 'tool', 'result'],
      registers,
    });
    this.durations = new Histogram({
      name: 'keptn_gitops_deployment_duration_seconds',
      help: 'Time from accepting a deployment.triggered or rollback.triggered to its decided outcome.',
      labelNames: ['task', 'tool', 'result'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.toolWait = new Histogram({
      name: 'keptn_gitops_tool_wait_duration_seconds',
      help: 'Time spent waiting for Flux or Argo CD to apply the deployment commit and report a verdict.',
      labelNames: ['tool'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.pushRetries = new Counter({
      name: 'keptn_gitops_git_push_retries_total',
      help: 'Git pushes rejected because the branch moved, after which the commit was made again on the new head.',
      registers,
    });
    this.inFlight = new Gauge({
      name: 'keptn_gitops_deployments_in_flight',
      help: 'Deployments running in this process now.',
      registers,
    });
    this.watchRestarts = new Counter({
      name: 'keptn_gitops_watch_restarts_total',
      help: 'Kubernetes watches relisted after a failure (reason="error") or a 410 Gone (reason="expired").',
      labelNames: ['resource', 'reason'],
      registers,
    });
    this.undelivered = new Counter({
      name: 'keptn_gitops_event_delivery_failures_total',
      help: 'Events to Keptn not delivered after every retry, by event type; an undelivered .finished is sent again later.',
      labelNames: ['type'],
      registers,
    });
    this.resumes = new Counter({
      name: 'keptn_gitops_resumes_total',
      help: 'Unfinished deployments of this replica taken up again (after a restart, or a .finished not yet delivered).',
      registers,
    });
    this.adoptions = new Counter({
      name: 'keptn_gitops_adoptions_total',
      help: 'Unfinished deployments taken over from a replica whose Lease ran out.',
      registers,
    });
    this.outageWaits = new Gauge({
      name: 'keptn_gitops_outage_waiting_deployments',
      help: 'Deployments waiting now for a party that is away (party="git": their Git host; "settings": the resource-service; "kube": the Kubernetes API).',
      labelNames: ['party'],
      registers,
    });
    if (opts.processMetrics) collectDefaultMetrics({ register: this.registry });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The text exposition format, for `GET /metrics`. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  deploymentBegan(): void {
    this.inFlight.inc();
  }

  deploymentEnded(): void {
    this.inFlight.dec();
  }

  deploymentFinished(labels: DeploymentLabels, seconds: number): void {
    this.deployments.inc({ ...labels });
    this.durations.observe({ ...labels }, Math.max(0, seconds));
  }

  toolWaited(tool: ToolName, seconds: number): void {
    this.toolWait.observe({ tool }, Math.max(0, seconds));
  }

  pushRetried(): void {
    this.pushRetries.inc();
  }

  watchRestarted(resource: string, reason: RestartReason): void {
    this.watchRestarts.inc({ resource, reason });
  }

  eventUndelivered(type: string): void {
    this.undelivered.inc({ type });
  }

  resumed(): void {
    this.resumes.inc();
  }

  adopted(): void {
    this.adoptions.inc();
  }

  outageWaiting(party: OutageParty, delta: 1 | -1): void {
    this.outageWaits.inc({ party }, delta);
  }
}
