/**
 * The first step of every task: the service's settings, its tool, the grants, and the repository with its granted
 * credentials; nothing reaches Git or the tool before it returns.
 */
import type { Logger } from 'pino';
import type { RepoRef } from '../platform/git/workspace.js';
import { requestedStrategy, type DeploymentTriggeredData, type TriggeredEvent } from '../keptn/events.js';
import { parseDuration } from '../shared/duration.js';
import type { GitOpsSettings } from '../platform/settings/schema.js';
import type { HandlerContext } from './handler.js';
import { DeploymentError, type DeploymentDeps, type Prepared } from './deps.js';
import { credentials, grantedSecret } from './grant-checks.js';
import { checkTarget } from './target-check.js';
import { rideOut } from './outage.js';

export async function prepare(
  event: TriggeredEvent<DeploymentTriggeredData>,
  deps: DeploymentDeps,
  log: Logger,
  context: Partial<HandlerContext>,
  opts: { commits?: boolean } = {},
): Promise<Prepared> {
  const { project, stage, service } = event.data;
  // The settings name the deployment's timeout, so a resource-service that is away is waited for until the default one.
  const { settings, where } = await rideOut(
    { party: 'settings', name: 'the resource-service', deadline: (context.acceptedAt ?? Date.now()) + deps.defaultTimeoutMs },
    () => deps.settings.load({ project, stage, service }, event.gitcommitid),
    { log, metrics: deps.metrics, aside: context.aside },
  );
  log.info({ where }, 'settings loaded');
  context.onTarget?.(settings.target.kind);
  const tool = deps.tools.find((t) => t.kinds.includes(settings.target.kind));
  if (!tool) throw new DeploymentError('NO_TOOL', `no driver for target.kind ${settings.target.kind} in ${where}`);
  // From here the branch is known: its group commit waits for this deployment's change while the checks below run,
  // so a burst of one repository goes out in one commit (issue 22, item 2).
  const withdraw = opts.commits ? deps.git.expectCommit(settings.git, settings.git.author ?? deps.author, event.id) : undefined;
  try {
    return { ...(await checked(event, settings, tool, deps, log)), ...(withdraw ? { withdraw } : {}) };
  } catch (err: unknown) {
    withdraw?.();
    throw err;
  }
}

/** The grants and the target check, then the repository with its granted credentials. */
async function checked(
  event: TriggeredEvent<DeploymentTriggeredData>,
  settings: GitOpsSettings,
  tool: Prepared['tool'],
  deps: DeploymentDeps,
  log: Logger,
): Promise<Prepared> {
  const { project } = event.data;
  // Both grants, and that the target deploys from what the settings write, are decided before anything is cloned,
  // fetched, written or patched: a refusal sends nothing anywhere.
  // The grant and the target check are independent reads of the API server, so they run side by side (issue 22,
  // item 3); when both refuse, the grant's refusal is the one reported, as when they ran one after the other. The
  // Secret's data is read only once both passed.
  const [secret] = await inOrder(grantedSecret(settings, project, deps, log), checkTarget(settings, project, deps, log));
  const repo = await repositoryWith(settings, secret, deps);
  return {
    settings,
    tool,
    repo,
    timeoutMs: settings.timeout ? parseDuration(settings.timeout) : deps.defaultTimeoutMs,
    report: reportFields(event, settings),
  };
}

/**
 * The repository (with its granted credentials) the settings of a Keptn service name: where the observer reads who
 * made a commit. The settings are the latest ones (no sequence, so no configuration version, asks for another).
 */
export async function repositoryOf(
  scope: { project: string; stage: string; service: string },
  deps: DeploymentDeps,
  log: Logger,
): Promise<RepoRef> {
  const { settings } = await deps.settings.load(scope, undefined);
  // The commit is read with the Secret's credentials: only from the repository the service's granted target reads.
  const secret = await grantedSecret(settings, scope.project, deps, log);
  await checkTarget(settings, scope.project, deps, log);
  return repositoryWith(settings, secret, deps);
}

/** Awaits both; throws the first one's error before the second's, whichever came first. */
async function inOrder<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [ra, rb] = await Promise.allSettled([a, b]);
  if (ra.status === 'rejected') throw ra.reason;
  if (rb.status === 'rejected') throw rb.reason;
  return [ra.value, rb.value];
}

/** The settings' repository and branch, with the granted Secret's credentials when there is one. */
async function repositoryWith(
  settings: GitOpsSettings,
  secret: Awaited<ReturnType<typeof grantedSecret>>,
  deps: DeploymentDeps,
): Promise<RepoRef> {
  return {
    url: settings.git.url,
    branch: settings.git.branch,
    ...(settings.git.insecureAcceptNewHostKey ? { insecureAcceptNewHostKey: true } : {}),
    ...(await credentials(secret, deps)),
  };
}

function reportFields(event: TriggeredEvent<DeploymentTriggeredData>, settings: GitOpsSettings) {
  const asked = event.data.deployment;
  return {
    deploymentstrategy: requestedStrategy(event.data),
    deploymentNames: settings.report?.deploymentNames ?? [event.data.service],
    deploymentURIsLocal: settings.report?.deploymentURIsLocal ?? asked?.deploymentURIsLocal ?? [],
    deploymentURIsPublic: settings.report?.deploymentURIsPublic ?? asked?.deploymentURIsPublic ?? [],
  };
}
