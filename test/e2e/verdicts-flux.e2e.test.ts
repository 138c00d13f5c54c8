// The Flux verdicts of issue 7 and issue 18 on the setups teams really run, against the real controllers: each
// scenario is a repository, Flux objects and settings a team would have, a Keptn deployment through the real
// distributor, and the verdict the service reports (docs/verdicts.md (Flux) is the table these scenarios prove rows
// of). One environment for all of them (flux-verdicts/world.ts); the cases run concurrently (jest's maxConcurrency),
// each on a repository, namespace and Flux objects of its own.
import { afterAll, beforeAll, describe } from '@jest/globals';
import { helmReleaseCases } from './flux-verdicts/helmrelease.cases.js';
import { kustomizationCases, rolloutCheckCases } from './flux-verdicts/kustomization.cases.js';
import { start, stop } from './flux-verdicts/world.js';

beforeAll(start, 300_000);
afterAll(stop, 60_000);

// One describe block for every case, so that they all share jest's maxConcurrency (support/concurrent.ts).
describe('Flux verdicts on the setups teams run (issues 7 and 18)', () => {
  kustomizationCases();
  helmReleaseCases();
  rolloutCheckCases();
});
