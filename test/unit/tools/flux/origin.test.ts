// The Flux rules for sources that are not Git (issue 18 items 13, 14), one row per observed state (docs/verdicts.md
// (Flux) is the same table for users). Objects here are built from the controllers' source, cited in
// src/tools/flux/origin.ts: source-controller's OCIRepository artifact metadata (the manifest annotations),
// kustomize-controller 1.9.4 getOriginRevision / lastAppliedOriginRevision, helm-controller 1.6 getSource and
// mutateChartWithSourceRevision. test/env runs no OCI registry, so none of these is captured from a real controller.
import { describe, expect, it } from '@jest/globals';
import { evaluateHelmRelease, evaluateKustomization, type FluxObject, type FluxView } from '../../../../src/tools/flux/evaluate.js';
import { OURS, OLD, expected, viewOf, ctx, ready, reconciling } from './builders.js';

const DIGEST = `sha256:${'d'.repeat(64)}`;
const OTHER_DIGEST = `sha256:${'e'.repeat(64)}`;
const oci = (revision: string, origin?: string, name = 'app-oci'): FluxObject => ({
  kind: 'OCIRepository',
  metadata: { name, namespace: 'flux-system', generation: 1 },
  spec: { url: 'oci://ghcr.io/team/app-manifests', ref: { tag: 'latest' } },
  status: {
    artifact: {
      revision,
      digest: revision.slice(revision.indexOf('@') + 1),
      ...(origin
        ? { metadata: { 'org.opencontainers.image.revision': origin, 'org.opencontainers.image.source': 'https://git.example/team/app' } }
        : {}),
    },
  },
});
const withOci = (source: FluxObject, extra: Partial<FluxView> = {}): FluxView => ({
  ...viewOf(),
  ociRepository: (_ns, name) => (name === source.metadata.name ? source : undefined),
  ...extra,
});

describe('Flux Kustomization fed by an OCIRepository: follow the Git origin of its artifact (issue 18 item 14)', () => {
  const k = (status: FluxObject['status']): FluxObject => ({
    kind: 'Kustomization',
    metadata: { name: 'app', namespace: 'flux-system', generation: 2 },
    spec: { wait: true, path: './', sourceRef: { kind: 'OCIRepository', name: 'app-oci' } },
    status,
  });
  const NEW = `latest@${DIGEST}`;
  const PREVIOUS = `latest@${OTHER_DIGEST}`;
  it.each([
    [
      'passes once the artifact whose origin is our commit is applied (lastAppliedOriginRevision)',
      k({
        observedGeneration: 2,
        lastAppliedRevision: NEW,
        lastAttemptedRevision: NEW,
        lastAppliedOriginRevision: `main@sha1:${OURS}`,
        conditions: [ready('True', 'ReconciliationSucceeded')],
      }),
      oci(NEW, `main@sha1:${OURS}`),
      'passed',
      new RegExp(`at ${OURS}`),
    ],
    [
      'waits while the artifact served is still built from an older commit',
      k({
        observedGeneration: 2,
        lastAppliedRevision: PREVIOUS,
        lastAttemptedRevision: PREVIOUS,
        lastAppliedOriginRevision: `main@sha1:${OLD}`,
        conditions: [ready('True', 'ReconciliationSucceeded')],
      }),
      oci(PREVIOUS, `main@sha1:${OLD}`),
      'pending',
      /applied bbbbbbbbbbbb/,
    ],
    [
      'fails when the artifact built from our commit fails to apply (its origin is the attempted one)',
      k({
        observedGeneration: 2,
        lastAppliedRevision: PREVIOUS,
        lastAttemptedRevision: NEW,
        lastAppliedOriginRevision: `main@sha1:${OLD}`,
        conditions: [ready('False', 'BuildFailed', 'kustomize build failed')],
      }),
      oci(NEW, `main@sha1:${OURS}`),
      'failed',
      new RegExp(`at ${OURS}: BuildFailed: kustomize build failed`),
    ],
    [
      'waits when the OCIRepository already serves a newer artifact than the one that failed (its origin is unknown)',
      k({
        observedGeneration: 2,
        lastAppliedRevision: PREVIOUS,
        lastAttemptedRevision: `v2@${OTHER_DIGEST}`,
        lastAppliedOriginRevision: `main@sha1:${OLD}`,
        conditions: [ready('False', 'BuildFailed', 'x')],
      }),
      oci(NEW, `main@sha1:${OURS}`),
      'pending',
      /BuildFailed/,
    ],
    [
      'fails at once when the artifact records no Git origin: no commit can be followed',
      k({
        observedGeneration: 2,
        lastAppliedRevision: NEW,
        lastAttemptedRevision: NEW,
        conditions: [ready('True', 'ReconciliationSucceeded')],
      }),
      oci(NEW),
      'failed',
      /records no Git origin \(the org.opencontainers.image.revision annotation\): push it with flux push artifact --revision/,
    ],
  ] as const)('%s', (_name, kustomization, source, verdict, text) => {
    const v = evaluateKustomization(kustomization, expected(), ctx({ view: withOci(source) }));
    expect(v.state).toBe(verdict);
    expect(v.state === 'pending' ? v.reason : v.message).toMatch(text);
  });
});

