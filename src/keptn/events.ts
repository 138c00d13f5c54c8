/**
 * The Keptn v1 event contract for the deployment task, and pure builders for the events we send back.
 * @see https://github.com/keptn/spec/blob/0.2.4/cloudevents.md
 */
import { randomUUID } from 'node:crypto';

export const SPEC_VERSION = '0.2.4';
export const EVENT_PREFIX = 'sh.keptn.event.';

export type TaskPhase = 'triggered' | 'started' | 'status.changed' | 'finished';
export type KeptnStatus = 'succeeded' | 'errored' | 'unknown';
export type KeptnResult = 'pass' | 'warning' | 'fail';
export type DeploymentStrategy = 'direct' | 'blue_green_service' | 'user_managed';

export function taskEventType(task: string, phase: TaskPhase): string {
  return `${EVENT_PREFIX}${task}.${phase}`;
}

/** The envelope attributes we read from and copy out of a `.triggered` event. */
export interface KeptnEnvelope {
  id: string;
  type: string;
  source: string;
  shkeptncontext: string;
  gitcommitid?: string;
}

/**
 * The label naming the GitOps commit of a change made in Git (src/observe/): a sequence started for it carries the
 * label to its tasks, and a `deployment.triggered` with it is answered by confirming that commit, without writing.
 */
export const REVISION_LABEL = 'gitops.keptn.sh/revision';

/** The common data block of every Keptn event. */
export interface KeptnEventData {
  project: string;
  stage: string;
  service: string;
  labels?: Record<string, string>;
  status?: KeptnStatus;
  result?: KeptnResult;
  message?: string;
  [key: string]: unknown;
}

export interface DeploymentTriggeredData extends KeptnEventData {
  configurationChange?: { values?: Record<string, unknown> };
  deployment?: {
    deploymentstrategy?: string;
    deploymentURIsLocal?: string[];
    deploymentURIsPublic?: string[];
  };
}

/**
 * `release.triggered` carries what the earlier tasks of the sequence reported: shipyard-controller merges the data of
 * every `.finished` of the sequence's earlier tasks into the next `.triggered` (keptn/keptn 1.4.5,
 * shipyard-controller/models/sequence_execution.go GetNextTriggeredEventData), so our `deployment.finished` arrives
 * here as `deployment`, with the commit it deployed in `gitCommit`.
 */
export interface ReleaseTriggeredData extends DeploymentTriggeredData {
  deployment?: DeploymentTriggeredData['deployment'] & { gitCommit?: unknown; deploymentNames?: unknown; progressiveVersion?: unknown };
}

/** A `.triggered` event of a task we handle, already validated. */
export interface TriggeredEvent<D extends KeptnEventData = KeptnEventData> extends KeptnEnvelope {
  task: string;
  data: D;
}

/** A structured-mode CloudEvent as JSON, ready to be POSTed. */
export interface OutgoingEvent {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  time: string;
  datacontenttype: 'application/json';
  shkeptncontext: string;
  triggeredid: string;
  shkeptnspecversion: string;
  gitcommitid?: string;
  data: KeptnEventData;
}

export interface DeploymentOutcome {
  status: KeptnStatus;
  result: KeptnResult;
  message: string;
  deploymentstrategy: string;
  deploymentNames: string[];
  deploymentURIsLocal: string[];
  deploymentURIsPublic: string[];
  /** The GitOps repository commit that carries this deployment, when there is one. */
  gitCommit?: string;
  /** The commit that reverted `gitCommit` after it failed (settings `onFailure: revert`). */
  revertCommit?: string;
  /** A progressive deployment or release: the workload, and where the preview and the stable version are reached. */
  progressive?: { workload: string; previewURIsLocal: string[]; stableURIsLocal: string[] };
  /**
   * A progressive deployment that passed: the exact version the workload held back for Keptn's tests (a Rollout's
   * pod-template hash, a Canary's lastAppliedSpec). Keptn hands it to the release (as `deployment.progressiveVersion`),
   * which promotes that version and no other.
   */
  progressiveVersion?: string;
}

export interface BuildOptions {
  source: string;
  now?: Date;
  id?: string;
}

