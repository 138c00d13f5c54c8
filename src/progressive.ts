/**
 * Which way a Keptn deployment strategy goes for a service: as written (`direct`, `user_managed`: the tool applies
 * the commit and that is the release), or through the progressive workload the settings name (a Rollout that keeps
 * the new version as preview or canary until `release` promotes it). A strategy the settings do not map is refused
 * with what to change, never deployed some other way than the shipyard asked.
 */
import { DEFAULT_PROGRESSIVE_STRATEGIES, DIRECT_STRATEGIES, type GitOpsSettings } from './settings/schema.js';

export type StrategyPlan = { kind: 'direct' } | { kind: 'rollout'; rollout: { name: string; namespace: string } } | { problem: string };

export function strategyPlan(strategy: string, settings: Pick<GitOpsSettings, 'target' | 'progressive'>): StrategyPlan {
  if ((DIRECT_STRATEGIES as readonly string[]).includes(strategy)) return { kind: 'direct' };
  const progressive = settings.progressive;
  const mapped: readonly string[] = progressive?.strategies ?? DEFAULT_PROGRESSIVE_STRATEGIES;
  if (progressive && mapped.includes(strategy)) return { kind: 'rollout', rollout: progressive.rollout };
  const { kind, namespace, name } = settings.target;
  const shown = JSON.stringify(strategy);
  if (!progressive)
    return {
      problem:
        `deploymentstrategy ${shown} needs a progressive workload (preview or canary, promoted by release), which ${kind} ` +
        `${namespace}/${name} alone cannot do: name the service's Argo Rollouts Rollout in the settings (progressive.rollout), ` +
        `or use ${DIRECT_STRATEGIES.join(' or ')} in the shipyard`,
    };
  return {
    problem:
      `deploymentstrategy ${shown} is not one the settings deploy progressively (progressive.strategies: ${mapped.join(', ')}); ` +
      `add it there, or use one of those or ${DIRECT_STRATEGIES.join(' or ')} in the shipyard`,
  };
}