describe('Flux HelmRelease with spec.chartRef: the chart built from our commit, as for spec.chart (issue 18 item 13)', () => {
  const readyAt1 = [
    { type: 'Ready', status: 'True', reason: 'UpgradeSucceeded', message: 'Helm upgrade succeeded', observedGeneration: 1 },
  ];
  const hr = (
    chartRef: Record<string, string>,
    status: Partial<NonNullable<FluxObject['status']>>,
    conditions: unknown[] = readyAt1,
  ): FluxObject => ({
    kind: 'HelmRelease',
    metadata: { name: 'web', namespace: 'flux-system', generation: 1 },
    spec: { chartRef },
    status: { observedGeneration: 1, conditions: conditions as never, ...status },
  });

  describe('a HelmChart (its own reconcileStrategy decides)', () => {
    const helmChart = (strategy: string | undefined, conditions: unknown[] = [], built = OURS): FluxObject => ({
      kind: 'HelmChart',
      metadata: { name: 'web-chart', namespace: 'flux-system', generation: 1 },
      spec: {
        chart: './charts/web',
        sourceRef: { kind: 'GitRepository', name: 'fleet' },
        ...(strategy ? { reconcileStrategy: strategy } : {}),
      },
      status: { observedSourceArtifactRevision: `main@sha1:${built}`, conditions: conditions as never },
    });
    const ref = { kind: 'HelmChart', name: 'web-chart' };
    it.each([
      ['passes on a chart version built from our commit', 'Revision', `0.1.0+${OURS.slice(0, 12)}`, [], 'passed', /is ready/],
      [
        'waits while the chart is an older build',
        'Revision',
        `0.1.0+${OLD.slice(0, 12)}`,
        [],
        'pending',
        /has not attempted a chart built from our commit/,
      ],
      [
        'fails at once under the ChartVersion strategy, naming the HelmChart field to set',
        undefined,
        '0.1.0',
        [],
        'failed',
        /set spec.reconcileStrategy of HelmChart web-chart: Revision/,
      ],
      [
        'fails when the HelmChart cannot be built from our commit',
        'Revision',
        `0.1.0+${OLD.slice(0, 12)}`,
        [{ type: 'BuildFailed', status: 'True', reason: 'ChartPackageError', message: 'Chart.yaml invalid' }],
        'failed',
        /HelmChart flux-system\/web-chart could not be built at a{40}: ChartPackageError: Chart.yaml invalid/,
      ],
    ] as const)('%s', (_name, strategy, attempted, chartConditions, verdict, text) => {
      const view = viewOf({ charts: [helmChart(strategy, [...chartConditions])] });
      const v = evaluateHelmRelease(hr(ref, { lastAttemptedRevision: attempted }), expected(), ctx({ chartFromOurRepo: true, view }));
      expect(v.state).toBe(verdict);
      expect(v.state === 'pending' ? v.reason : v.message).toMatch(text);
    });
  });

  describe("an OCIRepository (the artifact digest the release attempted, and that artifact's Git origin)", () => {
    const ref = { kind: 'OCIRepository', name: 'web-chart-oci' };
    const chartOci = (origin: string) => oci(`0.1.0@${DIGEST}`, origin, 'web-chart-oci');
    it.each([
      [
        'passes when the attempted digest is the artifact built from our commit',
        { lastAttemptedRevision: `0.1.0+${'d'.repeat(12)}`, lastAttemptedRevisionDigest: DIGEST },
        `main@sha1:${OURS}`,
        readyAt1,
        'passed',
      ],
      [
        'waits while the release attempted another digest, though its version suffix looks like our commit',
        { lastAttemptedRevision: `0.1.0+${OURS.slice(0, 12)}`, lastAttemptedRevisionDigest: OTHER_DIGEST },
        `main@sha1:${OURS}`,
        readyAt1,
        'pending',
      ],
      [
        'waits while the artifact is built from an older commit',
        { lastAttemptedRevision: `0.1.0+${'d'.repeat(12)}`, lastAttemptedRevisionDigest: DIGEST },
        `main@sha1:${OLD}`,
        readyAt1,
        'pending',
      ],
      [
        'fails when the upgrade of our artifact failed and no retry is left',
        { lastAttemptedRevision: `0.1.0+${'d'.repeat(12)}`, lastAttemptedRevisionDigest: DIGEST },
        `main@sha1:${OURS}`,
        [{ type: 'Ready', status: 'False', reason: 'UpgradeFailed', message: 'boom', observedGeneration: 1 }],
        'failed',
      ],
      [
        'waits while helm-controller retries it',
        { lastAttemptedRevision: `0.1.0+${'d'.repeat(12)}`, lastAttemptedRevisionDigest: DIGEST },
        `main@sha1:${OURS}`,
        [
          { type: 'Ready', status: 'False', reason: 'UpgradeFailed', message: 'boom', observedGeneration: 1 },
          { ...reconciling('ProgressingWithRetry'), observedGeneration: 1 },
        ],
        'pending',
      ],
    ] as const)('%s', (_name, status, origin, conditions, verdict) => {
      const v = evaluateHelmRelease(
        hr(ref, { ...status } as never, [...conditions]),
        expected(),
        ctx({ chartFromOurRepo: true, view: withOci(chartOci(origin)) }),
      );
      expect(v.state).toBe(verdict);
    });
  });
});