function envelope(triggered: TriggeredEvent, phase: TaskPhase, opts: BuildOptions): Omit<OutgoingEvent, 'data'> {
  return {
    specversion: '1.0',
    id: opts.id ?? randomUUID(),
    source: opts.source,
    type: taskEventType(triggered.task, phase),
    time: (opts.now ?? new Date()).toISOString(),
    datacontenttype: 'application/json',
    shkeptncontext: triggered.shkeptncontext,
    triggeredid: triggered.id,
    shkeptnspecversion: SPEC_VERSION,
    ...(triggered.gitcommitid ? { gitcommitid: triggered.gitcommitid } : {}),
  };
}

/** Project, stage, service and labels: what Keptn's shipyard-controller calls the event scope. */
function scopeOf(triggered: TriggeredEvent): KeptnEventData {
  const { project, stage, service, labels } = triggered.data;
  return { project, stage, service, ...(labels ? { labels } : {}) };
}

export function startedEvent(triggered: TriggeredEvent, opts: BuildOptions): OutgoingEvent {
  return { ...envelope(triggered, 'started', opts), data: { ...scopeOf(triggered), status: 'succeeded' } };
}

export function finishedEvent(triggered: TriggeredEvent, outcome: DeploymentOutcome, opts: BuildOptions): OutgoingEvent {
  const { status, result, message, gitCommit, ...deployment } = outcome;
  return {
    ...envelope(triggered, 'finished', opts),
    data: {
      ...scopeOf(triggered),
      status,
      result,
      message,
      [triggered.task]: { ...deployment, ...(gitCommit ? { gitCommit } : {}) },
    },
  };
}

/** The outcome of a deployment that could not be carried out: `.finished` says errored, with what to fix. */
export function errored(triggered: TriggeredEvent, message: string): DeploymentOutcome {
  return {
    status: 'errored',
    result: 'fail',
    message,
    // String(): data.deployment comes from the event and is only checked to be an object.
    deploymentstrategy: String(requestedStrategy(triggered.data as DeploymentTriggeredData)),
    deploymentNames: [],
    deploymentURIsLocal: [],
    deploymentURIsPublic: [],
  };
}

/** What the shipyard asked for; helm-service's default when absent is `direct`. */
export function requestedStrategy(data: DeploymentTriggeredData): string {
  return data.deployment?.deploymentstrategy || 'direct';
}

/**
 * `sh.keptn.event.<stage>.<sequence>.triggered`: starts a shipyard sequence. No `triggeredid` (nothing triggered it in
 * Keptn); shipyard-controller hands its data, labels included, to every task of the sequence (keptn/keptn 1.4.5
 * shipyard-controller, GetMergedPayloadForSequenceTriggeredEvent).
 */
export type SequenceTriggeredEvent = Omit<OutgoingEvent, 'triggeredid' | 'gitcommitid'>;

export interface SequenceTrigger {
  /** The event id and Keptn context: the same for every send of one announcement, so a re-send is recognisable. */
  id: string;
  shkeptncontext: string;
  stage: string;
  sequence: string;
  data: KeptnEventData;
}

export function sequenceTriggeredEvent(trigger: SequenceTrigger, opts: BuildOptions): SequenceTriggeredEvent {
  return {
    specversion: '1.0',
    id: trigger.id,
    source: opts.source,
    type: `${EVENT_PREFIX}${trigger.stage}.${trigger.sequence}.triggered`,
    time: (opts.now ?? new Date()).toISOString(),
    datacontenttype: 'application/json',
    shkeptncontext: trigger.shkeptncontext,
    shkeptnspecversion: SPEC_VERSION,
    data: trigger.data,
  };
}

/**
 * The distributor refuses event bodies over 64 KiB (keptn/keptn distributor/pkg/forwarder/forwarder.go), so a
 * longer message would make `.finished` undeliverable; a message this long has said what it has to say anyway.
 */
export const MAX_MESSAGE_CHARS = 8 * 1024;

/** The outcome with its message cut to MAX_MESSAGE_CHARS, saying how much was left out. */
export function boundedOutcome(outcome: DeploymentOutcome): DeploymentOutcome {
  if (outcome.message.length <= MAX_MESSAGE_CHARS) return outcome;
  return {
    ...outcome,
    message: `${outcome.message.slice(0, MAX_MESSAGE_CHARS)}… (${outcome.message.length - MAX_MESSAGE_CHARS} more characters)`,
  };
}
