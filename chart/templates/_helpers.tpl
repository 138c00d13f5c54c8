{{/* The app's name: the chart's, unless nameOverride says otherwise. */}}
{{- define "gitops.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Names of the objects in the release namespace: the release name, which Helm keeps unique per namespace (Keptn's
Bridge shows it as the integration's name, through the distributor's K8S_DEPLOYMENT_NAME).
*/}}
{{- define "gitops.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Names of cluster-scoped objects (ClusterRole, ClusterRoleBinding): a release name is unique only within its namespace,
so the namespace is part of the name. Neither a namespace nor a release name may contain ':', so two releases never
share a name. RBAC names are path segments (up to 253 characters): no truncation needed.
*/}}
{{- define "gitops.clusterScopedName" -}}
{{- printf "%s:%s:%s" (include "gitops.name" .) .Release.Namespace .Release.Name -}}
{{- end -}}

{{- define "gitops.serviceAccount" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "gitops.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name: the ServiceAccount to run as when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "gitops.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The selector: name and instance only. A Deployment's selector cannot change after the first install, so it holds
nothing that an upgrade changes (version, chart) or that describes rather than identifies (part-of, component).
*/}}
{{- define "gitops.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gitops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Every object's labels (https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/). */}}
{{- define "gitops.labels" -}}
{{ include "gitops.selectorLabels" . }}
app.kubernetes.io/version: {{ include "gitops.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: execution-plane
app.kubernetes.io/part-of: keptn
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ include "gitops.chart" . }}
{{- end -}}

{{/*
The image: repository:tag, pinned with @digest when one is given (image.digest, or a tag written as tag@digest, the
form skaffold sets; an empty digest after '@' is ignored).
*/}}
{{- define "gitops.imageTag" -}}
{{- splitList "@" (toString (.Values.image.tag | default .Chart.AppVersion)) | first -}}
{{- end -}}

{{- define "gitops.imageDigest" -}}
{{- $parts := splitList "@" (toString .Values.image.tag) -}}
{{- if .Values.image.digest -}}
{{- .Values.image.digest -}}
{{- else if gt (len $parts) 1 -}}
{{- last $parts -}}
{{- end -}}
{{- end -}}

{{- define "gitops.image" -}}
{{- $digest := include "gitops.imageDigest" . -}}
{{- printf "%s:%s" .Values.image.repository (include "gitops.imageTag" .) -}}
{{- if $digest }}@{{ $digest }}{{ end -}}
{{- end -}}

{{/* Remote execution plane: the distributor polls the Keptn API over HTTP(S) instead of subscribing to NATS. */}}
{{- define "gitops.remote" -}}
{{- if .Values.distributor.keptnApiEndpoint }}true{{ end -}}
{{- end -}}

{{/* Where the Bridge says this integration runs (the distributor's LOCATION). */}}
{{- define "gitops.location" -}}
{{- if .Values.distributor.location -}}
{{- .Values.distributor.location -}}
{{- else if include "gitops.remote" . -}}
remote-execution-plane
{{- else -}}
control-plane
{{- end -}}
{{- end -}}

{{/*
The distributor's NATS queue group: the replicas of one release share each event (one of them takes it), while every
other release (another namespace, or other project/stage/service filters) gets its own copy. '_' appears in neither a
namespace nor a release name, so no two releases share a group.
*/}}
{{- define "gitops.pubsubGroup" -}}
{{- default (printf "%s_%s_%s" (include "gitops.name" .) .Release.Namespace .Release.Name) .Values.distributor.group -}}
{{- end -}}

{{/*
A container's environment: the chart's variables (`base`, a YAML list), then `extra` from the values. A variable in
`extra` replaces the chart's of the same name instead of repeating it: a repeated name hides the first one in the
container and makes server-side apply refuse the object (duplicate entries for key).
*/}}
{{- define "gitops.env" -}}
{{- $extra := .extra | default list -}}
{{- $names := dict -}}
{{- range $extra }}{{- $_ := set $names .name true -}}{{- end -}}
{{- $env := list -}}
{{- range fromYamlArray .base }}{{- if not (hasKey $names .name) }}{{- $env = append $env . -}}{{- end }}{{- end -}}
{{- toYaml (concat $env $extra) -}}
{{- end -}}

{{/* What the service does with Flux and Argo CD objects: in a ClusterRole, or a Role per namespace (rbac.namespaces). */}}
{{- define "gitops.toolRules" -}}
{{- if .Values.rbac.flux }}
- apiGroups: [kustomize.toolkit.fluxcd.io]
  resources: [kustomizations]
  verbs: [get, list, watch, patch]
- apiGroups: [helm.toolkit.fluxcd.io]
  resources: [helmreleases]
  verbs: [get, list, watch, patch]
- apiGroups: [source.toolkit.fluxcd.io]
  resources: [gitrepositories]
  verbs: [get, list, watch, patch]
# A Kustomization or chartRef fed by an OCIRepository: the Git origin its artifact records, and a reconcile request.
- apiGroups: [source.toolkit.fluxcd.io]
  resources: [ocirepositories]
  verbs: [get, list, watch, patch]
# Charts built from Git: which commit a chart revision was built from, and its build failures.
- apiGroups: [source.toolkit.fluxcd.io]
  resources: [helmcharts]
  verbs: [get, list, watch]
# Without spec.wait, Flux's Ready means "applied": the rollout and images of the workloads in its inventory are
# checked by the service itself (docs/verdicts.md).
- apiGroups: [apps]
  resources: [deployments, statefulsets, daemonsets]
  verbs: [get, list, watch]
{{- end }}
{{- if .Values.rbac.argocd }}
- apiGroups: [argoproj.io]
  resources: [applications]
  verbs: [get, list, watch, patch]
# Sync windows of the Application's project: a deny window over the whole deadline is reported at once.
- apiGroups: [argoproj.io]
  resources: [appprojects]
  verbs: [get]
# Generated Applications: a RollingSync ApplicationSet syncs them itself; a Git files generator regenerates them.
- apiGroups: [argoproj.io]
  resources: [applicationsets]
  verbs: [get]
# A workload scaled to 0 runs no Pods: it is judged by the template the sync applied (docs/verdicts.md).
- apiGroups: [apps]
  resources: [deployments, statefulsets, replicasets]
  verbs: [get]
# A Suspended Application's Argo Rollouts, read only then: a timed pause resumes on its own and is waited out.
- apiGroups: [argoproj.io]
  resources: [rollouts]
  verbs: [get, list, watch]
{{- end }}
{{- if .Values.rbac.rollouts }}
# Progressive strategies: follow the settings' Rollout, promote it (release) and abort it (rollback), as the
# kubectl argo rollouts plugin does, on the status subresource.
- apiGroups: [argoproj.io]
  resources: [rollouts]
  verbs: [get, list, watch, patch]
- apiGroups: [argoproj.io]
  resources: [rollouts/status]
  verbs: [patch]
# A Rollout with spec.workloadRef keeps its template in a Deployment, ReplicaSet or PodTemplate: the images and the
# generation the Rollout must have observed are read there.
- apiGroups: [apps]
  resources: [deployments, replicasets]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [podtemplates]
  verbs: [get, list, watch]
{{- end }}
{{- if .Values.rbac.flagger }}
# Progressive strategies with Flagger: follow the settings' Canary and its Deployments (the target and
# <target>-primary), and open its gates by annotating it (release: promote, rollback: roll back). Flagger itself
# promotes and rolls back, when it asks the gate webhooks on the probe port.
- apiGroups: [flagger.app]
  resources: [canaries]
  verbs: [get, list, watch, patch]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch]
{{- end }}
{{- end }}

{{/*
Keptn's namespace: keptnNamespace, else service.secretNamespace (where `keptn create secret` puts Secrets, which is
Keptn's namespace), else the release namespace (installed beside Keptn).
*/}}
{{- define "gitops.keptnNamespace" -}}
{{- .Values.keptnNamespace | default .Values.service.secretNamespace | default .Release.Namespace -}}
{{- end -}}

{{/* Where the service reads the Secrets named without a namespace: service.secretNamespace, else Keptn's namespace. */}}
{{- define "gitops.secretNamespace" -}}
{{- .Values.service.secretNamespace | default (include "gitops.keptnNamespace" .) -}}
{{- end -}}

{{/*
The state namespace (ADR 17): state.namespace, else one of the release's own, `<release namespace>-<release>-state`
(both are DNS labels, so the name is one too); past 63 characters it is cut and a hash of the whole keeps it unique.
*/}}
{{- define "gitops.stateNamespace" -}}
{{- if .Values.state.namespace -}}
{{- .Values.state.namespace -}}
{{- else -}}
{{- $name := printf "%s-%s-state" .Release.Namespace .Release.Name -}}
{{- if gt (len $name) 63 -}}
{{- printf "%s-%s" ($name | trunc 54 | trimSuffix "-") (sha256sum $name | trunc 8) -}}
{{- else -}}
{{- $name -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Where an earlier release kept the state, when it is not the state namespace now (ADR 17): state.moveFrom, else what
this release's running Deployment says (its STATE_NAMESPACE; or, after an upgrade that began a move, its
PREVIOUS_STATE_NAMESPACE while anything of the service is left there). Empty when nothing is to be moved, and always
under `helm template`, where lookup answers nothing.
*/}}
{{- define "gitops.stateMoveFrom" -}}
{{- $to := include "gitops.stateNamespace" . -}}
{{- $from := .Values.state.moveFrom -}}
{{- if not $from -}}
{{- $env := dict -}}
{{- $current := lookup "apps/v1" "Deployment" .Release.Namespace (include "gitops.fullname" .) -}}
{{- range (dig "spec" "template" "spec" "containers" list $current) -}}
{{- if eq (get . "name") "gitops-service" -}}
{{- range (get . "env" | default list) -}}
{{- $_ := set $env (get . "name") (get . "value" | default "") -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $was := get $env "STATE_NAMESPACE" -}}
{{- $before := get $env "PREVIOUS_STATE_NAMESPACE" -}}
{{- if and $was (ne $was $to) -}}
{{- $from = $was -}}
{{- else if and $before (ne $before $to) -}}
{{- $left := false -}}
{{- range (concat (dig "items" list (lookup "v1" "ConfigMap" $before "")) (dig "items" list (lookup "coordination.k8s.io/v1" "Lease" $before ""))) -}}
{{- if eq (dig "metadata" "labels" "app.kubernetes.io/managed-by" "" .) "keptn-gitops-service" -}}
{{- $left = true -}}
{{- end -}}
{{- end -}}
{{- if $left }}{{ $from = $before }}{{ end -}}
{{- end -}}
{{- end -}}
{{- if and $from (ne $from $to) }}{{ $from }}{{ end -}}
{{- end -}}
