// The Rollout apps of rollouts.e2e.test.ts: a repository with a Rollout (blue-green or canary) and its Service(s),
// applied by Argo CD or Flux, and the settings that map Keptn's strategies to it. Pure builders, no environment.
import { IMAGE, type TestApp, type Tool } from '../../env/sample-app.js';

export type Strategy = 'blueGreen' | 'canary';
/** The Keptn strategy name each Rollout strategy answers to in these settings. */
export const KEPTN_STRATEGY: Record<Strategy, string> = { blueGreen: 'blue_green_service', canary: 'canary' };

/** The canary steps of every canary Rollout here unless a test names its own. */
export const HELD_STEPS = `        - setWeight: 50
        - pause: {}`;

export function rolloutFiles(name: string, strategy: Strategy, tool: Tool, steps = HELD_STEPS): Record<string, string> {
  const strategyYaml =
    strategy === 'blueGreen'
      ? `  strategy:
    blueGreen:
      activeService: web
      previewService: web-preview
      autoPromotionEnabled: false`
      : `  strategy:
    canary:
      steps:
${steps}`;
  const service = (svc: string) => `apiVersion: v1
kind: Service
metadata:
  name: ${svc}${
    tool === 'flux'
      ? `
  # The Rollouts controller owns the selector's pod-template-hash key: Flux creates the Service and leaves it alone.
  annotations: { kustomize.toolkit.fluxcd.io/ssa: IfNotPresent }`
      : ''
  }
spec:
  selector: { app: web }
  ports: [{ port: 80, targetPort: 8080 }]
`;
  return {
    [`apps/${name}/rollout.yaml`]: `apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
  annotations:
    gitops.keptn.sh/projects: podtato
spec:
  replicas: 2
  revisionHistoryLimit: 3
  selector:
    matchLabels: { app: web }
  template:
    metadata:
      labels: { app: web }
    spec:
      containers:
        - name: web
          image: ${IMAGE}:0.1.0
${strategyYaml}
`,
    [`apps/${name}/service.yaml`]: service('web'),
    ...(strategy === 'blueGreen' ? { [`apps/${name}/preview.yaml`]: service('web-preview') } : {}),
  };
}

export function settings(app: TestApp, tool: Tool): string {
  const target =
    tool === 'argocd'
      ? `{ kind: Application, name: ${app.name}, namespace: argocd }`
      : `{ kind: Kustomization, name: ${app.name}, namespace: flux-system }`;
  return `git:
  url: ${app.repoUrl}
  branch: main
  secretRef: { name: ${app.name}-git }
images:
  - file: apps/${app.name}/rollout.yaml
    yamlPath: spec.template.spec.containers[0].image
target: ${target}
progressive:
  rollout: { name: web, namespace: ${app.namespace} }
  strategies: [blue_green_service, canary]
timeout: 120s
`;
}
